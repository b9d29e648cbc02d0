//! `TorchLayer` (a tch module as a `pnode_runtime` `OpaqueLayer`) on a 2→16→2 tanh MLP:
//! forward equal to a hand-written f64 evaluation from the same φ, JVP and VJP equal to the
//! hand-written derivatives and to central finite differences, VJP-accumulation into φ̄, no
//! stale parameters (also with two layers on the same variables), errors instead of panics,
//! and forward-mode JVPs from several threads at once.

use pnode_torch::TorchLayer;
use pnode_torch::pnode_runtime::opaque::OpaqueLayer;
use pnode_torch::tch::{self, Device, Kind, Tensor, nn, nn::Module};

const H: usize = 16;
/// φ layout, sorted by variable name: l1.bias (16), l1.weight (16×2), l2.bias (2),
/// l2.weight (2×16).
const B1: usize = 0;
const W1: usize = B1 + H;
const B2: usize = W1 + 2 * H;
const W2: usize = B2 + 2;
const K: usize = W2 + 2 * H;

/// A 2→16→2 tanh MLP in an f64 VarStore, as a layer over inputs of shape `[1, 2]`.
fn mlp_layer() -> (nn::VarStore, TorchLayer) {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    let root = vs.root();
    let net = nn::seq()
        .add(nn::linear(&root / "l1", 2, H as i64, Default::default()))
        .add_fn(|x| x.tanh())
        .add(nn::linear(&root / "l2", H as i64, 2, Default::default()));
    let layer = TorchLayer::from_module(&vs, &[1, 2], 2, net).unwrap();
    (vs, layer)
}

fn hidden(phi: &[f64], x: &[f64]) -> [f64; H] {
    std::array::from_fn(|i| {
        (phi[B1 + i] + phi[W1 + 2 * i] * x[0] + phi[W1 + 2 * i + 1] * x[1]).tanh()
    })
}

/// `y = W2 tanh(W1 x + b1) + b2`, by hand.
fn mlp(phi: &[f64], x: &[f64]) -> [f64; 2] {
    let h = hidden(phi, x);
    std::array::from_fn(|k| phi[B2 + k] + (0..H).map(|i| phi[W2 + H * k + i] * h[i]).sum::<f64>())
}

/// `dy = W2 diag(1 − h²) W1 dx`, by hand.
fn mlp_jvp(phi: &[f64], x: &[f64], dx: &[f64]) -> [f64; 2] {
    let h = hidden(phi, x);
    let dh: Vec<f64> = (0..H)
        .map(|i| (1.0 - h[i] * h[i]) * (phi[W1 + 2 * i] * dx[0] + phi[W1 + 2 * i + 1] * dx[1]))
        .collect();
    std::array::from_fn(|k| (0..H).map(|i| phi[W2 + H * k + i] * dh[i]).sum::<f64>())
}

/// `(∂y/∂φ)ᵀ ȳ`, by hand.
fn mlp_phibar(phi: &[f64], x: &[f64], ybar: &[f64]) -> Vec<f64> {
    let h = hidden(phi, x);
    let mut g = vec![0.0; K];
    for k in 0..2 {
        g[B2 + k] = ybar[k];
        for i in 0..H {
            g[W2 + H * k + i] = ybar[k] * h[i];
        }
    }
    for i in 0..H {
        let hbar: f64 = (0..2).map(|k| ybar[k] * phi[W2 + H * k + i]).sum();
        let pre = hbar * (1.0 - h[i] * h[i]);
        g[B1 + i] = pre;
        g[W1 + 2 * i] = pre * x[0];
        g[W1 + 2 * i + 1] = pre * x[1];
    }
    g
}

/// `max |a − b| / max |b|`.
fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.detach().flatten(0, -1)).unwrap()
}

#[test]
fn phi_is_the_trainable_variables_sorted_by_name() {
    let (vs, layer) = mlp_layer();
    assert_eq!(
        layer.parameter_names(),
        ["l1.bias", "l1.weight", "l2.bias", "l2.weight"]
    );
    assert_eq!(
        (layer.input_len(), layer.output_len(), layer.param_len()),
        (2, 2, K)
    );
    let mut phi = vec![f64::NAN; K];
    layer.params(&mut phi);
    let vars = vs.variables();
    for (name, range) in [
        ("l1.bias", B1..W1),
        ("l1.weight", W1..B2),
        ("l2.bias", B2..W2),
        ("l2.weight", W2..K),
    ] {
        assert_eq!(phi[range].to_vec(), values(&vars[name]), "{name}");
    }

    // A variable not requiring grad is not part of φ.
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    let w = vs.root().var("w", &[3], nn::Init::Const(2.0));
    let c = vs.root().ones_no_train("c", &[3]).to_kind(Kind::Double);
    let layer = TorchLayer::new(&vs, &[3], 3, move |x| x * &w + &c).unwrap();
    assert_eq!(layer.param_len(), 3);
    assert_eq!(layer.parameter_names(), ["w"]);
}

