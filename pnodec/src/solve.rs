//! `pnodec solve`: the trajectory at the output times, from θ0 or, with `--params FILE`, from
//! the parameters `pnodec train` saved (names and sizes checked: [`crate::params`]).
//!
//! The table has one row per output time `t_k` and the columns `t, u[0], …` (element names
//! from the program's states: `u[1]`, `x[0,1]`, a scalar state by its name). `--out` ending in
//! `.npy` writes it as a `K × (1 + n)` little-endian `<f8` NPY array
//! ([`pnode_driver::data::write_npy`]); any other path (or standard output, the default) gets
//! CSV with a header. `--plot FILE.svg` draws the states against t (against log10 t when the
//! grid is `logspace`). Outputs are checked before the solve and written atomically; existing
//! files are replaced only with `--force` ([`crate::output`]). `--grid FILE` writes the grid
//! the solve stepped on (for adaptive steps, the accepted grid) as a CSV column `t`.

use crate::load::{Backend, Loaded, load};
use crate::output::{probe, write_new, write_with};
use crate::plot::trajectory_svg;
use crate::render::{self, ColorMode};
use crate::{Error, Exit};
use codespan_reporting::term::termcolor::WriteColor;
use pnode_driver::Trajectory;
use pnode_ir::lower::Steps;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The options of `pnodec solve`.
#[derive(Clone, Debug, Default)]
pub struct SolveOptions {
    /// Where to write the trajectory (`None` or `-`: CSV on standard output).
    pub out: Option<PathBuf>,
    /// Where to draw the SVG plot.
    pub plot: Option<PathBuf>,
    /// Where to write the grid the solve stepped on (CSV, a column `t`).
    pub grid: Option<PathBuf>,
    /// Solve with the parameters of this file (what `pnodec train` writes) instead of θ0.
    pub params: Option<PathBuf>,
    /// Replace existing files.
    pub force: bool,
    /// The model backend.
    pub backend: Backend,
    /// Overrides the seed of the random initializers.
    pub seed: Option<u64>,
}

/// Whether the model's grid is log-spaced (its plot gets a log time axis).
pub fn log_spaced(loaded: &Loaded) -> bool {
    loaded
        .program()
        .solve
        .as_ref()
        .is_some_and(|s| matches!(s.steps, Steps::Logspace { .. }))
}

fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Writes the trajectory as NPY (`K × (1 + n)`, time first) to a new file (or, with `force`,
/// over an existing one), atomically ([`crate::output::write_with`]).
pub fn write_trajectory_npy(path: &Path, traj: &Trajectory, force: bool) -> Result<(), Error> {
    let n = traj.state_len;
    let mut values = Vec::with_capacity(traj.times.len() * (n + 1));
    for (k, &t) in traj.times.iter().enumerate() {
        values.push(t);
        values.extend_from_slice(traj.state(k).unwrap_or(&[]));
    }
    write_with(path, force, |_, at| {
        pnode_driver::data::write_npy(at, &[traj.times.len(), n + 1], &values)
    })
}

/// `pnodec solve` on one file.
pub fn solve_file(
    path: &Path,
    opts: &SolveOptions,
    stdout: &mut dyn Write,
    err: &mut dyn WriteColor,
) -> Result<Exit, Error> {
    let out = opts.out.as_deref().filter(|p| *p != Path::new("-"));
    let outputs: Vec<(&'static str, &Path)> = out
        .map(|p| ("--out", p))
        .into_iter()
        .chain(opts.plot.as_deref().map(|p| ("--plot", p)))
        .chain(opts.grid.as_deref().map(|p| ("--grid", p)))
        .collect();
    probe(&outputs, opts.force)?;
    let Some(mut loaded) = load(path, opts.backend, opts.seed, err)? else {
        return Ok(Exit::Failed);
    };
    let theta = crate::params::theta_or_default(
        opts.params.as_deref(),
        loaded.program(),
        &loaded.setup().theta0,
        err,
    )?;
    let traj = loaded.run.solve(&mut loaded.model, &theta)?;
    let names = loaded.setup().state_names();
    match out {
        Some(p) if is_npy(p) => write_trajectory_npy(p, &traj, opts.force)?,
        Some(p) => write_new(p, traj.to_csv(&names).as_bytes(), opts.force)?,
        None => stdout.write_all(traj.to_csv(&names).as_bytes())?,
    }
    if let Some(p) = out {
        // A note on a closed stderr is dropped; the plot is still written.
        let _ = writeln!(
            err,
            "wrote {} ({} output times × {} states)",
            p.display(),
            traj.times.len(),
            traj.state_len
        );
    }
    if let Some(p) = opts.plot.as_deref() {
        let svg = trajectory_svg(
            &loaded.program().name,
            &traj.times,
            &traj.states,
            &names,
            log_spaced(&loaded),
        )
        .map_err(Error::Usage)?;
        write_new(p, svg.as_bytes(), opts.force)?;
        let _ = writeln!(err, "wrote {}", p.display());
    }
    if let Some(p) = opts.grid.as_deref() {
        let (csv, n) = grid_csv(&loaded);
        write_new(p, csv.as_bytes(), opts.force)?;
        let _ = writeln!(err, "wrote {} ({n} steps)", p.display());
    }
    Ok(Exit::Ok)
}

/// The grid of the last solve as CSV (`t`, then `t_0 … t_N` in shortest round-trip form) and
/// its number of steps: the accepted grid of adaptive steps, else the fixed grid.
pub fn grid_csv(loaded: &Loaded) -> (String, usize) {
    let mut s = String::from("t\n");
    let mut push = |t: f64| {
        s.push_str(&t.to_string());
        s.push('\n');
    };
    let n = match (loaded.run.accepted_times(), loaded.setup().grid.fixed()) {
        (Some(times), _) => {
            times.iter().for_each(|&t| push(t));
            times.len().saturating_sub(1)
        }
        (None, Some(g)) => {
            (0..=g.n_steps()).for_each(|i| push(g.t(i)));
            g.n_steps()
        }
        (None, None) => 0,
    };
    (s, n)
}

/// `pnodec solve FILE`.
pub fn run(path: &Path, opts: &SolveOptions, color: ColorMode) -> Exit {
    let mut err = color.stderr();
    let mut out = std::io::stdout().lock();
    match solve_file(path, opts, &mut out, &mut err) {
        Ok(status) => status,
        Err(e) => render::report_error(&mut err, &e),
    }
}
