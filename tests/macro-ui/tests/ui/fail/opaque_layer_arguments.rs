// `opaque` takes the input and the output shape.
#[pnode::neural_ode(method = "rk4", steps = 10, t = (0.0, 1.0))]
mod m {
    state! { u[2] = [1.0, 0.0] }
    layer! { net = opaque(2) }
    fn rhs(t: f64, u: [f64; 2]) -> [f64; 2] {
        net(u)
    }
}

fn main() {}
