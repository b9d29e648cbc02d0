//! Opaque layers (`layer! { net = opaque(in, out) }`): generated code calls a layer it does not
//! see into, through `pnode::runtime::opaque::OpaqueLayer`. Oracles: the same model with the
//! layers written as pnode's own `mlp`/`linear` (same parameter layout, so the same `θ`) must
//! give the same solution and gradients, and central differences the same gradient; a failing
//! layer must stop the sweep with an error naming it.

use pnode::runtime::opaque::{LayerSet, LayerSpec, OpaqueLayer};
use pnode::runtime::{Error, Eval, Gradient, ModelError, Phase};

/// `y = W₁ tanh(W₀ x + b₀) + b₁` with `φ = [W₀ (h×n), b₀ (h), W₁ (m×h), b₁ (m)]`, row-major:
/// the layout of pnode's `mlp([n, h, m], activation = tanh)`.
struct HandMlp {
    n: usize,
    h: usize,
    m: usize,
    /// Forward calls so far, and the call that fails (for the error test).
    calls: usize,
    fail_at: Option<usize>,
    /// Whether the VJP fails (for the error test of the reverse sweep).
    fail_vjp: bool,
}

impl HandMlp {
    fn new(n: usize, h: usize, m: usize) -> Self {
        HandMlp {
            n,
            h,
            m,
            calls: 0,
            fail_at: None,
            fail_vjp: false,
        }
    }

    /// `(W₀, b₀, W₁, b₁)` as slices of `φ`.
    fn split<'a>(&self, phi: &'a [f64]) -> (&'a [f64], &'a [f64], &'a [f64], &'a [f64]) {
        let (w0, rest) = phi.split_at(self.h * self.n);
        let (b0, rest) = rest.split_at(self.h);
        let (w1, b1) = rest.split_at(self.m * self.h);
        (w0, b0, w1, b1)
    }

    /// The hidden activations `tanh(W₀ x + b₀)`.
    fn hidden(&self, x: &[f64], phi: &[f64]) -> Vec<f64> {
        let (w0, b0, _, _) = self.split(phi);
        (0..self.h)
            .map(|j| {
                let z: f64 = b0[j] + (0..self.n).map(|i| w0[j * self.n + i] * x[i]).sum::<f64>();
                z.tanh()
            })
            .collect()
    }
}

impl OpaqueLayer for HandMlp {
    fn input_len(&self) -> usize {
        self.n
    }
    fn output_len(&self) -> usize {
        self.m
    }
    fn param_len(&self) -> usize {
        self.h * self.n + self.h + self.m * self.h + self.m
    }
    fn params(&self, phi: &mut [f64]) {
        for (k, p) in phi.iter_mut().enumerate() {
            *p = 0.3 * ((k as f64) * 0.7).sin();
        }
    }
    fn forward(&mut self, x: &[f64], phi: &[f64], y: &mut [f64]) -> Result<(), ModelError> {
        self.calls += 1;
        if self.fail_at == Some(self.calls) {
            return Err(ModelError::Backend {
                backend: "libtorch",
                message: "CUDA out of memory (simulated)".into(),
            });
        }
        let hid = self.hidden(x, phi);
        let (_, _, w1, b1) = self.split(phi);
        for (k, yk) in y.iter_mut().enumerate() {
            *yk = b1[k]
                + (0..self.h)
                    .map(|j| w1[k * self.h + j] * hid[j])
                    .sum::<f64>();
        }
        Ok(())
    }
    fn jvp(
        &mut self,
        x: &[f64],
        phi: &[f64],
        dx: &[f64],
        dy: &mut [f64],
    ) -> Result<(), ModelError> {
        let hid = self.hidden(x, phi);
        let (w0, _, w1, _) = self.split(phi);
        let dh: Vec<f64> = (0..self.h)
            .map(|j| {
                (1.0 - hid[j] * hid[j])
                    * (0..self.n).map(|i| w0[j * self.n + i] * dx[i]).sum::<f64>()
            })
            .collect();
        for (k, d) in dy.iter_mut().enumerate() {
            *d = (0..self.h).map(|j| w1[k * self.h + j] * dh[j]).sum();
        }
        Ok(())
    }
    fn vjp(
        &mut self,
        x: &[f64],
        phi: &[f64],
        ybar: &[f64],
        xbar: &mut [f64],
        phibar: &mut [f64],
    ) -> Result<(), ModelError> {
        if self.fail_vjp {
            return Err(ModelError::Other("no gradient today".into()));
        }
        let hid = self.hidden(x, phi);
        let (w0, _, w1, _) = self.split(phi);
        let (n, h, m) = (self.n, self.h, self.m);
        let g: Vec<f64> = (0..h)
            .map(|j| (1.0 - hid[j] * hid[j]) * (0..m).map(|k| w1[k * h + j] * ybar[k]).sum::<f64>())
            .collect();
        for (i, xb) in xbar.iter_mut().enumerate() {
            *xb = (0..h).map(|j| w0[j * n + i] * g[j]).sum();
        }
        let (gw0, rest) = phibar.split_at_mut(h * n);
        let (gb0, rest) = rest.split_at_mut(h);
        let (gw1, gb1) = rest.split_at_mut(m * h);
        for j in 0..h {
            for i in 0..n {
                gw0[j * n + i] += g[j] * x[i];
            }
            gb0[j] += g[j];
        }
        for k in 0..m {
            for j in 0..h {
                gw1[k * h + j] += ybar[k] * hid[j];
            }
            gb1[k] += ybar[k];
        }
        Ok(())
    }
}

