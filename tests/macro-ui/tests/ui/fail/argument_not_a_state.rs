#[pnode::neural_ode(method = "rk4", steps = 10, t = (0.0, 1.0))]
mod m {
    state! { x = 1.0 }
    fn rhs(t: f64, y: f64) -> f64 {
        -x
    }
}

fn main() {}
