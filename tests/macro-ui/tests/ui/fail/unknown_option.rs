#[pnode::neural_ode(methd = "rk4", steps = 10)]
mod m {
    state! { x = 1.0 }
    fn rhs(t: f64, x: f64) -> f64 {
        -x
    }
}

fn main() {}
