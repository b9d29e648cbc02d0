//! Time the cost model (`Schedule::predict`, one simulation of the ledger over actions generated
//! on demand) on store-all, solution-only, Revolve(10) and online(10) schedules, and the
//! generation of their actions alone:
//! `cargo run --release -p pnode-checkpoint --example simulate -- N…` (default N = 1000 10000
//! 30000), printing one line per schedule and N.

use pnode_checkpoint::online::OnlinePlanner;
use pnode_checkpoint::revolve::revolve;
use pnode_checkpoint::{Schedule, StepCost};

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments: N…"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000, 30_000]
    } else {
        sizes
    };
    let cost = StepCost {
        rhs_per_step: 4,
        rhs_per_stage_recompute: 3,
        vjp_per_reverse: 4,
        stage_vectors: 4,
    };
    for n in sizes {
        let schedules = [
            Schedule::store_all(n),
            Schedule::solution_only(n),
            revolve(n, 10).expect("plan"),
            OnlinePlanner::plan(n, 10).expect("plan"),
        ];
        for schedule in schedules {
            let start = std::time::Instant::now();
            let actions = schedule.forward().count() + schedule.reverse().count();
            let generated = start.elapsed();
            let start = std::time::Instant::now();
            let stats = schedule.predict(&cost, 8).expect("valid");
            let elapsed = start.elapsed();
            println!(
                "{:>14} N = {n:>8}: {actions:>9} actions generated in {:>9.3} ms, predicted \
                 in {:>9.3} ms (peak {} vectors, {} RHS evaluations)",
                schedule.name(),
                generated.as_secs_f64() * 1e3,
                elapsed.as_secs_f64() * 1e3,
                stats.peak_stored_vectors,
                stats.rhs_evals
            );
        }
    }
}
