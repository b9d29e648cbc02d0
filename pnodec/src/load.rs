//! What the running commands (`solve`, `grad`, `train`, `bench`) share: read and lower a model
//! (diagnostics rendered as in `check`), resolve its [`Setup`] (data paths relative to the
//! model file's directory), and build the model backend.
//!
//! The backend is the Cranelift JIT ([`pnode_jit::JitModel`]) unless `--backend interp` asks
//! for the reference interpreter ([`pnode_ir::runtime::IrModel`]) or `--backend torch` for
//! libtorch (cargo feature `torch`, [`crate::torch`]). The JIT does not lower convolutions or
//! group norms: without `--backend` such a model runs on libtorch (with a note), or, in a
//! pnodec built without libtorch, is an error that says to rebuild with `--features torch` or
//! to use `--backend interp`.
//!
//! The stepper ([`Stepper`]): with the JIT an explicit method runs `pnode_jit::JitErkStepper`,
//! the whole forward and adjoint step fused into one native call per step (passed to the
//! driver through [`Run::with_explicit_stepper`]); the interpreter, libtorch and implicit
//! methods run the runtime's steppers (`ErkStepper`, θ-methods, DIRKs) over the model.

use crate::check::analyze_in;
use crate::render;
use crate::{BackendError, Error, SourceFile, read_source};
use codespan_reporting::term::termcolor::WriteColor;
use pnode_driver::{MethodChoice, Run, Setup};
use pnode_ir::lower::Program;
use pnode_ir::runtime::IrModel;
use pnode_jit::{JitErkStepper, JitModel};
use pnode_runtime::adaptive::{EmbeddedErk, EmbeddedStepper};
use pnode_runtime::checkpoint::StepCost;
use pnode_runtime::stepper::{AdjointStepper, ForwardStepper, StepAt};
use pnode_runtime::{ErkStepper, ModelError, Rhs, RhsJvp, RhsVjp, Stats};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which implementation of the right-hand side runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The JIT; libtorch for a model the JIT does not lower (convolutions, group norms).
    #[default]
    Auto,
    /// Native code compiled by Cranelift (RHS, JVP and VJP kernels).
    Jit,
    /// The reference interpreter of the IR.
    Interp,
    /// libtorch (tch operations and autograd; needs pnodec built with `--features torch`).
    Torch,
}

impl Backend {
    /// The name printed in reports (`auto`, `jit`, `interp`, `torch`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Jit => "jit",
            Backend::Interp => "interp",
            Backend::Torch => "torch",
        }
    }
}

/// A model backend: the JIT-compiled model, the interpreter or libtorch.
#[derive(Debug)]
pub enum Model {
    /// Cranelift kernels.
    Jit(Box<JitModel>),
    /// The interpreter.
    Interp(Box<IrModel>),
    /// libtorch.
    #[cfg(feature = "torch")]
    Torch(Box<pnode_torch::TorchIrModel>),
}

macro_rules! each {
    ($m:expr, $v:ident => $e:expr) => {
        match $m {
            Model::Jit($v) => $e,
            Model::Interp($v) => $e,
            #[cfg(feature = "torch")]
            Model::Torch($v) => $e,
        }
    };
}

impl Model {
    /// Builds the backend for `program`'s right-hand side; returns it with its compile time in
    /// milliseconds (the JIT's compilation of the RHS, JVP and VJP; the interpreter's setup).
    pub fn new(program: &Program, backend: Backend) -> Result<(Model, f64), Error> {
        Self::build(program, backend).map(|(model, ms, _)| (model, ms))
    }

    /// [`Model::new`], and the note to print when [`Backend::Auto`] chose libtorch because
    /// the JIT refused the model.
    pub fn build(
        program: &Program,
        backend: Backend,
    ) -> Result<(Model, f64, Option<String>), Error> {
        let model = || program.name.clone();
        if let Some(l) = program.opaque_layers.first() {
            return Err(BackendError::OpaqueLayer {
                model: model(),
                layer: l.name.clone(),
            }
            .into());
        }
        let start = Instant::now();
        let mut note = None;
        let model = match backend {
            Backend::Torch => torch_model(program)?,
            Backend::Auto | Backend::Jit => match JitModel::new(&program.rhs) {
                Ok(m) => Model::Jit(Box::new(m)),
                Err(pnode_jit::Error::Unsupported { op }) if backend == Backend::Auto => {
                    if !cfg!(feature = "torch") {
                        return Err(BackendError::JitUnsupported {
                            model: model(),
                            op,
                            hint: crate::torch::REBUILD_HINT,
                        }
                        .into());
                    }
                    note = Some(crate::torch::fallback_note(program, op));
                    torch_model(program)?
                }
                Err(pnode_jit::Error::Unsupported { op }) => {
                    return Err(BackendError::JitUnsupported {
                        model: model(),
                        op,
                        hint: "run it with `--backend torch` or `--backend interp`",
                    }
                    .into());
                }
                Err(source) => {
                    return Err(BackendError::JitCompile {
                        model: model(),
                        what: "model",
                        source,
                    }
                    .into());
                }
            },
            Backend::Interp => match IrModel::new(&program.rhs) {
                Ok(m) => Model::Interp(Box::new(m)),
                Err(source) => {
                    return Err(BackendError::Interp {
                        model: model(),
                        source,
                    }
                    .into());
                }
            },
        };
        Ok((model, start.elapsed().as_secs_f64() * 1e3, note))
    }

