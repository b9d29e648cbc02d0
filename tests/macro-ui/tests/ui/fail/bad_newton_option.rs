#[pnode::neural_ode(method = "crank_nicolson", steps = 10, t = (0.0, 1.0), max_iters = 0)]
mod m {
    state! { x = 1.0 }
    fn rhs(t: f64, x: f64) -> f64 {
        -x
    }
}

fn main() {}
