//! `pnodec`, the pnode compiler's command line: `check`, `fmt`, `emit`, `solve`, `grad` and
//! `train`, `bench` for `.pode` models.
//! The work is done by the `pnodec` library; this file only parses the command line.

use clap::{Args, Parser, Subcommand};
use pnodec::bench::BenchOptions;
use pnodec::emit::{AstFormat, EmitKind};
use pnodec::emit_run::ClifForm;
use pnodec::fmt::FmtOptions;
use pnodec::grad::GradOptions;
use pnodec::load::Backend;
use pnodec::render::ColorMode;
use pnodec::solve::SolveOptions;
use pnodec::train::TrainOptions;
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit status:
  0  ok (warnings allowed)
  1  a model has errors or cannot be run (a data file of the wrong shape, a solver or
     training failure, an operation the JIT does not support); or `fmt` found a file to
     change (`--check`) or refused to rewrite one (syntax errors, comments it would drop)
  2  usage or I/O error (an unreadable file, a failed write, an output file that exists
     without `--force`, two outputs naming one file, an output folder that is missing or
     read-only)
  130, 143  `train` was stopped by SIGINT (Ctrl-C) or SIGTERM and saved the parameters it
     reached";

/// The pnode compiler: check, format, emit, solve, differentiate, train and benchmark `.pode`
/// neural-ODE models.
#[derive(Parser, Debug)]
#[command(name = "pnodec", version, after_help = EXIT_CODES)]
struct Cli {
    /// When to colour diagnostics: `auto` colours only when stderr is a terminal.
    #[arg(long, value_enum, default_value_t = ColorMode::Auto, global = true)]
    color: ColorMode,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and check models; print every diagnostic and a one-line summary per model.
    #[command(after_help = EXIT_CODES)]
    Check {
        /// The `.pode` files (`-` reads standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Rewrite models in the canonical format.
    ///
    /// A file is rewritten only if it parses without errors and its text changes, through a
    /// temporary file renamed over it (permissions kept). The canonical format keeps the
    /// model's doc comment (the comment lines directly above `model NAME`) and drops every
    /// other comment; a file with such comments is not rewritten unless
    /// `--allow-comment-loss` is given. `-` reads standard input and writes standard output.
    #[command(after_help = EXIT_CODES)]
    Fmt {
        /// Write nothing; list the files that would change with a diff (exit 1 if any).
        #[arg(long)]
        check: bool,
        /// Rewrite files even though their comments (other than the doc comment) are lost.
        #[arg(long)]
        allow_comment_loss: bool,
        /// The `.pode` files (`-` reads standard input and writes standard output).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print an intermediate form of a model: its AST, IR, the IR of its JVP or VJP, generated
    /// Rust, the Cranelift IR of its JIT kernels, or its checkpoint schedule.
    #[command(after_help = EXIT_CODES)]
    Emit {
        #[command(flatten)]
        what: EmitWhat,
        /// With `--schedule`: the memory the grid may use (see `solve --max-memory`).
        #[arg(long, value_name = "BYTES", value_parser = parse_max_memory)]
        max_memory: Option<u64>,
        /// The `.pode` file (`-` reads standard input).
        file: PathBuf,
    },
    /// Solve forward from θ0 (or trained parameters); write the trajectory at the output times
    /// (CSV or NPY) and plot it.
    #[command(after_help = EXIT_CODES)]
    Solve {
        /// Solve with the parameters saved by `pnodec train` (JSON) instead of θ0; every
        /// parameter of the model must be there by name with its size.
        #[arg(long)]
        params: Option<PathBuf>,
        /// Where to write the trajectory: `.npy` → NPY (`K × (1 + n)`, t first), anything
        /// else → CSV with a header `t,u[0],…`; default: CSV on standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Draw the states against t as an SVG plot (log10 t for a `logspace` grid).
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Write the grid the solve stepped on as CSV (a column `t`: t_0 … t_N): the steps an
        /// adaptive method accepted, or the fixed grid.
        #[arg(long)]
        grid: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
        /// The `.pode` file.
        file: PathBuf,
    },
    /// The loss and its discrete-adjoint gradient at θ0 (or trained parameters), as JSON:
    /// `grad_params` per parameter in declaration order, `grad_theta` flat in θ's layout, the
    /// states `u` at the output times `t`.
    #[command(after_help = EXIT_CODES)]
    Grad {
        /// Differentiate at the parameters saved by `pnodec train` (JSON) instead of θ0; every
        /// parameter of the model must be there by name with its size.
        #[arg(long)]
        params: Option<PathBuf>,
        /// Where to write the JSON; default: standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
        /// The `.pode` file.
        file: PathBuf,
    },
    /// Train the parameters with the `train { }` block's optimizer.
    ///
    /// Ctrl-C (SIGINT) or SIGTERM stops training after the current iteration: the parameters
    /// it reached, the log and the plot are saved, the number of iterations done is printed,
    /// and the exit status is 130 (SIGINT) or 143 (SIGTERM). A second signal ends it at once.
    #[command(after_help = EXIT_CODES)]
    Train {
        /// Start from the parameters saved by `pnodec train` (JSON) instead of θ0 (a warm
        /// start); every parameter of the model must be there by name with its size.
        #[arg(long)]
        params: Option<PathBuf>,
        /// Overrides the train block's number of iterations.
        #[arg(long, short = 'n')]
        iterations: Option<u64>,
        /// Where to save the parameters (JSON); default: MODEL.params.json in the current
        /// directory, or MODEL.params-1.json, … if taken.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Write the loss per iteration as CSV (`iteration,loss,grad_norm`).
        #[arg(long)]
        log: Option<PathBuf>,
        /// Draw the loss curve as an SVG plot.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Also save the parameters (and the `--log`) every N iterations, each time
        /// atomically, so that a killed run leaves its latest parameters.
        #[arg(long, value_name = "N")]
        save_every: Option<u64>,
        #[command(flatten)]
        common: Common,
        /// The `.pode` file.
        file: PathBuf,
    },
    /// Time the model: JIT compilation, forward solve and gradient, JIT and interpreter.
    #[command(after_help = EXIT_CODES)]
    Bench {
        /// Timed repetitions of each measurement (the median is printed).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Overrides the seed of random initializers.
        #[arg(long)]
        seed: Option<u64>,
        /// Which backend to time: by default the JIT (both steppers for an explicit method)
        /// and the interpreter; `jit`, `interp` or `torch` times only that one.
        #[arg(long, value_enum, default_value_t = Backend::Auto)]
        backend: Backend,
        /// Time at the parameters saved by `pnodec train` (JSON) instead of θ0.
        #[arg(long)]
        params: Option<PathBuf>,
        /// Print the timings as JSON (`model`, sizes, `reps`, `timings`: one object per
        /// backend and stepper) instead of a table.
        #[arg(long)]
        json: bool,
        /// The `.pode` file.
        file: PathBuf,
    },
}

/// Options every running command takes.
#[derive(Args, Debug)]
struct Common {
    /// The model backend: Cranelift-compiled native code, the reference interpreter or
    /// libtorch (a pnodec built with `--features torch`); by default the JIT, or libtorch for
    /// a model the JIT does not lower (convolutions, group norms).
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    backend: Backend,
    /// Overrides the seed of random initializers (else `train { seed }`, else 0).
    #[arg(long)]
    seed: Option<u64>,
    /// Replace output files that exist (they are never overwritten otherwise); an existing
    /// device or FIFO (`/dev/null`) is written to directly.
    #[arg(long)]
    force: bool,
    /// The memory the run may use, in bytes with an optional unit (512MB, 2GiB); by default
    /// what the system has available (MemAvailable). The time grid (`steps`), the outputs
    /// and a gradient's checkpoints are checked against it before they are allocated; a run
    /// that needs more fails with status 1 naming the option to change.
    #[arg(long, value_name = "BYTES", value_parser = parse_max_memory)]
    max_memory: Option<u64>,
}

/// `--max-memory`: a size such as `512MB` or `2GiB`.
fn parse_max_memory(text: &str) -> Result<u64, String> {
    pnode_driver::memory::parse_size(text).map_err(|e| e.to_string())
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct EmitWhat {
    /// The syntax tree: `--ast` or `--ast=debug` (Rust Debug with byte spans), `--ast=dsl`
    /// (printed back as canonical `.pode` text).
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "debug")]
    ast: Option<AstFormat>,
    /// The IR of the right-hand side f(t, u; θ).
    #[arg(long)]
    ir: bool,
    /// The IR of the JVP f_u v of the right-hand side.
    #[arg(long)]
    jvp: bool,
    /// The IR of the VJP (f_uᵀ w, f_θᵀ w) of the right-hand side.
    #[arg(long)]
    vjp: bool,
    /// Generated Rust: the model (Rhs, RhsJvp, RhsVjp) and, for an explicit method, its
    /// fused forward and adjoint steps.
    #[arg(long)]
    rust: bool,
    /// The Cranelift IR the JIT compiles: the RHS, JVP and VJP kernels and, for an explicit
    /// method, the fused step, step keeping its stages, stage recomputation and adjoint step;
    /// `--clif` or `--clif=generated` (pnode-jit's output), `--clif=optimized` (after
    /// Cranelift's optimizer, for this machine).
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "generated")]
    clif: Option<ClifForm>,
    /// The checkpoint schedule of a gradient with its predicted cost.
    #[arg(long)]
    schedule: bool,
}

