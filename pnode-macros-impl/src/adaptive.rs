//! `Ode` for adaptive steps (`#[neural_ode(method = "dopri5", rtol = 1e-6, …)]`, or a `.pode`
//! file whose method carries `rtol`/`atol`): the runtime's `AdaptiveSolver` over the
//! generated model with the runtime's embedded pair (`EmbeddedErk`), the error control as
//! constants (`RTOL`, `ATOL`, `H0`, …, exactly the options `pnode-driver` resolves, so the
//! accepted grid is the driver's bit for bit), and no compile-time grid or schedule: the
//! steps and the checkpoints are decided as the run goes.
//!
//! What can be known before the run is the bound the checkpointing guarantees, for the number
//! `N` of accepted steps the run will take: `Ode::PREDICTED` (a `CheckpointBound`) and
//! `Ode::SCHEDULE_SUMMARY` (the text of `pnodec emit --schedule`, from
//! [`pnode_driver::summary::adaptive_schedule`]). For `online(slots = c)`: at most `c`
//! solution slots at every step, a final spacing `d ≤ max(1, 2(N−1)/c)`, at most `N(d−1)/2`
//! recomputed steps (`(N−1)(N−2)/2` for `c = 1`); the derivation is in
//! `pnode_checkpoint::online`.

use crate::generate::{Ode, float};
use crate::plan::{AdaptivePlan, Plan};
use pnode_runtime::adaptive::{AdaptiveCheckpointing, Tolerance};
use proc_macro2::{Literal, TokenStream};
use quote::quote;

