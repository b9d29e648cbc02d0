//! The batched `tanh` multilayer perceptron right-hand side ([`Mlp`]) and its kernels.

use crate::error::{Error, Result};
use crate::model::{Rhs, RhsJvp, RhsVjp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `tanh(x)` in straight-line code, so a loop over a slice vectorizes (the `libm` call does
/// not, and would otherwise dominate a hidden layer). Accurate to a few ulps (tested against
/// [`f64::tanh`]); NaN propagates and `tanh(±0) = ±0`.
///
/// `tanh|x| = e / (e + 2)` with `e = expm1(2|x|)`, which has no cancellation for small `|x|`.
/// `expm1(y)`, `0 ≤ y ≤ 40`: `y = k ln 2 + r` (Cody–Waite, `|r| ≤ ln 2 / 2`), the degree-13
/// Taylor polynomial for `expm1(r)` (Estrin's scheme), then `2ᵏ expm1(r) + (2ᵏ − 1)` with `2ᵏ` built from the
/// exponent bits. Beyond `|x| = 20` the rounded `tanh` is exactly ±1, and so is this formula.
#[inline]
pub(crate) fn tanh_fast(x: f64) -> f64 {
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52: adding it rounds to an integer
    // ln 2 split as in fdlibm: LN2_HI has 32 significant bits, so k·LN2_HI is exact.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    let ax = x.abs();
    let y = if 2.0 * ax > 40.0 { 40.0 } else { 2.0 * ax }; // NaN stays NaN
    let z = y * std::f64::consts::LOG2_E + SHIFT;
    let k = z - SHIFT;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    // expm1(r) = r·q(r), q(r) = Σ_{j≤12} r^j/(j+1)!, by Estrin's scheme: a dependency chain
    // of depth 5 instead of Horner's 12, so consecutive elements overlap in the pipeline.
    const C: [f64; 13] = {
        let mut c = [1.0; 13];
        let mut j = 1;
        while j < 13 {
            c[j] = c[j - 1] / (j + 1) as f64;
            j += 1;
        }
        c
    };
    let (r2, r4) = (r * r, (r * r) * (r * r));
    let q0 = (C[0] + C[1] * r) + (C[2] + C[3] * r) * r2;
    let q1 = (C[4] + C[5] * r) + (C[6] + C[7] * r) * r2;
    let q2 = (C[8] + C[9] * r) + (C[10] + C[11] * r) * r2;
    let q = (q0 + q1 * r4) + (q2 + C[12] * r4) * (r4 * r4);
    let two_k = f64::from_bits(z.to_bits().wrapping_add(1023) << 52);
    let e = two_k * (q * r) + (two_k - 1.0);
    (e / (e + 2.0)).copysign(x)
}

/// `C = A B` (or `C += A B` with `accumulate`), `C` `m × n` and `B` `k × n`, both row-major and
/// contiguous, and `A(r, i) = a[r·a_rs + i·a_cs]` so that `A` or `Aᵀ` is read in place.
///
/// Register-blocked in 2 rows × 8 columns (16 accumulators: 8 SSE2 or 4 AVX registers, so
/// nothing spills on the baseline x86-64 target; 4 × 8 spills there and was 1.6× slower); the
/// inner loop runs over a contiguous row of `B` and vectorizes. Every entry is summed in the same order (`C(r, j)`, then `i = 0, 1, …`)
/// whatever the blocking, so a batch row's result does not depend on the batch size.
fn gemm(
    (m, n, k): (usize, usize, usize),
    a: &[f64],
    (a_rs, a_cs): (usize, usize),
    b: &[f64],
    c: &mut [f64],
    accumulate: bool,
) {
    let mut r = 0;
    while r + 2 <= m {
        gemm_rows::<2>(r, (n, k), a, (a_rs, a_cs), b, c, accumulate);
        r += 2;
    }
    while r < m {
        gemm_rows::<1>(r, (n, k), a, (a_rs, a_cs), b, c, accumulate);
        r += 1;
    }
}

#[inline(always)]
fn gemm_rows<const R: usize>(
    r0: usize,
    (n, k): (usize, usize),
    a: &[f64],
    st: (usize, usize),
    b: &[f64],
    c: &mut [f64],
    acc: bool,
) {
    let mut j = 0;
    while j + 8 <= n {
        micro::<R, 8>((r0, j), (n, k), a, st, b, c, acc);
        j += 8;
    }
    while j < n {
        micro::<R, 1>((r0, j), (n, k), a, st, b, c, acc);
        j += 1;
    }
}

#[inline(always)]
fn micro<const R: usize, const C: usize>(
    (r0, j0): (usize, usize),
    (n, k): (usize, usize),
    a: &[f64],
    (a_rs, a_cs): (usize, usize),
    b: &[f64],
    c: &mut [f64],
    accumulate: bool,
) {
    let mut acc = [[0.0f64; C]; R];
    if accumulate {
        for (r, row) in acc.iter_mut().enumerate() {
            row.copy_from_slice(&c[(r0 + r) * n + j0..][..C]);
        }
    }
    for i in 0..k {
        let bi = &b[i * n + j0..][..C];
        for (r, row) in acc.iter_mut().enumerate() {
            let x = a[(r0 + r) * a_rs + i * a_cs];
            for (cq, bq) in row.iter_mut().zip(bi) {
                *cq += x * bq;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        c[(r0 + r) * n + j0..][..C].copy_from_slice(row);
    }
}

/// Position and shape of one dense layer inside the flat parameter vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layer {
    n_in: usize,
    n_out: usize,
    /// Offset of `W` (`n_out × n_in`, row-major); the bias follows at `w_off + n_out·n_in`.
    w_off: usize,
}

impl Layer {
    fn weights<'a>(&self, p: &'a [f64]) -> &'a [f64] {
        &p[self.w_off..self.w_off + self.n_out * self.n_in]
    }
    fn bias<'a>(&self, p: &'a [f64]) -> &'a [f64] {
        let b = self.w_off + self.n_out * self.n_in;
        &p[b..b + self.n_out]
    }
    /// Write `Wᵀ` (`n_in × n_out`, row-major) into `wt`.
    fn transpose_into(&self, p: &[f64], wt: &mut [f64]) {
        let w = self.weights(p);
        for (i, row) in wt.chunks_exact_mut(self.n_out).take(self.n_in).enumerate() {
            for (o, v) in row.iter_mut().enumerate() {
                *v = w[o * self.n_in + i];
            }
        }
    }
    /// `Y = X Wᵀ (+ b)` for the `rows` rows of `X`, with `wt` holding `Wᵀ`.
    fn apply(&self, p: &[f64], wt: &[f64], with_bias: bool, x: &[f64], y: &mut [f64]) {
        let rows = x.len() / self.n_in;
        let y = &mut y[..rows * self.n_out];
        if with_bias {
            let b = self.bias(p);
            y.chunks_exact_mut(self.n_out)
                .for_each(|yr| yr.copy_from_slice(b));
        }
        let dims = (rows, self.n_out, self.n_in);
        gemm(dims, x, (self.n_in, 1), wt, y, with_bias);
    }
}

