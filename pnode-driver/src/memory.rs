//! Memory preflight: a run's large buffers are compared with the memory it may use *before*
//! they are allocated, so a grid, an output table or a checkpoint store that cannot fit is a
//! typed error ([`Error::Memory`]) naming the option to change, never an aborted process.
//!
//! The limit is the one set with [`set_max_memory`] (the command line's `--max-memory`), else
//! the memory the system has available (`MemAvailable` in `/proc/meminfo`); where neither is
//! known nothing is checked here, and the runtime's fallible allocations
//! ([`pnode_runtime::Error::OutOfMemory`]) still turn a failed allocation into an error.
//!
//! What is counted, in bytes:
//! * `steps`: [`GRID_BYTES_PER_POINT`] per point of a listed grid (the resolver's peak: the
//!   points read or computed, the same points with output times inserted, and the grid's
//!   points and step sizes, which the setup and the solver share). A uniform grid
//!   (`steps = N`) computes its points on demand and costs nothing, unless output times off
//!   its points are inserted: then it is listed, and counted when that happens;
//! * `outputs`: per output time, the time and three copies of the state (the solver's outputs,
//!   the loss gradient there, the trajectory handed back);
//! * `checkpoint`: the RAM checkpoint store a gradient allocates
//!   ([`pnode_runtime::Solver::checkpoint_bytes`]: the schedule's predicted peak).
//!
//! Each check counts what the earlier ones counted too (the grid, then the outputs on top of
//! it, then the checkpoints on top of both).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

use pnode_ir::lower::{Outputs, Program, Steps};

use crate::error::{Error, Result};

/// Bytes counted per grid point (see the module docs).
pub const GRID_BYTES_PER_POINT: u64 = 32;

/// What a memory check is about: the option that decides the buffer's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryUse {
    /// The time grid (`steps`).
    Steps,
    /// The solution at the output times (`outputs`).
    Outputs,
    /// The checkpoint store of a gradient (`checkpoint`).
    Checkpoint,
}

impl MemoryUse {
    /// The option's name in a `.pode` model.
    pub fn option(self) -> &'static str {
        match self {
            MemoryUse::Steps => "steps",
            MemoryUse::Outputs => "outputs",
            MemoryUse::Checkpoint => "checkpoint",
        }
    }

    /// What to change, for the error message.
    fn advice(self) -> &'static str {
        match self {
            MemoryUse::Steps => "use fewer `steps`",
            MemoryUse::Outputs => "use fewer `outputs`",
            MemoryUse::Checkpoint => {
                "use a `checkpoint` that keeps less, such as `revolve(slots = 10)` or \
                 `budget(bytes = ...)`"
            }
        }
    }
}

impl fmt::Display for MemoryUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.option())
    }
}

/// The memory a run may use, and where that figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Set explicitly ([`set_max_memory`], the command line's `--max-memory`).
    Given(u64),
    /// `MemAvailable` of `/proc/meminfo` when the check ran.
    Available(u64),
}

impl Limit {
    /// The limit in bytes.
    pub fn bytes(self) -> u64 {
        match self {
            Limit::Given(b) | Limit::Available(b) => b,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Given(b) => write!(f, "the {b} bytes allowed by --max-memory"),
            Limit::Available(b) => write!(f, "the {b} bytes available (MemAvailable)"),
        }
    }
}

/// `u64::MAX`: no explicit limit.
static MAX_MEMORY: AtomicU64 = AtomicU64::new(u64::MAX);

/// Set the memory every later check in this process compares with (`None`: the system's
/// available memory again). Meant for command-line tools (`pnodec --max-memory`).
pub fn set_max_memory(bytes: Option<u64>) {
    MAX_MEMORY.store(bytes.unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// The limit checks compare with now: the one set with [`set_max_memory`], else the
/// available memory, else `None` (not known: nothing is checked).
pub fn limit() -> Option<Limit> {
    match MAX_MEMORY.load(Ordering::Relaxed) {
        u64::MAX => available().map(Limit::Available),
        given => Some(Limit::Given(given)),
    }
}

/// `MemAvailable` of `/proc/meminfo`, in bytes (`None` where there is no such file or line).
pub fn available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

/// The `MemAvailable:  N kB` line of a `/proc/meminfo` text, in bytes.
fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let mut words = line["MemAvailable:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    let scale = match words.next() {
        None => 1,
        Some(unit) if unit.eq_ignore_ascii_case("kb") => 1024,
        Some(_) => return None,
    };
    value.checked_mul(scale)
}

/// A size that is not a number of bytes with an optional unit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "`{text}` is not a size: give bytes as a number with an optional unit (B, KB, MB, GB, TB, \
     KiB, MiB, GiB, TiB), for example 512MB or 2GiB"
)]
pub struct SizeError {
    /// The text given.
    pub text: String,
}

