//! The disk tier of checkpointing: two-level schedules give the store-all gradient bit for bit,
//! the executor's statistics equal the cost model (disk traffic included), the checkpoint files
//! are gone afterwards, and an unwritable directory, a vanished, truncated or altered file or a
//! full disk is `Error::CheckpointIo` — never a gradient.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::common::{Setup, lotka_volterra, mlp, quadratic_loss, same_bits};
use pnode_runtime::checkpoint::two_level::two_level_advances;
use pnode_runtime::model::RhsVjp;
use pnode_runtime::{
    Action, Checkpointing, ErkStepper, Error, Gradient, Schedule, Solver, StageSource, Tableau,
};

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// A solver for `mode` keeping its disk checkpoints under `parent`.
fn solver_in<M: RhsVjp>(
    setup: &Setup<M>,
    mode: Checkpointing,
    parent: &Path,
) -> Solver<ErkStepper> {
    let mut solver = setup.solver(mode);
    solver.set_checkpoint_dir(parent).unwrap();
    solver
}

/// Forward sweep and `∂L/∂u` at the outputs.
fn forward<M: RhsVjp>(setup: &mut Setup<M>, solver: &mut Solver<ErkStepper>) -> Vec<f64> {
    let (u0, p) = (setup.u0.clone(), setup.p.clone());
    let out = solver.forward(&mut setup.model, &u0, &p).unwrap().to_vec();
    let mut dl = vec![0.0; out.len()];
    quadratic_loss(&out, &setup.targets, &mut dl);
    dl
}

fn gradient<M: RhsVjp>(
    setup: &mut Setup<M>,
    solver: &mut Solver<ErkStepper>,
) -> pnode_runtime::Result<Gradient> {
    let dl = forward(setup, solver);
    solver.backward(&mut setup.model, &dl)
}

/// Two-level against store-all: same bits, statistics as predicted, nothing left on disk.
fn check_bitwise<M: RhsVjp>(mut setup: Setup<M>, modes: &[(usize, usize)]) {
    let (_, reference) = setup.gradient(Checkpointing::StoreAll);
    let parent = tempfile::tempdir().unwrap();
    for &(ram_slots, disk_slots) in modes {
        let name = format!("{} ram={ram_slots} disk={disk_slots}", setup.tableau.name());
        let mode = Checkpointing::TwoLevel {
            ram_slots,
            disk_slots,
        };
        let mut solver = solver_in(&setup, mode, parent.path());
        let g = gradient(&mut setup, &mut solver).unwrap();
        assert!(same_bits(&g, &reference), "{name}: not bitwise store-all");
        assert_eq!(solver.stats(), solver.predicted_stats().unwrap(), "{name}");
        assert!(solver.stats().disk_writes > 0, "{name}");
        assert!(entries(parent.path()).is_empty(), "{name}: files left");
    }
}

#[test]
fn two_level_gradients_are_bitwise_store_all_for_every_tableau() {
    for tableau in Tableau::all() {
        // 40 steps: intervals of 10, 14, 40 (one disk slot) and 1 (no RAM slot).
        check_bitwise(
            lotka_volterra(tableau.clone()),
            &[(2, 4), (1, 3), (3, 1), (0, 40)],
        );
        // 16 steps: intervals of 4 and 8.
        check_bitwise(mlp(tableau), &[(1, 4), (2, 2)]);
    }
}

#[test]
fn rk4_lotka_volterra_statistics_equal_the_cost_model() {
    let mut setup = lotka_volterra(Tableau::rk4());
    let parent = tempfile::tempdir().unwrap();
    let mode = Checkpointing::TwoLevel {
        ram_slots: 2,
        disk_slots: 4,
    };
    let mut solver = solver_in(&setup, mode, parent.path());
    gradient(&mut setup, &mut solver).unwrap();
    let stats = solver.stats();
    assert_eq!(stats, solver.predicted_stats().unwrap());
    // N = 40, 4 disk slots: intervals of d = 10 starting at u0, u10, u20, u30, each reversed
    // with 2 RAM slots plus its disk base: A = 30 + 4·p(10, 3) = 30 + 4·15 = 90 advances.
    assert_eq!(two_level_advances(40, 2, 4), 90);
    assert_eq!(stats.forward_steps, 40);
    assert_eq!(stats.recomputed_steps, 90 - 39);
    assert_eq!(stats.stage_recomputations, 39);
    assert_eq!(stats.rhs_evals, 4 * (40 + 51) + 3 * 39);
    assert_eq!(stats.vjp_evals, 160);
    // RAM: 2 slots of 2 values; disk: 4 solutions written once each. Each of the first three
    // intervals reads its start once to begin and twice more along the recursion's left edge;
    // the last one begins from the first sweep's u30 and reads it twice.
    assert_eq!(
        (stats.peak_stored_vectors, stats.peak_stored_bytes),
        (2, 32)
    );
    assert_eq!((stats.peak_disk_vectors, stats.peak_disk_bytes), (4, 64));
    assert_eq!((stats.disk_writes, stats.disk_reads), (4, 3 * 3 + 2));
}