/// A `tanh` multilayer perceptron right-hand side, applied to a batch of independent states:
///
/// ```text
/// a_0 = u_r,   a_ℓ = tanh(W_ℓ a_{ℓ−1} + b_ℓ)  (ℓ = 1 … L−1),   f_r = W_L a_{L−1} + b_L
/// ```
///
/// for every batch row `r`. The network is autonomous (`t` is ignored), the output layer is
/// linear, and `widths = [dim, h_1, …, h_{L−1}, dim]`.
///
/// * **State**: `batch × dim`, row-major (each row an independent sample; parameters shared).
/// * **Parameters**: for each layer ℓ in order, `W_ℓ` (`out × in`, row-major) then `b_ℓ`.
/// * **Derivatives**: the JVP pushes a tangent through the layers
///   (`ȧ_ℓ = (1 − a_ℓ²) ⊙ W_ℓ ȧ_{ℓ−1}`); the VJP recomputes the forward pass at the given `u`
///   and backpropagates (`δ_{ℓ−1} = (1 − a_{ℓ−1}²) ⊙ W_ℓᵀ δ_ℓ`, `∂W_ℓ = Σ_r δ_ℓ a_{ℓ−1}ᵀ`,
///   `∂b_ℓ = Σ_r δ_ℓ`), summing the parameter gradient over the batch.
///
/// `rhs`, `jvp` and `vjp` never allocate: hidden activations, a transposed-weight buffer and two
/// ping-pong buffers live in the struct, sized by [`Mlp::new`]. All products are one
/// register-blocked kernel (`C = A B` with `B` read row by row, so the inner loop is contiguous
/// and vectorizes): the forward pass reads `Wᵀ` (transposed once per layer and call, `O(in·out)`
/// against the product's `O(batch·in·out)`), the backward pass reads `W` and the activations in
/// place. `tanh` is an inlined, vectorizable version accurate to a few ulps; the derivative uses
/// `1 − a²` of the computed `a`, as PyTorch does.
///
/// # References
///
/// R. T. Q. Chen, Y. Rubanova, J. Bettencourt and D. Duvenaud, "Neural ordinary differential
/// equations", NeurIPS 2018.
#[derive(Debug, Clone)]
pub struct Mlp {
    widths: Vec<usize>,
    batch: usize,
    layers: Vec<Layer>,
    param_len: usize,
    /// Hidden activations `a_1 … a_{L−1}`, each `batch × width`.
    acts: Vec<Vec<f64>>,
    /// `Wᵀ` of the current layer (`max in·out`).
    wt: Vec<f64>,
    /// Ping-pong scratch (tangents in `jvp`, cotangents in `vjp`), each `batch × max width`.
    buf_a: Vec<f64>,
    buf_b: Vec<f64>,
}

