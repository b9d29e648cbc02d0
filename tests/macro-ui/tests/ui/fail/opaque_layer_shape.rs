// An opaque layer applied to a value of the wrong shape: one error at the argument, and the
// code that gives the layers and reads the whole θ still type-checks (no cascade).
#[pnode::neural_ode(method = "rk4", steps = 10, t = (0.0, 1.0))]
mod m {
    state! { u[2] = [1.0, 0.0] }
    layer! { net = opaque(3, 2) }
    fn rhs(t: f64, u: [f64; 2]) -> [f64; 2] {
        net(u)
    }
}

fn main() {
    let layers: Vec<Box<dyn pnode::runtime::OpaqueLayer>> = Vec::new();
    let mut ode = m::Ode::new(layers).unwrap();
    let theta = ode.theta0();
    let out = ode.forward(&m::Ode::U0, &theta).unwrap();
    println!("{} {}", out.len(), ode.param_len());
}
