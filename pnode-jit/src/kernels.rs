//! Native kernels, compiled by rustc, that generated code calls for the operations whose loop
//! nests Cranelift cannot make fast: the matrix product and `tanh` over a buffer.
//!
//! Cranelift's x86-64 backend emits 128-bit vectors and does no register tiling of its own, so a
//! looped product reaches about a quarter of what the machine can do. [`matmul_symbol`] instead
//! hands generated code a register-tiled kernel that LLVM vectorizes, with AVX-512 or AVX2 when
//! the host has them (run-time detection, once per module). [`tanh_symbol`] maps
//! [`pnode_ir::special::tanh_lane`] (the branch-free form of the interpreter's
//! [`pnode_ir::special::tanh`], bitwise equal to it) over a buffer, four lanes at a time.
//!
//! The matrix product keeps the interpreter's arithmetic exactly: every element is
//! `c_ij = (…((0 + a_i1 b_1j) + a_i2 b_2j) + …) + a_ik b_kj`, a multiplication then an addition
//! per term (Rust never contracts them into a fused multiply-add), the terms in ascending `l`.
//! Tiling changes only which elements are computed together, never the operations on one, so
//! the result is bitwise that of `pnode_ir::Interpreter`'s row-oriented loop.
#![allow(unsafe_code)]

/// The native type of the matrix-product symbol: `(a, b, c, m, k, n)`.
pub(crate) type MatMulFn = unsafe extern "C" fn(*const f64, *const f64, *mut f64, i64, i64, i64);

/// The symbol name of the matrix product.
pub(crate) const MATMUL: &str = "pnode_matmul";

/// Rows of one register tile.
const MR: usize = 4;
/// Columns of one register tile (two 256-bit vectors per row).
const NR: usize = 8;

/// One `R × C` tile of `C = A B` at `(r0, j0)`: accumulators in registers across the whole
/// `k` loop, `acc[r][j] = acc[r][j] + a[r0+r, l]·b[l, j0+j]` for `l = 0, 1, …` from `0`.
#[inline(always)]
fn tile<const R: usize, const C: usize>(
    a: &[f64],
    b: &[f64],
    c: &mut [f64],
    (k, n): (usize, usize),
    (r0, j0): (usize, usize),
) {
    let mut acc = [[0.0f64; C]; R];
    for l in 0..k {
        let bl: &[f64; C] = b[l * n + j0..][..C].try_into().expect("C columns");
        for (r, row) in acc.iter_mut().enumerate() {
            let x = a[(r0 + r) * k + l];
            for (cq, bq) in row.iter_mut().zip(bl) {
                *cq += x * bq;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        c[(r0 + r) * n + j0..][..C].copy_from_slice(row);
    }
}

/// Rows `r0 .. r0 + R` of `C`: tiles of `NR` columns, then 4, 2 and 1.
#[inline(always)]
fn rows<const R: usize>(a: &[f64], b: &[f64], c: &mut [f64], (k, n): (usize, usize), r0: usize) {
    let mut j = 0;
    while j + NR <= n {
        tile::<R, NR>(a, b, c, (k, n), (r0, j));
        j += NR;
    }
    if j + 4 <= n {
        tile::<R, 4>(a, b, c, (k, n), (r0, j));
        j += 4;
    }
    if j + 2 <= n {
        tile::<R, 2>(a, b, c, (k, n), (r0, j));
        j += 2;
    }
    if j < n {
        tile::<R, 1>(a, b, c, (k, n), (r0, j));
    }
}

/// `C = A B` for row-major `A` (`m × k`), `B` (`k × n`), `C` (`m × n`): `MR`-row blocks, then
/// single rows. See the module documentation for the arithmetic.
#[inline(always)]
fn gemm(a: &[f64], b: &[f64], c: &mut [f64], (m, k, n): (usize, usize, usize)) {
    let mut r = 0;
    while r + MR <= m {
        rows::<MR>(a, b, c, (k, n), r);
        r += MR;
    }
    while r < m {
        rows::<1>(a, b, c, (k, n), r);
        r += 1;
    }
}

/// The operands of one product: `A`, `B`, `C` and `(m, k, n)`.
type Operands<'x> = (&'x [f64], &'x [f64], &'x mut [f64], (usize, usize, usize));

/// The slices of one call; `None` for a negative or overflowing size.
///
/// # Safety
/// `a`, `b`, `c` must point to `m·k`, `k·n`, `m·n` valid `f64`s, `c` not overlapping the others.
unsafe fn views<'x>(
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    (m, k, n): (i64, i64, i64),
) -> Option<Operands<'x>> {
    let (m, k, n) = (
        usize::try_from(m).ok()?,
        usize::try_from(k).ok()?,
        usize::try_from(n).ok()?,
    );
    let (la, lb, lc) = (m.checked_mul(k)?, k.checked_mul(n)?, m.checked_mul(n)?);
    // SAFETY: the caller guarantees the lengths and that `c` is exclusive.
    unsafe {
        Some((
            std::slice::from_raw_parts(a, la),
            std::slice::from_raw_parts(b, lb),
            std::slice::from_raw_parts_mut(c, lc),
            (m, k, n),
        ))
    }
}

