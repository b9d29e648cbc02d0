//! The interpreter's kernels against independent naive implementations and known values.

use pnode_ir::special::{erf, norm_cdf};
use pnode_ir::{Builder, ConvParams, Layout, NodeId};
use pnode_testkit::prelude::*;

/// Evaluate `build(b, x)` on input `x` (state of shape `shape`).
fn run(
    shape: &[usize],
    x: &[f64],
    build: impl FnOnce(&mut Builder, NodeId) -> NodeId,
) -> (Vec<usize>, Vec<f64>) {
    let mut b = Builder::new(Layout::new(x.len(), 0));
    let u = b.state(0, shape).unwrap();
    let y = build(&mut b, u);
    let f = b.finish(&[y]).unwrap();
    let dims = f.output_shapes()[0].dims().to_vec();
    (dims, eval(&f, 0.0, x, &[], &[]))
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{a:?}\nvs\n{b:?}");
    }
}

/// Naive convolution over an explicitly zero-padded copy of the input.
fn naive_conv(
    x: &[f64],
    (n, c, h, w): (usize, usize, usize, usize),
    k: &[f64],
    (co, kh, kw): (usize, usize, usize),
    s: usize,
    p: usize,
) -> Vec<f64> {
    let (hp, wp) = (h + 2 * p, w + 2 * p);
    let mut xp = vec![0.0; n * c * hp * wp];
    for i in 0..n * c {
        for r in 0..h {
            for q in 0..w {
                xp[(i * hp + r + p) * wp + q + p] = x[(i * h + r) * w + q];
            }
        }
    }
    let (ho, wo) = ((hp - kh) / s + 1, (wp - kw) / s + 1);
    let mut y = vec![0.0; n * co * ho * wo];
    for b in 0..n {
        for o in 0..co {
            for i in 0..ho {
                for j in 0..wo {
                    let mut acc = 0.0;
                    for ci in 0..c {
                        for a in 0..kh {
                            for bb in 0..kw {
                                acc += xp[((b * c + ci) * hp + i * s + a) * wp + j * s + bb]
                                    * k[((o * c + ci) * kh + a) * kw + bb];
                            }
                        }
                    }
                    y[((b * co + o) * ho + i) * wo + j] = acc;
                }
            }
        }
    }
    y
}

#[test]
fn conv2d_matches_naive() {
    for (n, c, h, w, co, kh, kw, s, p) in [
        (1, 1, 3, 3, 1, 2, 2, 1, 0),
        (1, 2, 5, 5, 3, 3, 3, 1, 1),
        (2, 2, 5, 4, 2, 3, 2, 2, 1),
        (1, 3, 6, 6, 2, 1, 1, 3, 0),
    ] {
        let x = rand_vec(31, n * c * h * w);
        let k = rand_vec(32, co * c * kh * kw);
        let want = naive_conv(&x, (n, c, h, w), &k, (co, kh, kw), s, p);
        let shape: Vec<usize> = if n == 1 {
            vec![c, h, w]
        } else {
            vec![n, c, h, w]
        };
        let (_, got) = run(&shape, &x, |b, u| {
            let kk = b.tensor([co, c, kh, kw], k.clone()).unwrap();
            b.conv2d(
                u,
                kk,
                None,
                ConvParams {
                    stride: s,
                    padding: p,
                },
            )
            .unwrap()
        });
        close(&got, &want, 1e-14);
    }
}

#[test]
fn conv2d_bias_and_hand_value() {
    // 1×3×3 input 1..9, 2×2 kernel of ones: window sums 12, 16, 24, 28; bias 0.5.
    let x: Vec<f64> = (1..=9).map(f64::from).collect();
    let (d, y) = run(&[1, 3, 3], &x, |b, u| {
        let k = b.full([1, 1, 2, 2], 1.0).unwrap();
        let bias = b.tensor([1], vec![0.5]).unwrap();
        b.conv2d(
            u,
            k,
            Some(bias),
            ConvParams {
                stride: 1,
                padding: 0,
            },
        )
        .unwrap()
    });
    assert_eq!(d, vec![1, 2, 2]);
    assert_eq!(y, vec![12.5, 16.5, 24.5, 28.5]);
}

