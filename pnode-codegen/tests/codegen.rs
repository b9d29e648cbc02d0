//! The generated source (insta snapshots) and the generator's errors.

use pnode_codegen::{
    EmbeddedWeights, ErkCoefficients, Error, Options, generate_erk_pair_stepper,
    generate_erk_stepper, generate_erk_stepper_sized, generate_model, to_source,
};
use pnode_ir::{Builder, ConvParams, Function, Layout};

/// Lotka–Volterra as in the corpus: `[αx − βxy, δxy − γy]`.
fn lotka_volterra() -> Function {
    let mut b = Builder::new(Layout::new(2, 4));
    let u = b.state(0, [2]).unwrap();
    let x = b.index(u, &[0]).unwrap();
    let y = b.index(u, &[1]).unwrap();
    let k: Vec<_> = (0..4).map(|i| b.param(i, []).unwrap()).collect();
    let xy = b.mul(x, y).unwrap();
    let ax = b.mul(k[0], x).unwrap();
    let bxy = b.mul(k[1], xy).unwrap();
    let f0 = b.sub(ax, bxy).unwrap();
    let dxy = b.mul(k[2], xy).unwrap();
    let gy = b.mul(k[3], y).unwrap();
    let f1 = b.sub(dxy, gy).unwrap();
    let f = b.stack(&[f0, f1], 0).unwrap();
    b.finish_rhs(&[f]).unwrap()
}

fn source(name: &str, f: &Function, opts: &Options) -> String {
    to_source(&generate_model(name, f, opts).unwrap())
}

#[test]
fn lotka_volterra_source() {
    insta::assert_snapshot!(source(
        "LotkaVolterra",
        &lotka_volterra(),
        &Options::default()
    ));
}

#[test]
fn tensor_source() {
    // A [2,3] state through a matmul with a [3,3] parameter, tanh and a row sum: loops, a
    // constant table, a broadcast.
    let mut b = Builder::new(Layout::new(6, 9));
    let u = b.state(0, [2, 3]).unwrap();
    let a = b.param(0, [3, 3]).unwrap();
    let c = b.tensor([3], vec![0.5, -1.0, 1e-20]).unwrap();
    let y = b.matmul(u, a).unwrap();
    let y = b.add(y, c).unwrap();
    let y = b.tanh(y).unwrap();
    let s = b.sum_axis(y, 1).unwrap();
    let s = b.reshape(s, [2, 1]).unwrap();
    let y = b.sub(y, s).unwrap();
    let y = b.flatten(y).unwrap();
    let f = b.finish_rhs(&[y]).unwrap();
    insta::assert_snapshot!(source("Tensors", &f, &Options::default()));
}

#[test]
fn opaque_layer_source() {
    // `du/dt = g(u³) − k u` with `g` an opaque layer [2] → [2]: the generated methods call the
    // model's `LayerSet` (value, JVP, VJP accumulating into θ's tail).
    let mut b = Builder::new(Layout::new(2, 1));
    let u = b.state(0, [2]).unwrap();
    let k = b.param(0, []).unwrap();
    let u3 = b.powi(u, 3).unwrap();
    let op = pnode_ir::Op::Opaque {
        layer: 0,
        output: pnode_ir::Shape::new(&[2]),
    };
    let g = b.op(op, &[u3]).unwrap();
    let ku = b.mul(k, u).unwrap();
    let f = b.sub(g, ku).unwrap();
    let f = b.finish_rhs(&[f]).unwrap();
    let opts = Options {
        opaque_layers: vec![("net".into(), 2, 2)],
        ..Options::default()
    };
    let src = source("WithLayer", &f, &opts);
    assert!(src.contains("self.layers.forward(0,"), "{src}");
    assert!(src.contains("self.layers.jvp(0,"), "{src}");
    assert!(src.contains("self.layers.vjp(0,"), "{src}");
    insta::assert_snapshot!(src);
    // A call of an undeclared layer, or of a declared one at the wrong size, is refused.
    let e = generate_model("M", &f, &Options::default()).unwrap_err();
    assert!(
        e.to_string().contains("opaque layer 0, but 0 are declared"),
        "{e}"
    );
    let wrong = Options {
        opaque_layers: vec![("net".into(), 3, 2)],
        ..Options::default()
    };
    let e = generate_model("M", &f, &wrong).unwrap_err();
    assert!(
        e.to_string().contains("declared 3 → 2, called 2 → 2"),
        "{e}"
    );
}

