//! The module a model expands to: pnode-codegen's `Model` (`Rhs`, `RhsJvp`, `RhsVjp`), a
//! `Stepper` (pnode-codegen's fused stepper for an explicit method; for an implicit one an
//! alias of the runtime's `ThetaStepper` or `DirkStepper`, built with the compile-time Newton
//! configuration [`Ode::NEWTON`]), and `Ode`, which owns a runtime `Solver` over them and carries the
//! compile-time plan as constants (grid, output times, initial values, the schedule's actions,
//! its predicted cost).

use crate::plan::{FixedPlan, Plan, Stepping, Steps};
use pnode_checkpoint::{Action, StageSource, Stats};
use pnode_codegen::{Options, generate_erk_stepper, generate_erk_stepper_sized, generate_model};
use pnode_runtime::NewtonConfig;
use pnode_runtime::implicit::{LineSearch, LinearSolver};

/// The most `f64`s a fixed-size stepper holds (its stage, cotangent and parameter buffers);
/// above it the stepper's buffers are vectors.
pub const SIZED_STEPPER_ELEMENTS: usize = 8192;
use pnode_ir::lower::Program;
use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// Where the generated code finds the runtime and the special functions.
#[derive(Clone)]
pub struct Paths {
    /// The runtime (`::pnode::runtime`).
    pub runtime: syn::Path,
    /// The special functions (`::pnode::special`).
    pub special: syn::Path,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            runtime: syn::parse_quote!(::pnode::runtime),
            special: syn::parse_quote!(::pnode::special),
        }
    }
}