#[test]
fn derivatives_match_hand_written_and_finite_differences() {
    let (_vs, layer) = mlp_layer();
    // As generated code holds it.
    let mut layer: Box<dyn OpaqueLayer> = Box::new(layer);
    let mut phi = vec![0.0; K];
    layer.params(&mut phi);
    // A φ other than the initial one, so that the call must load it.
    for (k, p) in phi.iter_mut().enumerate() {
        *p = 1.3 * *p + 0.01 * (k as f64).sin();
    }
    let (x, dx, ybar) = ([0.3, -0.7], [0.9, 0.4], [1.3, -0.6]);

    let mut y = [0.0; 2];
    layer.forward(&x, &phi, &mut y).unwrap();
    let forward_err = max_rel(&y, &mlp(&phi, &x));
    assert!(forward_err <= 1e-14, "forward {y:?}: {forward_err:e}");

    let mut dy = [0.0; 2];
    layer.jvp(&x, &phi, &dx, &mut dy).unwrap();
    let jvp_exact = max_rel(&dy, &mlp_jvp(&phi, &x, &dx));
    let h = 1e-6;
    let (mut yp, mut ym) = ([0.0; 2], [0.0; 2]);
    let xp = [x[0] + h * dx[0], x[1] + h * dx[1]];
    let xm = [x[0] - h * dx[0], x[1] - h * dx[1]];
    layer.forward(&xp, &phi, &mut yp).unwrap();
    layer.forward(&xm, &phi, &mut ym).unwrap();
    let fd: Vec<f64> = (0..2).map(|k| (yp[k] - ym[k]) / (2.0 * h)).collect();
    let jvp_fd = max_rel(&dy, &fd);

    let mut xbar = [1e3, -1e3];
    let mut phibar = vec![0.0; K];
    layer.vjp(&x, &phi, &ybar, &mut xbar, &mut phibar).unwrap();
    let adjoint = (dot(&ybar, &dy) - dot(&xbar, &dx)).abs() / dot(&ybar, &dy).abs();
    let phibar_exact = max_rel(&phibar, &mlp_phibar(&phi, &x, &ybar));

    let mut phibar_fd = vec![0.0; K];
    for (k, g) in phibar_fd.iter_mut().enumerate() {
        let (mut pp, mut pm) = (phi.clone(), phi.clone());
        pp[k] += h;
        pm[k] -= h;
        layer.forward(&x, &pp, &mut yp).unwrap();
        layer.forward(&x, &pm, &mut ym).unwrap();
        *g = (dot(&ybar, &yp) - dot(&ybar, &ym)) / (2.0 * h);
    }
    let phibar_fd_err = max_rel(&phibar, &phibar_fd);

    // vjp overwrites x̄ and accumulates into φ̄.
    let mut xbar2 = [7.0, 7.0];
    let mut phibar2 = phibar.clone();
    layer
        .vjp(&x, &phi, &ybar, &mut xbar2, &mut phibar2)
        .unwrap();
    let doubled: Vec<f64> = phibar.iter().map(|g| 2.0 * g).collect();

    println!(
        "forward {forward_err:.1e}, jvp vs exact {jvp_exact:.1e}, vs FD {jvp_fd:.1e}, \
         <ȳ,J dx> − <Jᵀȳ,dx> {adjoint:.1e}, φ̄ vs exact {phibar_exact:.1e}, vs FD \
         {phibar_fd_err:.1e}"
    );
    assert!(jvp_exact <= 1e-14, "jvp {dy:?}: {jvp_exact:e}");
    assert!(jvp_fd <= 1e-8, "jvp {dy:?} vs FD {fd:?}: {jvp_fd:e}");
    assert!(adjoint <= 1e-12, "adjoint identity: {adjoint:e}");
    assert!(phibar_exact <= 1e-14, "φ̄ vs exact: {phibar_exact:e}");
    assert!(phibar_fd_err <= 1e-7, "φ̄ vs FD: {phibar_fd_err:e}");
    assert_eq!(xbar2, xbar);
    assert_eq!(phibar2, doubled);
}