#[test]
fn group_norm_matches_naive() {
    let (c, h, w, g) = (4, 2, 3, 2);
    let x = rand_vec(41, c * h * w);
    let (_, y) = run(&[c, h, w], &x, |b, u| {
        b.group_norm(u, g, 1e-5, None, None).unwrap()
    });
    let m = (c / g) * h * w;
    for grp in 0..g {
        let blk = &x[grp * m..(grp + 1) * m];
        let mu = blk.iter().sum::<f64>() / m as f64;
        let var = blk.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / m as f64;
        let want: Vec<f64> = blk.iter().map(|v| (v - mu) / (var + 1e-5).sqrt()).collect();
        close(&y[grp * m..(grp + 1) * m], &want, 1e-14);
        // Normalized: mean 0, variance var/(var+eps).
        let ym = y[grp * m..(grp + 1) * m].iter().sum::<f64>() / m as f64;
        assert!(ym.abs() < 1e-15);
    }
}

#[test]
fn matmul_semantics() {
    let a: Vec<f64> = (0..6).map(f64::from).collect(); // [[0,1,2],[3,4,5]]
    // [2,3]·[3] → [2]
    let (d, y) = run(&[2, 3], &a, |b, u| {
        let v = b.tensor([3], vec![1.0, 10.0, 100.0]).unwrap();
        b.matmul(u, v).unwrap()
    });
    assert_eq!((d, y), (vec![2], vec![210.0, 543.0]));
    // [3]·[3,2] (a reshaped as [3,2] = [[0,1],[2,3],[4,5]]) → [2]
    let (d, y) = run(&[3, 2], &a, |b, u| {
        let v = b.tensor([3], vec![1.0, 10.0, 100.0]).unwrap();
        b.matmul(v, u).unwrap()
    });
    assert_eq!((d, y), (vec![2], vec![420.0, 531.0]));
    // Batched linear layer: x [2,1,3] · Wᵀ with W [2,3] = identity rows → picks columns.
    let (d, y) = run(&[2, 1, 3], &a, |b, u| {
        let w = b
            .tensor([2, 3], vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0])
            .unwrap();
        b.linear(u, w, None).unwrap()
    });
    assert_eq!((d, y), (vec![2, 1, 2], vec![0.0, 2.0, 3.0, 5.0]));
    let (d, y) = run(&[2, 3], &a, |b, u| b.transpose(u).unwrap());
    assert_eq!((d, y), (vec![3, 2], vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]));
}

#[test]
fn broadcasting_and_structure() {
    let a = vec![1.0, 2.0, 3.0, 4.0, 5.0];
    // [2,1] + [3] → [2,3]
    let (d, y) = run(&[5], &a, |b, u| {
        let c = b.slice(u, 0, 0, 2).unwrap();
        let c = b.reshape(c, [2, 1]).unwrap();
        let r = b.slice(u, 0, 2, 5).unwrap();
        b.add(c, r).unwrap()
    });
    assert_eq!((d, y), (vec![2, 3], vec![4.0, 5.0, 6.0, 5.0, 6.0, 7.0]));
    // sum_to [2,3] → [1,3] and → [2,1]
    let six: Vec<f64> = (1..=6).map(f64::from).collect();
    let (_, y) = run(&[2, 3], &six, |b, u| b.sum_to(u, [1, 3]).unwrap());
    assert_eq!(y, vec![5.0, 7.0, 9.0]);
    let (_, y) = run(&[2, 3], &six, |b, u| b.sum_to(u, [2, 1]).unwrap());
    assert_eq!(y, vec![6.0, 15.0]);
    let (_, y) = run(&[2, 3], &six, |b, u| b.sum_axis(u, 0).unwrap());
    assert_eq!(y, vec![5.0, 7.0, 9.0]);
    let (_, y) = run(&[2, 3], &six, |b, u| b.mean_axis(u, 1).unwrap());
    assert_eq!(y, vec![2.0, 5.0]);
    let (_, y) = run(&[2, 3], &six, |b, u| b.mean(u).unwrap());
    assert_eq!(y, vec![3.5]);
    // concat on axis 1, pad, scatter, stack
    let (d, y) = run(&[2, 3], &six, |b, u| {
        let t = b.tanh(u).unwrap();
        let s = b.slice(t, 1, 2, 3).unwrap();
        let z = b.sub(s, s).unwrap();
        b.concat(&[u, z], 1).unwrap()
    });
    assert_eq!(
        (d, y),
        (vec![2, 4], vec![1.0, 2.0, 3.0, 0.0, 4.0, 5.0, 6.0, 0.0])
    );
    let (d, y) = run(&[2, 3], &six, |b, u| {
        let t = b.neg(u).unwrap();
        b.pad(t, 1, 1, 0).unwrap()
    });
    assert_eq!(
        (d, y),
        (
            vec![2, 4],
            vec![0.0, -1.0, -2.0, -3.0, 0.0, -4.0, -5.0, -6.0]
        )
    );
    let (d, y) = run(&[2, 3], &six, |b, u| {
        let r = b.index(u, &[1]).unwrap();
        let r = b.neg(r).unwrap();
        b.scatter(r, &[1], [3, 3]).unwrap()
    });
    assert_eq!(d, vec![3, 3]);
    assert_eq!(y, vec![0.0, 0.0, 0.0, -4.0, -5.0, -6.0, 0.0, 0.0, 0.0]);
    let (d, y) = run(&[2, 3], &six, |b, u| {
        let r0 = b.index(u, &[0, 2]).unwrap();
        let r1 = b.index(u, &[1, 0]).unwrap();
        b.stack(&[r0, r1, r0], 0).unwrap()
    });
    assert_eq!((d, y), (vec![3], vec![3.0, 4.0, 3.0]));
}

