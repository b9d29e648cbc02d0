//! Property test: random expressions over tensors large enough to take the looped paths, and
//! small enough for the unrolled ones, compile without panicking (or fail with an error), and
//! their RHS, JVP and VJP kernels agree with the interpreter element by element.

use pnode_ir::{Builder, Function, Interpreter, Layout, jvp, vjp};
use pnode_jit::CompiledFn;
use pnode_testkit::random_ir::{KERNEL_OPS, apply, leaves, op_codes};
use proptest::prelude::*;

fn close(a: &[f64], b: &[f64]) -> bool {
    let scale = b
        .iter()
        .filter(|x| x.is_finite())
        .fold(1.0f64, |m, x| m.max(x.abs()));
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-12 * scale)
}

fn agrees(f: &Function, u: &[f64], p: &[f64], extra: &[f64]) -> Result<(), TestCaseError> {
    let mut want = vec![0.0; f.output_len()];
    Interpreter::new(f)
        .eval(0.3, u, p, extra, &mut want)
        .unwrap();
    let mut jit = CompiledFn::new(f).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut got = vec![0.0; f.output_len()];
    jit.eval(0.3, u, p, extra, &mut got).unwrap();
    prop_assert!(close(&got, &want), "{f}\njit {got:?}\ninterpreter {want:?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_expressions_match_the_interpreter(
        big in any::<bool>(),
        ops in op_codes(24, 1..20),
    ) {
        // [r, c] and [c, r] states, so matmul, transpose and concat have partners.
        let (r, c) = if big { (6, 5) } else { (2, 3) };
        let n = 2 * r * c;
        let np = r + c;
        let mut b = Builder::new(Layout::new(n, np));
        let mut pool = leaves(&mut b, r, c);
        for (code, a, cc) in ops {
            apply(&mut b, &mut pool, &KERNEL_OPS, code, a, cc);
        }
        let last = *pool.last().unwrap();
        let f = b.finish(&[last]).unwrap();
        let u: Vec<f64> = (0..n).map(|i| ((i * 37 % 19) as f64 - 9.0) / 7.0).collect();
        let p: Vec<f64> = (0..np).map(|i| ((i * 11 % 7) as f64 - 3.0) / 5.0).collect();
        agrees(&f, &u, &p, &[])?;
        let v: Vec<f64> = (0..n).map(|i| ((i * 5 % 11) as f64 - 5.0) / 4.0).collect();
        agrees(&jvp(&f).unwrap(), &u, &p, &v)?;
        let w: Vec<f64> = (0..f.output_len()).map(|i| ((i * 3 % 13) as f64 - 6.0) / 6.0).collect();
        agrees(&vjp(&f).unwrap(), &u, &p, &w)?;
    }
}
