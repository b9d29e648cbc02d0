//! First-order optimizers over a flat `f64` parameter vector.
//!
//! An [`Optimizer`] updates `θ` in place from a gradient of the same length. State buffers
//! (moments, momentum) are allocated on the first [`Optimizer::step`] and reused afterwards, so
//! a training loop allocates nothing per step. The parameter length is fixed by the first step;
//! [`Optimizer::reset`] forgets the state (and the length).
//!
//! ```
//! use pnode_runtime::optim::{Adam, AdamConfig, Optimizer};
//! // Minimize (θ - 3)².
//! let mut opt = Adam::new(AdamConfig { lr: 0.1, ..AdamConfig::default() }).unwrap();
//! let mut theta = [0.0];
//! for _ in 0..500 {
//!     let grad = [2.0 * (theta[0] - 3.0)];
//!     opt.step(&mut theta, &grad).unwrap();
//! }
//! assert!((theta[0] - 3.0).abs() < 1e-3);
//! ```

use crate::error::{Error, Result, check_len};

/// A first-order optimizer: `θ ← update(θ, ∇L)`.
pub trait Optimizer {
    /// Update `params` in place from `grad`.
    ///
    /// Returns [`Error::LengthMismatch`] if `grad.len() != params.len()` or if the length
    /// differs from the one of the first step since construction or the last
    /// [`reset`](Optimizer::reset); returns [`Error::InvalidConfig`] if the learning rate set
    /// by [`set_learning_rate`](Optimizer::set_learning_rate) is not positive and finite. On
    /// error nothing is changed.
    fn step(&mut self, params: &mut [f64], grad: &[f64]) -> Result<()>;
    /// Forget all state (step count, moment or momentum buffers, the parameter length); keeps
    /// the configuration and the allocated capacity.
    fn reset(&mut self);
    /// The current learning rate.
    fn learning_rate(&self) -> f64;
    /// Change the learning rate (for schedules); the state is kept. The value is validated by
    /// the next [`step`](Optimizer::step).
    fn set_learning_rate(&mut self, lr: f64);
}

fn check_lr(lr: f64) -> Result<()> {
    if lr.is_finite() && lr > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "learning rate must be positive and finite, got {lr}"
        )))
    }
}

fn check_range(name: &str, value: f64, lo: f64, hi: f64, hi_open: bool) -> Result<()> {
    let ok = value.is_finite() && value >= lo && if hi_open { value < hi } else { value <= hi };
    if ok {
        Ok(())
    } else {
        let close = if hi_open { ')' } else { ']' };
        Err(Error::InvalidConfig(format!(
            "{name} must be in [{lo}, {hi}{close}, got {value}"
        )))
    }
}

/// Check the gradient length and the length fixed by the first step.
fn check_step_len(state_len: Option<usize>, params: &[f64], grad: &[f64]) -> Result<()> {
    check_len("gradient", params.len(), grad.len())?;
    if let Some(n) = state_len {
        check_len("parameters", n, params.len())?;
    }
    Ok(())
}

