//! Hash-consing (CSE), the algebraic simplifications, dead-node elimination and the textual
//! IR (insta snapshots).

use pnode_ir::{Builder, Layout, Op, UnaryOp, jvp, vjp};
use pnode_testkit::prelude::*;

#[test]
fn same_subexpression_is_one_node() {
    let mut b = Builder::new(Layout::new(2, 0));
    let u = b.state(0, [2]).unwrap();
    let u_again = b.state(0, [2]).unwrap();
    assert_eq!(u, u_again);
    let t1 = b.tanh(u).unwrap();
    let t2 = b.tanh(u_again).unwrap();
    assert_eq!(t1, t2);
    let s1 = b.mul(t1, u).unwrap();
    let s2 = b.mul(t2, u).unwrap();
    assert_eq!(s1, s2);
    // Commutative operations are canonicalized; non-commutative ones are not.
    let s3 = b.mul(u, t1).unwrap();
    assert_eq!(s1, s3);
    let d1 = b.sub(u, t1).unwrap();
    let d2 = b.sub(t1, u).unwrap();
    assert_ne!(d1, d2);
    assert_eq!(b.graph().len(), 5);
    let f = b.finish(&[s1, s2]).unwrap();
    assert_eq!(f.node_count(), 3);
    assert_eq!(f.outputs()[0], f.outputs()[1]);
}

#[test]
fn simplifications() {
    let mut b = Builder::new(Layout::new(2, 0));
    let x = b.state(0, [2]).unwrap();
    let zero = b.zeros([2]).unwrap();
    let zs = b.scalar(0.0);
    let one = b.scalar(1.0);
    assert_eq!(b.add(x, zero).unwrap(), x);
    assert_eq!(b.add(zero, x).unwrap(), x);
    assert_eq!(b.add(x, zs).unwrap(), x);
    assert_eq!(b.sub(x, zs).unwrap(), x);
    assert_eq!(b.mul(x, one).unwrap(), x);
    assert_eq!(b.mul(one, x).unwrap(), x);
    assert_eq!(b.div(x, one).unwrap(), x);
    assert_eq!(b.mul(x, zero).unwrap(), zero);
    // A scalar zero does not have the result's shape: x·0 stays a node.
    let xz = b.mul(x, zs).unwrap();
    assert!(matches!(b.graph().get(xz).unwrap().op, Op::Binary(_)));
    let n = b.neg(x).unwrap();
    assert_eq!(b.neg(n).unwrap(), x);
    let zx = b.sub(zero, x).unwrap();
    assert_eq!(zx, n);
    assert_eq!(b.powi(x, 1).unwrap(), x);
    assert_eq!(b.reshape(x, [2]).unwrap(), x);
    let tx = b.tanh(x).unwrap();
    let r = b.reshape(tx, [1, 2]).unwrap();
    let rr = b.reshape(r, [2, 1]).unwrap();
    assert_eq!(b.graph().get(rr).unwrap().inputs, vec![tx]);
    // Views of an input read are input reads, so they hash-cons with direct reads.
    let x1 = b.index(x, &[1]).unwrap();
    assert_eq!(x1, b.state(1, []).unwrap());
    let xs = b.slice(x, 0, 1, 2).unwrap();
    assert_eq!(xs, b.state(1, [1]).unwrap());
    let xr = b.reshape(x, [2, 1]).unwrap();
    assert_eq!(xr, b.state(0, [2, 1]).unwrap());
    let t = b.transpose(rr).unwrap();
    let tt = b.transpose(t).unwrap();
    assert_eq!(tt, rr);
    // x + 0 with a broadcasting zero keeps the broadcast.
    let z22 = b.zeros([2, 2]).unwrap();
    let xb = b.add(x, z22).unwrap();
    assert_eq!(b.shape(xb).unwrap().dims(), &[2, 2]);
}