fn option_float(x: Option<f64>) -> TokenStream {
    match x {
        Some(x) => {
            let x = float(x);
            quote!(::core::option::Option::Some(#x))
        }
        None => quote!(::core::option::Option::None),
    }
}

/// A tolerance as its values (one for a scalar) and the expression that rebuilds it from the
/// constant `name` (the same variant, so the options equal the driver's).
fn tolerance(t: &Tolerance, name: &syn::Ident, rt: &syn::Path) -> (TokenStream, TokenStream) {
    let ad = quote!(#rt::adaptive);
    match t {
        Tolerance::Scalar(x) => {
            let x = float(*x);
            (
                quote!(&[#x]),
                quote!(#ad::Tolerance::Scalar(Self::#name[0])),
            )
        }
        Tolerance::PerComponent(v) => {
            let v = v.iter().map(|&x| float(x));
            (
                quote!(&[#(#v),*]),
                quote!(#ad::Tolerance::PerComponent(Self::#name.to_vec())),
            )
        }
    }
}

/// `Ode` over `AdaptiveSolver<Stepper>`, with the bound type `CheckpointBound` before it.
pub(crate) fn ode(ode: Ode<'_>, plan: &Plan, a: &AdaptivePlan, rt: &syn::Path) -> TokenStream {
    let Ode {
        name,
        new_doc,
        new_args,
        make_model,
        make_stepper,
        consts_head,
        consts_tail,
        summary,
        common_methods,
    } = ode;
    let ad = quote!(#rt::adaptive);
    let o = &a.options;
    let t0 = float(a.t0);
    let id = |s: &str| syn::Ident::new(s, proc_macro2::Span::call_site());
    let (rtol, make_rtol) = tolerance(&o.rtol, &id("RTOL"), rt);
    let (atol, make_atol) = tolerance(&o.atol, &id("ATOL"), rt);
    let (h0, h_max, h_min) = (option_float(o.h0), option_float(o.h_max), float(o.h_min));
    let max_steps = Literal::usize_unsuffixed(o.max_steps);
    let retries = Literal::u32_unsuffixed(o.max_nonfinite_retries);
    let c = &o.controller;
    let (safety, min_factor, max_factor, k_i, k_p) = (
        float(c.safety),
        float(c.min_factor),
        float(c.max_factor),
        float(c.k_i),
        float(c.k_p),
    );
    let (mode, slots) = match a.checkpointing {
        AdaptiveCheckpointing::StoreAll => (quote!(#ad::AdaptiveCheckpointing::StoreAll), None),
        AdaptiveCheckpointing::SolutionOnly => {
            (quote!(#ad::AdaptiveCheckpointing::SolutionOnly), None)
        }
        AdaptiveCheckpointing::Online { slots } => {
            let s = Literal::usize_unsuffixed(slots);
            (
                quote!(#ad::AdaptiveCheckpointing::Online { slots: #s }),
                Some(slots),
            )
        }
        // Refused by the plan (it needs a checkpoint directory); online over all its slots.
        AdaptiveCheckpointing::TwoLevel {
            ram_slots,
            disk_slots,
        } => {
            let (r, d) = (
                Literal::usize_unsuffixed(ram_slots),
                Literal::usize_unsuffixed(disk_slots),
            );
            (
                quote!(#ad::AdaptiveCheckpointing::TwoLevel { ram_slots: #r, disk_slots: #d }),
                Some(ram_slots + disk_slots),
            )
        }
    };
    let bound_slots = match slots {
        Some(s) => {
            let s = Literal::usize_unsuffixed(s);
            quote!(::core::option::Option::Some(#s))
        }
        None => quote!(::core::option::Option::None),
    };
    let sched_name = pnode_driver::summary::checkpointing_syntax(&plan.checkpointing);
    let (n, np, k) = (plan.u0.len(), plan.theta0.len(), plan.output_times.len());
    let ode_doc = format!(
        " The neural ODE `{name}`: {n} states, {np} parameters, `{}` with adaptive steps, {k} \
         output times, checkpointing `{sched_name}` (decided as the run goes; \
         [`Ode::PREDICTED`] is its bound).",
        plan.method
    );
    quote! {
        /// What the checkpointing of an adaptive run guarantees before it runs, for the number
        /// `N` of accepted steps known only after it ([`Ode::PREDICTED`]; the text is
        /// [`Ode::SCHEDULE_SUMMARY`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct CheckpointBound {
            /// `Some(c)`: at most `c` solutions are held at every step, whatever `N` (online
            /// checkpointing); `None`: memory grows with `N` (store-all keeps every accepted
            /// step's stages, solution-only every accepted solution).
            pub slots: ::core::option::Option<usize>,
        }

        impl CheckpointBound {
            /// The largest final checkpoint spacing after `n` accepted steps: online with
            /// `c ≥ 2` slots `d ≤ max(1, ⌊2(n−1)/c⌋)` (the spacing doubles only when `c`
            /// checkpoints span `c·d ≤ n − 1` steps); 1 otherwise.
            pub const fn spacing(&self, n: u64) -> u64 {
                match self.slots {
                    ::core::option::Option::Some(c) if c >= 2 => {
                        let d = 2 * n.saturating_sub(1) / c as u64;
                        if d > 1 { d } else { 1 }
                    }
                    _ => 1,
                }
            }

            /// The most steps the reverse sweep recomputes after `n` accepted steps: online
            /// `⌊n(d−1)/2⌋` with `d` = [`CheckpointBound::spacing`] (`(n−1)(n−2)/2` with one
            /// slot, where only `u_0` is kept); 0 for store-all and solution-only (which
            /// recomputes a reversed step's stages, not steps).
            pub const fn recomputed_steps(&self, n: u64) -> u64 {
                match self.slots {
                    ::core::option::Option::Some(1) => {
                        n.saturating_sub(1) * n.saturating_sub(2) / 2
                    }
                    ::core::option::Option::Some(_) => n * (self.spacing(n) - 1) / 2,
                    ::core::option::Option::None => 0,
                }
            }
        }

        #[doc = #ode_doc]
        ///
        /// [`Ode::forward`] solves with error control; [`Ode::gradient`] and
        /// [`Ode::value_and_grad`] give the exact discrete-adjoint gradient of the accepted
        /// steps (their sizes held fixed: bitwise the fixed-grid gradient on
        /// [`Ode::accepted_times`]); [`Ode::train`] runs any runtime optimizer on it.
        #[derive(Debug)]
        pub struct Ode {
            /// The right-hand side.
            pub model: Model,
            solver: #ad::AdaptiveSolver<Stepper>,
        }

        #[allow(clippy::all, clippy::unreadable_literal, clippy::excessive_precision)]
        impl Ode {
            #consts_head
            #consts_tail
            /// The bound the checkpointing guarantees, as `pnodec emit --schedule` prints it.
            pub const SCHEDULE_SUMMARY: &'static str = #summary;
            /// The start of the time span (the steps run from here to the last output time).
            pub const T0: f64 = #t0;
            /// Relative tolerance: one value for every component, or one per component.
            pub const RTOL: &'static [f64] = #rtol;
            /// Absolute tolerance: one value for every component, or one per component.
            pub const ATOL: &'static [f64] = #atol;
            /// The first step size (`None`: chosen automatically).
            pub const H0: ::core::option::Option<f64> = #h0;
            /// The smallest step size before the run fails.
            pub const H_MIN: f64 = #h_min;
            /// The largest step size (`None`: the whole interval).
            pub const H_MAX: ::core::option::Option<f64> = #h_max;
            /// The most step attempts, accepted and rejected together.
            pub const MAX_STEPS: usize = #max_steps;
            /// The most consecutive retries after non-finite values.
            pub const MAX_NONFINITE_RETRIES: u32 = #retries;
            /// The step-size controller.
            pub const CONTROLLER: #ad::Controller = #ad::Controller {
                safety: #safety,
                min_factor: #min_factor,
                max_factor: #max_factor,
                k_i: #k_i,
                k_p: #k_p,
            };
            /// What the forward sweep keeps (decided online for an unknown number of steps).
            pub const CHECKPOINTING: #ad::AdaptiveCheckpointing = #mode;
            /// The checkpoint mode as the `solve` block writes it.
            pub const SCHEDULE_NAME: &'static str = #sched_name;
            /// The bound the checkpointing guarantees for `N` accepted steps (the schedule is
            /// decided at run time; [`Ode::stats`] measures what the last sweeps did).
            pub const PREDICTED: CheckpointBound = CheckpointBound { slots: #bound_slots };

            /// The error control: the constants above as the runtime's options (equal to
            /// `pnode-driver`'s for the same model).
            pub fn options() -> #ad::AdaptiveOptions {
                #ad::AdaptiveOptions {
                    rtol: #make_rtol,
                    atol: #make_atol,
                    h0: Self::H0,
                    h_min: Self::H_MIN,
                    h_max: Self::H_MAX,
                    max_steps: Self::MAX_STEPS,
                    max_nonfinite_retries: Self::MAX_NONFINITE_RETRIES,
                    controller: Self::CONTROLLER,
                }
            }

            #new_doc
            pub fn new(#new_args) -> #rt::Result<Self> {
                let model = #make_model;
                let param_len = #rt::model::Rhs::param_len(&model);
                let stepper = #make_stepper;
                let solver = #ad::AdaptiveSolver::new(
                    stepper,
                    &model,
                    Self::T0,
                    &Self::OUTPUT_TIMES,
                    Self::options(),
                    Self::CHECKPOINTING,
                )?;
                ::core::result::Result::Ok(Ode { model, solver })
            }

            #common_methods

            /// The grid `t_0 < … < t_N` the last run accepted (empty before the first).
            pub fn accepted_times(&self) -> &[f64] {
                self.solver.accepted_times()
            }

            /// The accepted grid of the last run as a `TimeGrid` (for a fixed-grid replay).
            pub fn accepted_grid(&self) -> #rt::Result<#rt::TimeGrid> {
                self.solver.grid()
            }

            /// The online checkpointing's final spacing `d` of the last gradient (`None` for
            /// the other modes).
            pub fn online_spacing(&self) -> ::core::option::Option<usize> {
                self.solver.online_spacing()
            }

            /// The solver (options, accepted grid, statistics of the last run).
            pub fn solver(&self) -> &#ad::AdaptiveSolver<Stepper> {
                &self.solver
            }

            /// What the last sweeps did (evaluations, steps forward, recomputed and reversed,
            /// peak checkpoint memory): within [`Ode::PREDICTED`] for the accepted steps.
            pub fn stats(&self) -> #rt::Stats {
                self.solver.stats().sweep
            }

            /// Accepted and rejected steps of the last run, with [`Ode::stats`].
            pub fn adaptive_stats(&self) -> #ad::AdaptiveStats {
                self.solver.stats()
            }
        }
    }
}
