//! The transcendental functions generated code calls, registered as JIT symbols.
//!
//! Each is the very formula the reference interpreter (`pnode_ir::Interpreter`) evaluates, so
//! JIT code and interpreter agree to the last bit on these functions: `tanh` is
//! [`pnode_ir::special::tanh`] (fdlibm's algorithm, the same bits on every platform; loops call
//! its vectorized map in [`crate::kernels`]), `exp`, `ln`, `sin`, `cos`, `powf` are the standard
//! library's (the same libm calls; `xⁿ` is inlined with
//! `powi`'s own multiplications, see `lower`), `Φ` is
//! [`pnode_ir::special::norm_cdf`] (Cody's rational approximations), and the logistic and
//! softplus functions repeat the interpreter's overflow-free forms.

/// `(symbol name, address)` of every function generated code may call with one `f64`
/// argument.
pub(crate) fn unary_symbols() -> [(&'static str, extern "C" fn(f64) -> f64); 9] {
    [
        ("pnode_tanh", tanh),
        ("pnode_sigmoid", sigmoid),
        ("pnode_softplus", softplus),
        ("pnode_gelu", gelu),
        ("pnode_exp", exp),
        ("pnode_ln", ln),
        ("pnode_sin", sin),
        ("pnode_cos", cos),
        ("pnode_norm_cdf", norm_cdf),
    ]
}

/// The symbol of `xʸ` (`(f64, f64) -> f64`).
pub(crate) const POWF: &str = "pnode_powf";

extern "C" fn tanh(x: f64) -> f64 {
    pnode_ir::special::tanh(x)
}

/// The logistic function without overflow: `1/(1+e^{−x})` for `x ≥ 0`, `eˣ/(1+eˣ)` otherwise
/// (as the interpreter; Mächler, "Accurately computing log(1 − exp(−|a|))", 2012, §3).
extern "C" fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + eˣ) = max(x, 0) + ln(1 + e^{−|x|})` (as the interpreter; Mächler 2012, log1pexp).
extern "C" fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `x Φ(x)`, the exact GELU (Hendrycks and Gimpel, arXiv:1606.08415).
extern "C" fn gelu(x: f64) -> f64 {
    x * pnode_ir::special::norm_cdf(x)
}

extern "C" fn exp(x: f64) -> f64 {
    x.exp()
}

extern "C" fn ln(x: f64) -> f64 {
    x.ln()
}

extern "C" fn sin(x: f64) -> f64 {
    x.sin()
}

extern "C" fn cos(x: f64) -> f64 {
    x.cos()
}

extern "C" fn norm_cdf(x: f64) -> f64 {
    pnode_ir::special::norm_cdf(x)
}

pub(crate) extern "C" fn powf(x: f64, y: f64) -> f64 {
    x.powf(y)
}
