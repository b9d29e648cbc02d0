//! The spiral demo trains: on a short trajectory with few iterations both the batch loss and
//! the learned model's whole-trajectory error fall well below the untrained model's, for two
//! seeds.

use crate::torch_lock;
use pnode_torch::demo::spiral::{SpiralConfig, train};
use pnode_torch::pnode_runtime::checkpoint::Checkpointing;

#[test]
fn spiral_training_reduces_the_trajectory_error() {
    // libtorch's global generator seeds the network: the demos take turns (and run on one
    // intra-op thread: libtorch's OpenMP pool oversubscribes a busy 2-core machine).
    let _lock = torch_lock();
    let start = std::time::Instant::now();
    for seed in [0, 1] {
        let config = SpiralConfig {
            samples: 200,
            t_end: 5.0,
            batch_time: 8,
            batch_size: 16,
            iterations: 300,
            learning_rate: 1e-2,
            hidden: 32,
            eval_every: 100,
            seed,
            checkpointing: Checkpointing::Revolve { slots: 2 },
            device: pnode_torch::tch::Device::Cpu,
        };
        let mut batch = Vec::new();
        let result = train(&config, |_, loss| batch.push(loss)).unwrap();
        assert_eq!(batch.len(), 300);
        assert!(batch.iter().all(|l| l.is_finite()));
        let (first, last) = (
            result.eval_losses[0].1,
            result.eval_losses.last().unwrap().1,
        );
        eprintln!(
            "seed {seed}: trajectory loss {first} → {last} ({:?})",
            start.elapsed()
        );
        assert!(
            last < 0.6 * first,
            "seed {seed}: trajectory loss {first} → {last}"
        );
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (early, late) = (mean(&batch[..50]), mean(&batch[250..]));
        assert!(
            late < 0.5 * early,
            "seed {seed}: batch loss {early} → {late}"
        );
        assert_eq!(result.truth.len(), 200);
        assert_eq!(result.learned.len(), 200);
        // The true trajectory starts at (2, 0) and spirals inwards.
        assert_eq!(result.truth[0], [2.0, 0.0]);
        let r = |u: [f64; 2]| (u[0] * u[0] + u[1] * u[1]).sqrt();
        assert!(r(result.truth[199]) < r(result.truth[0]));
    }
}