/// [`gemm`] compiled for the baseline target.
///
/// # Safety
/// See [`views`].
unsafe extern "C" fn matmul_generic(
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    m: i64,
    k: i64,
    n: i64,
) {
    // SAFETY: forwarded from the caller.
    if let Some((a, b, c, d)) = unsafe { views(a, b, c, (m, k, n)) } {
        gemm(a, b, c, d);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn gemm_avx2(a: &[f64], b: &[f64], c: &mut [f64], d: (usize, usize, usize)) {
    gemm(a, b, c, d);
}

/// [`gemm`] compiled with AVX2 (256-bit vectors; still no fused multiply-add).
///
/// # Safety
/// See [`views`]; the host must support AVX2.
#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn matmul_avx2(
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    m: i64,
    k: i64,
    n: i64,
) {
    // SAFETY: forwarded from the caller, who checked for AVX2.
    unsafe {
        if let Some((a, b, c, d)) = views(a, b, c, (m, k, n)) {
            gemm_avx2(a, b, c, d);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
fn gemm_avx512(a: &[f64], b: &[f64], c: &mut [f64], d: (usize, usize, usize)) {
    gemm(a, b, c, d);
}

/// [`gemm`] compiled with AVX-512 (the 8-column rows of a tile are one 512-bit register).
///
/// # Safety
/// See [`views`]; the host must support AVX-512 F, DQ and VL.
#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn matmul_avx512(
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    m: i64,
    k: i64,
    n: i64,
) {
    // SAFETY: forwarded from the caller, who checked for AVX-512.
    unsafe {
        if let Some((a, b, c, d)) = views(a, b, c, (m, k, n)) {
            gemm_avx512(a, b, c, d);
        }
    }
}

/// Whether the host has the AVX-512 subsets the kernels are built with.
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
}

/// The matrix-product kernel for this host: AVX-512 or AVX2 if the CPU has it, else the
/// baseline build.
/// Generated code calls it with `a`, `b`, `c` pointing at `m·k`, `k·n`, `m·n` elements of its
/// own buffers (`c` a fresh scratch region).
pub(crate) fn matmul_symbol() -> MatMulFn {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        return matmul_avx512;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return matmul_avx2;
    }
    matmul_generic
}

/// The native type of the `tanh` map: `(x, y, n)`, `y_i = tanh x_i`.
pub(crate) type MapFn = unsafe extern "C" fn(*const f64, *mut f64, i64);

/// The symbol name of the `tanh` map.
pub(crate) const TANH_MAP: &str = "pnode_tanh_map";

#[inline(always)]
fn tanh_map(x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi = pnode_ir::special::tanh_lane(*xi);
    }
}

/// The slices of one map call; `None` for a negative length.
///
/// # Safety
/// `x` and `y` must point to `n` valid `f64`s, `y` not overlapping `x`.
unsafe fn map_views<'x>(x: *const f64, y: *mut f64, n: i64) -> Option<(&'x [f64], &'x mut [f64])> {
    let n = usize::try_from(n).ok()?;
    // SAFETY: the caller guarantees the lengths and that `y` is exclusive.
    unsafe {
        Some((
            std::slice::from_raw_parts(x, n),
            std::slice::from_raw_parts_mut(y, n),
        ))
    }
}