/// `y = W x + b` with `φ = [W (m×n), b (m)]`: the layout of pnode's `linear(n, m)`.
struct HandLinear {
    n: usize,
    m: usize,
}

impl OpaqueLayer for HandLinear {
    fn input_len(&self) -> usize {
        self.n
    }
    fn output_len(&self) -> usize {
        self.m
    }
    fn param_len(&self) -> usize {
        self.m * self.n + self.m
    }
    fn params(&self, phi: &mut [f64]) {
        phi.fill(0.1);
    }
    fn forward(&mut self, x: &[f64], phi: &[f64], y: &mut [f64]) -> Result<(), ModelError> {
        let (w, b) = phi.split_at(self.m * self.n);
        for (k, yk) in y.iter_mut().enumerate() {
            *yk = b[k] + (0..self.n).map(|i| w[k * self.n + i] * x[i]).sum::<f64>();
        }
        Ok(())
    }
    fn jvp(
        &mut self,
        _x: &[f64],
        phi: &[f64],
        dx: &[f64],
        dy: &mut [f64],
    ) -> Result<(), ModelError> {
        for (k, d) in dy.iter_mut().enumerate() {
            *d = (0..self.n).map(|i| phi[k * self.n + i] * dx[i]).sum();
        }
        Ok(())
    }
    fn vjp(
        &mut self,
        x: &[f64],
        phi: &[f64],
        ybar: &[f64],
        xbar: &mut [f64],
        phibar: &mut [f64],
    ) -> Result<(), ModelError> {
        for (i, xb) in xbar.iter_mut().enumerate() {
            *xb = (0..self.m).map(|k| phi[k * self.n + i] * ybar[k]).sum();
        }
        let (gw, gb) = phibar.split_at_mut(self.m * self.n);
        for k in 0..self.m {
            for i in 0..self.n {
                gw[k * self.n + i] += ybar[k] * x[i];
            }
            gb[k] += ybar[k];
        }
        Ok(())
    }
}

// The model with two opaque layers: `net` on the state, `drive` on the time alone (its input
// is inactive, so only the effect of its VJP carries its parameter gradient).
#[pnode::neural_ode(method = "rk4", steps = 60, t = (0.0, 1.5), outputs = [0.5, 1.5], checkpoint = revolve(slots = 5))]
mod opaque_explicit {
    state! { u[2] = [1.0, -0.5] }
    param! { k = 0.3 }
    layer! { net = opaque(2, 2), drive = opaque(1, 2) }
    fn rhs(t: f64, u: [f64; 2]) -> [f64; 2] {
        net(u.powi(3)) - k * u + drive([t])
    }
}

// The same model with pnode's own layers (same θ layout: k, then net's weights, then drive's).
#[pnode::neural_ode(method = "rk4", steps = 60, t = (0.0, 1.5), outputs = [0.5, 1.5], checkpoint = revolve(slots = 5))]
mod native_explicit {
    state! { u[2] = [1.0, -0.5] }
    param! { k = 0.3 }
    layer! { net = mlp([2, 8, 2], activation = tanh), drive = linear(1, 2) }
    fn rhs(t: f64, u: [f64; 2]) -> [f64; 2] {
        net(u.powi(3)) - k * u + drive([t])
    }
}