    /// Which backend this is (never [`Backend::Auto`]).
    pub fn backend(&self) -> Backend {
        match self {
            Model::Jit(_) => Backend::Jit,
            Model::Interp(_) => Backend::Interp,
            #[cfg(feature = "torch")]
            Model::Torch(_) => Backend::Torch,
        }
    }
}

/// The libtorch model.
#[cfg(feature = "torch")]
fn torch_model(program: &Program) -> Result<Model, Error> {
    Ok(Model::Torch(Box::new(crate::torch::build(program)?)))
}

/// Built without libtorch: the error saying how to get it.
#[cfg(not(feature = "torch"))]
fn torch_model(program: &Program) -> Result<Model, Error> {
    match crate::torch::build(program)? {}
}

impl Rhs for Model {
    fn state_len(&self) -> usize {
        each!(self, m => m.state_len())
    }
    fn param_len(&self) -> usize {
        each!(self, m => m.param_len())
    }
    fn rhs(&mut self, t: f64, u: &[f64], p: &[f64], f: &mut [f64]) {
        each!(self, m => m.rhs(t, u, p, f))
    }
    fn try_rhs(&mut self, t: f64, u: &[f64], p: &[f64], f: &mut [f64]) -> Result<(), ModelError> {
        each!(self, m => m.try_rhs(t, u, p, f))
    }
}

impl RhsJvp for Model {
    fn jvp(&mut self, t: f64, u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
        each!(self, m => m.jvp(t, u, p, v, out))
    }
    fn try_jvp(
        &mut self,
        t: f64,
        u: &[f64],
        p: &[f64],
        v: &[f64],
        out: &mut [f64],
    ) -> Result<(), ModelError> {
        each!(self, m => m.try_jvp(t, u, p, v, out))
    }
}

impl RhsVjp for Model {
    fn vjp(&mut self, t: f64, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]) {
        each!(self, m => m.vjp(t, u, p, w, gu, gp))
    }
    fn try_vjp(
        &mut self,
        t: f64,
        u: &[f64],
        p: &[f64],
        w: &[f64],
        gu: &mut [f64],
        gp: &mut [f64],
    ) -> Result<(), ModelError> {
        each!(self, m => m.try_vjp(t, u, p, w, gu, gp))
    }
}

/// The stepper of an explicit method: the JIT's fused step or the runtime's Runge–Kutta
/// stepper over the model (`R`: [`ErkStepper`] on a fixed grid, [`EmbeddedErk`] — the pair
/// with its error estimate — for adaptive steps; [`Pair`]).
#[derive(Debug, Clone)]
pub enum Stepper<R = ErkStepper> {
    /// `pnode_jit::JitErkStepper`: one native call per forward step (or trial step with its
    /// error estimate), stage recomputation and adjoint step, the RHS and VJP code inlined (its
    /// model argument is only size-checked).
    Fused(Box<JitErkStepper>),
    /// The runtime's stepper, calling the model once per stage.
    Runtime(R),
}

/// The embedded pair of adaptive explicit steps: the JIT's fused trial step
/// (`JitErkStepper::with_error_estimate`) or the runtime's [`EmbeddedErk`].
pub type Pair = Stepper<EmbeddedErk>;

/// The run of a loaded model.
pub type LoadedRun = Run<Stepper, Pair>;

impl Stepper {
    /// Which stepper runs `setup`'s method: `fused` (the JIT's fused explicit step, or trial
    /// step of adaptive steps) or `runtime` (the runtime's stepper: every implicit method, and
    /// `--backend interp`).
    pub fn name_for(run: &LoadedRun) -> &'static str {
        match (run.explicit_stepper(), run.embedded_stepper()) {
            (Some(Stepper::Fused(_)), _) | (_, Some(Stepper::Fused(_))) => "fused",
            _ => "runtime",
        }
    }
}

