//! Plan and print a schedule: `cargo run --release -p pnode-checkpoint --example plan -- N B S`
//! (N steps, B vectors of budget, S stages), printing the summary and the planning time.

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments: N B S"))
        .collect();
    let (n, b, s) = match args[..] {
        [n, b, s] => (n as usize, b, s),
        _ => (2000, 200, 4),
    };
    let cost = pnode_checkpoint::StepCost {
        rhs_per_step: s,
        rhs_per_stage_recompute: s - 1,
        vjp_per_reverse: s,
        stage_vectors: s,
    };
    for (name, plan) in [
        (
            "revolve",
            Box::new(|| pnode_checkpoint::revolve::revolve(n, b as usize)) as Box<dyn Fn() -> _>,
        ),
        (
            "multistage",
            Box::new(|| pnode_checkpoint::multistage::multistage(n, b, &cost)),
        ),
    ] {
        let start = std::time::Instant::now();
        let schedule = plan().expect("plan");
        let elapsed = start.elapsed();
        println!("{name}: planned in {:.3} s", elapsed.as_secs_f64());
        println!("{}", schedule.summary(&cost, 8).expect("valid"));
    }
}
