#[pnode::neural_ode(method = "rk4", steps = 10, t = (0.0, 1.0))]
mod m {
    state! { x = 1.0 }
    param! { k = 0.5 }
}

fn main() {}