// Crank–Nicolson: Newton runs on the layers' JVPs, the adjoint on their VJPs.
#[pnode::neural_ode(method = crank_nicolson, steps = 40, t = (0.0, 1.0), outputs = [1.0], checkpoint = "all", newton_tol = 1e-13)]
mod opaque_implicit {
    state! { u[2] = [1.0, -0.5] }
    param! { k = 0.3 }
    layer! { net = opaque(2, 2), drive = opaque(1, 2) }
    fn rhs(t: f64, u: [f64; 2]) -> [f64; 2] {
        net(u.powi(3)) - k * u + drive([t])
    }
}

#[pnode::neural_ode(method = crank_nicolson, steps = 40, t = (0.0, 1.0), outputs = [1.0], checkpoint = "all", newton_tol = 1e-13)]
mod native_implicit {
    state! { u[2] = [1.0, -0.5] }
    param! { k = 0.3 }
    layer! { net = mlp([2, 8, 2], activation = tanh), drive = linear(1, 2) }
    fn rhs(t: f64, u: [f64; 2]) -> [f64; 2] {
        net(u.powi(3)) - k * u + drive([t])
    }
}

fn layers() -> Vec<Box<dyn OpaqueLayer>> {
    vec![
        Box::new(HandMlp::new(2, 8, 2)),
        Box::new(HandLinear { n: 1, m: 2 }),
    ]
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// The loss `L = Σ c_k u_k` over the outputs, with fixed weights `c`.
fn weights(len: usize) -> Vec<f64> {
    (0..len).map(|k| 1.0 + 0.25 * k as f64).collect()
}

#[test]
fn opaque_layers_agree_with_the_same_layers_written_natively() {
    let mut o = opaque_explicit::Ode::new(layers()).unwrap();
    let mut n = native_explicit::Ode::new().unwrap();
    // The same θ layout: k, net (2·8 + 8 + 2·8 + 2 = 42), drive (2 + 2).
    assert_eq!(opaque_explicit::Ode::PARAM_LEN, 1);
    assert_eq!(o.param_len(), 1 + 42 + 4);
    assert_eq!(o.param_len(), native_explicit::Ode::PARAM_LEN);
    assert_eq!(opaque_explicit::Model::LAYERS[1].name, "drive");
    let theta = native_explicit::Ode::THETA0.to_vec();
    let u0 = opaque_explicit::Ode::U0;
    let out_o = o.forward(&u0, &theta).unwrap().to_vec();
    let out_n = n.forward(&u0, &theta).unwrap().to_vec();
    let e_out = rel(&out_o, &out_n);
    let c = weights(out_o.len());
    let g_o = o.gradient(&u0, &theta, &c).unwrap();
    let g_n = n.gradient(&u0, &theta, &c).unwrap();
    let (e_u, e_p) = (rel(&g_o.du0, &g_n.du0), rel(&g_o.dp, &g_n.dp));
    println!("opaque vs native (rk4, revolve): outputs {e_out:.1e}, du0 {e_u:.1e}, dθ {e_p:.1e}");
    assert!(e_out <= 1e-12 && e_u <= 1e-12 && e_p <= 1e-12);
    // drive's gradient (its input is the time alone) is there and not zero.
    assert!(
        g_o.dp[43..].iter().all(|g| g.abs() > 1e-6),
        "{:?}",
        &g_o.dp[43..]
    );
    // Same schedule, same work.
    assert_eq!(o.stats().vjp_evals, n.stats().vjp_evals);
    assert_eq!(o.stats(), opaque_explicit::Ode::PREDICTED);
}

#[test]
fn implicit_opaque_layers_agree_and_newton_uses_their_jvps() {
    let mut o = opaque_implicit::Ode::new(layers()).unwrap();
    let mut n = native_implicit::Ode::new().unwrap();
    let theta = native_implicit::Ode::THETA0.to_vec();
    let u0 = opaque_implicit::Ode::U0;
    let c = weights(2);
    let g_o = o.gradient(&u0, &theta, &c).unwrap();
    let g_n = n.gradient(&u0, &theta, &c).unwrap();
    let out_o = o.forward(&u0, &theta).unwrap().to_vec();
    let out_n = n.forward(&u0, &theta).unwrap().to_vec();
    let (e_out, e_u, e_p) = (
        rel(&out_o, &out_n),
        rel(&g_o.du0, &g_n.du0),
        rel(&g_o.dp, &g_n.dp),
    );
    println!("opaque vs native (crank_nicolson): outputs {e_out:.1e}, du0 {e_u:.1e}, dθ {e_p:.1e}");
    assert!(e_out <= 1e-12 && e_u <= 1e-10 && e_p <= 1e-10);
    assert!(o.stats().jvp_evals > 0);
}

/// Central differences of `L(u0, θ) = Σ c_k u_k(θ)` against the adjoint gradient.
fn check_fd<F>(mut loss: F, u0: &[f64], theta: &[f64], g: &Gradient, params: &[usize]) -> f64
where
    F: FnMut(&[f64], &[f64]) -> f64,
{
    let h = 1e-6;
    let mut worst = 0.0f64;
    for i in 0..u0.len() {
        let (mut a, mut b) = (u0.to_vec(), u0.to_vec());
        a[i] += h;
        b[i] -= h;
        let fd = (loss(&a, theta) - loss(&b, theta)) / (2.0 * h);
        worst = worst.max((fd - g.du0[i]).abs() / g.du0[i].abs().max(1e-3));
    }
    for &i in params {
        let (mut a, mut b) = (theta.to_vec(), theta.to_vec());
        a[i] += h;
        b[i] -= h;
        let fd = (loss(u0, &a) - loss(u0, &b)) / (2.0 * h);
        worst = worst.max((fd - g.dp[i]).abs() / g.dp[i].abs().max(1e-3));
    }
    worst
}

#[test]
fn opaque_gradients_match_finite_differences() {
    let mut o = opaque_explicit::Ode::new(layers()).unwrap();
    let theta = o.theta0();
    let u0 = opaque_explicit::Ode::U0;
    let c = weights(4);
    let g = o.gradient(&u0, &theta, &c).unwrap();
    let loss = |o: &mut opaque_explicit::Ode, u: &[f64], p: &[f64]| -> f64 {
        let out = o.forward(u, p).unwrap();
        out.iter().zip(&c).map(|(a, b)| a * b).sum()
    };
    // k, weights and biases of both layers.
    let params = [0, 1, 7, 20, 30, 42, 43, 44, 46];
    let worst = check_fd(|u, p| loss(&mut o, u, p), &u0, &theta, &g, &params);
    println!("opaque rk4: worst relative FD error {worst:.1e}");
    assert!(worst < 1e-7, "{worst:e}");

    let mut o = opaque_implicit::Ode::new(layers()).unwrap();
    let theta = o.theta0();
    let c2 = weights(2);
    let g = o.gradient(&u0, &theta, &c2).unwrap();
    let worst = check_fd(
        |u, p| {
            let out = o.forward(u, p).unwrap();
            out.iter().zip(&c2).map(|(a, b)| a * b).sum()
        },
        &u0,
        &theta,
        &g,
        &params,
    );
    println!("opaque crank_nicolson: worst relative FD error {worst:.1e}");
    assert!(worst < 1e-6, "{worst:e}");
}

#[test]
fn a_model_with_opaque_layers_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<opaque_explicit::Ode>();
    let mut o = opaque_explicit::Ode::new(layers()).unwrap();
    let theta = o.theta0();
    let here = o
        .forward(&opaque_explicit::Ode::U0, &theta)
        .unwrap()
        .to_vec();
    let there = std::thread::spawn(move || {
        o.forward(&opaque_explicit::Ode::U0, &theta)
            .unwrap()
            .to_vec()
    })
    .join()
    .unwrap();
    assert_eq!(here, there);
}