#[test]
fn files_live_from_forward_to_the_end_of_backward() {
    let mut setup = lotka_volterra(Tableau::rk4());
    let parent = tempfile::tempdir().unwrap();
    let mode = Checkpointing::TwoLevel {
        ram_slots: 2,
        disk_slots: 4,
    };
    let mut solver = solver_in(&setup, mode.clone(), parent.path());
    assert!(solver.checkpoint_dir().is_none());
    let dl = forward(&mut setup, &mut solver);
    let dir = solver.checkpoint_dir().unwrap().to_path_buf();
    assert_eq!(entries(parent.path()), vec![dir.clone()]);
    // One file per disk slot, raw f64: u0, u10, u20, u30 of a 2-vector.
    let files = entries(&dir);
    assert_eq!(files.len(), 4);
    for file in &files {
        assert_eq!(std::fs::metadata(file).unwrap().len(), 16, "{file:?}");
    }
    let first = std::fs::read(dir.join("slot-2.f64")).unwrap();
    let u0: Vec<f64> = first
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(u0, setup.u0);
    solver.backward(&mut setup.model, &dl).unwrap();
    assert!(solver.checkpoint_dir().is_none());
    assert!(entries(parent.path()).is_empty());

    // A forward sweep that is never reversed: removed by the next solve, or by drop.
    forward(&mut setup, &mut solver);
    let (u0, p) = (setup.u0.clone(), setup.p.clone());
    solver.solve(&mut setup.model, &u0, &p).unwrap();
    assert!(entries(parent.path()).is_empty());
    forward(&mut setup, &mut solver);
    assert_eq!(entries(parent.path()).len(), 1);
    drop(solver);
    assert!(entries(parent.path()).is_empty());

    // The default place is the system's temporary directory.
    let mut solver = setup.solver(mode);
    forward(&mut setup, &mut solver);
    let dir = solver.checkpoint_dir().unwrap().to_path_buf();
    assert!(dir.starts_with(std::env::temp_dir()), "{dir:?}");
    let g = solver.backward(&mut setup.model, &dl).unwrap();
    assert!(!dir.exists());
    assert!(same_bits(&g, &setup.gradient(Checkpointing::StoreAll).1));
}

#[test]
fn an_unusable_directory_is_an_error_naming_it() {
    let mut setup = lotka_volterra(Tableau::rk4());
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    let mode = Checkpointing::TwoLevel {
        ram_slots: 2,
        disk_slots: 4,
    };
    let mut solver = setup.solver(mode);
    for parent in [
        file.clone(),
        file.join("below"),
        scratch.path().join("missing"),
    ] {
        let err = solver.set_checkpoint_dir(&parent).unwrap_err();
        match &err {
            Error::CheckpointIo { path, op, .. } => {
                assert_eq!((path, *op), (&parent, "create a directory in"));
            }
            other => panic!("unexpected error {other}"),
        }
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "checkpoint create a directory in failed for `{}`: ",
                parent.display()
            )),
            "{text}"
        );
    }
    // A directory that vanishes before the forward sweep: the sweep fails, naming it.
    let parent = scratch.path().join("gone");
    std::fs::create_dir(&parent).unwrap();
    solver.set_checkpoint_dir(&parent).unwrap();
    std::fs::remove_dir(&parent).unwrap();
    let (u0, p) = (setup.u0.clone(), setup.p.clone());
    let err = solver.forward(&mut setup.model, &u0, &p).unwrap_err();
    assert!(
        matches!(&err, Error::CheckpointIo { path, kind: ErrorKind::NotFound, .. } if *path == parent),
        "{err}"
    );
    let err = solver.backward(&mut setup.model, &[0.0; 8]).unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err}");
}

