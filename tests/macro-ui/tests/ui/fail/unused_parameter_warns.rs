// A lowering warning (an unused parameter) is a compiler warning at the parameter's tokens;
// it is denied here so that the snapshot records it.
#![deny(deprecated)]

#[pnode::neural_ode(method = "rk4", steps = 10, t = (0.0, 1.0))]
mod m {
    state! { x = 1.0 }
    param! { k = 0.5, spare = 2.0 }
    fn rhs(t: f64, x: f64) -> f64 {
        -k * x
    }
}

fn main() {
    let mut ode = m::Ode::new().unwrap();
    println!("{:?}", ode.forward(&m::Ode::U0, &m::Ode::THETA0).unwrap());
}
