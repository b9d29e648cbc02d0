//! The ODE-Net demo small: it learns (loss falls, accuracy well above chance), its checkpoint
//! modes give the same gradients to the bit while holding the checkpoint memory their
//! schedules predict (store-all > solution-only > revolve), and the MNIST IDX reader rejects
//! malformed files with errors naming the file and the problem.

use std::path::{Path, PathBuf};

use crate::torch_lock;
use pnode_torch::demo::odenet::{
    self, DataError, OdeNetConfig, SyntheticConfig, mode_name, parse_mode, write_idx_images,
    write_idx_labels,
};
use pnode_torch::pnode_runtime::checkpoint::Checkpointing;

/// 16×16 generated digits: the stem's two stride-2 convolutions leave 4×4 feature maps.
fn small_data() -> odenet::Data {
    let data = odenet::generate(&SyntheticConfig {
        train: 320,
        test: 100,
        image_size: 16,
        noise: 0.1,
        seed: 3,
    })
    .unwrap();
    assert_eq!(data.train.images.size(), [320, 1, 16, 16]);
    assert_eq!(data.test.labels.size(), [100]);
    data
}

fn small_config(steps: usize, iterations: usize) -> OdeNetConfig {
    OdeNetConfig {
        channels: 16,
        downsample: 2,
        steps,
        iterations,
        batch_size: 32,
        learning_rate: 1e-2,
        seed: 7,
        eval_limit: None,
        device: pnode_torch::tch::Device::Cpu,
    }
}

#[test]
fn a_small_odenet_learns() {
    let _lock = torch_lock();
    let data = small_data();
    let config = small_config(2, 80);
    let r = odenet::train(&config, &data, &Checkpointing::SolutionOnly, |_, _| {}).unwrap();
    let (first, last) = (r.first_losses_mean(5), r.last_losses_mean(5));
    println!(
        "loss {first:.3} -> {last:.3}, train accuracy {:.2}, test accuracy {:.2}, {:.1} ms/iter",
        r.train_accuracy,
        r.test_accuracy,
        r.ms_per_iteration()
    );
    assert_eq!(r.losses.len(), 80);
    assert!(last < 0.7 * first, "loss {first} -> {last}");
    assert!(
        r.train_accuracy > 0.4,
        "training accuracy {} (chance 0.1)",
        r.train_accuracy
    );
    assert!(r.test_accuracy > 0.25, "test accuracy {}", r.test_accuracy);
    assert_eq!(r.iteration_seconds.len(), 80);
    assert!(r.ms_per_iteration() > 0.0);
}

#[test]
fn checkpoint_modes_agree_to_the_bit_and_hold_what_they_predict() {
    let _lock = torch_lock();
    let data = small_data();
    let config = small_config(6, 3);
    let modes = [
        Checkpointing::StoreAll,
        Checkpointing::SolutionOnly,
        Checkpointing::Revolve { slots: 2 },
    ];
    let mut iterations = 0;
    let comparison = odenet::compare(&config, &data, &modes, |event| {
        if let odenet::Event::Iteration { .. } = event {
            iterations += 1;
        }
    })
    .unwrap();
    assert_eq!(iterations, 3 * config.iterations);

    for r in &comparison.results {
        let name = mode_name(&r.mode);
        println!("{name}: losses {:?}, stats {:?}", r.losses, r.stats);
        // One forward and one reverse sweep over all steps in the last iteration.
        assert_eq!(r.stats.forward_steps, config.steps as u64, "{name}");
        assert_eq!(r.stats.reversed_steps, config.steps as u64, "{name}");
        // The schedule's prediction is what the block held.
        assert_eq!(
            r.predicted.peak_stored_bytes, r.stats.peak_stored_bytes,
            "{name}"
        );
    }

    // Same weights, same minibatches: the discrete adjoint gives the same first gradient to
    // the bit under every schedule (recomputation repeats the same operations), and so the
    // same training run.
    let first = &comparison.results[0];
    assert!(
        first
            .first_gradients
            .iter()
            .any(|(n, _)| n.starts_with("ode."))
    );
    assert!(
        first
            .first_gradients
            .iter()
            .any(|(n, _)| n.starts_with("stem."))
    );
    assert!(comparison.first_gradients_identical());
    assert_eq!(comparison.max_first_gradient_difference(), Some(0.0));
    for r in &comparison.results[1..] {
        assert_eq!(r.losses, first.losses, "{}", mode_name(&r.mode));
    }

    // Checkpoint memory: every stage of every step > every solution > two revolve slots.
    let held: Vec<u64> = comparison
        .results
        .iter()
        .map(|r| r.stats.peak_stored_bytes)
        .collect();
    assert!(held[0] > held[1] && held[1] > held[2], "{held:?}");
    assert_eq!(config.feature_size(16, 16), (4, 4));
    let state_bytes = 32 * 16 * 4 * 4 * 4; // [32, 16, 4, 4] f32
    assert_eq!(held[2], 2 * state_bytes, "{held:?}");
    // Recomputation pays for it.
    let recomputed: Vec<u64> = comparison
        .results
        .iter()
        .map(|r| r.stats.recomputed_steps + r.stats.stage_recomputations)
        .collect();
    assert!(
        recomputed[0] < recomputed[1] && recomputed[1] < recomputed[2],
        "{recomputed:?}"
    );
}

#[test]
fn the_generated_set_is_deterministic_and_balanced() {
    let (a, la) = odenet::generate_raw(50, 12, 0.1, 5);
    let (b, lb) = odenet::generate_raw(50, 12, 0.1, 5);
    let (c, _) = odenet::generate_raw(50, 12, 0.1, 6);
    assert_eq!((a.len(), la.len()), (50 * 144, 50));
    assert!(a == b && la == lb);
    assert_ne!(a, c);
    for class in 0..10u8 {
        assert_eq!(la.iter().filter(|&&l| l == class).count(), 5);
    }
    assert!(
        odenet::generate(&SyntheticConfig {
            train: 0,
            ..Default::default()
        })
        .is_err()
    );
}

