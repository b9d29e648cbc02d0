//! Compile time of every model of the test table: `JitModel` (RHS + JVP + VJP) and the fused
//! RK4 and Dopri5 steppers (four kernels each), median of 5.
//! `cargo run --release -p pnode-jit --example compile_times`.

use pnode_jit::{JitErkStepper, JitModel};
use pnode_runtime::Tableau;
use pnode_testkit::models::supported_models;
use std::time::Duration;

fn median(mut f: impl FnMut() -> Duration) -> f64 {
    let mut v: Vec<Duration> = (0..5).map(|_| f()).collect();
    v.sort();
    v[2].as_secs_f64() * 1e3
}

fn main() {
    println!(
        "{:<16} {:>6} {:>10} {:>10} {:>12}",
        "model", "nodes", "JitModel", "fused rk4", "fused dopri5"
    );
    for m in supported_models() {
        let model = median(|| JitModel::new(&m.f).unwrap().compile_time());
        let rk4 = median(|| {
            JitErkStepper::new(Tableau::rk4(), &m.f)
                .unwrap()
                .compile_time()
        });
        let dp5 = median(|| {
            JitErkStepper::new(Tableau::dopri5(), &m.f)
                .unwrap()
                .compile_time()
        });
        println!(
            "{:<16} {:>6} {:>8.2}ms {:>8.2}ms {:>10.2}ms",
            m.name,
            m.f.node_count(),
            model,
            rk4,
            dp5
        );
    }
}