impl Mlp {
    /// An MLP with layer widths `widths` (`widths[0] == widths[last] == dim`) on `batch`
    /// samples.
    ///
    /// Returns [`Error::InvalidConfig`] with fewer than two widths, a zero width or batch, or
    /// `widths[0] != widths[last]`.
    pub fn new(widths: &[usize], batch: usize) -> Result<Self> {
        let bad = |why: &str| {
            Err(Error::InvalidConfig(format!(
                "MLP widths {widths:?}, batch {batch}: {why}"
            )))
        };
        if widths.len() < 2 {
            return bad("needs at least two widths (input and output)");
        }
        if widths.contains(&0) || batch == 0 {
            return bad("widths and batch must be positive");
        }
        if widths[0] != widths[widths.len() - 1] {
            return bad("the first and last widths (the state dimension) must be equal");
        }
        let mut layers = Vec::with_capacity(widths.len() - 1);
        let (mut off, mut max_wt) = (0, 0);
        for pair in widths.windows(2) {
            let (n_in, n_out) = (pair[0], pair[1]);
            layers.push(Layer {
                n_in,
                n_out,
                w_off: off,
            });
            off += n_out * n_in + n_out;
            max_wt = max_wt.max(n_out * n_in);
        }
        let hidden = &widths[1..widths.len() - 1];
        let max_w = widths.iter().copied().max().unwrap_or(0);
        Ok(Self {
            widths: widths.to_vec(),
            batch,
            layers,
            param_len: off,
            acts: hidden.iter().map(|&w| vec![0.0; batch * w]).collect(),
            wt: vec![0.0; max_wt],
            buf_a: vec![0.0; batch * max_w],
            buf_b: vec![0.0; batch * max_w],
        })
    }

    /// The state dimension of one sample (`widths[0]`).
    pub fn dim(&self) -> usize {
        self.widths[0]
    }

    /// The number of samples in the batch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The layer widths, input to output.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// Number of parameters: `Σ_ℓ (out_ℓ · in_ℓ + out_ℓ)`.
    pub fn param_len(&self) -> usize {
        self.param_len
    }

    /// Deterministic Glorot (Xavier) uniform initialization from `seed`.
    ///
    /// Each weight of layer ℓ is drawn from `U(−r, r)` with `r = sqrt(6 / (in_ℓ + out_ℓ))`
    /// (variance `2 / (in + out)`), layer by layer in parameter order, from a `ChaCha8Rng`
    /// seeded with `seed`; biases are zero. The same seed gives the same vector on every
    /// platform.
    ///
    /// # References
    ///
    /// X. Glorot and Y. Bengio, "Understanding the difficulty of training deep feedforward
    /// neural networks", AISTATS 2010.
    pub fn init_params(&self, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut p = vec![0.0; self.param_len];
        for ly in &self.layers {
            let r = (6.0 / (ly.n_in + ly.n_out) as f64).sqrt();
            for w in &mut p[ly.w_off..ly.w_off + ly.n_out * ly.n_in] {
                *w = rng.random_range(-r..r);
            }
        }
        p
    }

