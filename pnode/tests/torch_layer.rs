//! tch modules as the opaque layers of a `#[neural_ode]` model (feature `torch`): the same
//! model with pnode's own `mlp`/`linear` layers, given the same weights, must give the same
//! solution and gradients (to round-off: libtorch sums in its own order); the gradients
//! must match central differences; the runtime's Adam must train it through `Ode::train`.

#![cfg(feature = "torch")]

use pnode::runtime::opaque::OpaqueLayer;
use pnode::runtime::optim::{Adam, AdamConfig};
use pnode::torch::TorchLayer;
use pnode::torch::tch::{Device, Kind, nn};

#[pnode::neural_ode(method = "rk4", steps = 60, t = (0.0, 1.5), outputs = [0.5, 1.5], checkpoint = revolve(slots = 5))]
mod with_torch {
    state! { u[2] = [1.0, -0.5] }
    param! { k = 0.3 }
    layer! { net = opaque(2, 2), drive = opaque(1, 2) }
    fn rhs(t: f64, u: [f64; 2]) -> [f64; 2] {
        net(u.powi(3)) - k * u + drive([t])
    }
}

#[pnode::neural_ode(method = "rk4", steps = 60, t = (0.0, 1.5), outputs = [0.5, 1.5], checkpoint = revolve(slots = 5))]
mod native {
    state! { u[2] = [1.0, -0.5] }
    param! { k = 0.3 }
    layer! { net = mlp([2, 8, 2], activation = tanh), drive = linear(1, 2) }
    fn rhs(t: f64, u: [f64; 2]) -> [f64; 2] {
        net(u.powi(3)) - k * u + drive([t])
    }
}

#[pnode::neural_ode(method = crank_nicolson, steps = 30, t = (0.0, 1.0), outputs = [1.0], checkpoint = "all", newton_tol = 1e-13)]
mod with_torch_implicit {
    state! { u[2] = [1.0, -0.5] }
    param! { k = 0.3 }
    layer! { net = opaque(2, 2), drive = opaque(1, 2) }
    fn rhs(t: f64, u: [f64; 2]) -> [f64; 2] {
        net(u.powi(3)) - k * u + drive([t])
    }
}

/// The two tch layers: `net` = linear(2, 8) → tanh → linear(8, 2), `drive` = linear(1, 2),
/// in f64 (each in its own VarStore).
fn torch_layers() -> Vec<Box<dyn OpaqueLayer>> {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    let root = vs.root();
    let net = nn::seq()
        .add(nn::linear(&root / "l0", 2, 8, Default::default()))
        .add_fn(|x| x.tanh())
        .add(nn::linear(&root / "l1", 8, 2, Default::default()));
    let net = TorchLayer::from_module(&vs, &[2], 2, net).unwrap();
    assert_eq!(
        net.parameter_names(),
        ["l0.bias", "l0.weight", "l1.bias", "l1.weight"]
    );
    let mut vd = nn::VarStore::new(Device::Cpu);
    vd.set_kind(Kind::Double);
    let lin = nn::linear(vd.root() / "d", 1, 2, Default::default());
    let drive = TorchLayer::from_module(&vd, &[1], 2, lin).unwrap();
    vec![Box::new(net), Box::new(drive)]
}

