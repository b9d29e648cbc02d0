//! Implicit methods: the same `Ode` API over the runtime's θ-method and DIRK steppers, with
//! the Newton options of the attribute.

#[pnode::neural_ode(method = "crank_nicolson", steps = 10, t = (0.0, 1.0), newton_tol = 1e-12, max_iters = 20, linear_solver = "dense")]
mod m {
    state! { x = 1.0 }
    param! { k = 1.0 }
    fn rhs(t: f64, x: f64) -> f64 {
        -k * x
    }
}

#[pnode::neural_ode(method = sdirk2, steps = 8, t = (0.0, 1.0), checkpoint = revolve(slots = 2), line_search = true)]
mod d {
    state! { x = 1.0 }
    param! { k = 2.0 }
    fn rhs(t: f64, x: f64) -> f64 {
        -k * x
    }
}

fn main() {
    let mut ode = m::Ode::new().unwrap();
    let out = ode.forward(&m::Ode::U0, &m::Ode::THETA0).unwrap()[0];
    // Crank–Nicolson on x' = −x: x₁₀ = ((1 − h/2)/(1 + h/2))¹⁰ with h = 0.1.
    let exact = (0.95_f64 / 1.05).powi(10);
    assert!((out - exact).abs() < 1e-12, "{out} vs {exact}");
    let g = ode.gradient(&m::Ode::U0, &m::Ode::THETA0, &[1.0]).unwrap();
    assert!((g.du0[0] - exact).abs() < 1e-12);
    assert!(m::Ode::IMPLICIT && m::Ode::NEWTON.unwrap().max_iters == 20);
    assert_eq!(m::Ode::STEP_COST.stage_vectors, 2);

    let mut ode = d::Ode::new().unwrap();
    let (l, g) = ode
        .value_and_grad(&d::Ode::U0, &d::Ode::THETA0, |o, dl| {
            dl[0] = 1.0;
            o[0]
        })
        .unwrap();
    assert!(l > 0.0 && l < 1.0 && g.dp[0] < 0.0);
    assert_eq!(ode.stats().reversed_steps, d::Ode::PREDICTED.reversed_steps);
    assert_eq!(d::Ode::SCHEDULE_NAME, "revolve(2)");
}