    /// Layer `k`'s forward step on a hidden layer: `a_k = tanh(W_k a_{k−1} + b_k)` into
    /// `acts[k]`, assuming `wt` holds `W_kᵀ`.
    fn hidden_forward(&mut self, k: usize, u: &[f64], p: &[f64]) {
        let (done, rest) = self.acts.split_at_mut(k);
        let x: &[f64] = if k == 0 { u } else { &done[k - 1] };
        let y = &mut rest[0];
        self.layers[k].apply(p, &self.wt, true, x, y);
        y.iter_mut().for_each(|v| *v = tanh_fast(*v));
    }
}

impl Rhs for Mlp {
    fn state_len(&self) -> usize {
        self.batch * self.widths[0]
    }
    fn param_len(&self) -> usize {
        self.param_len
    }
    fn rhs(&mut self, _t: f64, u: &[f64], p: &[f64], f: &mut [f64]) {
        let l = self.layers.len();
        for k in 0..l - 1 {
            self.layers[k].transpose_into(p, &mut self.wt);
            self.hidden_forward(k, u, p);
        }
        let ly = self.layers[l - 1];
        ly.transpose_into(p, &mut self.wt);
        let x: &[f64] = if l == 1 { u } else { &self.acts[l - 2] };
        ly.apply(p, &self.wt, true, x, f);
    }
}

impl RhsJvp for Mlp {
    fn jvp(&mut self, _t: f64, u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
        let l = self.layers.len();
        let batch = self.batch;
        // Invariant: before layer k > 0, `buf_a` holds the tangent of a_k.
        for k in 0..l {
            let ly = self.layers[k];
            ly.transpose_into(p, &mut self.wt);
            let x: &[f64] = if k == 0 {
                v
            } else {
                &self.buf_a[..batch * ly.n_in]
            };
            if k + 1 == l {
                ly.apply(p, &self.wt, false, x, out);
            } else {
                ly.apply(p, &self.wt, false, x, &mut self.buf_b);
                self.hidden_forward(k, u, p);
                let y = &mut self.buf_b[..batch * ly.n_out];
                for (yi, ai) in y.iter_mut().zip(&self.acts[k]) {
                    *yi *= 1.0 - ai * ai;
                }
                std::mem::swap(&mut self.buf_a, &mut self.buf_b);
            }
        }
    }
}