/// Parse a size such as `1000`, `512MB`, `2GiB` or `1.5 GB` into bytes (decimal units are
/// powers of 1000, binary ones powers of 1024; case-insensitive).
pub fn parse_size(text: &str) -> std::result::Result<u64, SizeError> {
    let err = || SizeError { text: text.into() };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let scale: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(err()),
    };
    if number.is_empty() {
        return Err(err());
    }
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(scale).ok_or_else(err);
    }
    let x: f64 = number.parse().map_err(|_| err())?;
    let bytes = (x * scale as f64).round();
    if !(bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64) {
        return Err(err());
    }
    Ok(bytes as u64)
}

/// A running total of the bytes a run needs, checked against a limit as items are added.
#[derive(Debug, Clone, Copy)]
pub struct Preflight {
    limit: Option<Limit>,
    total: u64,
}

impl Preflight {
    /// Checks against `limit` (`None`: nothing is refused).
    pub fn new(limit: Option<Limit>) -> Self {
        Self { limit, total: 0 }
    }

    /// Checks against [`limit()`].
    pub fn current() -> Self {
        Self::new(limit())
    }

    /// Bytes counted so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Count `bytes` for `what`; [`Error::Memory`] when the total passes the limit.
    pub fn add(&mut self, what: MemoryUse, bytes: u64) -> Result<()> {
        let total = self.total.saturating_add(bytes);
        if let Some(limit) = self.limit
            && total > limit.bytes()
        {
            return Err(Error::Memory {
                what,
                bytes,
                total,
                limit,
            });
        }
        self.total = total;
        Ok(())
    }

    /// Count the grid and the outputs `program` asks for, from their sizes as written (files
    /// are counted when they are read: their size is the file's), for states of `state_len`
    /// values. Nothing is allocated.
    pub fn program(&mut self, program: &Program) -> Result<()> {
        let state_len = program.state_len() as u64;
        let (points, outputs) = match &program.solve {
            None => (0, 1),
            Some(s) => {
                let points = match &s.steps {
                    // Computed on demand (counted by the resolver if outputs are inserted).
                    Steps::Uniform(_) => 0,
                    Steps::Logspace { count, .. } => count.saturating_add(1),
                    Steps::Times(v) => v.len() as u64,
                    // Adaptive steps: the accepted grid grows as the run goes.
                    Steps::Data(_) | Steps::Adaptive(_) => 0,
                };
                let outputs = match &s.outputs {
                    None => 1,
                    Some(Outputs::Linspace { count, .. }) => *count,
                    Some(Outputs::Times(v)) => v.len() as u64,
                    Some(Outputs::Data(_)) => 0,
                };
                (points, outputs)
            }
        };
        self.add(
            MemoryUse::Steps,
            points.saturating_mul(GRID_BYTES_PER_POINT),
        )?;
        self.add(MemoryUse::Outputs, output_bytes(outputs, state_len))
    }
}

/// Bytes counted for `outputs` output times of states of `state_len` values.
pub fn output_bytes(outputs: u64, state_len: u64) -> u64 {
    outputs.saturating_mul(
        state_len
            .saturating_mul(3)
            .saturating_add(1)
            .saturating_mul(8),
    )
}

/// The message of [`Error::Memory`].
pub(crate) fn message(what: MemoryUse, bytes: u64, total: u64, limit: &Limit) -> String {
    let counted = if total > bytes {
        format!(" ({total} bytes with what is counted before it)")
    } else {
        String::new()
    };
    format!(
        "not enough memory for `{what}`: it needs {bytes} bytes{counted}, more than {limit}; {}, \
         or raise --max-memory",
        what.advice()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("512MB"), Ok(512_000_000));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1.5 gb"), Ok(1_500_000_000));
        assert_eq!(parse_size("64kib"), Ok(65_536));
        for bad in [
            "",
            "MB",
            "12 parsecs",
            "-1",
            "1e3",
            "99999999999999999999TB",
        ] {
            let err = parse_size(bad).unwrap_err();
            assert!(err.to_string().contains("is not a size"), "{bad}: {err}");
        }
    }

    #[test]
    fn meminfo_is_read_in_kilobytes() {
        let text = "MemTotal:       16318640 kB\nMemFree:  1 kB\nMemAvailable:   12000000 kB\n";
        assert_eq!(parse_meminfo(text), Some(12_000_000 * 1024));
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn preflight_counts_and_names_what_passes_the_limit() {
        let mut p = Preflight::new(Some(Limit::Given(1000)));
        p.add(MemoryUse::Steps, 600).unwrap();
        let err = p.add(MemoryUse::Checkpoint, 500).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not enough memory for `checkpoint`: it needs 500 bytes (1100 bytes with what is \
             counted before it), more than the 1000 bytes allowed by --max-memory; use a \
             `checkpoint` that keeps less, such as `revolve(slots = 10)` or `budget(bytes = \
             ...)`, or raise --max-memory"
        );
        assert_eq!(p.total(), 600);
        Preflight::new(None)
            .add(MemoryUse::Steps, u64::MAX)
            .unwrap();
    }
}