#[test]
fn elementwise_values() {
    let x = vec![-800.0, -1.0, 0.0, 1.0, 800.0];
    let (_, y) = run(&[5], &x, |b, u| b.softplus(u).unwrap());
    close(
        &y,
        &[
            0.0,
            0.313_261_687_518_222_9,
            2f64.ln(),
            1.313_261_687_518_223,
            800.0,
        ],
        1e-15,
    );
    let (_, y) = run(&[5], &x, |b, u| b.sigmoid(u).unwrap());
    close(
        &y,
        &[
            0.0,
            0.268_941_421_369_995_1,
            0.5,
            0.731_058_578_630_004_9,
            1.0,
        ],
        1e-15,
    );
    let (_, y) = run(&[5], &x, |b, u| b.gelu(u).unwrap());
    close(
        &y,
        &[
            -0.0,
            -0.158_655_253_931_457_05,
            0.0,
            0.841_344_746_068_542_9,
            800.0,
        ],
        1e-15,
    );
    let (_, y) = run(&[5], &x, |b, u| b.relu(u).unwrap());
    assert_eq!(y, vec![0.0, 0.0, 0.0, 1.0, 800.0]);
    let (_, y) = run(&[5], &x, |b, u| b.step(u).unwrap());
    assert_eq!(y, vec![0.0, 0.0, 0.0, 1.0, 1.0]);
    let (_, y) = run(&[5], &x, |b, u| b.sign(u).unwrap());
    assert_eq!(y, vec![-1.0, -1.0, 0.0, 1.0, 1.0]);
    let (_, y) = run(&[5], &x, |b, u| b.abs(u).unwrap());
    assert_eq!(y, vec![800.0, 1.0, 0.0, 1.0, 800.0]);
    assert!((erf(0.5) - 0.520_499_877_813_046_5).abs() < 1e-16);
    assert!((norm_cdf(-1.0) - 0.158_655_253_931_457_05).abs() < 1e-16);
    // General pow with a state exponent vs powf.
    let (_, y) = run(&[2], &[2.0, 0.5], |b, u| {
        let base = b.index(u, &[0]).unwrap();
        let e = b.index(u, &[1]).unwrap();
        b.pow(base, e).unwrap()
    });
    assert!((y[0] - 2f64.sqrt()).abs() < 1e-16);
}

#[test]
fn time_input() {
    let mut b = Builder::new(Layout::new(1, 0));
    let t = b.time();
    let u = b.state(0, []).unwrap();
    let y = b.mul(t, u).unwrap();
    let y = b.reshape(y, [1]).unwrap();
    let f = b.finish_rhs(&[y]).unwrap();
    assert_eq!(eval(&f, 3.0, &[2.0], &[], &[]), vec![6.0]);
}
