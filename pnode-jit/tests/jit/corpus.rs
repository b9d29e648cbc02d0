//! Every valid corpus model (`tests/corpus/ok/*.pode`), lowered from its source: the JIT's
//! RHS, JVP and VJP kernels agree with the reference interpreter to ≤ 1e-12 relative at a
//! random point, and a model the JIT does not lower (convolutions, group norms) is
//! `Error::Unsupported` naming the operation, never a panic.

use pnode_ir::lower::compile_source;
use pnode_ir::{Function, Interpreter, jvp, vjp};
use pnode_jit::{CompiledFn, Error};
use pnode_testkit::corpus::{self, Kind};
use pnode_testkit::prelude::{rand_vec, rel_max};

/// The interpreter's and the JIT's outputs of `f` at `(t, u, p, extra)`; `Err` if the JIT
/// refuses `f`.
fn both(f: &Function, u: &[f64], p: &[f64], extra: &[f64]) -> Result<(Vec<f64>, Vec<f64>), Error> {
    let t = 0.3;
    let mut want = vec![0.0; f.output_len()];
    Interpreter::new(f)
        .eval(t, u, p, extra, &mut want)
        .expect("interpreter evaluates a lowered model");
    let mut got = vec![f64::NAN; f.output_len()];
    CompiledFn::new(f)?.eval(t, u, p, extra, &mut got)?;
    Ok((want, got))
}

#[test]
fn every_corpus_model_the_jit_lowers_matches_the_interpreter() {
    let files = corpus::files(Kind::Ok);
    let (mut compiled, mut refused) = (0, Vec::new());
    for (i, file) in files.iter().enumerate() {
        let name = &file.name;
        let lowered = compile_source(&file.source);
        let program = lowered
            .program
            .unwrap_or_else(|| panic!("{name}: a corpus ok model lowers"));
        let rhs = &program.rhs;
        let seed = 100 * i as u64;
        // Small magnitudes: some corpus models blow up (x³, exp) far from the origin.
        let scale = |v: Vec<f64>| v.into_iter().map(|x| 0.5 * x).collect::<Vec<_>>();
        let u = scale(rand_vec(seed + 1, program.state_len()));
        let p = scale(rand_vec(seed + 2, program.param_len()));
        let v = rand_vec(seed + 3, program.state_len());
        let w = rand_vec(seed + 4, rhs.output_len());
        let functions = [
            ("rhs", rhs.clone(), Vec::new()),
            ("jvp", jvp(rhs).expect("jvp of a lowered model"), v),
            ("vjp", vjp(rhs).expect("vjp of a lowered model"), w),
        ];
        let mut errors = Vec::new();
        for (what, f, extra) in &functions {
            match both(f, &u, &p, extra) {
                Ok((want, got)) => {
                    let e = rel_max(&got, &want);
                    assert!(e <= 1e-12, "{name} {what}: JIT vs interpreter {e:e}");
                    errors.push(e);
                }
                Err(Error::Unsupported { op }) => {
                    refused.push(format!("{name} ({op})"));
                    break;
                }
                Err(e) => panic!("{name} {what}: {e}"),
            }
        }
        if errors.len() == 3 {
            compiled += 1;
            eprintln!(
                "{name:<20} rhs {:.1e} jvp {:.1e} vjp {:.1e}",
                errors[0], errors[1], errors[2]
            );
        }
    }
    eprintln!("{compiled} models compiled; refused: {refused:?}");
    // Only models with convolutions or group norms may be refused.
    for r in &refused {
        assert!(r.contains("conv") || r.contains("group"), "refused: {r}");
    }
    assert!(compiled >= 25, "only {compiled} corpus models compiled");
}
