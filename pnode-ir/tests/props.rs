//! Property tests: random expressions never panic, and every expression that builds satisfies
//! the dot-product test and matches central differences.

mod common;
use common::*;
use pnode_ir::{Builder, Layout, NodeId};
use proptest::prelude::*;

/// Apply operation `code` to the pool (operands chosen by `a`, `c`); errors are fine.
fn apply(b: &mut Builder, pool: &mut Vec<NodeId>, code: u8, a: usize, c: usize) {
    let x = pool[a % pool.len()];
    let y = pool[c % pool.len()];
    let r = match code % 16 {
        0 => b.add(x, y),
        1 => b.sub(x, y),
        2 => b.mul(x, y),
        3 => {
            let one = b.scalar(2.0);
            b.add(y, one)
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
        11 => b.slice(x, 0, 0, 1),
        12 => b.concat(&[x, y], 0),
        13 => b.mean_axis(x, 1),
        14 => b.softplus(x),
        _ => b.stack(&[x, y], 0),
    };
    if let Ok(id) = r {
        pool.push(id);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_expressions(ops in proptest::collection::vec((any::<u8>(), 0usize..20, 0usize..20), 1..25)) {
        let mut b = Builder::new(Layout::new(12, 6));
        let mut pool = vec![
            b.state(0, [2, 3]).unwrap(),
            b.state(6, [3, 2]).unwrap(),
            b.param(0, [3]).unwrap(),
            b.param(3, [2, 1]).unwrap(),
            b.time(),
        ];
        for (code, a, c) in ops {
            apply(&mut b, &mut pool, code, a, c);
        }
        // Hash-consing: no two nodes share (op, inputs); operands precede their nodes.
        let nodes = b.graph().nodes();
        for (i, n) in nodes.iter().enumerate() {
            prop_assert!(n.inputs.iter().all(|x| x.index() < i));
            for m in &nodes[..i] {
                prop_assert!(!(m.op == n.op && m.inputs == n.inputs), "duplicate node {i}");
            }
        }
        let out = *pool.last().unwrap();
        let f = b.finish(&[out, pool[0]]).unwrap();
        let m = Model {
            name: "random",
            f,
            t: 0.4,
            u: rand_vec(1, 12),
            p: rand_vec(2, 6),
        };
        let e = check(&m);
        prop_assert!(e.dot <= 1e-12, "dot {:e}\n{}", e.dot, m.f);
        // Relative, or absolute where the derivative vanishes (FD then returns round-off).
        prop_assert!(e.jvp_fd <= 1e-6 || e.jvp_fd_abs <= 1e-8, "jvp {:e}\n{}", e.jvp_fd, m.f);
        prop_assert!(e.vjp_p_fd <= 1e-6 || e.vjp_p_fd_abs <= 1e-8, "vjp_p {:e}\n{}", e.vjp_p_fd, m.f);
    }
}