#[test]
fn theta0_is_the_declared_parameters_then_the_layers_own() {
    let o = opaque_explicit::Ode::new(layers()).unwrap();
    let theta = o.theta0();
    assert_eq!(theta.len(), o.param_len());
    assert_eq!(theta[0], 0.3);
    let mut mlp = vec![0.0; 42];
    HandMlp::new(2, 8, 2).params(&mut mlp);
    assert_eq!(&theta[1..43], &mlp[..]);
    assert_eq!(&theta[43..], &[0.1; 4]);
}

#[test]
fn a_failing_layer_stops_the_sweep_with_an_error_naming_it() {
    let mut net = HandMlp::new(2, 8, 2);
    net.fail_at = Some(4 * 7 + 2); // the second stage of step 7 (4 stages a step)
    let mut o = opaque_explicit::Ode::new(vec![Box::new(net), Box::new(HandLinear { n: 1, m: 2 })])
        .unwrap();
    let theta = o.theta0();
    let e = o.forward(&opaque_explicit::Ode::U0, &theta).unwrap_err();
    let text = e.to_string();
    println!("{text}");
    // Step 7 starts at t = 7 · 0.025; its second stage is at c₂ = ½, so t = 0.1875.
    match &e {
        Error::Model {
            step: 7,
            t,
            phase: Phase::Forward,
            eval: Eval::Rhs,
            cause:
                ModelError::Layer {
                    layer,
                    eval: Eval::Rhs,
                    cause,
                },
        } => {
            assert!((t - 0.1875).abs() <= 1e-15, "{t}");
            assert_eq!(layer, "net");
            assert_eq!(
                **cause,
                ModelError::Backend {
                    backend: "libtorch",
                    message: "CUDA out of memory (simulated)".into()
                }
            );
        }
        other => panic!("expected the layer's error at step 7, got {other}"),
    }
    assert!(
        text.starts_with("the model's RHS failed in step 7 at t = 0.187")
            && text.ends_with(
                "(forward sweep): layer `net` failed in its RHS: libtorch: CUDA out of memory \
                 (simulated)"
            ),
        "{text}"
    );
    // The next solve, without failure, works again.
    let theta2 = theta.clone();
    let out = o.forward(&opaque_explicit::Ode::U0, &theta2);
    assert!(out.is_ok(), "{:?}", out.err());
}