#[test]
fn every_call_uses_the_phi_it_is_given() {
    let (_vs, mut layer) = mlp_layer();
    let mut phi0 = vec![0.0; K];
    layer.params(&mut phi0);
    let x = [0.5, 0.25];
    let mut y0 = [0.0; 2];
    layer.forward(&x, &phi0, &mut y0).unwrap();

    let mut phi1 = phi0.clone();
    phi1[B2] += 0.5;
    phi1[W1] *= -2.0;
    let mut y1 = [0.0; 2];
    layer.forward(&x, &phi1, &mut y1).unwrap();
    assert!(max_rel(&y1, &mlp(&phi1, &x)) <= 1e-14, "{y1:?}");
    assert!((y1[0] - y0[0]).abs() > 1e-3, "{y1:?} vs {y0:?}");
    let (mut dy, mut xbar, mut phibar) = ([0.0; 2], [0.0; 2], vec![0.0; K]);
    layer.jvp(&x, &phi1, &[1.0, 0.0], &mut dy).unwrap();
    assert!(max_rel(&dy, &mlp_jvp(&phi1, &x, &[1.0, 0.0])) <= 1e-14);
    layer
        .vjp(&x, &phi1, &[0.0, 1.0], &mut xbar, &mut phibar)
        .unwrap();
    assert!(max_rel(&phibar, &mlp_phibar(&phi1, &x, &[0.0, 1.0])) <= 1e-14);

    let mut back = [0.0; 2];
    layer.forward(&x, &phi0, &mut back).unwrap();
    assert_eq!(back.map(f64::to_bits), y0.map(f64::to_bits));

    // 0.0 and -0.0 compare equal but are different parameters: y = x / φ.
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    let w = vs.root().var("w", &[1], nn::Init::Const(1.0));
    let mut div = TorchLayer::new(&vs, &[1], 1, move |x| x / &w).unwrap();
    let mut y = [0.0];
    div.forward(&[1.0], &[0.0], &mut y).unwrap();
    assert_eq!(y, [f64::INFINITY]);
    div.forward(&[1.0], &[-0.0], &mut y).unwrap();
    assert_eq!(y, [f64::NEG_INFINITY]);
}

/// `y = W x` with `W` (2×2) shared by two layers: each must reload its own φ after the other
/// (or anyone else) wrote the variables.
#[test]
fn layers_sharing_variables_do_not_see_each_others_phi() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    let w = vs.root().var("w", &[2, 2], nn::Init::Const(0.0));
    let layer = |w: Tensor| TorchLayer::new(&vs, &[2], 2, move |x| w.mv(x)).unwrap();
    let (mut a, mut b) = (layer(w.shallow_clone()), layer(w.shallow_clone()));
    let (phi_a, phi_b) = ([1.0, 2.0, 3.0, 4.0], [-1.0, 0.0, 0.0, -1.0]);
    let x = [1.0, 10.0];
    let mut y = [0.0; 2];
    for _ in 0..2 {
        a.forward(&x, &phi_a, &mut y).unwrap();
        assert_eq!(y, [21.0, 43.0]);
        b.forward(&x, &phi_b, &mut y).unwrap();
        assert_eq!(y, [-1.0, -10.0]);
    }
    let mut w = w;
    tch::no_grad(|| w.copy_(&Tensor::zeros([2, 2], (Kind::Double, Device::Cpu))));
    a.forward(&x, &phi_a, &mut y).unwrap();
    assert_eq!(y, [21.0, 43.0]);
}

