//! Bad input through the public API gives errors that name the shapes, never panics.

use pnode_ir::{Builder, ConvParams, Error, Interpreter, Layout, NodeId, Tensor, jvp, vjp};

fn msg<T: std::fmt::Debug, E: std::fmt::Display>(r: Result<T, E>) -> String {
    r.expect_err("should fail").to_string()
}

#[test]
fn shape_errors_name_both_shapes() {
    let mut b = Builder::new(Layout::new(10, 12));
    let m = b.param(0, [2, 3]).unwrap();
    let v = b.state(0, [4]).unwrap();
    let w = b.state(4, [3]).unwrap();
    assert_eq!(
        msg(b.matmul(m, v)),
        "matmul: [2, 3] · [4] — inner dimensions 3 and 4 differ"
    );
    assert_eq!(msg(b.add(v, w)), "add: [4] + [3] — shapes do not broadcast");
    let s = b.scalar(2.0);
    assert_eq!(
        msg(b.matmul(s, v)),
        "matmul: [] · [4] — operands must have rank ≥ 1 (use mul)"
    );
    assert_eq!(
        msg(b.transpose(v)),
        "transpose: operand of shape [4] — transpose needs a rank-2 operand"
    );
    assert_eq!(
        msg(b.index(m, &[2])),
        "index: operand of shape [2, 3] — index 2 out of range on axis 0"
    );
    assert_eq!(
        msg(b.slice(v, 0, 2, 5)),
        "slice: operand of shape [4] — range 2..5 on axis 0 is out of bounds"
    );
    assert_eq!(
        msg(b.reshape(v, [3])),
        "reshape: [4] → [3] — element counts differ"
    );
    assert_eq!(
        msg(b.broadcast_to(v, [4, 3])),
        "broadcast: [4] → [4, 3] — does not broadcast"
    );
    assert_eq!(
        msg(b.concat(&[m, v], 0)),
        "concat: [2, 3] , [4] — shapes differ outside axis 0"
    );
    assert_eq!(msg(b.concat(&[], 0)), "concat: needs at least one operand");
    assert_eq!(
        msg(b.sum_axis(v, 1)),
        "sum: operand of shape [4] — no axis 1"
    );
    assert_eq!(
        msg(b.state(8, [3])),
        "state read of shape [3] at offset 8 exceeds the buffer length 10"
    );
    assert_eq!(
        msg(b.tensor([2, 2], vec![1.0])),
        "constant of shape [2, 2] needs 4 values, got 1"
    );
    assert_eq!(
        msg(b.full([2, 2, 2, 2, 2], 0.0)),
        "const: result of rank 5 exceeds the maximum rank 4"
    );
    assert_eq!(
        msg(b.tanh(NodeId(999))),
        format!(
            "tanh: node %999 does not exist (the graph has {} nodes)",
            b.graph().len()
        )
    );
    assert!(Tensor::new([3], vec![1.0, 2.0]).is_err());
}

#[test]
fn layer_shape_errors() {
    let mut b = Builder::new(Layout::new(50, 200));
    let x = b.state(0, [2, 5, 5]).unwrap();
    let w = b.param(0, [2, 3, 3, 3]).unwrap();
    let c = ConvParams {
        stride: 1,
        padding: 0,
    };
    assert_eq!(
        msg(b.conv2d(x, w, None, c)),
        "conv2d: [2, 5, 5] ⋆ [2, 3, 3, 3] — input channels 2 and weight input channels 3 differ"
    );
    let w = b.param(0, [2, 2, 7, 7]).unwrap();
    assert!(msg(b.conv2d(x, w, None, c)).contains("does not fit"));
    let zero_stride = ConvParams {
        stride: 0,
        padding: 0,
    };
    let w = b.param(0, [2, 2, 3, 3]).unwrap();
    assert!(b.conv2d(x, w, None, zero_stride).is_err());
    assert_eq!(
        msg(b.group_norm(x, 3, 1e-5, None, None)),
        "group_norm: operand of shape [2, 5, 5] — 3 groups do not divide 2 channels"
    );
    let g = b.param(0, [3]).unwrap();
    assert!(msg(b.group_norm(x, 1, 1e-5, Some(g), None)).contains("weight must have shape [2]"));
    let v = b.state(0, [5]).unwrap();
    assert!(b.group_norm(v, 1, 1e-5, None, None).is_err());
}