/// Forward, then `sabotage` the checkpoint directory, then backward: it must fail as `check`
/// says and leave nothing behind.
fn sabotaged(mode: Checkpointing, sabotage: impl FnOnce(&Path), check: impl FnOnce(&Error, &Path)) {
    let mut setup = lotka_volterra(Tableau::rk4());
    let parent = tempfile::tempdir().unwrap();
    let mut solver = solver_in(&setup, mode, parent.path());
    let dl = forward(&mut setup, &mut solver);
    let dir = solver.checkpoint_dir().unwrap().to_path_buf();
    sabotage(&dir);
    let err = solver.backward(&mut setup.model, &dl).unwrap_err();
    check(&err, &dir);
    assert!(entries(parent.path()).is_empty(), "files left after {err}");
    // The sweep is spent: no second try at the same checkpoints.
    assert!(matches!(
        solver.backward(&mut setup.model, &dl),
        Err(Error::Usage(_))
    ));
    // A fresh forward sweep works again.
    let g = gradient(&mut setup, &mut solver).unwrap();
    assert!(same_bits(&g, &setup.gradient(Checkpointing::StoreAll).1));
}

const TWO_LEVEL: Checkpointing = Checkpointing::TwoLevel {
    ram_slots: 2,
    disk_slots: 4,
};

#[test]
fn a_vanished_directory_fails_the_reverse_sweep() {
    sabotaged(
        TWO_LEVEL,
        |dir| std::fs::remove_dir_all(dir).unwrap(),
        |err, dir| match err {
            Error::CheckpointIo { path, op, kind, .. } => {
                assert!(path.starts_with(dir), "{err}");
                assert_eq!((*op, *kind), ("open for reading", ErrorKind::NotFound));
            }
            other => panic!("unexpected error {other}"),
        },
    );
}

#[test]
fn a_truncated_file_is_a_short_read() {
    sabotaged(
        TWO_LEVEL,
        |dir| {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("slot-5.f64"))
                .unwrap();
            f.set_len(12).unwrap();
        },
        |err, dir| {
            assert_eq!(
                err.to_string(),
                format!(
                    "checkpoint read failed for `{}`: the file is shorter than the 16 bytes \
                     written to it",
                    dir.join("slot-5.f64").display()
                )
            );
        },
    );
}

#[test]
fn an_altered_file_fails_its_checksum() {
    sabotaged(
        TWO_LEVEL,
        |dir| {
            let path = dir.join("slot-3.f64");
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[0] ^= 0x10;
            std::fs::write(&path, bytes).unwrap();
        },
        |err, _| {
            assert!(
                matches!(
                    err,
                    Error::CheckpointIo {
                        kind: ErrorKind::InvalidData,
                        ..
                    }
                ),
                "{err}"
            );
        },
    );
}

/// Store-all with every stage slot on disk, and a schedule that writes stage values to disk
/// in its reverse phase (slot 1): restore u0 from disk slot 0, advance to step n, keep its
/// stages in slot 1, reverse from there.
fn stages_on_disk(n_steps: usize) -> (Schedule, Schedule) {
    let all = Schedule::store_all(n_steps);
    let all_on_disk = Schedule::tiered(
        "store-all on disk",
        n_steps,
        all.forward().collect(),
        all.reverse().collect(),
        0..n_steps - 1,
    )
    .unwrap();
    let last = n_steps - 1;
    let forward = vec![
        Action::Store { slot: 0, step: 0 },
        Action::Advance { from: 0, to: last },
        Action::Tape { step: last },
    ];
    let mut reverse = vec![Action::Reverse {
        step: last,
        stages: StageSource::Tape,
    }];
    for n in (0..last).rev() {
        reverse.push(Action::Restore { slot: 0, step: 0 });
        if n > 0 {
            reverse.push(Action::Advance { from: 0, to: n });
        }
        reverse.push(Action::StepKeepingStages { slot: 1, step: n });
        reverse.push(Action::Reverse {
            step: n,
            stages: StageSource::Slot(1),
        });
    }
    reverse.push(Action::Free { slot: 1 });
    reverse.push(Action::Free { slot: 0 });
    let rewriting = Schedule::tiered("rewriting", n_steps, forward, reverse, [0, 1]).unwrap();
    (all_on_disk, rewriting)
}

