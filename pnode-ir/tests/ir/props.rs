//! Property tests: random expressions never panic, and every expression that builds satisfies
//! the dot-product test and matches central differences.

use pnode_ir::{Builder, Layout};
use pnode_testkit::prelude::*;
use pnode_testkit::random_ir::{DERIVATIVE_OPS, apply, leaves, op_codes};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_expressions(ops in op_codes(20, 1..25)) {
        let mut b = Builder::new(Layout::new(12, 6));
        let mut pool = leaves(&mut b, 2, 3);
        for (code, a, c) in ops {
            apply(&mut b, &mut pool, &DERIVATIVE_OPS, code, a, c);
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