/// [`tanh_map`] compiled for the baseline target.
///
/// # Safety
/// See [`map_views`].
unsafe extern "C" fn tanh_map_generic(x: *const f64, y: *mut f64, n: i64) {
    // SAFETY: forwarded from the caller.
    if let Some((x, y)) = unsafe { map_views(x, y, n) } {
        tanh_map(x, y);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tanh_map_avx2_body(x: &[f64], y: &mut [f64]) {
    tanh_map(x, y);
}

/// [`tanh_map`] compiled with AVX2.
///
/// # Safety
/// See [`map_views`]; the host must support AVX2.
#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn tanh_map_avx2(x: *const f64, y: *mut f64, n: i64) {
    // SAFETY: forwarded from the caller, who checked for AVX2.
    unsafe {
        if let Some((x, y)) = map_views(x, y, n) {
            tanh_map_avx2_body(x, y);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
fn tanh_map_avx512_body(x: &[f64], y: &mut [f64]) {
    tanh_map(x, y);
}

/// [`tanh_map`] compiled with AVX-512 (eight lanes, mask registers for the case selection:
/// about twice the AVX2 build's speed on AMD Zen 4).
///
/// # Safety
/// See [`map_views`]; the host must support AVX-512 F, DQ and VL.
#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn tanh_map_avx512(x: *const f64, y: *mut f64, n: i64) {
    // SAFETY: forwarded from the caller, who checked for AVX-512.
    unsafe {
        if let Some((x, y)) = map_views(x, y, n) {
            tanh_map_avx512_body(x, y);
        }
    }
}

/// The `tanh` map for this host (AVX-512 or AVX2 if the CPU has it). Generated code calls it with `x` and
/// `y` pointing at `n` elements of its buffers (`y` a fresh scratch region).
pub(crate) fn tanh_symbol() -> MapFn {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        return tanh_map_avx512;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return tanh_map_avx2;
    }
    tanh_map_generic
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_map_is_the_interpreters_tanh_bitwise() {
        // A grid over (−24, 24), random magnitudes from 2⁻⁶⁰ to 2⁸ and raw bit patterns.
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let x: Vec<f64> = (0..1003)
            .map(|i| (i as f64 - 501.0) * 0.0473)
            .chain((0..200_000).map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let u = (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                if i % 3 == 0 {
                    f64::from_bits(s)
                } else {
                    u * 2f64.powi((s % 68) as i32 - 60)
                }
            }))
            .chain([0.0, -0.0, 1e-300, 22.0, f64::INFINITY, -f64::INFINITY])
            .collect();
        let mut fs = vec![tanh_symbol(), tanh_map_generic as MapFn];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            fs.push(tanh_map_avx2);
        }
        for f in fs {
            let mut y = vec![f64::NAN; x.len()];
            // SAFETY: both buffers have x.len() elements.
            unsafe { f(x.as_ptr(), y.as_mut_ptr(), x.len() as i64) };
            for (xi, yi) in x.iter().zip(&y) {
                let want = pnode_ir::special::tanh(*xi);
                let same = yi.to_bits() == want.to_bits() || (yi.is_nan() && want.is_nan());
                assert!(same, "tanh({xi:e}) = {yi:e}, the interpreter's {want:e}");
            }
        }
    }

    /// The interpreter's loop: `C_i· += a_il B_l·` from zero.
    fn reference(a: &[f64], b: &[f64], (m, k, n): (usize, usize, usize)) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for l in 0..k {
                for j in 0..n {
                    c[i * n + j] += a[i * k + l] * b[l * n + j];
                }
            }
        }
        c
    }

    #[test]
    fn bitwise_the_row_oriented_loop_for_every_tile_remainder() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        for &(m, k, n) in &[
            (1, 1, 1),
            (5, 3, 15),
            (64, 64, 64),
            (64, 2, 64),
            (2, 64, 64),
            (64, 64, 2),
            (7, 0, 9),
            (9, 33, 23),
        ] {
            let a: Vec<f64> = (0..m * k).map(|_| next()).collect();
            let b: Vec<f64> = (0..k * n).map(|_| next() * 1e3).collect();
            let want = reference(&a, &b, (m, k, n));
            let mut fs = vec![matmul_symbol(), matmul_generic as MatMulFn];
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                fs.push(matmul_avx2);
            }
            for f in fs {
                let mut c = vec![f64::NAN; m * n];
                // SAFETY: the buffers have the lengths the sizes say.
                unsafe {
                    f(
                        a.as_ptr(),
                        b.as_ptr(),
                        c.as_mut_ptr(),
                        m as i64,
                        k as i64,
                        n as i64,
                    )
                };
                let same = c.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "({m}, {k}, {n}) differs from the interpreter's loop");
            }
        }
    }

    #[test]
    fn negative_sizes_write_nothing() {
        let mut c = [1.5];
        // SAFETY: a negative size is rejected before any access.
        unsafe { matmul_symbol()([0.0].as_ptr(), [0.0].as_ptr(), c.as_mut_ptr(), -1, 1, 1) };
        assert_eq!(c, [1.5]);
    }
}