/// A float literal that round-trips (`1.0`, `-0.5`, `1e-300`), always with a decimal point or
/// an exponent so it types as `f64`.
pub(crate) fn float(x: f64) -> TokenStream {
    let lit = Literal::f64_unsuffixed(x.abs());
    if x.is_sign_negative() {
        quote!(-#lit)
    } else {
        quote!(#lit)
    }
}

fn floats(v: &[f64]) -> TokenStream {
    let items = v.iter().map(|&x| float(x));
    quote!([#(#items),*])
}

fn usize_lit(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

fn u64_lit(n: u64) -> Literal {
    Literal::u64_unsuffixed(n)
}

fn action(a: &Action, rt: &syn::Path) -> TokenStream {
    let ck = quote!(#rt::checkpoint);
    match *a {
        Action::Store { slot, step } => {
            let (slot, step) = (usize_lit(slot), usize_lit(step));
            quote!(#ck::Action::Store { slot: #slot, step: #step })
        }
        Action::StepKeepingStages { slot, step } => {
            let (slot, step) = (usize_lit(slot), usize_lit(step));
            quote!(#ck::Action::StepKeepingStages { slot: #slot, step: #step })
        }
        Action::Tape { step } => {
            let step = usize_lit(step);
            quote!(#ck::Action::Tape { step: #step })
        }
        Action::Advance { from, to } => {
            let (from, to) = (usize_lit(from), usize_lit(to));
            quote!(#ck::Action::Advance { from: #from, to: #to })
        }
        Action::Restore { slot, step } => {
            let (slot, step) = (usize_lit(slot), usize_lit(step));
            quote!(#ck::Action::Restore { slot: #slot, step: #step })
        }
        Action::Free { slot } => {
            let slot = usize_lit(slot);
            quote!(#ck::Action::Free { slot: #slot })
        }
        Action::Reverse { step, stages } => {
            let step = usize_lit(step);
            let stages = match stages {
                StageSource::Slot(s) => {
                    let s = usize_lit(s);
                    quote!(#ck::StageSource::Slot(#s))
                }
                StageSource::Tape => quote!(#ck::StageSource::Tape),
                StageSource::Recompute => quote!(#ck::StageSource::Recompute),
            };
            quote!(#ck::Action::Reverse { step: #step, stages: #stages })
        }
    }
}

fn stats(s: &Stats, rt: &syn::Path) -> TokenStream {
    let f = |x: u64| u64_lit(x);
    let (a, b, c, d, e) = (
        f(s.rhs_evals),
        f(s.jvp_evals),
        f(s.vjp_evals),
        f(s.newton_iterations),
        f(s.linear_iterations),
    );
    let (g, h, i, j, k) = (
        f(s.forward_steps),
        f(s.recomputed_steps),
        f(s.stage_recomputations),
        f(s.reversed_steps),
        f(s.peak_slots),
    );
    let (l, m, n, o, p, q) = (
        f(s.peak_stored_vectors),
        f(s.peak_stored_bytes),
        f(s.disk_writes),
        f(s.disk_reads),
        f(s.peak_disk_vectors),
        f(s.peak_disk_bytes),
    );
    quote! {
        #rt::Stats {
            rhs_evals: #a, jvp_evals: #b, vjp_evals: #c, newton_iterations: #d,
            linear_iterations: #e, forward_steps: #g, recomputed_steps: #h,
            stage_recomputations: #i, reversed_steps: #j, peak_slots: #k,
            peak_stored_vectors: #l, peak_stored_bytes: #m, disk_writes: #n, disk_reads: #o,
            peak_disk_vectors: #p, peak_disk_bytes: #q,
        }
    }
}

/// `NewtonConfig { … }` as an expression (every field spelled out, so it is a constant).
fn newton(c: &NewtonConfig, rt: &syn::Path) -> TokenStream {
    let im = quote!(#rt::implicit);
    let (atol, rtol, iters) = (
        float(c.atol),
        float(c.rtol),
        u64_lit(u64::from(c.max_iters)),
    );
    let line_search = match c.line_search {
        LineSearch::None => quote!(#im::LineSearch::None),
        LineSearch::Backtracking(k) => {
            let k = u64_lit(u64::from(k));
            quote!(#im::LineSearch::Backtracking(#k))
        }
    };
    let linear = match c.linear {
        LinearSolver::Auto => quote!(#im::LinearSolver::Auto),
        LinearSolver::Dense => quote!(#im::LinearSolver::Dense),
        LinearSolver::Gmres(g) => {
            let (restart, grtol, gatol, gmax) = (
                usize_lit(g.restart),
                float(g.rtol),
                float(g.atol),
                usize_lit(g.max_iters),
            );
            quote!(#im::LinearSolver::Gmres(#im::GmresConfig {
                restart: #restart, rtol: #grtol, atol: #gatol, max_iters: #gmax,
            }))
        }
        LinearSolver::Petsc => quote!(#im::LinearSolver::Petsc),
    };
    quote! {
        #rt::NewtonConfig {
            atol: #atol, rtol: #rtol, max_iters: #iters, line_search: #line_search,
            linear: #linear,
        }
    }
}

/// The items of the model's module (without the `mod` around them).
pub fn module_items(
    program: &Program,
    plan: &Plan,
    paths: &Paths,
) -> Result<TokenStream, pnode_codegen::Error> {
    let rt = &paths.runtime;
    let opaque_layers = program.opaque_layer_lengths();
    let opaque = !opaque_layers.is_empty();
    let options = Options {
        runtime_path: paths.runtime.clone(),
        special_path: paths.special.clone(),
        opaque_layers,
        ..Options::default()
    };
    let model = generate_model("Model", &program.rhs, &options)?;
    let (n, np) = (program.state_len(), program.param_len());
    // Explicit: the fused stepper, with fixed-size stage buffers (faster for short states)
    // while it stays small (the struct lives inside `Ode`, so large models keep heap vectors).
    // Implicit: the runtime's stepper over the generated model's JVP/VJP.
    let adaptive = matches!(plan.steps, Steps::Adaptive(_));
    let (stepper, make_stepper) = match &plan.stepping {
        // Adaptive steps: the runtime's embedded pair over the generated model (the plan
        // checked that the tableau is the built-in one of this name).
        Stepping::Explicit { .. } if adaptive => (
            quote! {
                /// The runtime's embedded Runge–Kutta pair (the step and its error estimate)
                /// over `Model`.
                pub type Stepper = #rt::adaptive::EmbeddedErk;
            },
            quote! {
                #rt::adaptive::EmbeddedErk::new(
                    #rt::Tableau::by_name(Self::METHOD)?,
                    Self::STATE_LEN,
                    param_len,
                )?
            },
        ),
        Stepping::Explicit {
            tableau,
            coefficients,
        } => {
            let stages = tableau.live_stages();
            // Opaque layers' parameters are counted at run time: vectors then.
            let stepper = if !opaque && (2 * stages + 2) * n + np <= SIZED_STEPPER_ELEMENTS {
                generate_erk_stepper_sized("Stepper", coefficients, n, np, &options)?
            } else {
                generate_erk_stepper("Stepper", coefficients, &options)?
            };
            (stepper, quote!(Stepper::new(Self::STATE_LEN, param_len)))
        }
        Stepping::Theta { theta, .. } => {
            let theta = float(*theta);
            (
                quote! {
                    /// The runtime's θ-method stepper (Newton stage solves over `Model`'s JVP,
                    /// exact adjoint through its VJP).
                    pub type Stepper = #rt::ThetaStepper;
                },
                quote! {
                    #rt::ThetaStepper::new(#theta, Self::STATE_LEN, param_len, NEWTON)?
                },
            )
        }
        Stepping::Dirk { constructor, .. } => {
            let ctor = syn::Ident::new(constructor, proc_macro2::Span::call_site());
            (
                quote! {
                    /// The runtime's DIRK stepper (Newton stage solves over `Model`'s JVP,
                    /// exact adjoint through its VJP).
                    pub type Stepper = #rt::DirkStepper;
                },
                quote! {
                    #rt::DirkStepper::new(
                        #rt::DirkTableau::#ctor(),
                        Self::STATE_LEN,
                        param_len,
                        NEWTON,
                    )?
                },
            )
        }
    };
    let implicit = plan.stepping.newton().is_some();
    let newton_const = match plan.stepping.newton() {
        Some(c) => {
            let c = newton(c, rt);
            quote! {
                /// The Newton stage solver of the implicit method, as the `solve` options
                /// configure it (the runtime's defaults for options not given).
                const NEWTON: #rt::NewtonConfig = #c;
            }
        }
        None => quote!(),
    };
    let newton_assoc = if implicit {
        quote!(::core::option::Option::Some(NEWTON))
    } else {
        quote!(::core::option::Option::None)
    };
    let (n_lit, np_lit) = (usize_lit(n), usize_lit(np));
    let k = plan.output_times.len();
    let k_lit = usize_lit(k);
    let u0 = floats(&plan.u0);
    let theta0 = floats(&plan.theta0);
    let outputs = floats(&plan.output_times);
    let c = plan.cost;
    let (c1, c2, c3, c4) = (
        u64_lit(c.rhs_per_step),
        u64_lit(c.rhs_per_stage_recompute),
        u64_lit(c.vjp_per_reverse),
        u64_lit(c.stage_vectors),
    );
    let method = plan.method.as_str();
    let state_entries = program.states.iter().map(|s| {
        let (name, off, len) = (&s.name, usize_lit(s.offset), usize_lit(s.shape.len()));
        quote!((#name, #off, #len))
    });
    let param_entries = program.params.iter().map(|p| {
        let (name, off, len) = (&p.name, usize_lit(p.offset), usize_lit(p.shape.len()));
        quote!((#name, #off, #len))
    });
    let (new_doc, new_args, make_model) = if opaque {
        (
            quote! {
                /// The model over its opaque layers (one per entry of [`Model::LAYERS`], in
                /// that order) with its solver (all buffers allocated here, once). Errors name
                /// a layer whose input or output length differs from its declaration.
            },
            quote!(layers: ::std::vec::Vec<::std::boxed::Box<dyn #rt::opaque::OpaqueLayer>>),
            quote!(Model::new(layers)?),
        )
    } else {
        (
            quote!(#[doc = " The model with its solver (all buffers allocated here, once)."]),
            quote!(),
            quote!(Model::new()),
        )
    };
    // With opaque layers `θ0` appends the layers' own initial parameters; a layer's failure
    // comes back from the solver as `Error::Model` naming the layer, the step and the time.
    let theta0_body = if opaque {
        quote! {
            let mut theta = Self::THETA0.to_vec();
            let at = theta.len();
            theta.resize(at + self.model.layers.param_len(), 0.0);
            self.model.layers.params(&mut theta[at..]);
            theta
        }
    } else {
        quote!(Self::THETA0.to_vec())
    };
    let consts_head = quote! {
        /// Length of the flat state `u`.
        pub const STATE_LEN: usize = #n_lit;
        /// Length of the declared parameters (all of `θ` unless the model has opaque
        /// layers, whose parameters follow: see [`Ode::param_len`]).
        pub const PARAM_LEN: usize = #np_lit;
        /// The states `(name, offset, length)` in the flat `u`, in declaration order.
        pub const STATES: &'static [(&'static str, usize, usize)] = &[#(#state_entries),*];
        /// The parameters `(name, offset, length)` in the flat `θ` (layer weights included).
        pub const PARAMS: &'static [(&'static str, usize, usize)] = &[#(#param_entries),*];
        /// The initial state as declared.
        pub const U0: [f64; #n_lit] = #u0;
        /// The initial parameters as declared (random initializers drawn at compile time
        /// from seed 0, as `pnodec` draws them).
        pub const THETA0: [f64; #np_lit] = #theta0;
        /// The integrator.
        pub const METHOD: &'static str = #method;
        /// Whether the integrator is implicit (a θ-method or a DIRK, whose Newton
        /// iterations make the evaluation counts data-dependent).
        pub const IMPLICIT: bool = #implicit;
        /// The Newton stage solver of an implicit method, `None` for an explicit one.
        pub const NEWTON: ::core::option::Option<#rt::NewtonConfig> = #newton_assoc;
    };
    let consts_tail = quote! {
        /// The output times (grid points).
        pub const OUTPUT_TIMES: [f64; #k_lit] = #outputs;
        /// The cost of one step, the input of the schedule's cost model (for an implicit
        /// method only its stage vectors: the evaluations a step takes are not known
        /// before it runs).
        pub const STEP_COST: #rt::checkpoint::StepCost = #rt::checkpoint::StepCost {
            rhs_per_step: #c1,
            rhs_per_stage_recompute: #c2,
            vjp_per_reverse: #c3,
            stage_vectors: #c4,
        };
    };
    let common_methods = quote! {
        /// Length of the whole `θ`: the declared parameters ([`Ode::PARAM_LEN`]) and then
        /// the opaque layers' parameters, if any.
        pub fn param_len(&self) -> usize {
            #rt::model::Rhs::param_len(&self.model)
        }

        /// The initial `θ`: [`Ode::THETA0`], then each opaque layer's own initial
        /// parameters, if any.
        pub fn theta0(&self) -> ::std::vec::Vec<f64> {
            #theta0_body
        }

        /// Solves from `u0` with parameters `theta`; the outputs, `K × STATE_LEN` row-major.
        pub fn forward(&mut self, u0: &[f64], theta: &[f64]) -> #rt::Result<&[f64]> {
            self.solver.solve(&mut self.model, u0, theta)
        }

        /// The gradient `(dL/du0, dL/dθ)` of a loss whose derivative at the outputs is
        /// `dl_du` (`K × STATE_LEN`): a checkpointed forward sweep, then the reverse sweep.
        pub fn gradient(
            &mut self,
            u0: &[f64],
            theta: &[f64],
            dl_du: &[f64],
        ) -> #rt::Result<#rt::Gradient> {
            self.solver.forward(&mut self.model, u0, theta)?;
            self.solver.backward(&mut self.model, dl_du)
        }

        /// Loss and gradient: `loss(outputs, dl_du)` returns `L` and writes `∂L/∂u(t_k)`.
        pub fn value_and_grad<L>(
            &mut self,
            u0: &[f64],
            theta: &[f64],
            loss: L,
        ) -> #rt::Result<(f64, #rt::Gradient)>
        where
            L: FnOnce(&[f64], &mut [f64]) -> f64,
        {
            self.solver.value_and_grad(&mut self.model, u0, theta, loss)
        }

        /// `iterations` optimizer steps on `theta` (from `u0`), returning the loss before
        /// each step; a non-finite loss stops with an error, `theta` left as it was then.
        pub fn train<L>(
            &mut self,
            u0: &[f64],
            theta: &mut [f64],
            optimizer: &mut dyn #rt::optim::Optimizer,
            iterations: usize,
            mut loss: L,
        ) -> #rt::Result<::std::vec::Vec<f64>>
        where
            L: FnMut(&[f64], &mut [f64]) -> f64,
        {
            let mut losses = ::std::vec::Vec::with_capacity(iterations);
            for i in 0..iterations {
                let (value, grad) = self.value_and_grad(u0, theta, |o, d| loss(o, d))?;
                if !value.is_finite() {
                    return ::core::result::Result::Err(#rt::Error::Usage(::std::format!(
                        "the loss is {value} at iteration {i}"
                    )));
                }
                optimizer.step(theta, &grad.dp)?;
                losses.push(value);
            }
            ::core::result::Result::Ok(losses)
        }
    };
    let ode = Ode {
        name: &program.name,
        new_doc,
        new_args,
        make_model,
        make_stepper,
        consts_head,
        consts_tail,
        summary: &plan.summary,
        common_methods,
    };
    let ode = match &plan.steps {
        Steps::Fixed(f) => fixed_ode(ode, plan, f, rt),
        Steps::Adaptive(a) => crate::adaptive::ode(ode, plan, a, rt),
    };
    Ok(quote! {
        #model

        #stepper

        #newton_const

        #ode
    })
}

/// The parts of `Ode` both kinds of steps share.
pub(crate) struct Ode<'a> {
    /// The model's name.
    pub name: &'a str,
    /// Doc, arguments and model construction of `Ode::new`.
    pub new_doc: TokenStream,
    pub new_args: TokenStream,
    pub make_model: TokenStream,
    /// The stepper's construction (in `Ode::new`, with `param_len` in scope).
    pub make_stepper: TokenStream,
    /// The constants both kinds share (`STATE_LEN` … `NEWTON`, then `OUTPUT_TIMES`,
    /// `STEP_COST`), the summary text (`SCHEDULE_SUMMARY`) and the shared methods.
    pub consts_head: TokenStream,
    pub consts_tail: TokenStream,
    pub summary: &'a str,
    pub common_methods: TokenStream,
}

/// `Ode` over the runtime's `Solver` with the compile-time grid and schedule.
fn fixed_ode(ode: Ode<'_>, plan: &Plan, f: &FixedPlan, rt: &syn::Path) -> TokenStream {
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
    let n_steps = usize_lit(f.n_steps);
    // The grid's points, so `from_times` computes the step sizes from the same stored points
    // as the driver (bitwise the same grid).
    let points = f.grid.to_times();
    let grid_times = floats(&points);
    let grid_len = usize_lit(points.len());
    let fwd = f.schedule.forward().map(|a| action(&a, rt));
    let rev = f.schedule.reverse().map(|a| action(&a, rt));
    let sched_name = f.schedule.name();
    let predicted = stats(&f.predicted, rt);
    let (n, np, k) = (plan.u0.len(), plan.theta0.len(), plan.output_times.len());
    let ode_doc = format!(
        " The neural ODE `{name}`: {n} states, {np} parameters, `{}` over {} steps, {k} \
         output times, checkpointing `{}` (planned at compile time).",
        plan.method, f.n_steps, sched_name
    );
    quote! {
        #[doc = #ode_doc]
        ///
        /// [`Ode::forward`] solves; [`Ode::gradient`] and [`Ode::value_and_grad`] give the
        /// discrete-adjoint gradient in `u0` and the parameters through the schedule
        /// [`Ode::SCHEDULE_FORWARD`]/[`Ode::SCHEDULE_REVERSE`]; [`Ode::train`] runs any runtime
        /// optimizer on it.
        #[derive(Debug)]
        pub struct Ode {
            /// The right-hand side.
            pub model: Model,
            solver: #rt::Solver<Stepper>,
        }

        #[allow(clippy::all, clippy::unreadable_literal, clippy::excessive_precision)]
        impl Ode {
            #consts_head
            /// Number of time steps.
            pub const N_STEPS: usize = #n_steps;
            #consts_tail
            /// The name of the checkpoint schedule.
            pub const SCHEDULE_NAME: &'static str = #sched_name;
            /// The schedule's forward actions, planned at compile time.
            pub const SCHEDULE_FORWARD: &'static [#rt::checkpoint::Action] = &[#(#fwd),*];
            /// The schedule's reverse actions.
            pub const SCHEDULE_REVERSE: &'static [#rt::checkpoint::Action] = &[#(#rev),*];
            /// The predicted cost of one gradient (forward + reverse sweep). Exact for explicit
            /// methods; for implicit ones the step counts and the peak slots, vectors and
            /// bytes are exact, and the RHS/JVP/VJP evaluations and Newton/linear iterations,
            /// which depend on how Newton converges, are zero (measured by [`Ode::stats`]).
            pub const PREDICTED: #rt::Stats = #predicted;
            /// The schedule's summary, as `pnodec emit --schedule` prints it.
            pub const SCHEDULE_SUMMARY: &'static str = #summary;

            /// The grid points `t_0 < … < t_N` (output times inserted), as `pnode-driver`
            /// resolves them.
            pub const GRID_TIMES: [f64; #grid_len] = #grid_times;

            /// The time grid: `TimeGrid::from_times(&GRID_TIMES)`, step sizes from the stored
            /// points as in `pnode-driver`.
            pub fn grid() -> #rt::Result<#rt::TimeGrid> {
                #rt::TimeGrid::from_times(&Self::GRID_TIMES)
            }

            /// The compile-time schedule as a runtime `Schedule` (validated).
            pub fn schedule() -> #rt::Result<#rt::Schedule> {
                ::core::result::Result::Ok(#rt::Schedule::new(
                    Self::SCHEDULE_NAME,
                    Self::N_STEPS,
                    Self::SCHEDULE_FORWARD.to_vec(),
                    Self::SCHEDULE_REVERSE.to_vec(),
                )?)
            }

            #new_doc
            pub fn new(#new_args) -> #rt::Result<Self> {
                let model = #make_model;
                let param_len = #rt::model::Rhs::param_len(&model);
                let stepper = #make_stepper;
                let solver = #rt::Solver::new(
                    stepper,
                    &model,
                    Self::grid()?,
                    &Self::OUTPUT_TIMES,
                    #rt::Checkpointing::Custom(Self::schedule()?),
                )?;
                ::core::result::Result::Ok(Ode { model, solver })
            }

            #common_methods

            /// The solver (grid, schedule, statistics of the last sweep).
            pub fn solver(&self) -> &#rt::Solver<Stepper> {
                &self.solver
            }

            /// What the last sweeps did (equal to [`Ode::PREDICTED`] after one gradient, for an
            /// implicit method in all but the evaluation and iteration counts).
            pub fn stats(&self) -> #rt::Stats {
                self.solver.stats()
            }
        }
    }
}
