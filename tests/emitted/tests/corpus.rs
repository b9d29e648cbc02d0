//! The generated Rust of every valid corpus model (`tests/corpus/ok/*.pode`, lowered from its
//! source in `build.rs`) against the reference interpreter on the same lowered IR: RHS, JVP and
//! VJP bitwise equal at random points. Together with pnode-jit's corpus test (JIT = interpreter
//! bitwise), interpreter, JIT and emitted Rust agree on every corpus model both back ends
//! support.

use pnode_codegen::testmodels::rand_vec;
use pnode_emitted_tests::generated;
use pnode_ir::lower::compile_source;
use pnode_ir::runtime::IrModel;
use pnode_runtime::model::{Rhs, RhsJvp, RhsVjp};
use pnode_testkit::corpus::{self, Kind};

/// Bitwise equal, or NaN where both are NaN.
fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

#[test]
fn every_supported_corpus_model_equals_the_interpreter_bitwise() {
    let models = generated::corpus_models();
    for (i, (stem, mut g)) in models.into_iter().enumerate() {
        let source = corpus::file(Kind::Ok, stem).source;
        let program = compile_source(&source)
            .program
            .expect("corpus model lowers");
        let mut ir = IrModel::new(&program.rhs).expect("IrModel");
        let g: &mut dyn pnode_emitted_tests::Model = &mut *g;
        let (n, np) = (ir.state_len(), ir.param_len());
        assert_eq!((g.state_len(), g.param_len()), (n, np), "{stem}");
        for k in 0..2u64 {
            let seed = 1000 * i as u64 + 10 * k;
            let half = |v: Vec<f64>| v.into_iter().map(|x| 0.5 * x).collect::<Vec<_>>();
            let (u, p) = (half(rand_vec(seed, n)), half(rand_vec(seed + 1, np)));
            let (v, w) = (rand_vec(seed + 2, n), rand_vec(seed + 3, n));
            let t = 0.25 + k as f64;
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            g.rhs(t, &u, &p, &mut a);
            ir.rhs(t, &u, &p, &mut b);
            assert!(same(&a, &b), "{stem}: rhs {a:?} vs {b:?}");
            g.jvp(t, &u, &p, &v, &mut a);
            ir.jvp(t, &u, &p, &v, &mut b);
            assert!(same(&a, &b), "{stem}: jvp {a:?} vs {b:?}");
            let (mut gpa, mut gpb) = (vec![0.0; np], vec![0.0; np]);
            g.vjp(t, &u, &p, &w, &mut a, &mut gpa);
            ir.vjp(t, &u, &p, &w, &mut b, &mut gpb);
            assert!(same(&a, &b), "{stem}: vjp in u {a:?} vs {b:?}");
            assert!(same(&gpa, &gpb), "{stem}: vjp in θ");
        }
    }
    let supported = generated::corpus_models().len();
    eprintln!(
        "{supported} corpus models bitwise equal; unsupported: {:?}",
        generated::corpus_unsupported()
    );
    assert!(supported >= 25, "only {supported} corpus models generated");
    // Only convolution and group-norm models may be refused.
    for stem in generated::corpus_unsupported() {
        let source = corpus::file(Kind::Ok, stem).source;
        assert!(
            source.contains("conv2d") || source.contains("groupnorm"),
            "{stem} refused"
        );
    }
}
