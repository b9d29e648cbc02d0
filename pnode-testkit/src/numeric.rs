//! Vector products, norms and error measures the numeric tests compare results with.

/// The inner product `Σ aᵢ bᵢ` (over the shorter length).
pub fn ip(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The Euclidean norm `‖a‖₂`.
pub fn norm(a: &[f64]) -> f64 {
    ip(a, a).sqrt()
}

/// The maximum norm `‖a‖∞ = max_i |a_i|` (0 for an empty vector).
pub fn max_abs(a: &[f64]) -> f64 {
    a.iter().map(|x| x.abs()).fold(0.0, f64::max)
}

/// `‖a − b‖₂` (over the shorter length).
pub fn abs_err(a: &[f64], b: &[f64]) -> f64 {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    norm(&d)
}

/// `‖a − b‖₂ / ‖b‖₂` (absolute when `b = 0`).
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let nb = norm(b);
    if nb == 0.0 { norm(&d) } else { norm(&d) / nb }
}

/// `max_i |a_i − b_i| / max_i |b_i|` (absolute when `b = 0`); panics if the lengths differ.
pub fn rel_max(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let s = max_abs(b);
    if s == 0.0 { d } else { d / s }
}

/// Whether two vectors are bitwise equal (same length, same bits in every element).
pub fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}
