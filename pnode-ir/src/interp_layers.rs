//! Kernels of the layer primitives: 2-D convolution (and its two adjoints) and group
//! normalization (and its Jacobian product).

use crate::graph::ConvParams;
use crate::ops::image_dims;
use crate::shape::Shape;

/// The geometry shared by a convolution and its adjoints.
struct Geo {
    n: usize,
    ci: usize,
    h: usize,
    w: usize,
    co: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
    s: usize,
    p: usize,
}

impl Geo {
    fn new(x: &Shape, k: &Shape, c: ConvParams) -> Self {
        let (n, ci, h, w) = image_dims(x).unwrap_or((0, 0, 0, 0));
        let (co, kh, kw) = match k.dims() {
            [co, _, kh, kw] => (*co, *kh, *kw),
            _ => (0, 0, 0),
        };
        let ho = crate::ops::conv_out(h, kh, c).unwrap_or(0);
        let wo = crate::ops::conv_out(w, kw, c).unwrap_or(0);
        Geo {
            n,
            ci,
            h,
            w,
            co,
            kh,
            kw,
            ho,
            wo,
            s: c.stride,
            p: c.padding,
        }
    }

    /// Visit every `(x index, w index, y index)` triple of the convolution sum
    /// `y[n,o,i,j] = Σ_{c,a,b} x[n, c, i s + a − p, j s + b − p] · w[o, c, a, b]`,
    /// skipping the taps that fall into the zero padding.
    fn taps(&self, mut f: impl FnMut(usize, usize, usize)) {
        for n in 0..self.n {
            for o in 0..self.co {
                for i in 0..self.ho {
                    for j in 0..self.wo {
                        let yi = ((n * self.co + o) * self.ho + i) * self.wo + j;
                        for c in 0..self.ci {
                            for a in 0..self.kh {
                                let r = i * self.s + a;
                                if r < self.p || r - self.p >= self.h {
                                    continue;
                                }
                                let r = r - self.p;
                                for b in 0..self.kw {
                                    let q = j * self.s + b;
                                    if q < self.p || q - self.p >= self.w {
                                        continue;
                                    }
                                    let q = q - self.p;
                                    let xi = ((n * self.ci + c) * self.h + r) * self.w + q;
                                    let wi = ((o * self.ci + c) * self.kh + a) * self.kw + b;
                                    f(xi, wi, yi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// 2-D cross-correlation (the deep-learning "convolution"), no bias:
///
/// `y[n,o,i,j] = Σ_{c,a,b} x[n, c, i s + a − p, j s + b − p] · w[o, c, a, b]`
///
/// with stride `s`, zero padding `p`, out-of-range `x` reading as 0; output extent
/// `(H + 2p − k)/s + 1`.
///
/// # References
///
/// V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning",
/// arXiv:1603.07285 (2016).
pub(crate) fn conv2d(
    x: &[f64],
    xs: &Shape,
    w: &[f64],
    ws: &Shape,
    c: ConvParams,
    out: &mut [f64],
    _ys: &Shape,
) {
    out.fill(0.0);
    Geo::new(xs, ws, c).taps(|xi, wi, yi| out[yi] += x[xi] * w[wi]);
}

/// The adjoint of [`conv2d`] in `x` (a transposed convolution):
/// `x̄[n,c,r,q] = Σ_{o,i,j} ḡ[n,o,i,j] · w[o, c, r + p − i s, q + p − j s]`.
///
/// # References
///
/// Dumoulin and Visin (2016), §4 (transposed convolution arithmetic).
pub(crate) fn conv2d_backward_input(
    g: &[f64],
    w: &[f64],
    ws: &Shape,
    c: ConvParams,
    out: &mut [f64],
    xs: &Shape,
) {
    out.fill(0.0);
    Geo::new(xs, ws, c).taps(|xi, wi, yi| out[xi] += g[yi] * w[wi]);
}

/// The adjoint of [`conv2d`] in `w`:
/// `w̄[o,c,a,b] = Σ_{n,i,j} ḡ[n,o,i,j] · x[n, c, i s + a − p, j s + b − p]`.
///
/// # References
///
/// Dumoulin and Visin (2016).
pub(crate) fn conv2d_backward_weight(
    x: &[f64],
    xs: &Shape,
    g: &[f64],
    c: ConvParams,
    out: &mut [f64],
    ws: &Shape,
) {
    out.fill(0.0);
    Geo::new(xs, ws, c).taps(|xi, wi, yi| out[wi] += g[yi] * x[xi]);
}

/// Group normalization without the affine part, or its Jacobian product.
///
/// For each sample and each group of `C/G` channels the group's `m = (C/G)·H·W` values (which
/// are contiguous in row-major `[N,C,H,W]`) are normalized:
/// `μ = mean(x)`, `σ² = mean((x − μ)²)` (biased), `s = √(σ² + ε)`, `x̂ = (x − μ)/s`.
///
/// With `v = Some(v)` the result is instead `J v` for the group Jacobian
/// `∂x̂_i/∂x_j = (δ_ij − 1/m − x̂_i x̂_j / m)/s`, i.e.
/// `J v = (v − mean(v) − x̂ · mean(x̂ v)) / s`. `J` is symmetric, so this one kernel is both the
/// JVP and the VJP (the standard GroupNorm/BatchNorm backward formula).
///
/// # References
///
/// Y. Wu and K. He, "Group Normalization", ECCV 2018 (arXiv:1803.08494); S. Ioffe and
/// C. Szegedy, "Batch Normalization", ICML 2015 (the backward formula).
pub(crate) fn group_norm(
    x: &[f64],
    xs: &Shape,
    groups: usize,
    eps: f64,
    v: Option<&[f64]>,
    out: &mut [f64],
) {
    let Some((n, c, h, w)) = image_dims(xs) else {
        return;
    };
    let m = (c / groups.max(1)) * h * w;
    if m == 0 {
        return;
    }
    let mf = m as f64;
    for blk in 0..n * groups {
        let r = blk * m..(blk + 1) * m;
        let xb = &x[r.clone()];
        let mu = xb.iter().sum::<f64>() / mf;
        let var = xb.iter().map(|&a| (a - mu) * (a - mu)).sum::<f64>() / mf;
        let s = (var + eps).sqrt();
        let ob = &mut out[r.clone()];
        match v {
            None => {
                for (o, &a) in ob.iter_mut().zip(xb) {
                    *o = (a - mu) / s;
                }
            }
            Some(v) => {
                let vb = &v[r];
                let vmean = vb.iter().sum::<f64>() / mf;
                let xv = xb
                    .iter()
                    .zip(vb)
                    .map(|(&a, &b)| (a - mu) / s * b)
                    .sum::<f64>()
                    / mf;
                for ((o, &a), &b) in ob.iter_mut().zip(xb).zip(vb) {
                    *o = (b - vmean - (a - mu) / s * xv) / s;
                }
            }
        }
    }
}