impl EmitWhat {
    fn kind(&self) -> EmitKind {
        if let Some(format) = self.ast {
            EmitKind::Ast(format)
        } else if self.ir {
            EmitKind::Ir
        } else if self.jvp {
            EmitKind::Jvp
        } else if self.vjp {
            EmitKind::Vjp
        } else if self.rust {
            EmitKind::Rust
        } else if let Some(form) = self.clif {
            EmitKind::Clif(form)
        } else {
            EmitKind::Schedule
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let exit = match &cli.command {
        Command::Check { files } => pnodec::check::run(files, cli.color),
        Command::Fmt {
            check,
            allow_comment_loss,
            files,
        } => {
            let options = FmtOptions {
                check: *check,
                allow_comment_loss: *allow_comment_loss,
            };
            pnodec::fmt::run(files, options, cli.color)
        }
        Command::Emit {
            what,
            max_memory,
            file,
        } => {
            pnode_driver::memory::set_max_memory(*max_memory);
            pnodec::emit::run(file, what.kind(), cli.color)
        }
        Command::Solve {
            params,
            out,
            plot,
            grid,
            common,
            file,
        } => {
            pnode_driver::memory::set_max_memory(common.max_memory);
            let opts = SolveOptions {
                params: params.clone(),
                out: out.clone(),
                plot: plot.clone(),
                grid: grid.clone(),
                force: common.force,
                backend: common.backend,
                seed: common.seed,
            };
            pnodec::solve::run(file, &opts, cli.color)
        }
        Command::Grad {
            params,
            out,
            common,
            file,
        } => {
            pnode_driver::memory::set_max_memory(common.max_memory);
            let opts = GradOptions {
                out: out.clone(),
                force: common.force,
                backend: common.backend,
                seed: common.seed,
                params: params.clone(),
            };
            pnodec::grad::run(file, &opts, cli.color)
        }
        Command::Train {
            params,
            iterations,
            out,
            log,
            plot,
            save_every,
            common,
            file,
        } => {
            pnode_driver::memory::set_max_memory(common.max_memory);
            let opts = TrainOptions {
                save_every: *save_every,
                iterations: *iterations,
                out: out.clone(),
                log: log.clone(),
                plot: plot.clone(),
                force: common.force,
                backend: common.backend,
                seed: common.seed,
                params: params.clone(),
                progress: None,
            };
            pnodec::train::run(file, &opts, cli.color)
        }
        Command::Bench {
            reps,
            seed,
            backend,
            params,
            json,
            file,
        } => {
            let opts = BenchOptions {
                reps: *reps,
                seed: *seed,
                backend: *backend,
                params: params.clone(),
                json: *json,
            };
            pnodec::bench::run(file, &opts, cli.color)
        }
    };
    std::process::exit(exit.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
