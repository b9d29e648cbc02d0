//! `Interpreter::eval` and the `IrModel` trait methods do not allocate after construction.
#![allow(unsafe_code)] // a counting global allocator, test-only
#![cfg(feature = "runtime")]

use pnode_ir::runtime::IrModel;
use pnode_ir::{Interpreter, jvp, vjp};
use pnode_runtime::model::{Rhs, RhsJvp, RhsVjp};
use pnode_testkit::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
        let before = ALLOCS.load(Ordering::Relaxed);
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
        let after = ALLOCS.load(Ordering::Relaxed);
        assert_eq!(after - before, 0, "{} allocated", m.name);
    }
}
