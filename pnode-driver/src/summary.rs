//! The text that states what the checkpointing of a resolved program will do, in one place:
//! `pnodec emit --schedule` prints it and the `#[neural_ode]`/`model!` macro puts it in the
//! generated `Ode::SCHEDULE_SUMMARY`.
//!
//! For a fixed grid the text is the planned schedule's own summary (`Schedule::summary`). For
//! adaptive steps the number `N` of accepted steps is known only after the run, so
//! [`adaptive_schedule`] states the bound the mode guarantees before it: store-all and
//! solution-only grow with `N`; `online(slots = c)` (and two-level, online over RAM and disk
//! slots together) holds at most `c` solutions whatever `N`,
//! with a final checkpoint spacing `d ≤ max(1, 2(N−1)/c)` and at most `N(d−1)/2` recomputed
//! steps (`(N−1)(N−2)/2` for `c = 1`; the derivation is in `pnode_checkpoint::online`).

use pnode_ir::lower::Program;
use pnode_runtime::adaptive::{AdaptiveCheckpointing, AdaptiveOptions};
use pnode_runtime::{Budget, Checkpointing};

use crate::error::Result;
use crate::resolve::Resolved;

/// The checkpointing of adaptive steps, whose number `N` is known only after the run: the
/// policy the forward sweep follows step by step and its bounds, one line each (see the
/// [module docs](self); [`AdaptiveCheckpointing::from_checkpointing`] maps the block's mode;
/// Revolve needs `N` and is refused).
pub fn adaptive_schedule(
    program: &Program,
    r: &Resolved,
    options: &AdaptiveOptions,
) -> Result<String> {
    let n = program.state_len() as u64;
    let bytes = 8 * n;
    let mode = AdaptiveCheckpointing::from_checkpointing(&r.checkpointing, bytes)?;
    let stage = r.cost.stage_vectors;
    let mut text = format!(
        "model `{}`: {} states, adaptive steps (at most {} step attempts), {} output times, \
         checkpointing {}\n",
        program.name,
        n,
        options.max_steps,
        r.output_times.len(),
        checkpointing_syntax(&r.checkpointing)
    );
    text += &match mode {
        AdaptiveCheckpointing::StoreAll => format!(
            "store-all: every accepted step keeps its {stage} stage vectors ({} bytes a step), \
             so memory grows with the accepted steps N; no recomputation\n",
            stage * bytes
        ),
        AdaptiveCheckpointing::SolutionOnly => format!(
            "solution-only: every accepted solution is kept ({bytes} bytes a step), so memory \
             grows with the accepted steps N; each reversed step recomputes its stages once\n"
        ),
        AdaptiveCheckpointing::Online { slots } => format!(
            "online: at most {slots} solution slots ({} bytes) at every step, whatever the \
             number N of accepted steps, plus one step's {stage} stage vectors; checkpoints are \
             kept at multiples of a spacing d that doubles when the slots are full, so \
             d <= max(1, 2(N-1)/{slots}), and the reverse sweep recomputes at most N(d-1)/2 \
             steps{}\n",
            slots as u64 * bytes,
            if slots == 1 {
                " ((N-1)(N-2)/2 with one slot)"
            } else {
                ""
            }
        ),
        AdaptiveCheckpointing::TwoLevel {
            ram_slots,
            disk_slots,
        } => format!(
            "online over two levels: at most {ram_slots} solution slots in RAM ({} bytes) and \
             {disk_slots} on disk at every step, whatever the number N of accepted steps; \
             checkpoints are kept at multiples of a spacing d that doubles when the slots are \
             full, so d <= max(1, 2(N-1)/{}), and the reverse sweep recomputes at most \
             N(d-1)/2 steps\n",
            ram_slots as u64 * bytes,
            ram_slots + disk_slots
        ),
    };
    text += "rejected steps hold no memory and are never reversed or recomputed\n";
    Ok(text)
}

/// A checkpoint mode as the `solve` block writes it (`revolve(slots = 8)`), for messages.
pub fn checkpointing_syntax(c: &Checkpointing) -> String {
    match c {
        Checkpointing::StoreAll => "store_all".into(),
        Checkpointing::SolutionOnly => "solution_only".into(),
        Checkpointing::Revolve { slots } => format!("revolve(slots = {slots})"),
        Checkpointing::Online { slots } => format!("online(slots = {slots})"),
        Checkpointing::Budget(Budget::Bytes(b)) => format!("budget(bytes = {b})"),
        Checkpointing::Budget(Budget::Vectors(v)) => format!("budget(vectors = {v})"),
        Checkpointing::Budget(Budget::Slots(s)) => format!("budget of {s} solution slots"),
        Checkpointing::TwoLevel {
            ram_slots,
            disk_slots,
        } => format!("two-level ({ram_slots} RAM slots, {disk_slots} disk slots)"),
        Checkpointing::Custom(_) => "a custom schedule".into(),
    }
}
