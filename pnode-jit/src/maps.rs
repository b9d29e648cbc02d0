//! Compile-time index maps of the data-movement and reduction operations.
//!
//! Each map is computed once, in Rust, with the same index arithmetic as the reference
//! interpreter, and then either unrolled (small tensors: every load is at a constant offset) or
//! stored as an index table that one generated loop walks (large tensors: code size stays one
//! loop per operation). Reductions list, for every input element in row-major order, the
//! output element it is added to: the interpreter accumulates in exactly that order, so the
//! sums agree bitwise.

use pnode_ir::{Op, Shape};

/// `s` padded on the left with ones to rank 4.
fn pad4(s: &Shape) -> [usize; 4] {
    let mut d = [1; 4];
    let r = s.rank();
    d[4 - r..].copy_from_slice(s.dims());
    d
}

/// For every element of `to` (row-major), the element of `from` it reads under NumPy's
/// trailing broadcasting rule (axes of extent 1 in `from` are repeated).
pub(crate) fn broadcast_map(from: &Shape, to: &Shape) -> Vec<usize> {
    let d = pad4(from);
    let o = pad4(to);
    let mut st = [0; 4];
    let mut acc = 1;
    for i in (0..4).rev() {
        st[i] = if d[i] == 1 && o[i] != 1 { 0 } else { acc };
        acc *= d[i];
    }
    let mut map = Vec::with_capacity(to.len());
    for i0 in 0..o[0] {
        for i1 in 0..o[1] {
            for i2 in 0..o[2] {
                for i3 in 0..o[3] {
                    map.push(i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3]);
                }
            }
        }
    }
    map
}

/// `(outer, extent, inner)` around `axis`.
fn split_axis(s: &Shape, axis: usize) -> (usize, usize, usize) {
    let d = s.dims();
    (
        d[..axis].iter().product(),
        d[axis],
        d[axis + 1..].iter().product(),
    )
}

/// Offset of the leading indices `idx` in `s`.
fn lead_offset(s: &Shape, idx: &[usize]) -> usize {
    idx.iter().zip(s.strides()).map(|(i, st)| i * st).sum()
}

/// For every output element of a data-movement operation, `Some((operand, element))` it copies
/// or `None` for a zero. `None` (the whole map) if `op` is not a data-movement operation.
pub(crate) fn gather(op: &Op, ins: &[&Shape], out: &Shape) -> Option<Vec<Option<(usize, usize)>>> {
    let n = out.len();
    let map = match op {
        Op::Reshape(_) => (0..n).map(|i| Some((0, i))).collect(),
        Op::Broadcast(_) => broadcast_map(ins[0], out)
            .into_iter()
            .map(|i| Some((0, i)))
            .collect(),
        Op::Transpose => {
            let (m, k) = (ins[0].dims()[0], ins[0].dims()[1]);
            // out[j, i] = x[i, j], out is [k, m].
            let mut v = vec![None; n];
            for i in 0..m {
                for j in 0..k {
                    v[j * m + i] = Some((0, i * k + j));
                }
            }
            v
        }
        Op::Index(idx) => {
            let off = lead_offset(ins[0], idx);
            (0..n).map(|i| Some((0, off + i))).collect()
        }
        Op::Scatter { index, shape } => {
            let off = lead_offset(shape, index);
            let len = ins[0].len();
            (0..n)
                .map(|i| (i >= off && i < off + len).then(|| (0, i - off)))
                .collect()
        }
        Op::Slice { axis, start, end } => {
            let (outer, d, inner) = split_axis(ins[0], *axis);
            let w = (end - start) * inner;
            let mut v = Vec::with_capacity(n);
            for o in 0..outer {
                let src = (o * d + start) * inner;
                v.extend((0..w).map(|k| Some((0, src + k))));
            }
            v
        }
        Op::Pad { axis, before, .. } => {
            let (outer, d, inner) = split_axis(ins[0], *axis);
            let dout = out.dims()[*axis];
            let mut v = vec![None; n];
            let w = d * inner;
            for o in 0..outer {
                let dst = (o * dout + before) * inner;
                for k in 0..w {
                    v[dst + k] = Some((0, o * w + k));
                }
            }
            v
        }
        Op::Concat(axis) => {
            let (outer, dout, inner) = split_axis(out, *axis);
            let mut v = vec![None; n];
            let mut at = 0;
            for (k, s) in ins.iter().enumerate() {
                let dk = s.dims()[*axis];
                let w = dk * inner;
                for o in 0..outer {
                    let dst = (o * dout + at) * inner;
                    for e in 0..w {
                        v[dst + e] = Some((k, o * w + e));
                    }
                }
                at += dk;
            }
            v
        }
        _ => return None,
    };
    Some(map)
}

/// For every input element of a reduction (row-major), the output element it is added to.
/// `None` if `op` is not `Sum(Some(axis))` or `SumTo`.
pub(crate) fn reduce(op: &Op, input: &Shape, out: &Shape) -> Option<Vec<usize>> {
    match op {
        Op::Sum(Some(axis)) => {
            let (outer, d, inner) = split_axis(input, *axis);
            let mut v = Vec::with_capacity(input.len());
            for o in 0..outer {
                for _ in 0..d {
                    v.extend((0..inner).map(|k| o * inner + k));
                }
            }
            Some(v)
        }
        Op::SumTo(_) => Some(broadcast_map(out, input)),
        _ => None,
    }
}