#[test]
fn stage_slots_on_disk_give_store_all_bits_and_predicted_traffic() {
    let (all_on_disk, rewriting) = stages_on_disk(40);
    for tableau in [Tableau::euler(), Tableau::rk4(), Tableau::dopri5()] {
        let s = tableau.live_stages() as u64;
        let mut setup = lotka_volterra(tableau);
        let (_, reference) = setup.gradient(Checkpointing::StoreAll);
        let parent = tempfile::tempdir().unwrap();
        for schedule in [&all_on_disk, &rewriting] {
            let name = format!("{} / {}", setup.tableau.name(), schedule.name());
            let mode = Checkpointing::Custom(schedule.clone());
            let mut solver = solver_in(&setup, mode, parent.path());
            let g = gradient(&mut setup, &mut solver).unwrap();
            assert!(same_bits(&g, &reference), "{name}");
            let stats = solver.stats();
            assert_eq!(stats, solver.predicted_stats().unwrap(), "{name}");
            assert!(entries(parent.path()).is_empty(), "{name}");
            // (RAM peak, disk peak, written, read) in vectors.
            let expected = if schedule.name() == "rewriting" {
                // u0 once; 39 stage writes and reads of s vectors each, 39 restores of u0.
                (0, 1 + s, 1 + 39 * s, 39 + 39 * s)
            } else {
                (0, 39 * s, 39 * s, 39 * s)
            };
            let traffic = (
                stats.peak_stored_vectors,
                stats.peak_disk_vectors,
                stats.disk_writes,
                stats.disk_reads,
            );
            assert_eq!(traffic, expected, "{name}");
        }
    }
}

/// A full disk, simulated without mounts: the file of a slot first written in the reverse
/// phase is made a link to `/dev/full`, where every write fails with ENOSPC.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_fails_the_sweep_with_storage_full() {
    let (_, rewriting) = stages_on_disk(40);
    sabotaged(
        Checkpointing::Custom(rewriting),
        |dir| std::os::unix::fs::symlink("/dev/full", dir.join("slot-1.f64")).unwrap(),
        |err, dir| match err {
            Error::CheckpointIo { path, op, kind, .. } => {
                assert_eq!(path, &dir.join("slot-1.f64"));
                assert_eq!((*op, *kind), ("write", ErrorKind::StorageFull));
            }
            other => panic!("unexpected error {other}"),
        },
    );
}

#[test]
fn a_failed_forward_sweep_leaves_no_files() {
    let mut setup = lotka_volterra(Tableau::rk4());
    let parent = tempfile::tempdir().unwrap();
    let mut solver = solver_in(&setup, TWO_LEVEL, parent.path());
    // u0 is written to disk, then the first step overflows.
    let p = setup.p.clone();
    let err = solver
        .forward(&mut setup.model, &[1e200, 1e200], &p)
        .unwrap_err();
    assert!(
        matches!(err, Error::NonFiniteState { step: 0, .. }),
        "{err}"
    );
    assert!(solver.checkpoint_dir().is_none());
    assert!(entries(parent.path()).is_empty());
}

#[test]
fn a_clone_does_not_share_the_checkpoint_files() {
    let mut setup = lotka_volterra(Tableau::rk4());
    let parent = tempfile::tempdir().unwrap();
    let mut solver = solver_in(&setup, TWO_LEVEL, parent.path());
    let dl = forward(&mut setup, &mut solver);
    let mut copy = solver.clone();
    assert!(copy.checkpoint_dir().is_none());
    assert!(matches!(
        copy.backward(&mut setup.model, &dl),
        Err(Error::Usage(_))
    ));
    solver.backward(&mut setup.model, &dl).unwrap();
    assert!(entries(parent.path()).is_empty());
}

#[test]
fn too_small_a_two_level_budget_is_an_error() {
    let setup = lotka_volterra(Tableau::rk4());
    let mode = Checkpointing::TwoLevel {
        ram_slots: 0,
        disk_slots: 3,
    };
    let err = Solver::explicit(
        setup.tableau.clone(),
        &setup.model,
        setup.grid.clone(),
        &setup.output_times,
        mode,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "checkpoint budget of 0 RAM slots and 3 disk slots for 40 steps is too small: at least \
         1 RAM slot (or 40 disk slots) is needed"
    );
}