macro_rules! step_each {
    ($s:expr, $v:ident => $e:expr) => {
        match $s {
            Stepper::Fused($v) => $e,
            Stepper::Runtime($v) => $e,
        }
    };
}

impl<M: Rhs + ?Sized, R: ForwardStepper<M>> ForwardStepper<M> for Stepper<R> {
    fn cost(&self) -> StepCost {
        match self {
            Stepper::Fused(s) => ForwardStepper::<M>::cost(s.as_ref()),
            Stepper::Runtime(s) => ForwardStepper::<M>::cost(s),
        }
    }
    fn stage_vectors(&self) -> usize {
        match self {
            Stepper::Fused(s) => ForwardStepper::<M>::stage_vectors(s.as_ref()),
            Stepper::Runtime(s) => ForwardStepper::<M>::stage_vectors(s),
        }
    }
    fn step(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        u_next: &mut [f64],
        stages: Option<&mut [f64]>,
        stats: &mut Stats,
    ) -> pnode_runtime::Result<()> {
        step_each!(self, s => s.step(model, at, p, u, u_next, stages, stats))
    }
    fn recompute_stages(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        stages: &mut [f64],
        stats: &mut Stats,
    ) -> pnode_runtime::Result<()> {
        step_each!(self, s => s.recompute_stages(model, at, p, u, stages, stats))
    }
}

impl<M: RhsVjp + ?Sized, R: AdjointStepper<M>> AdjointStepper<M> for Stepper<R> {
    fn reverse(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        stages: &[f64],
        lambda: &mut [f64],
        mu: &mut [f64],
        stats: &mut Stats,
    ) -> pnode_runtime::Result<()> {
        step_each!(self, s => s.reverse(model, at, p, stages, lambda, mu, stats))
    }
}

impl<M: Rhs + ?Sized> EmbeddedStepper<M> for Pair {
    fn error_order(&self) -> u32 {
        match self {
            Stepper::Fused(s) => EmbeddedStepper::<M>::error_order(s.as_ref()),
            Stepper::Runtime(s) => EmbeddedStepper::<M>::error_order(s),
        }
    }
    fn try_step(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        u_next: &mut [f64],
        stages: &mut [f64],
        err: &mut [f64],
        stats: &mut Stats,
    ) -> pnode_runtime::Result<()> {
        step_each!(self, s => s.try_step(model, at, p, u, u_next, stages, err, stats))
    }
    fn seed_first_stage(&mut self, t: f64, u: &[f64], k1: &[f64]) {
        match self {
            Stepper::Fused(s) => EmbeddedStepper::<M>::seed_first_stage(s.as_mut(), t, u, k1),
            Stepper::Runtime(s) => EmbeddedStepper::<M>::seed_first_stage(s, t, u, k1),
        }
    }
    fn reset(&mut self) {
        match self {
            Stepper::Fused(s) => EmbeddedStepper::<M>::reset(s.as_mut()),
            Stepper::Runtime(s) => EmbeddedStepper::<M>::reset(s),
        }
    }
}

/// Which explicit stepper `run` uses with `backend`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StepperChoice {
    /// The fused JIT step with the JIT backend, the runtime's with the interpreter.
    #[default]
    Auto,
    /// The runtime's `ErkStepper` whatever the backend (`bench` times both).
    Runtime,
}

/// Builds the run of `setup` for `model`: for an explicit method with the JIT backend (and
/// `choice` `Auto`) the fused stepper of its tableau, compiled here; its compile time in
/// milliseconds is returned (0 otherwise).
pub fn build_run(
    setup: Setup,
    model: &Model,
    choice: StepperChoice,
) -> Result<(LoadedRun, f64), Error> {
    let (n, np) = (setup.program.state_len(), setup.program.param_len());
    let adaptive = setup.grid.adaptive().is_some();
    let mut compile_ms = 0.0;
    // The fused kernels of the method (with the trial step of its pair for adaptive steps).
    let fused = match (&setup.method, model) {
        (MethodChoice::Explicit(t), Model::Jit(_)) if choice == StepperChoice::Auto => {
            let start = Instant::now();
            let s = if adaptive {
                JitErkStepper::with_error_estimate(t.clone(), &setup.program.rhs)
            } else {
                JitErkStepper::new(t.clone(), &setup.program.rhs)
            }
            .map_err(|source| BackendError::JitCompile {
                model: setup.program.name.clone(),
                what: "the fused steps of model",
                source,
            })?;
            compile_ms = start.elapsed().as_secs_f64() * 1e3;
            Some(s)
        }
        _ => None,
    };
    let (fixed, pair) = if adaptive {
        (None, fused)
    } else {
        (fused, None)
    };
    let run = Run::with_steppers(
        setup,
        model,
        |t| {
            Ok(fixed.map_or_else(
                || Stepper::Runtime(ErkStepper::new(t.clone(), n, np)),
                |s| Stepper::Fused(Box::new(s)),
            ))
        },
        |t| match pair {
            Some(s) => Ok(Stepper::Fused(Box::new(s))),
            None => Ok(Stepper::Runtime(EmbeddedErk::new(t.clone(), n, np)?)),
        },
    )?;
    Ok((run, compile_ms))
}

