//! The attribute on a module, with every option, used through the facade only.

#[pnode::neural_ode(
    method = "rk4",
    steps = 100,
    t = (0.0, 5.0),
    outputs = linspace(0.0, 5.0, 6),
    checkpoint = revolve(slots = 4)
)]
mod lotka_volterra {
    state! { x = 1.0, y = 1.0 }
    param! { alpha = 1.5, beta = 1.0, delta = 3.0, gamma = 1.0 }
    const HALF: f64 = 0.5;
    fn rhs(t: f64, x: f64, y: f64) -> (f64, f64) {
        let xy = x * y;
        (alpha * x - beta * xy, delta * xy - gamma * y * HALF * 2.0)
    }
}

fn main() {
    use lotka_volterra::Ode;
    let mut ode = Ode::new().unwrap();
    let out = ode.forward(&Ode::U0, &Ode::THETA0).unwrap().to_vec();
    assert_eq!(out.len(), 6 * 2);
    assert_eq!(out[0..2], [1.0, 1.0]);
    let g = ode.gradient(&Ode::U0, &Ode::THETA0, &vec![1.0; 12]).unwrap();
    assert_eq!((g.du0.len(), g.dp.len()), (2, 4));
    assert_eq!(ode.stats(), Ode::PREDICTED);
    assert_eq!(Ode::SCHEDULE_NAME, "revolve(4)");
    assert!(Ode::SCHEDULE_SUMMARY.contains("predicted"));
}