#[test]
fn constant_folding() {
    let mut b = Builder::new(Layout::new(1, 0));
    let two = b.scalar(2.0);
    let three = b.tensor([3], vec![1.0, 2.0, 3.0]).unwrap();
    let p = b.mul(two, three).unwrap();
    let e = b.exp(p).unwrap();
    let s = b.sum(e).unwrap();
    let c = b.graph().constant(s).expect("folded");
    let want = 2f64.exp() + 4f64.exp() + 6f64.exp();
    assert_eq!(c.data(), &[want]);
    // x^3 with a constant exponent takes the powi fast path.
    let x = b.state(0, []).unwrap();
    let three = b.scalar(3.0);
    let y = b.pow(x, three).unwrap();
    assert_eq!(b.graph().get(y).unwrap().op, Op::Unary(UnaryOp::Powi(3)));
    let half = b.scalar(0.5);
    let y = b.pow(x, half).unwrap();
    assert!(matches!(
        b.graph().get(y).unwrap().op,
        Op::Unary(UnaryOp::Powf(_))
    ));
}

#[test]
fn derivative_shares_primal_nodes() {
    // jvp(tanh u) = (1 − tanh²u) v reuses the primal tanh node: the printed JVP has one tanh.
    let mut b = Builder::new(Layout::new(3, 0));
    let u = b.state(0, [3]).unwrap();
    let t = b.tanh(u).unwrap();
    let f = b.finish_rhs(&[t]).unwrap();
    let j = jvp(&f).unwrap();
    let text = j.to_string();
    assert_eq!(text.matches("tanh").count(), 1, "{text}");
    insta::assert_snapshot!("tanh_jvp", text);
}

#[test]
fn dead_nodes_are_dropped() {
    let mut b = Builder::new(Layout::new(2, 1));
    let u = b.state(0, [2]).unwrap();
    let _unused = b.sin(u).unwrap();
    let p = b.param(0, []).unwrap();
    let _unused2 = b.exp(p).unwrap();
    let y = b.cos(u).unwrap();
    let f = b.finish_rhs(&[y]).unwrap();
    assert_eq!(f.node_count(), 2);
    // The VJP of a parameter-free RHS returns a zero parameter gradient.
    let g = vjp(&f).unwrap();
    let out = eval(&g, 0.0, &[0.1, 0.2], &[5.0], &[1.0, 1.0]);
    assert_eq!(out[2], 0.0);
    assert_eq!(out[0], -(0.1f64).sin());
}

#[test]
fn node_counts() {
    let mut table = String::new();
    for m in [
        lotka_volterra(),
        robertson(),
        robertson_const(),
        van_der_pol(),
        mlp_tanh(),
        spiral(),
        unary_zoo(),
        structure(),
        conv_groupnorm(),
        conv_stride2(),
        mlp_mixed(),
        broadcast_pow(),
    ] {
        let j = jvp(&m.f).unwrap();
        let v = vjp(&m.f).unwrap();
        table += &format!(
            "{:<16} rhs {:>3}  jvp {:>3}  vjp {:>3}\n",
            m.name,
            m.f.node_count(),
            j.node_count(),
            v.node_count()
        );
    }
    insta::assert_snapshot!("node_counts", table);
}

#[test]
fn printed_lotka_volterra() {
    let m = lotka_volterra();
    let text = format!(
        "{}\n\n{}\n\n{}",
        m.f,
        jvp(&m.f).unwrap(),
        vjp(&m.f).unwrap()
    );
    insta::assert_snapshot!("lotka_volterra", text);
}

#[test]
fn printed_conv_groupnorm() {
    let m = conv_groupnorm();
    insta::assert_snapshot!("conv_groupnorm_vjp", vjp(&m.f).unwrap().to_string());
}

#[test]
fn printing_is_deterministic() {
    let a = vjp(&mlp_mixed().f).unwrap().to_string();
    let b = vjp(&mlp_mixed().f).unwrap().to_string();
    assert_eq!(a, b);
}