#[test]
fn a_layer_failing_in_the_reverse_sweep_names_the_phase() {
    let mut net = HandMlp::new(2, 8, 2);
    net.fail_vjp = true;
    let mut o = opaque_explicit::Ode::new(vec![Box::new(net), Box::new(HandLinear { n: 1, m: 2 })])
        .unwrap();
    let theta = o.theta0();
    let dl_du = vec![1.0; 2 * opaque_explicit::Ode::STATE_LEN];
    let e = o
        .gradient(&opaque_explicit::Ode::U0, &theta, &dl_du)
        .unwrap_err();
    // The first VJP is the last live stage of the last step: step 59 at t = 1.5.
    match &e {
        Error::Model {
            step: 59,
            t,
            phase: Phase::Reverse,
            eval: Eval::Vjp,
            cause: ModelError::Layer { layer, eval, cause },
        } => {
            assert!((t - 1.5).abs() <= 1e-15, "{t}");
            assert_eq!((layer.as_str(), *eval), ("net", Eval::Vjp));
            assert_eq!(**cause, ModelError::Other("no gradient today".into()));
        }
        other => panic!("expected the layer's VJP error, got {other}"),
    }
    assert!(e.to_string().contains("(reverse sweep)"), "{e}");
}

#[test]
fn the_wrong_layers_are_an_error_naming_them() {
    let e = opaque_explicit::Ode::new(vec![Box::new(HandMlp::new(2, 8, 2))]).unwrap_err();
    assert!(
        e.to_string()
            .contains("2 opaque layer(s) (net, drive), 1 were given"),
        "{e}"
    );
    let e = opaque_explicit::Ode::new(vec![
        Box::new(HandMlp::new(3, 8, 2)),
        Box::new(HandLinear { n: 1, m: 2 }),
    ])
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("layer `net`: the model gives it an input of 2 elements, the layer has 3"),
        "{e}"
    );
    static SPECS: [LayerSpec; 1] = [LayerSpec {
        name: "g",
        input_len: 2,
        output_len: 2,
    }];
    let set = LayerSet::new(&SPECS, vec![Box::new(HandLinear { n: 2, m: 2 })]).unwrap();
    assert_eq!(set.param_len(), 6);
    assert_eq!(set.segments(), vec![("g", 0, 6)]);
}