#[test]
fn rk4_source() {
    let rk4 = ErkCoefficients {
        name: "rk4".into(),
        a: vec![vec![], vec![0.5], vec![0.0, 0.5], vec![0.0, 0.0, 1.0]],
        b: vec![1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
        c: vec![0.0, 0.5, 0.5, 1.0],
    };
    let src = to_source(&generate_erk_stepper("Rk4", &rk4, &Options::default()).unwrap());
    insta::assert_snapshot!(src);
}

/// Bogacki–Shampine 3(2) (`pnode_runtime::Tableau::bosh3`): FSAL, its fourth stage dead at
/// fixed steps and needed by the estimate.
fn bosh3() -> (ErkCoefficients, EmbeddedWeights) {
    let b = vec![2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0];
    let t = ErkCoefficients {
        name: "bosh3".into(),
        a: vec![vec![], vec![0.5], vec![0.0, 0.75], b[..3].to_vec()],
        b,
        c: vec![0.0, 0.5, 0.75, 1.0],
    };
    let w = EmbeddedWeights {
        b_hat: vec![7.0 / 24.0, 0.25, 1.0 / 3.0, 0.125],
        error_order: 2,
        fsal: true,
    };
    (t, w)
}

#[test]
fn bosh3_pair_source() {
    let (t, w) = bosh3();
    let o = Options::default();
    let src = to_source(&generate_erk_pair_stepper("Bosh3", &t, &w, &o).unwrap());
    // The pair is the fixed stepper plus the estimate: the same adjoint step, and a forward
    // step that may be given its first stage.
    let fixed = to_source(&generate_erk_stepper("Bosh3", &t, &o).unwrap());
    let body = |s: &str, f: &str| {
        let at = s.find(f).unwrap();
        s[at..at + s[at..].find("\n    }\n").unwrap()].to_string()
    };
    let adjoint = "pub fn adjoint_step";
    assert_eq!(body(&src, adjoint), body(&fixed, adjoint));
    let first = "first: ::core::option::Option<&[f64]>";
    assert!(body(&src, "pub fn forward_step").contains(first));
    assert!(!fixed.contains(first));
    // The FSAL stage is stage 4 of the estimate, evaluated at u_{n+1}; E4 = 0 − 1/8.
    assert!(src.contains("pub const E4: f64 = -0.125;"), "{src}");
    assert!(
        src.contains(".try_rhs(t + Self::C4 * h, &u_next[..], p"),
        "{src}"
    );
    assert!(!fixed.contains("EmbeddedStepper"));
    insta::assert_snapshot!(src);
}

#[test]
fn bad_pairs_are_errors() {
    let o = Options::default();
    let (t, w) = bosh3();
    let mut cases = Vec::new();
    let mut short = w.clone();
    short.b_hat.pop();
    cases.push((t.clone(), short, "3 embedded weights for 4 stages"));
    let mut nan = w.clone();
    nan.b_hat[1] = f64::NAN;
    cases.push((t.clone(), nan, "not finite"));
    // FSAL needs the last row of A to be b bit for bit, and c_4 = 1.
    let mut row = t.clone();
    row.a[3][0] = 0.25;
    cases.push((row, w.clone(), "FSAL needs row a[3] = b"));
    let mut node = t.clone();
    node.c[3] = 0.9;
    cases.push((node, w, "FSAL needs c[3] = 1"));
    for (t, w, reason) in cases {
        let e = generate_erk_pair_stepper("T", &t, &w, &o).unwrap_err();
        assert!(matches!(e, Error::InvalidTableau { .. }), "{e}");
        assert!(e.to_string().contains(reason), "{e}");
    }
}

/// The fixed-size variant differs only in its buffers, loop bounds and rebound slices.
#[test]
fn sized_stepper_differs_only_in_buffers() {
    let rk4 = ErkCoefficients {
        name: "rk4".into(),
        a: vec![vec![], vec![0.5], vec![0.0, 0.5], vec![0.0, 0.0, 1.0]],
        b: vec![1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
        c: vec![0.0, 0.5, 0.5, 1.0],
    };
    let o = Options::default();
    let vecs = to_source(&generate_erk_stepper("Rk4", &rk4, &o).unwrap());
    let sized = to_source(&generate_erk_stepper_sized("Rk4", &rk4, 2, 4, &o).unwrap());
    assert!(sized.contains("k1: [f64; 2],") && sized.contains("gp: [f64; 4],"));
    assert!(sized.contains("let u: &[f64; 2] = u.try_into()"));
    assert!(!sized.contains("Vec<f64>") && vecs.contains("k1: ::std::vec::Vec<f64>,"));
    // The arithmetic lines are the same.
    let body = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.contains("Self::"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(body(&vecs), body(&sized));
}

#[test]
fn runtime_path_is_configurable() {
    let opts = Options {
        runtime_path: syn::parse_quote!(::pnode::runtime),
        ..Options::default()
    };
    let src = source("Lv", &lotka_volterra(), &opts);
    assert!(src.contains("impl ::pnode::runtime::model::RhsVjp for Lv"));
    assert!(!src.contains("pnode_runtime"));
}

#[test]
fn generation_is_deterministic() {
    let f = lotka_volterra();
    let o = Options::default();
    assert_eq!(source("A", &f, &o), source("A", &f, &o));
}

#[test]
fn constants_round_trip() {
    let mut b = Builder::new(Layout::new(3, 0));
    let u = b.state(0, [3]).unwrap();
    let vals = vec![0.1, -1.0 / 3.0, 6.02214076e23];
    let c = b.tensor([3], vals.clone()).unwrap();
    let y = b.mul(u, c).unwrap();
    let src = source("Consts", &b.finish_rhs(&[y]).unwrap(), &Options::default());
    for v in vals {
        assert!(src.contains(&format!("{:?}", v.abs())), "{v:?} in\n{src}");
    }
}

#[test]
fn convolution_is_unsupported() {
    let mut b = Builder::new(Layout::new(2 * 4 * 4, 2 * 2 * 3 * 3));
    let u = b.state(0, [2, 4, 4]).unwrap();
    let w = b.param(0, [2, 2, 3, 3]).unwrap();
    let conv = ConvParams {
        stride: 1,
        padding: 1,
    };
    let y = b.conv2d(u, w, None, conv).unwrap();
    let y = b.flatten(y).unwrap();
    let f = b.finish_rhs(&[y]).unwrap();
    let e = generate_model("Conv", &f, &Options::default()).unwrap_err();
    assert_eq!(e, Error::Unsupported { op: "conv2d" });
    assert_eq!(
        e.to_string(),
        "code generation does not support the conv2d operation"
    );
}

#[test]
fn group_norm_is_unsupported() {
    let mut b = Builder::new(Layout::new(2 * 3 * 3, 0));
    let u = b.state(0, [2, 3, 3]).unwrap();
    let y = b.group_norm(u, 2, 1e-5, None, None).unwrap();
    let y = b.flatten(y).unwrap();
    let f = b.finish_rhs(&[y]).unwrap();
    let e = generate_model("Gn", &f, &Options::default()).unwrap_err();
    assert_eq!(e, Error::Unsupported { op: "group_norm" });
}

#[test]
fn bad_names_and_non_rhs_functions_are_errors() {
    let f = lotka_volterra();
    let o = Options::default();
    for bad in ["", "1x", "a b", "fn"] {
        assert!(
            matches!(generate_model(bad, &f, &o), Err(Error::InvalidName { .. })),
            "{bad}"
        );
    }
    let mut b = Builder::new(Layout::new(2, 0));
    let u = b.state(0, [2]).unwrap();
    let s = b.sum(u).unwrap();
    let f = b.finish(&[s]).unwrap();
    let e = generate_model("Sum", &f, &o).unwrap_err();
    assert!(matches!(e, Error::NotAnRhs { .. }), "{e}");
    let jv = pnode_ir::jvp(&lotka_volterra()).unwrap();
    assert!(matches!(
        generate_model("J", &jv, &o),
        Err(Error::NotAnRhs { .. })
    ));
}

#[test]
fn bad_tableaux_are_errors() {
    let o = Options::default();
    let t = |a: Vec<Vec<f64>>, b: Vec<f64>, c: Vec<f64>| ErkCoefficients {
        name: "t".into(),
        a,
        b,
        c,
    };
    let cases = [
        t(vec![], vec![], vec![]),
        t(vec![vec![]], vec![1.0], vec![0.0, 1.0]),
        t(vec![vec![0.5]], vec![1.0], vec![0.0]),
        t(vec![vec![], vec![1.0]], vec![0.0, 0.0], vec![0.0, 1.0]),
        t(vec![vec![], vec![f64::NAN]], vec![0.5, 0.5], vec![0.0, 1.0]),
    ];
    for c in cases {
        let e = generate_erk_stepper("T", &c, &o).unwrap_err();
        assert!(matches!(e, Error::InvalidTableau { .. }), "{c:?}: {e}");
    }
}