/// Whether `setup`'s method is explicit.
pub fn is_explicit(setup: &Setup) -> bool {
    matches!(setup.method, MethodChoice::Explicit(_))
}

/// A model ready to run.
#[derive(Debug)]
pub struct Loaded {
    /// The source file.
    pub file: SourceFile,
    /// The file's directory (data paths are relative to it).
    pub dir: PathBuf,
    /// The backend.
    pub model: Model,
    /// Which backend it is (the one chosen, never [`Backend::Auto`]).
    pub backend: Backend,
    /// Milliseconds to build the backend (with the JIT: the RHS/JVP/VJP kernels and, for an
    /// explicit method, the fused steps).
    pub compile_ms: f64,
    /// The run (setup and solver).
    pub run: LoadedRun,
}

impl Loaded {
    /// The lowered program.
    pub fn program(&self) -> &Program {
        &self.run.setup().program
    }

    /// The setup.
    pub fn setup(&self) -> &Setup {
        self.run.setup()
    }

    /// The stepper that runs: `fused` or `runtime` ([`Stepper::name_for`]).
    pub fn stepper_name(&self) -> &'static str {
        Stepper::name_for(&self.run)
    }
}

/// The directory a model file's data paths are relative to (`.` for stdin or a bare name).
pub fn model_dir(path: &Path) -> PathBuf {
    if path == Path::new("-") {
        return PathBuf::from(".");
    }
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Lowers the model in `path` and renders its diagnostics to `err` (warnings too). `Ok(None)`
/// when it has errors (they have been rendered).
pub fn lower_file(
    path: &Path,
    err: &mut dyn WriteColor,
) -> Result<Option<(SourceFile, Program)>, Error> {
    let file = read_source(path)?;
    let analysis = analyze_in(&file.text, &model_dir(path));
    // Diagnostics on a closed or failing stderr are dropped: the outcome (the exit status,
    // the outputs a command writes) does not depend on them.
    let _ = render::emit(err, &file.name, &file.text, &analysis.diagnostics);
    if analysis.has_errors() {
        let n = analysis.diagnostics.iter().filter(|d| d.is_error()).count();
        let _ = writeln!(
            err,
            "{}: {n} {}",
            file.name,
            if n == 1 { "error" } else { "errors" }
        );
        return Ok(None);
    }
    Ok(analysis.program.map(|p| (file, p)))
}

/// Lowers, sets up and compiles the model in `path`; `Ok(None)` when the model has errors
/// (rendered to `err`).
pub fn load(
    path: &Path,
    backend: Backend,
    seed: Option<u64>,
    err: &mut dyn WriteColor,
) -> Result<Option<Loaded>, Error> {
    load_with(path, backend, seed, err, |_| {})
}

/// [`load`], with `adjust` changing the setup before the solver is built (command-line
/// overrides such as `--iterations`).
pub fn load_with(
    path: &Path,
    backend: Backend,
    seed: Option<u64>,
    err: &mut dyn WriteColor,
    adjust: impl FnOnce(&mut Setup),
) -> Result<Option<Loaded>, Error> {
    let Some((file, program)) = lower_file(path, err)? else {
        return Ok(None);
    };
    let dir = model_dir(path);
    // The backend first: a model the JIT cannot compile is reported before any data file
    // is read.
    let (model, compile_ms, note) = Model::build(&program, backend)?;
    if let Some(note) = note {
        let _ = writeln!(err, "{note}");
    }
    let backend = model.backend();
    let mut setup = Setup::new(&program, &dir, seed)?;
    adjust(&mut setup);
    let (run, fused_ms) = build_run(setup, &model, StepperChoice::Auto)?;
    Ok(Some(Loaded {
        file,
        dir,
        model,
        backend,
        compile_ms: compile_ms + fused_ms,
        run,
    }))
}
