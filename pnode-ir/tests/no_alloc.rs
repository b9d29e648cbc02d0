//! `Interpreter::eval` and the `IrModel` trait methods do not allocate after construction.
#![cfg(feature = "runtime")]

use pnode_ir::runtime::IrModel;
use pnode_ir::{Interpreter, jvp, vjp};
use pnode_runtime::model::{Rhs, RhsJvp, RhsVjp};
use pnode_testkit::alloc::CountingAlloc;
use pnode_testkit::prelude::*;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::new();

#[test]
fn eval_does_not_allocate() {
    for m in [conv_groupnorm(), mlp_mixed(), structure(), unary_zoo()] {
        let (n, np) = (m.u.len(), m.p.len());
        let funcs = [m.f.clone(), jvp(&m.f).unwrap(), vjp(&m.f).unwrap()];
        let mut its: Vec<Interpreter> = funcs.iter().map(Interpreter::new).collect();
        let mut outs: Vec<Vec<f64>> = its.iter().map(|i| vec![0.0; i.output_len()]).collect();
        let v = rand_vec(1, n);
        let extras: [&[f64]; 3] = [&[], &v, &v];
        let mut model = IrModel::new(&m.f).unwrap();
        let (mut f, mut gu, mut gp) = (vec![0.0; n], vec![0.0; n], vec![0.0; np]);
        let before = GLOBAL.count();
        for _ in 0..3 {
            for k in 0..3 {
                its[k]
                    .eval(m.t, &m.u, &m.p, extras[k], &mut outs[k])
                    .unwrap();
            }
            model.rhs(m.t, &m.u, &m.p, &mut f);
            model.jvp(m.t, &m.u, &m.p, &v, &mut f);
            model.vjp(m.t, &m.u, &m.p, &v, &mut gu, &mut gp);
        }
        let after = GLOBAL.count();
        assert_eq!(after - before, 0, "{} allocated", m.name);
    }
}
