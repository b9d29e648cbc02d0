// The model has one mistake; the uses of its generated names below do not add errors.
#[pnode::neural_ode(method = "rk4", steps = 10, t = (0.0, 1.0))]
mod m {
    state! { x = 1.0 }
    fn rhs(t: f64, x: f64) -> f64 {
        -x * missing
    }
}

fn main() {
    let mut ode = m::Ode::new().unwrap();
    let out = ode.forward(&m::Ode::U0, &m::Ode::THETA0).unwrap();
    println!("{} {}", out.len(), m::Ode::N_STEPS);
}