impl RhsVjp for Mlp {
    fn vjp(&mut self, _t: f64, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]) {
        let l = self.layers.len();
        for k in 0..l - 1 {
            self.layers[k].transpose_into(p, &mut self.wt);
            self.hidden_forward(k, u, p);
        }
        let batch = self.batch;
        // Invariant: before layer k < L−1, `buf_a` holds δ_k = ∂⟨f, w⟩/∂z_k (batch × n_out).
        for k in (0..l).rev() {
            let ly = self.layers[k];
            let (n_in, n_out) = (ly.n_in, ly.n_out);
            let delta: &[f64] = if k + 1 == l {
                w
            } else {
                &self.buf_a[..batch * n_out]
            };
            let x: &[f64] = if k == 0 { u } else { &self.acts[k - 1] };
            let (gw, gb) = gp[ly.w_off..ly.w_off + n_out * n_in + n_out].split_at_mut(n_out * n_in);
            // ∂W = Δᵀ X (Δᵀ read in place), ∂b = Σ_r Δ_r.
            gemm((n_out, n_in, batch), delta, (1, n_out), x, gw, false);
            gb.fill(0.0);
            for dr in delta.chunks_exact(n_out) {
                gb.iter_mut().zip(dr).for_each(|(g, d)| *g += d);
            }
            // Cotangent of the layer input: Δ W.
            let prev: &mut [f64] = if k == 0 {
                gu
            } else {
                &mut self.buf_b[..batch * n_in]
            };
            gemm(
                (batch, n_in, n_out),
                delta,
                (n_out, 1),
                ly.weights(p),
                prev,
                false,
            );
            if k > 0 {
                for (pi, ai) in prev.iter_mut().zip(&self.acts[k - 1]) {
                    *pi *= 1.0 - ai * ai;
                }
                std::mem::swap(&mut self.buf_a, &mut self.buf_b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problems::tests::{assert_derivatives, random_vec, rel_err};

    #[test]
    fn tanh_fast_matches_std() {
        let mut worst: f64 = 0.0;
        for i in -400_000..=400_000 {
            for x in [
                i as f64 * 5e-5,
                i as f64 * 1e-11,
                (i as f64 * 1e-3).exp() * 1e-300,
            ] {
                let (want, got) = (x.tanh(), tanh_fast(x));
                worst = worst.max((got - want).abs() / want.abs().max(f64::MIN_POSITIVE));
            }
        }
        assert!(worst <= 4.0 * f64::EPSILON, "max relative error {worst:e}");
        assert_eq!(tanh_fast(50.0), 1.0);
        assert_eq!(tanh_fast(-1e300), -1.0);
        assert_eq!(tanh_fast(f64::NEG_INFINITY), -1.0);
        assert!(tanh_fast(f64::NAN).is_nan());
        assert!(tanh_fast(-0.0).is_sign_negative() && tanh_fast(-0.0) == 0.0);
    }

    #[test]
    fn gemm_matches_naive_for_all_blockings() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for (m, n, k) in [(9, 19, 5), (4, 8, 1), (1, 1, 3), (13, 2, 64)] {
            let (a, b) = (
                random_vec(&mut rng, m * k, 1.0),
                random_vec(&mut rng, k * n, 1.0),
            );
            let c0 = random_vec(&mut rng, m * n, 1.0);
            // A read as stored (row-major) and as the transpose of a k × m matrix.
            let at: Vec<f64> = (0..k * m).map(|x| a[(x % m) * k + x / m]).collect();
            for (acc, a_src, st) in [(false, &a, (k, 1)), (true, &at, (1, m))] {
                let mut c = c0.clone();
                gemm((m, n, k), a_src, st, &b, &mut c, acc);
                for (idx, &got) in c.iter().enumerate() {
                    let (r, j) = (idx / n, idx % n);
                    let mut want = if acc { c0[idx] } else { 0.0 };
                    for i in 0..k {
                        want += a[r * k + i] * b[i * n + j];
                    }
                    assert_eq!(got, want, "({m}, {n}, {k}) entry ({r}, {j})");
                }
            }
        }
    }

    /// Straightforward allocating reference forward pass (with `f64::tanh`).
    fn mlp_reference(widths: &[usize], batch: usize, u: &[f64], p: &[f64]) -> Vec<f64> {
        let mut out = Vec::new();
        for r in 0..batch {
            let mut a = u[r * widths[0]..(r + 1) * widths[0]].to_vec();
            let mut off = 0;
            for (l, pair) in widths.windows(2).enumerate() {
                let (ni, no) = (pair[0], pair[1]);
                let mut z = p[off + no * ni..off + no * ni + no].to_vec();
                for o in 0..no {
                    for i in 0..ni {
                        z[o] += p[off + o * ni + i] * a[i];
                    }
                }
                off += no * ni + no;
                a = z;
                if l + 2 < widths.len() {
                    a.iter_mut().for_each(|x| *x = x.tanh());
                }
            }
            out.extend(a);
        }
        out
    }

    #[test]
    fn mlp_matches_reference_and_derivatives() {
        let cases: [(&[usize], usize); 5] = [
            (&[2, 64, 64, 2], 5),
            (&[3, 5, 4, 3], 4),
            (&[2, 9, 2], 1),
            (&[4, 4], 2),
            (&[3, 17, 10, 11, 3], 9),
        ];
        for (widths, batch) in cases {
            let mut m = Mlp::new(widths, batch).unwrap();
            let mut p = m.init_params(11);
            // Nonzero biases so that the bias derivative is exercised at a generic point.
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            p.iter_mut().for_each(|x| *x += rng.random_range(-0.1..0.1));
            let u = random_vec(&mut rng, m.state_len(), 1.5);
            let mut f = vec![0.0; m.state_len()];
            m.rhs(0.0, &u, &p, &mut f);
            let want = mlp_reference(widths, batch, &u, &p);
            let err = rel_err(&want, &f);
            assert!(err <= 1e-14, "{widths:?}: {err:e}");
            assert_derivatives(&mut m, &u, &p);
        }
    }

    #[test]
    fn mlp_vjp_does_not_depend_on_previous_calls() {
        let mut m = Mlp::new(&[2, 6, 6, 2], 2).unwrap();
        let p = m.init_params(1);
        let (u1, u2) = ([0.3, -0.2, 1.0, 0.5], [-1.0, 0.4, 0.2, 0.9]);
        let w = [1.0, -2.0, 0.5, 0.3];
        let (mut gu, mut gp) = (vec![0.0; 4], vec![0.0; m.param_len()]);
        m.vjp(0.0, &u1, &p, &w, &mut gu, &mut gp);
        let mut jv = vec![0.0; 4];
        m.jvp(0.0, &u1, &p, &w, &mut jv);
        m.vjp(0.0, &u2, &p, &w, &mut gu, &mut gp);
        let mut fresh = Mlp::new(&[2, 6, 6, 2], 2).unwrap();
        let (mut gu2, mut gp2) = (vec![0.0; 4], vec![0.0; m.param_len()]);
        fresh.vjp(0.0, &u2, &p, &w, &mut gu2, &mut gp2);
        assert_eq!((gu, gp), (gu2, gp2));
    }

    #[test]
    fn mlp_batch_rows_are_independent_and_gradients_sum() {
        let widths = [2, 12, 2];
        let mut m5 = Mlp::new(&widths, 5).unwrap();
        let mut m1 = Mlp::new(&widths, 1).unwrap();
        let p = m5.init_params(3);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (u, w) = (random_vec(&mut rng, 10, 1.0), random_vec(&mut rng, 10, 1.0));
        let (mut f, mut gu, mut gp) = (vec![0.0; 10], vec![0.0; 10], vec![0.0; p.len()]);
        m5.rhs(0.0, &u, &p, &mut f);
        m5.vjp(0.0, &u, &p, &w, &mut gu, &mut gp);
        let mut sum = vec![0.0; p.len()];
        for r in 0..5 {
            let rows = 2 * r..2 * r + 2;
            let (mut f1, mut gu1, mut gp1) = (vec![0.0; 2], vec![0.0; 2], vec![0.0; p.len()]);
            m1.rhs(0.0, &u[rows.clone()], &p, &mut f1);
            m1.vjp(
                0.0,
                &u[rows.clone()],
                &p,
                &w[rows.clone()],
                &mut gu1,
                &mut gp1,
            );
            // Same summation order whatever the batch: bitwise equal rows.
            assert_eq!((&f1[..], &gu1[..]), (&f[rows.clone()], &gu[rows]));
            sum.iter_mut().zip(&gp1).for_each(|(s, g)| *s += g);
        }
        assert!(rel_err(&sum, &gp) <= 1e-15, "{:e}", rel_err(&sum, &gp));
    }

    #[test]
    fn mlp_shapes_and_init() {
        let m = Mlp::new(&[2, 64, 64, 2], 64).unwrap();
        assert_eq!(m.param_len(), 2 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2);
        assert_eq!((m.state_len(), m.dim(), m.batch()), (128, 2, 64));
        assert_eq!(m.widths(), &[2, 64, 64, 2]);
        let p = m.init_params(42);
        assert_eq!(p, m.init_params(42));
        assert_ne!(p, m.init_params(43));
        // Layer 2 (64 → 64): weights within ±sqrt(6/128), bias zero, variance ≈ 2/128.
        let (w, b) = (&p[192..192 + 4096], &p[192 + 4096..192 + 4096 + 64]);
        let r = (6.0f64 / 128.0).sqrt();
        assert!(w.iter().all(|x| x.abs() < r));
        assert!(b.iter().all(|&x| x == 0.0));
        let var = w.iter().map(|x| x * x).sum::<f64>() / 4096.0;
        assert!(
            (var - 2.0 / 128.0).abs() < 0.1 * 2.0 / 128.0,
            "variance {var}"
        );
    }

    #[test]
    fn mlp_config_errors() {
        let cases: [(&[usize], usize); 6] = [
            (&[2], 1),
            (&[], 1),
            (&[2, 0, 2], 1),
            (&[0, 0], 1),
            (&[2, 8, 3], 1),
            (&[2, 8, 2], 0),
        ];
        for (widths, batch) in cases {
            let r = Mlp::new(widths, batch);
            assert!(
                matches!(r, Err(Error::InvalidConfig(_))),
                "{widths:?}, {batch}"
            );
        }
    }
}
