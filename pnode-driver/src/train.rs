//! Training: the optimizer of the `train { }` block on the loss's discrete-adjoint gradient.
//!
//! Iteration `i` evaluates `L(θ_i)` and `∇L(θ_i)` (over a minibatch of output times when
//! `batch_size` is set), takes one optimizer step `θ_{i+1} = update(θ_i, ∇L(θ_i))`, then
//! calls the callback (which, in [`Run::train_steps`], may stop training there). After the
//! last iteration the full loss at the final parameters is evaluated once more
//! ([`TrainResult::final_loss`]).
//!
//! Minibatches: `batch_size = B < K` draws `B` distinct output times per iteration (a partial
//! Fisher–Yates shuffle with a ChaCha20 generator seeded from the train seed, so runs are
//! reproducible); the loss of a batch is defined in [`crate::run`]. `B ≥ K` is the full batch.

use pnode_ir::lower::Optimizer as IrOptimizer;
use pnode_runtime::adaptive::EmbeddedStepper;
use pnode_runtime::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use pnode_runtime::stepper::AdjointStepper;
use pnode_runtime::{Rhs, RhsJvp, RhsVjp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::ops::ControlFlow;

use crate::error::{Error, Result};
use crate::run::Run;

/// What the callback sees after each iteration's gradient and optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// 0-based iteration.
    pub iteration: u64,
    /// Total iterations.
    pub iterations: u64,
    /// `L(θ_i)` (of the minibatch, if any).
    pub loss: f64,
    /// `‖∇_θ L(θ_i)‖₂`.
    pub grad_norm: f64,
    /// Whether this iteration is one to log (`iteration % log_every == 0`, and the last).
    pub log: bool,
}

/// The outcome of training.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainResult {
    /// The parameters after the last finished iteration (on failure: the last parameters
    /// whose loss and gradient were finite).
    pub params: Vec<f64>,
    /// `L(θ_i)` of every finished iteration.
    pub losses: Vec<f64>,
    /// `‖∇L(θ_i)‖₂` of every finished iteration.
    pub grad_norms: Vec<f64>,
    /// The full loss at `params` (`None` when training failed).
    pub final_loss: Option<f64>,
}

/// The runtime optimizer for a train block's.
pub fn optimizer(o: &IrOptimizer) -> Result<Box<dyn Optimizer>> {
    Ok(match *o {
        IrOptimizer::Adam {
            lr,
            beta1,
            beta2,
            eps,
        } => Box::new(Adam::new(AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay: 0.0,
        })?),
        IrOptimizer::Sgd { lr, momentum } => Box::new(Sgd::new(SgdConfig {
            lr,
            momentum,
            ..SgdConfig::default()
        })?),
    })
}

impl<E, A> Run<E, A> {
    /// Train from the setup's `θ0` with the train block's options; `callback` sees every
    /// iteration. On a failure (a Newton failure, a non-finite state, loss or gradient) the
    /// error is [`Error::Training`], naming the iteration and carrying the progress.
    pub fn train<M, F>(&mut self, model: &mut M, callback: F) -> Result<TrainResult>
    where
        M: Rhs + RhsJvp + RhsVjp,
        E: AdjointStepper<M>,
        A: EmbeddedStepper<M> + AdjointStepper<M>,
        F: FnMut(&Progress),
    {
        let theta0 = self.setup().theta0.clone();
        self.train_from(model, &theta0, callback)
    }

    /// [`Run::train`] from the parameters `theta0`.
    pub fn train_from<M, F>(
        &mut self,
        model: &mut M,
        theta0: &[f64],
        mut callback: F,
    ) -> Result<TrainResult>
    where
        M: Rhs + RhsJvp + RhsVjp,
        E: AdjointStepper<M>,
        A: EmbeddedStepper<M> + AdjointStepper<M>,
        F: FnMut(&Progress),
    {
        self.train_steps(model, theta0, |p, _| {
            callback(p);
            ControlFlow::Continue(())
        })
    }

    /// [`Run::train_from`] with a callback that sees every iteration after its optimizer step,
    /// with the parameters `θ_{i+1}` it produced, and may stop training: on
    /// [`ControlFlow::Break`] the result holds the iterations done, `params` = `θ_{i+1}` and
    /// no `final_loss` (an interrupted run's last good parameters; `losses.len()` iterations
    /// done).
    pub fn train_steps<M, F>(
        &mut self,
        model: &mut M,
        theta0: &[f64],
        mut callback: F,
    ) -> Result<TrainResult>
    where
        M: Rhs + RhsJvp + RhsVjp,
        E: AdjointStepper<M>,
        A: EmbeddedStepper<M> + AdjointStepper<M>,
        F: FnMut(&Progress, &[f64]) -> ControlFlow<()>,
    {
        let cfg = self.setup().train.clone();
        let mut opt = optimizer(&cfg.optimizer)?;
        let k_all = self.setup().n_outputs();
        let batch = cfg
            .batch_size
            .map(|b| usize::try_from(b).unwrap_or(usize::MAX))
            .filter(|&b| b < k_all);
        let mut rng = ChaCha20Rng::seed_from_u64(cfg.seed ^ 0x7472_6169_6e00);
        let mut order: Vec<usize> = (0..k_all).collect();
        let mut result = TrainResult {
            params: theta0.to_vec(),
            losses: Vec::new(),
            grad_norms: Vec::new(),
            final_loss: None,
        };
        let mut theta = theta0.to_vec();
        let fail = |iteration: u64, e: Error, r: &TrainResult| Error::Training {
            iteration,
            source: Box::new(e),
            partial: Box::new(r.clone()),
        };
        for it in 0..cfg.iterations {
            let picked = batch.map(|b| {
                for i in 0..b {
                    let j = rng.random_range(i..k_all);
                    order.swap(i, j);
                }
                let mut s = order[..b].to_vec();
                s.sort_unstable();
                s
            });
            let (loss, g) = match self.loss_and_grad_batch(model, &theta, picked.as_deref()) {
                Ok(x) => x,
                Err(e) => return Err(fail(it, e, &result)),
            };
            let grad_norm = g.dp.iter().map(|x| x * x).sum::<f64>().sqrt();
            if !grad_norm.is_finite() {
                let e = Error::NonFiniteLoss {
                    value: grad_norm,
                    term: "the gradient norm".into(),
                    t: f64::NAN,
                };
                return Err(fail(it, e, &result));
            }
            result.params.copy_from_slice(&theta);
            result.losses.push(loss);
            result.grad_norms.push(grad_norm);
            let log = cfg.log_every > 0 && (it % cfg.log_every == 0 || it + 1 == cfg.iterations);
            if let Err(e) = opt.step(&mut theta, &g.dp) {
                return Err(fail(it, e.into(), &result));
            }
            let progress = Progress {
                iteration: it,
                iterations: cfg.iterations,
                loss,
                grad_norm,
                log,
            };
            if callback(&progress, &theta).is_break() {
                result.params = theta;
                return Ok(result);
            }
        }
        match self.loss(model, &theta) {
            Ok(l) => {
                result.params = theta;
                result.final_loss = Some(l);
                Ok(result)
            }
            Err(e) => Err(fail(cfg.iterations, e, &result)),
        }
    }
}