/// Configuration of [`Adam`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (step size) `α > 0`.
    pub lr: f64,
    /// Decay rate of the first-moment estimate, `0 ≤ β₁ < 1`.
    pub beta1: f64,
    /// Decay rate of the second-moment estimate, `0 ≤ β₂ < 1`.
    pub beta2: f64,
    /// Denominator guard `ε > 0`, added to `sqrt(v̂)`.
    pub eps: f64,
    /// L2 penalty coefficient `λ ≥ 0`, added to the gradient as `λ θ` (not decoupled: this is
    /// Adam with L2 regularization, as PyTorch's `Adam(weight_decay=…)`, not AdamW).
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    /// `lr = 1e-3, β₁ = 0.9, β₂ = 0.999, ε = 1e-8, weight_decay = 0` (Kingma & Ba's defaults).
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Adam with bias correction (Kingma & Ba 2015, Algorithm 1).
///
/// At step `t = 1, 2, …` with gradient `g`:
///
/// ```text
/// g ← g + λ θ                        (L2 weight decay; λ = 0 by default)
/// m ← β₁ m + (1 − β₁) g
/// v ← β₂ v + (1 − β₂) g²
/// m̂ = m / (1 − β₁ᵗ),   v̂ = v / (1 − β₂ᵗ)
/// θ ← θ − α m̂ / (sqrt(v̂) + ε)
/// ```
///
/// The weight decay enters the gradient and hence the moments (L2 regularization). It is **not**
/// AdamW's decoupled decay `θ ← θ − α λ θ` (Loshchilov & Hutter 2019). On the first step
/// `m̂ = g` and `v̂ = g²`, so every component moves by `α g / (|g| + ε) ≈ α sign(g)`.
///
/// # References
///
/// D. P. Kingma and J. Ba, "Adam: A method for stochastic optimization", ICLR 2015;
/// I. Loshchilov and F. Hutter, "Decoupled weight decay regularization", ICLR 2019.
#[derive(Debug, Clone)]
pub struct Adam {
    config: AdamConfig,
    t: u64,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Adam {
    /// Adam with `config`; [`Error::InvalidConfig`] unless `lr > 0`, `0 ≤ β₁, β₂ < 1`, `ε > 0`
    /// and `weight_decay ≥ 0`, all finite.
    pub fn new(config: AdamConfig) -> Result<Self> {
        check_lr(config.lr)?;
        check_range("beta1", config.beta1, 0.0, 1.0, true)?;
        check_range("beta2", config.beta2, 0.0, 1.0, true)?;
        if !(config.eps.is_finite() && config.eps > 0.0) {
            return Err(Error::InvalidConfig(format!(
                "eps must be positive and finite, got {}",
                config.eps
            )));
        }
        check_range("weight_decay", config.weight_decay, 0.0, f64::MAX, false)?;
        Ok(Self {
            config,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
        })
    }

    /// The configuration (with the current learning rate).
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// Number of steps taken since construction or the last reset.
    pub fn steps(&self) -> u64 {
        self.t
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &mut [f64], grad: &[f64]) -> Result<()> {
        let state_len = (self.t > 0).then_some(self.m.len());
        check_step_len(state_len, params, grad)?;
        check_lr(self.config.lr)?;
        if self.t == 0 {
            self.m.clear();
            self.m.resize(params.len(), 0.0);
            self.v.clear();
            self.v.resize(params.len(), 0.0);
        }
        self.t += 1;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.config;
        let t = i32::try_from(self.t).unwrap_or(i32::MAX);
        let (bc1, bc2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(grad)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            let g = g + weight_decay * *p;
            *m = beta1 * *m + (1.0 - beta1) * g;
            *v = beta2 * *v + (1.0 - beta2) * g * g;
            let (m_hat, v_hat) = (*m / bc1, *v / bc2);
            *p -= lr * m_hat / (v_hat.sqrt() + eps);
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.t = 0;
        self.m.clear();
        self.v.clear();
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }
}

/// Configuration of [`Sgd`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Learning rate `α > 0`.
    pub lr: f64,
    /// Momentum coefficient `0 ≤ μ < 1` (0: plain gradient descent).
    pub momentum: f64,
    /// Use Nesterov momentum (requires `momentum > 0`).
    pub nesterov: bool,
    /// L2 penalty coefficient `λ ≥ 0`, added to the gradient as `λ θ`.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    /// `lr = 1e-2`, no momentum, no Nesterov, no weight decay.
    fn default() -> Self {
        Self {
            lr: 1e-2,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

/// Gradient descent with optional (Nesterov) momentum, in PyTorch's formulation (no dampening):
///
/// ```text
/// g ← g + λ θ
/// b ← μ b + g              (b = g on the first step)
/// θ ← θ − α b              (classical momentum)
/// θ ← θ − α (g + μ b)      (nesterov = true)
/// ```
///
/// With `μ = 0` this is plain gradient descent `θ ← θ − α g`.
///
/// # References
///
/// I. Sutskever, J. Martens, G. Dahl and G. Hinton, "On the importance of initialization and
/// momentum in deep learning", ICML 2013; PyTorch, `torch.optim.SGD`.
#[derive(Debug, Clone)]
pub struct Sgd {
    config: SgdConfig,
    /// Parameter length fixed by the first step.
    len: Option<usize>,
    buf: Vec<f64>,
}

impl Sgd {
    /// SGD with `config`; [`Error::InvalidConfig`] unless `lr > 0`, `0 ≤ momentum < 1` and
    /// `weight_decay ≥ 0`, all finite, and `nesterov` implies `momentum > 0`.
    pub fn new(config: SgdConfig) -> Result<Self> {
        check_lr(config.lr)?;
        check_range("momentum", config.momentum, 0.0, 1.0, true)?;
        check_range("weight_decay", config.weight_decay, 0.0, f64::MAX, false)?;
        if config.nesterov && config.momentum == 0.0 {
            return Err(Error::InvalidConfig(
                "Nesterov momentum requires momentum > 0".into(),
            ));
        }
        Ok(Self {
            config,
            len: None,
            buf: Vec::new(),
        })
    }

    /// The configuration (with the current learning rate).
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [f64], grad: &[f64]) -> Result<()> {
        check_step_len(self.len, params, grad)?;
        check_lr(self.config.lr)?;
        let SgdConfig {
            lr,
            momentum: mu,
            nesterov,
            weight_decay,
        } = self.config;
        if mu == 0.0 {
            self.len = Some(params.len());
            for (p, &g) in params.iter_mut().zip(grad) {
                *p -= lr * (g + weight_decay * *p);
            }
            return Ok(());
        }
        if self.len.is_none() {
            // b = μ·0 + g on the first step, as PyTorch's `buf = g.clone()`.
            self.buf.clear();
            self.buf.resize(params.len(), 0.0);
            self.len = Some(params.len());
        }
        for ((p, &g), b) in params.iter_mut().zip(grad).zip(&mut self.buf) {
            let g = g + weight_decay * *p;
            *b = mu * *b + g;
            let d = if nesterov { g + mu * *b } else { *b };
            *p -= lr * d;
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.len = None;
        self.buf.clear();
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gradient of `½ (x² + 100 y²)` (condition number 100), minimum at the origin.
    fn quad_grad(p: &[f64]) -> [f64; 2] {
        [p[0], 100.0 * p[1]]
    }

    /// Steps until `‖θ‖∞ ≤ 1e-6` (staying there for 10 more steps), or `None` within `max`.
    fn minimize(opt: &mut dyn Optimizer, max: usize) -> Option<usize> {
        let mut p = [1.0, 1.0];
        let mut inside = 0;
        for k in 1..=max {
            let g = quad_grad(&p);
            opt.step(&mut p, &g).unwrap();
            if p[0].abs().max(p[1].abs()) <= 1e-6 {
                inside += 1;
                if inside == 10 {
                    return Some(k);
                }
            } else {
                inside = 0;
            }
        }
        None
    }

    #[test]
    fn adam_first_steps_by_hand() {
        let cfg = AdamConfig::default();
        let mut opt = Adam::new(cfg).unwrap();
        let mut p = [1.0, -2.0];
        opt.step(&mut p, &[0.5, -3.0]).unwrap();
        // m̂ = g, v̂ = g²: the step is lr·g/(|g| + eps) = lr·sign(g) up to eps.
        assert_eq!(p[0], 1.0 - 1e-3 * 0.5 / (0.5 + 1e-8));
        assert_eq!(p[1], -2.0 + 1e-3 * 3.0 / (3.0 + 1e-8));
        assert!((p[0] - (1.0 - 1e-3)).abs() < 1e-10 && (p[1] - (-2.0 + 1e-3)).abs() < 1e-10);
        // Second step with g = 0.25 for the first component, by hand.
        let p0 = p[0];
        opt.step(&mut p, &[0.25, 0.0]).unwrap();
        let m: f64 = 0.9 * (0.1 * 0.5) + 0.1 * 0.25;
        let v: f64 = 0.999 * (0.001 * 0.25) + 0.001 * 0.0625;
        let (m_hat, v_hat) = (m / (1.0 - 0.9f64.powi(2)), v / (1.0 - 0.999f64.powi(2)));
        let want = p0 - 1e-3 * m_hat / (v_hat.sqrt() + 1e-8);
        assert!((p[0] - want).abs() <= 1e-15, "{} vs {want}", p[0]);
        assert_eq!(opt.steps(), 2);
    }

    #[test]
    fn adam_weight_decay_is_l2_in_the_gradient() {
        let cfg = AdamConfig {
            lr: 0.1,
            weight_decay: 0.5,
            ..AdamConfig::default()
        };
        let mut opt = Adam::new(cfg).unwrap();
        let mut p = [2.0];
        // g + λθ = -0.5 + 1.0 = 0.5 > 0: the step goes down although g < 0.
        opt.step(&mut p, &[-0.5]).unwrap();
        assert!((p[0] - 1.9).abs() < 1e-8, "{}", p[0]);
    }

    #[test]
    fn adam_minimizes_ill_conditioned_quadratic() {
        let mut opt = Adam::new(AdamConfig {
            lr: 0.01,
            ..AdamConfig::default()
        })
        .unwrap();
        let k = minimize(&mut opt, 2_000);
        assert!(k.is_some(), "Adam did not reach 1e-6");
    }

    #[test]
    fn sgd_momentum_minimizes_ill_conditioned_quadratic() {
        // Heavy ball tuned for L = 100, m = 1: α = 4/(√L+√m)², μ = ((√κ−1)/(√κ+1))²;
        // Nesterov: α = 1/L, μ = (√κ−1)/(√κ+1).
        for (nesterov, lr, momentum) in
            [(false, 4.0 / 121.0, 81.0 / 121.0), (true, 0.01, 9.0 / 11.0)]
        {
            let cfg = SgdConfig {
                lr,
                momentum,
                nesterov,
                weight_decay: 0.0,
            };
            let k = minimize(&mut Sgd::new(cfg).unwrap(), 500);
            assert!(k.is_some(), "nesterov = {nesterov}: no convergence");
        }
        // Plain gradient descent with α = 1/L needs ≈ ln(1e6)·κ ≈ 1400 steps.
        let mut gd = Sgd::new(SgdConfig {
            lr: 0.01,
            ..SgdConfig::default()
        })
        .unwrap();
        assert!(minimize(&mut gd, 5_000).is_some());
    }

    #[test]
    fn sgd_momentum_by_hand() {
        let mut opt = Sgd::new(SgdConfig {
            lr: 0.1,
            momentum: 0.5,
            nesterov: false,
            weight_decay: 0.0,
        })
        .unwrap();
        let mut p = [1.0];
        opt.step(&mut p, &[2.0]).unwrap(); // b = 2, p = 1 − 0.2
        assert_eq!(p, [0.8]);
        opt.step(&mut p, &[-1.0]).unwrap(); // b = 0.5·2 − 1 = 0, p unchanged
        assert_eq!(p, [0.8]);
        opt.step(&mut p, &[4.0]).unwrap(); // b = 4, p = 0.8 − 0.4
        assert!((p[0] - 0.4).abs() < 1e-15);

        let mut nest = Sgd::new(SgdConfig {
            lr: 0.1,
            momentum: 0.5,
            nesterov: true,
            weight_decay: 0.0,
        })
        .unwrap();
        let mut q = [1.0];
        nest.step(&mut q, &[2.0]).unwrap(); // b = 2, d = 2 + 0.5·2 = 3
        assert!((q[0] - 0.7).abs() < 1e-15);
        nest.step(&mut q, &[1.0]).unwrap(); // b = 2, d = 1 + 0.5·2 = 2
        assert!((q[0] - 0.5).abs() < 1e-15);

        let mut wd = Sgd::new(SgdConfig {
            lr: 0.1,
            weight_decay: 0.5,
            ..SgdConfig::default()
        })
        .unwrap();
        let mut r = [2.0];
        wd.step(&mut r, &[1.0]).unwrap(); // g = 1 + 0.5·2 = 2
        assert!((r[0] - 1.8).abs() < 1e-15);
    }

    #[test]
    fn config_validation() {
        let bad_adam = [
            AdamConfig {
                lr: 0.0,
                ..AdamConfig::default()
            },
            AdamConfig {
                lr: f64::NAN,
                ..AdamConfig::default()
            },
            AdamConfig {
                lr: f64::INFINITY,
                ..AdamConfig::default()
            },
            AdamConfig {
                beta1: 1.0,
                ..AdamConfig::default()
            },
            AdamConfig {
                beta1: -0.1,
                ..AdamConfig::default()
            },
            AdamConfig {
                beta2: 1.0,
                ..AdamConfig::default()
            },
            AdamConfig {
                eps: 0.0,
                ..AdamConfig::default()
            },
            AdamConfig {
                weight_decay: -1.0,
                ..AdamConfig::default()
            },
        ];
        for cfg in bad_adam {
            assert!(
                matches!(Adam::new(cfg), Err(Error::InvalidConfig(_))),
                "{cfg:?}"
            );
        }
        assert!(
            Adam::new(AdamConfig {
                beta1: 0.0,
                ..AdamConfig::default()
            })
            .is_ok()
        );
        let bad_sgd = [
            SgdConfig {
                lr: -1.0,
                ..SgdConfig::default()
            },
            SgdConfig {
                momentum: 1.0,
                ..SgdConfig::default()
            },
            SgdConfig {
                momentum: -0.5,
                ..SgdConfig::default()
            },
            SgdConfig {
                nesterov: true,
                ..SgdConfig::default()
            },
            SgdConfig {
                weight_decay: f64::NAN,
                ..SgdConfig::default()
            },
        ];
        for cfg in bad_sgd {
            assert!(
                matches!(Sgd::new(cfg), Err(Error::InvalidConfig(_))),
                "{cfg:?}"
            );
        }
        // A bad learning rate set later is caught by the next step, which changes nothing.
        let mut opt = Sgd::new(SgdConfig::default()).unwrap();
        opt.set_learning_rate(0.0);
        let mut p = [1.0];
        assert!(matches!(
            opt.step(&mut p, &[1.0]),
            Err(Error::InvalidConfig(_))
        ));
        assert_eq!(p, [1.0]);
        opt.set_learning_rate(0.5);
        assert_eq!(opt.learning_rate(), 0.5);
        opt.step(&mut p, &[1.0]).unwrap();
        assert_eq!(p, [0.5]);
    }

    #[test]
    fn length_mismatch() {
        let mut opts: Vec<Box<dyn Optimizer>> = vec![
            Box::new(Adam::new(AdamConfig::default()).unwrap()),
            Box::new(Sgd::new(SgdConfig::default()).unwrap()),
            Box::new(
                Sgd::new(SgdConfig {
                    momentum: 0.9,
                    ..SgdConfig::default()
                })
                .unwrap(),
            ),
        ];
        for opt in &mut opts {
            let mut p = [1.0, 2.0];
            let e = opt.step(&mut p, &[1.0]).unwrap_err();
            let want = Error::LengthMismatch {
                what: "gradient",
                expected: 2,
                found: 1,
            };
            assert_eq!(e, want);
            assert_eq!(p, [1.0, 2.0]);
            opt.step(&mut p, &[1.0, 1.0]).unwrap();
            let mut q = [1.0, 2.0, 3.0];
            let e = opt.step(&mut q, &[1.0, 1.0, 1.0]).unwrap_err();
            let want = Error::LengthMismatch {
                what: "parameters",
                expected: 2,
                found: 3,
            };
            assert_eq!(e, want);
            assert_eq!(q, [1.0, 2.0, 3.0]);
            // After a reset the length is free again.
            opt.reset();
            opt.step(&mut q, &[1.0, 1.0, 1.0]).unwrap();
        }
    }

    #[test]
    fn reset_restarts_bias_correction() {
        let mut opt = Adam::new(AdamConfig::default()).unwrap();
        let mut p = [0.0];
        for _ in 0..5 {
            opt.step(&mut p, &[1.0]).unwrap();
        }
        opt.reset();
        assert_eq!(opt.steps(), 0);
        let mut q = [0.0];
        opt.step(&mut q, &[-2.0]).unwrap();
        assert_eq!(q[0], 1e-3 * 2.0 / (2.0 + 1e-8));
    }
}