#[test]
fn mode_names_parse() {
    for (text, mode) in [
        ("store-all", Checkpointing::StoreAll),
        ("solution-only", Checkpointing::SolutionOnly),
        (
            "revolve",
            Checkpointing::Revolve {
                slots: odenet::DEFAULT_REVOLVE_SLOTS,
            },
        ),
        ("revolve:3", Checkpointing::Revolve { slots: 3 }),
        ("online:4", Checkpointing::Online { slots: 4 }),
    ] {
        assert_eq!(parse_mode(text).unwrap(), mode);
        assert_eq!(parse_mode(&mode_name(&mode)).unwrap(), mode);
    }
    for bad in ["storeall", "revolve:0", "revolve:x", "budget:3"] {
        assert!(parse_mode(bad).is_err(), "{bad}");
    }
}

/// A fresh directory under cargo's temporary directory for integration tests.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("odenet-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A valid MNIST-shaped directory: `n_train` and `n_test` images of 6×5 pixels.
fn write_mnist(dir: &Path, n_train: usize, n_test: usize) {
    for (split, n) in [("train", n_train), ("t10k", n_test)] {
        let pixels: Vec<u8> = (0..n * 30).map(|i| (i * 7 % 256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        write_idx_images(
            &dir.join(format!("{split}-images-idx3-ubyte")),
            6,
            5,
            &pixels,
        )
        .unwrap();
        write_idx_labels(&dir.join(format!("{split}-labels-idx1-ubyte")), &labels).unwrap();
    }
}

fn load_error(dir: &Path) -> (DataError, String) {
    let err = odenet::load_mnist(dir).unwrap_err();
    let text = err.to_string();
    (err, text)
}

#[test]
fn mnist_idx_files_load_and_malformed_ones_are_named() {
    // Valid files load with their shapes and labels.
    let dir = scratch("valid");
    write_mnist(&dir, 12, 4);
    let data = odenet::load_mnist(&dir).unwrap();
    assert_eq!(data.train.images.size(), [12, 1, 6, 5]);
    assert_eq!(data.test.images.size(), [4, 1, 6, 5]);
    assert_eq!(
        Vec::<i64>::try_from(&data.test.labels).unwrap(),
        vec![0, 1, 2, 3]
    );
    // Pixel 1 of image 0 is 7/255, normalised with MNIST's mean and deviation.
    let p = data.train.images.flatten(0, -1).double_value(&[1]);
    assert!((p - (7.0 / 255.0 - 0.1307) / 0.3081).abs() < 1e-6, "{p}");

    // Bad magic number: a labels file where images belong.
    let dir = scratch("magic");
    write_mnist(&dir, 12, 4);
    let images = dir.join("train-images-idx3-ubyte");
    write_idx_labels(&images, &[1, 2, 3]).unwrap();
    let (err, text) = load_error(&dir);
    assert!(matches!(err, DataError::Format { .. }), "{text}");
    assert!(text.contains(&images.display().to_string()), "{text}");
    assert!(
        text.contains("bad magic number 0x00000801, expected 0x00000803"),
        "{text}"
    );

    // Truncated data: the header promises more pixels than the file holds.
    let dir = scratch("truncated");
    write_mnist(&dir, 12, 4);
    let images = dir.join("t10k-images-idx3-ubyte");
    let bytes = std::fs::read(&images).unwrap();
    std::fs::write(&images, &bytes[..bytes.len() - 7]).unwrap();
    let (_, text) = load_error(&dir);
    assert!(text.contains(&images.display().to_string()), "{text}");
    assert!(
        text.contains("truncated")
            && text.contains("promises 120 data bytes")
            && text.contains("113"),
        "{text}"
    );

    // Truncated header.
    std::fs::write(&images, &bytes[..10]).unwrap();
    let (_, text) = load_error(&dir);
    assert!(
        text.contains(&images.display().to_string()) && text.contains("truncated"),
        "{text}"
    );

    // Counts of images and labels disagree: the message names both files.
    let dir = scratch("count");
    write_mnist(&dir, 12, 4);
    let labels = dir.join("train-labels-idx1-ubyte");
    write_idx_labels(&labels, &[0; 11]).unwrap();
    let (_, text) = load_error(&dir);
    assert!(text.contains(&labels.display().to_string()), "{text}");
    assert!(text.contains("count mismatch: 11 labels"), "{text}");
    assert!(
        text.contains("train-images-idx3-ubyte holds 12 images"),
        "{text}"
    );

    // A label that is not a digit.
    write_idx_labels(&labels, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0]).unwrap();
    let (_, text) = load_error(&dir);
    assert!(text.contains("label 10 at index 10"), "{text}");

    // Gzip-compressed (as downloaded): plain IDX is required.
    let dir = scratch("gzip");
    write_mnist(&dir, 12, 4);
    let images = dir.join("train-images-idx3-ubyte");
    std::fs::write(&images, [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0]).unwrap();
    let (_, text) = load_error(&dir);
    assert!(
        text.contains(&images.display().to_string()) && text.contains("gzip"),
        "{text}"
    );

    // Missing file, with only the .gz next to it.
    std::fs::remove_file(&images).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), [0x1f, 0x8b]).unwrap();
    let (err, text) = load_error(&dir);
    assert!(matches!(err, DataError::Io { .. }), "{text}");
    assert!(
        text.contains(&images.display().to_string())
            && text.contains("not found")
            && text.contains("gunzip"),
        "{text}"
    );
}