#[test]
fn failures_are_errors_not_panics() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    let (mut y, mut dy, mut xbar) = ([0.0; 3], [0.0; 3], [0.0; 2]);

    let mut wrong = TorchLayer::new(&vs, &[2], 3, |x| x.tanh()).unwrap();
    let e = wrong
        .forward(&[0.1, 0.2], &[], &mut y)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "the tensor the layer's function returned: expected 3 elements (the layer's outputs), \
         found 2 elements (shape [2])"
    );
    let e = wrong
        .jvp(&[0.1, 0.2], &[], &[1.0, 0.0], &mut dy)
        .unwrap_err()
        .to_string();
    assert!(e.contains("found 2 elements"), "{e}");
    let e = wrong
        .vjp(&[0.1, 0.2], &[], &[1.0; 3], &mut xbar, &mut [])
        .unwrap_err()
        .to_string();
    assert!(e.contains("found 2 elements"), "{e}");

    let mut boom = TorchLayer::new(&vs, &[2], 2, |_| panic!("boom in the layer")).unwrap();
    for e in [
        boom.forward(&[0.1, 0.2], &[], &mut y[..2])
            .unwrap_err()
            .to_string(),
        boom.jvp(&[0.1, 0.2], &[], &[1.0, 0.0], &mut dy[..2])
            .unwrap_err()
            .to_string(),
        boom.vjp(&[0.1, 0.2], &[], &[1.0; 2], &mut xbar, &mut [])
            .unwrap_err()
            .to_string(),
    ] {
        assert!(
            e.contains("panicked") && e.contains("boom in the layer"),
            "{e}"
        );
    }

    // A libtorch error inside the closure (tch panics on it).
    let mut bad = TorchLayer::new(&vs, &[1, 2], 2, |x| {
        x.mm(&Tensor::ones([5, 5], (Kind::Double, Device::Cpu)))
    })
    .unwrap();
    let e = bad
        .forward(&[0.1, 0.2], &[], &mut y[..2])
        .unwrap_err()
        .to_string();
    assert!(e.contains("1x2 and 5x5"), "{e}");
    let e = bad
        .jvp(&[0.1, 0.2], &[], &[1.0, 0.0], &mut dy[..2])
        .unwrap_err()
        .to_string();
    assert!(e.contains("1x2 and 5x5"), "{e}");

    // Forward-mode AD still works after the failed JVPs released their levels.
    let (_vs, mut good) = mlp_layer();
    let mut phi = vec![0.0; K];
    good.params(&mut phi);
    good.jvp(&[0.1, 0.2], &phi, &[1.0, 0.0], &mut dy[..2])
        .unwrap();
    assert!(max_rel(&dy[..2], &mlp_jvp(&phi, &[0.1, 0.2], &[1.0, 0.0])) <= 1e-14);
    let e = good
        .forward(&[0.1, 0.2], &phi[1..], &mut y[..2])
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("{} entries", K - 1)), "{e}");

    // f32 variables are refused, naming the first one.
    let vs32 = nn::VarStore::new(Device::Cpu);
    let net = nn::linear(vs32.root() / "l1", 2, 2, Default::default());
    let e = TorchLayer::from_module(&vs32, &[2], 2, net)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`l1.bias`") && e.contains("Float"), "{e}");
    let e = TorchLayer::new(&vs, &[2, -1], 2, |x| x.shallow_clone()).unwrap_err();
    assert!(e.to_string().contains("negative"), "{e}");
}

/// libtorch's forward-AD levels are process-wide: before JVPs were serialised, concurrent
/// ones failed intermittently with "Nested forward mode AD is not supported".
#[test]
fn jvps_from_several_threads_at_once() {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let (_vs, mut layer) = mlp_layer();
                let mut phi = vec![0.0; K];
                layer.params(&mut phi);
                let mut worst = 0.0f64;
                for i in 0..200 {
                    let s = f64::from(t * 200 + i);
                    let (x, dx) = ([s.sin(), s.cos()], [1.0, 0.1 * s.sin()]);
                    let mut dy = [0.0; 2];
                    layer
                        .jvp(&x, &phi, &dx, &mut dy)
                        .map_err(|e| format!("thread {t}, JVP {i}: {e}"))?;
                    worst = worst.max(max_rel(&dy, &mlp_jvp(&phi, &x, &dx)));
                }
                Ok::<f64, String>(worst)
            })
        })
        .collect();
    for handle in threads {
        let worst = handle.join().expect("no panic").unwrap();
        assert!(worst <= 1e-13, "JVP error {worst:e}");
    }
}

#[test]
fn module_over_a_one_dimensional_input() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    let lin = nn::linear(vs.root() / "lin", 3, 2, Default::default());
    let (ws, bs) = (values(&lin.ws), values(lin.bs.as_ref().unwrap()));
    let mut layer = TorchLayer::new(&vs, &[3], 2, move |x| lin.forward(x)).unwrap();
    let mut phi = vec![0.0; 8];
    layer.params(&mut phi);
    assert_eq!(phi[..2], bs[..]);
    assert_eq!(phi[2..], ws[..]);
    let x = [1.0, -2.0, 0.5];
    let mut y = [0.0; 2];
    layer.forward(&x, &phi, &mut y).unwrap();
    let expected: Vec<f64> = (0..2)
        .map(|k| bs[k] + (0..3).map(|j| ws[3 * k + j] * x[j]).sum::<f64>())
        .collect();
    assert!(max_rel(&y, &expected) <= 1e-15, "{y:?} vs {expected:?}");
}
