#[pnode::neural_ode(method = "rk4", steps = 10, t = (0.0, 1.0))]
struct Model {
    x: f64,
}

fn main() {}
