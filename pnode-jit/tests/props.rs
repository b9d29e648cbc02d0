//! Property test: random expressions over tensors large enough to take the looped paths, and
//! small enough for the unrolled ones, compile without panicking (or fail with an error), and
//! their RHS, JVP and VJP kernels agree with the interpreter element by element.

use pnode_ir::{Builder, Function, Interpreter, Layout, NodeId, jvp, vjp};
use pnode_jit::CompiledFn;
use proptest::prelude::*;

/// Apply operation `code` to the pool (operands chosen by `a`, `c`); errors are fine.
fn apply(b: &mut Builder, pool: &mut Vec<NodeId>, code: u8, a: usize, c: usize) {
    let x = pool[a % pool.len()];
    let y = pool[c % pool.len()];
    let r = match code % 22 {
        0 => b.add(x, y),
        1 => b.sub(x, y),
        2 => b.mul(x, y),
        3 => {
            let two = b.scalar(2.0);
            b.add(y, two)
                .and_then(|d| b.mul(d, d))
                .and_then(|d| b.div(x, d))
        }
        4 => b.tanh(x),
        5 => b.sin(x),
        6 => b.matmul(x, y),
        7 => b.sum(x),
        8 => b.sum_axis(x, 0),
        9 => b.transpose(x),
        10 => b.index(x, &[1]),
        11 => b.slice(x, 0, 1, 3),
        12 => b.concat(&[x, y], 0),
        13 => b.mean_axis(x, 1),
        14 => b.softplus(x),
        15 => b.pad(x, 0, 1, 2),
        16 => b.relu(x),
        17 => b.gelu(x),
        18 => b.square(x),
        19 => b.sigmoid(x),
        20 => b.abs(x),
        _ => b.stack(&[x, y], 0),
    };
    if let Ok(id) = r {
        pool.push(id);
    }
}

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
        ops in proptest::collection::vec((any::<u8>(), 0usize..24, 0usize..24), 1..20),
    ) {
        // [r, c] and [c, r] states, so matmul, transpose and concat have partners.
        let (r, c) = if big { (6, 5) } else { (2, 3) };
        let n = 2 * r * c;
        let np = r + c;
        let mut b = Builder::new(Layout::new(n, np));
        let mut pool = vec![
            b.state(0, [r, c]).unwrap(),
            b.state(r * c, [c, r]).unwrap(),
            b.param(0, [c]).unwrap(),
            b.param(c, [r, 1]).unwrap(),
            b.time(),
        ];
        for (code, a, cc) in ops {
            apply(&mut b, &mut pool, code, a, cc);
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