#[test]
fn function_and_interpreter_errors() {
    let mut b = Builder::new(Layout::new(3, 1));
    let u = b.state(0, [2]).unwrap();
    assert_eq!(
        msg(b.finish_rhs(&[u])),
        "RHS outputs: expected length 3, found 2"
    );
    assert!(b.finish(&[NodeId(77)]).is_err());
    let u = b.state(0, [3]).unwrap();
    let f = b.finish_rhs(&[u]).unwrap();
    let mut it = Interpreter::new(&f);
    let mut out = [0.0; 3];
    assert_eq!(
        it.eval(0.0, &[1.0, 2.0], &[0.0], &[], &mut out),
        Err(Error::Length {
            what: "state".into(),
            expected: 3,
            found: 2
        })
    );
    assert!(it.eval(0.0, &[1.0; 3], &[], &[], &mut out).is_err());
    assert!(it.eval(0.0, &[1.0; 3], &[0.0], &[], &mut [0.0; 2]).is_err());
    assert!(it.eval(0.0, &[1.0; 3], &[0.0], &[1.0], &mut out).is_err());
    it.eval(0.0, &[1.0, 2.0, 3.0], &[0.0], &[], &mut out)
        .unwrap();
    assert_eq!(out, [1.0, 2.0, 3.0]);
    // A non-RHS function is not a model.
    #[cfg(feature = "runtime")]
    {
        let mut b = Builder::new(Layout::new(3, 0));
        let u = b.state(0, [2]).unwrap();
        let g = b.finish(&[u]).unwrap();
        assert!(pnode_ir::runtime::IrModel::new(&g).is_err());
    }
}

#[test]
fn second_derivative_of_group_norm_is_an_error() {
    let mut b = Builder::new(Layout::new(8, 0));
    let x = b.state(0, [2, 2, 2]).unwrap();
    let y = b.group_norm(x, 1, 1e-5, None, None).unwrap();
    let f = b.finish_rhs(&[y]).unwrap();
    let g = vjp(&f).unwrap();
    assert_eq!(
        jvp(&jvp(&f).unwrap()).unwrap_err().to_string(),
        "the function already reads a tangent buffer; use the other mode for a second derivative"
    );
    assert!(matches!(vjp(&g), Err(Error::BufferInUse { .. })));
    // The VJP's state gradient depends on u through group_norm_backward's first operand.
    assert_eq!(
        jvp(&g).unwrap_err(),
        Error::Unsupported {
            op: "group_norm_backward",
            operand: 0
        }
    );
}

#[test]
fn huge_shapes_are_errors_not_panics() {
    let mut b = Builder::new(Layout::new(4, 0));
    assert!(b.zeros([usize::MAX, 2]).is_err());
    assert!(b.full([1 << 20, 1 << 20], 1.0).is_err());
    assert!(b.state(usize::MAX, [2]).is_err());
    assert!(b.state(0, [usize::MAX, 3]).is_err());
    let x = b.state(0, [4]).unwrap();
    assert!(b.pad(x, 0, usize::MAX, 1).is_err());
    let img = b.reshape(x, [1, 2, 2]).unwrap();
    let w = b.zeros([1, 1, 1, 1]).unwrap();
    let huge_pad = ConvParams {
        stride: 1,
        padding: usize::MAX / 2,
    };
    assert!(b.conv2d(img, w, None, huge_pad).is_err());
    assert!(b.powi(x, i32::MIN).is_ok());
    let y = b.powi(x, i32::MIN).unwrap();
    let f = b.finish(&[y]).unwrap();
    assert!(jvp(&f).is_err());
    assert!(Tensor::new([usize::MAX, 3], vec![]).is_err());
}

#[test]
fn general_op_entry_checks_arity() {
    use pnode_ir::{BinaryOp, Op};
    let mut b = Builder::new(Layout::new(2, 0));
    let x = b.state(0, [2]).unwrap();
    assert_eq!(
        msg(b.op(Op::Binary(BinaryOp::Mul), &[x])),
        "mul: takes 2 operands, got 1"
    );
    assert!(b.op(Op::Binary(BinaryOp::Add), &[x, x, x]).is_err());
    assert!(b.op(Op::Transpose, &[]).is_err());
    assert!(b.op(Op::Time, &[x]).is_err());
    assert!(b.op(Op::Concat(0), &[]).is_err());
}