/// Native θ `[k | W0 (16), b0 (8), W1 (16), b1 (2) | Wd (2), bd (2)]` → the torch layers'
/// order `[k | b0, W0, b1, W1 | bd, Wd]` (variables sorted by name), and back.
fn permutation() -> Vec<usize> {
    let mut p = vec![0];
    p.extend(17..25); // l0.bias
    p.extend(1..17); // l0.weight
    p.extend(41..43); // l1.bias
    p.extend(25..41); // l1.weight
    p.extend(45..47); // d.bias
    p.extend(43..45); // d.weight
    p
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn tch_layers_agree_with_the_same_layers_written_natively() {
    let mut t = with_torch::Ode::new(torch_layers()).unwrap();
    let mut n = native::Ode::new().unwrap();
    assert_eq!(t.param_len(), native::Ode::PARAM_LEN);
    let perm = permutation();
    let theta_n = native::Ode::THETA0.to_vec();
    let theta_t: Vec<f64> = perm.iter().map(|&i| theta_n[i]).collect();
    let u0 = with_torch::Ode::U0;
    let out_t = t.forward(&u0, &theta_t).unwrap().to_vec();
    let out_n = n.forward(&u0, &theta_n).unwrap().to_vec();
    let c: Vec<f64> = (0..out_t.len()).map(|k| 1.0 + 0.25 * k as f64).collect();
    let g_t = t.gradient(&u0, &theta_t, &c).unwrap();
    let g_n = n.gradient(&u0, &theta_n, &c).unwrap();
    let dp_n: Vec<f64> = perm.iter().map(|&i| g_n.dp[i]).collect();
    let (e_out, e_u, e_p) = (
        rel(&out_t, &out_n),
        rel(&g_t.du0, &g_n.du0),
        rel(&g_t.dp, &dp_n),
    );
    println!("tch layers vs native: outputs {e_out:.1e}, du0 {e_u:.1e}, dθ {e_p:.1e}");
    assert!(e_out <= 1e-12 && e_u <= 1e-12 && e_p <= 1e-12);
}

#[test]
fn tch_layer_gradients_match_finite_differences() {
    let mut t = with_torch_implicit::Ode::new(torch_layers()).unwrap();
    let theta = t.theta0();
    let u0 = with_torch_implicit::Ode::U0;
    let c = [1.0, -0.5];
    let g = t.gradient(&u0, &theta, &c).unwrap();
    let mut loss = |u: &[f64], p: &[f64]| -> f64 {
        let out = t.forward(u, p).unwrap();
        out.iter().zip(&c).map(|(a, b)| a * b).sum()
    };
    let h = 1e-6;
    let mut worst = 0.0f64;
    for i in [0, 1, 9, 20, 30, 42, 43, 45] {
        let (mut a, mut b) = (theta.clone(), theta.clone());
        a[i] += h;
        b[i] -= h;
        let fd = (loss(&u0, &a) - loss(&u0, &b)) / (2.0 * h);
        worst = worst.max((fd - g.dp[i]).abs() / g.dp[i].abs().max(1e-3));
    }
    for i in 0..2 {
        let (mut a, mut b) = (u0.to_vec(), u0.to_vec());
        a[i] += h;
        b[i] -= h;
        let fd = (loss(&a, &theta) - loss(&b, &theta)) / (2.0 * h);
        worst = worst.max((fd - g.du0[i]).abs() / g.du0[i].abs().max(1e-3));
    }
    println!("tch layers, crank_nicolson: worst relative FD error {worst:.1e}");
    assert!(worst < 1e-6, "{worst:e}");
}

#[test]
fn adam_trains_the_tch_layers_through_ode_train() {
    // Targets: the trajectory of the native model at its declared weights.
    let mut n = native::Ode::new().unwrap();
    let target = n
        .forward(&native::Ode::U0, &native::Ode::THETA0)
        .unwrap()
        .to_vec();
    let mut t = with_torch::Ode::new(torch_layers()).unwrap();
    let mut theta = t.theta0();
    let mut adam = Adam::new(AdamConfig {
        lr: 0.02,
        ..AdamConfig::default()
    })
    .unwrap();
    let losses = t
        .train(
            &with_torch::Ode::U0,
            &mut theta,
            &mut adam,
            60,
            |out, dl| {
                let m = out.len() as f64;
                let mut l = 0.0;
                for ((o, d), g) in out.iter().zip(&target).zip(dl.iter_mut()) {
                    l += (o - d) * (o - d) / m;
                    *g = 2.0 * (o - d) / m;
                }
                l
            },
        )
        .unwrap();
    let (first, last) = (losses[0], *losses.last().unwrap());
    println!("tch layers trained with Adam: loss {first:.3e} -> {last:.3e} in 60 steps");
    assert!(last < 0.5 * first, "{first} -> {last}");
}
