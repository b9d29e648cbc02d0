//! Tensor states, a layer, methods, slicing and a `.pode` file through `model!` (its path is
//! relative to trybuild's project directory).

#[pnode::neural_ode(method = dopri5, steps = 20, t = 0.0..1.0, checkpoint = solution_only)]
mod net {
    state! { u[3, 2] = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]] }
    param! { scale = 0.5 }
    layer! { f = mlp([2, 4, 2], activation = tanh) }
    fn rhs(t: f64, u: [[f64; 2]; 3]) -> [[f64; 2]; 3] {
        let g = f(u.powi(3)) * scale;
        g - u[(.., 0..2)] * t.cos().exp() / 10.0
    }
}

pnode::model!("../../../../tests/macro-ui/tests/ui/pass/decay.pode");

fn main() {
    let mut ode = net::Ode::new().unwrap();
    let out = ode.forward(&net::Ode::U0, &net::Ode::THETA0).unwrap();
    assert!(out.iter().all(|x| x.is_finite()));
    assert_eq!(net::Ode::PARAM_LEN, 1 + 4 * 2 + 4 + 2 * 4 + 2);
    let mut d = decay::Ode::new().unwrap();
    let x = d.forward(&decay::Ode::U0, &decay::Ode::THETA0).unwrap()[0];
    assert!((x - 2.0 * (-0.5f64).exp()).abs() < 1e-8);
}
