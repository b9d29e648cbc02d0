//! Bad input gets a clear error naming what went wrong, never a panic.

use pnode_runtime::model::ClosureModel;
use pnode_runtime::problems::LotkaVolterra;
use pnode_runtime::{Checkpointing, Error, Schedule, Solver, Tableau, TimeGrid};

fn lv_solver(mode: Checkpointing) -> Solver<pnode_runtime::ErkStepper> {
    let grid = TimeGrid::uniform(0.0, 1.0, 10).unwrap();
    Solver::explicit(Tableau::rk4(), &LotkaVolterra::new(), grid, &[1.0], mode).unwrap()
}

#[test]
fn blow_up_names_the_step_and_time() {
    // du/dt = 1e100·u², u(0) = 1, forward Euler with h = 0.25: u1 = 2.5e99, u2 ≈ 1.6e298,
    // u3 overflows, so step 2 (ending at t = 0.75) is the one named.
    let mut model = ClosureModel::new(1, 0, |_t, u: &[f64], _p: &[f64], f: &mut [f64]| {
        f[0] = u[0] * u[0] * 1e100
    });
    let grid = TimeGrid::uniform(0.0, 2.0, 8).unwrap();
    let mut solver = Solver::explicit(
        Tableau::euler(),
        &model,
        grid,
        &[2.0],
        Checkpointing::StoreAll,
    )
    .unwrap();
    let err = solver.solve(&mut model, &[1.0], &[]).unwrap_err();
    assert!(
        matches!(err, Error::NonFiniteState { step: 2, t, component: 0, .. } if t == 0.75),
        "{err}"
    );
    assert!(err.to_string().contains("after step 2 (t = 0.75)"), "{err}");
}

#[test]
fn nan_initial_state_is_rejected() {
    let mut s = lv_solver(Checkpointing::StoreAll);
    let err = s
        .solve(
            &mut LotkaVolterra::new(),
            &[f64::NAN, 1.0],
            &LotkaVolterra::default_params(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteState {
                step: 0,
                component: 0,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn wrong_lengths_name_expected_and_found() {
    let mut s = lv_solver(Checkpointing::StoreAll);
    let mut m = LotkaVolterra::new();
    let err = s
        .solve(&mut m, &[1.0, 1.0, 1.0], &LotkaVolterra::default_params())
        .unwrap_err();
    assert_eq!(
        err,
        Error::LengthMismatch {
            what: "u0",
            expected: 2,
            found: 3
        }
    );
    let err = s.solve(&mut m, &[1.0, 1.0], &[1.0]).unwrap_err();
    assert_eq!(
        err,
        Error::LengthMismatch {
            what: "parameters",
            expected: 4,
            found: 1
        }
    );
    s.forward(&mut m, &[1.0, 1.0], &LotkaVolterra::default_params())
        .unwrap();
    let err = s.backward(&mut m, &[1.0]).unwrap_err();
    assert_eq!(
        err,
        Error::LengthMismatch {
            what: "dL/du at the outputs",
            expected: 2,
            found: 1
        }
    );
    assert!(err.to_string().contains("expected 2, found 1"));
}

#[test]
fn backward_needs_a_fresh_checkpointed_forward() {
    let mut s = lv_solver(Checkpointing::SolutionOnly);
    let mut m = LotkaVolterra::new();
    let p = LotkaVolterra::default_params();
    assert!(matches!(
        s.backward(&mut m, &[1.0, 0.0]),
        Err(Error::Usage(_))
    ));
    s.solve(&mut m, &[1.0, 1.0], &p).unwrap();
    assert!(matches!(
        s.backward(&mut m, &[1.0, 0.0]),
        Err(Error::Usage(_))
    ));
    s.forward(&mut m, &[1.0, 1.0], &p).unwrap();
    assert!(s.backward(&mut m, &[1.0, 0.0]).is_ok());
    assert!(matches!(
        s.backward(&mut m, &[1.0, 0.0]),
        Err(Error::Usage(_))
    ));
}

#[test]
fn schedule_for_another_grid_is_rejected() {
    let grid = TimeGrid::uniform(0.0, 1.0, 10).unwrap();
    let err = Solver::explicit(
        Tableau::rk4(),
        &LotkaVolterra::new(),
        grid,
        &[1.0],
        Checkpointing::Custom(Schedule::store_all(9)),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("planned for 9 steps but the grid has 10"),
        "{err}"
    );
}

#[test]
fn output_time_off_the_grid_is_rejected() {
    let grid = TimeGrid::uniform(0.0, 1.0, 10).unwrap();
    let err = Solver::explicit(
        Tableau::rk4(),
        &LotkaVolterra::new(),
        grid,
        &[0.55],
        Checkpointing::StoreAll,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::OutputTimeOffGrid { time, .. } if time == 0.55),
        "{err}"
    );
}

#[test]
fn outputs_are_reported_by_index_without_panicking() {
    let mut s = lv_solver(Checkpointing::StoreAll);
    let mut m = LotkaVolterra::new();
    let out = s
        .solve(&mut m, &[1.0, 1.0], &LotkaVolterra::default_params())
        .unwrap()
        .to_vec();
    assert_eq!(s.output(0), Some(&out[..2]));
    assert_eq!(s.output(1), None);
}

/// A checkpoint store that cannot be allocated is [`Error::OutOfMemory`] from the first
/// checkpointed sweep (a fallible allocation, not an abort); a forward solve never allocates
/// it, and its size is known up front.
#[test]
fn a_checkpoint_store_too_large_to_allocate_is_an_error() {
    let n = 1 << 21;
    let mut model = ClosureModel::new(n, 0, |_t, u: &[f64], _p: &[f64], f: &mut [f64]| {
        for (fi, ui) in f.iter_mut().zip(u) {
            *fi = -ui;
        }
    });
    // Store-all over 2.2·10⁶ steps of RK4: (N − 1) · 4 · 2²¹ · 8 bytes ≈ 1.48e14, past the
    // 2⁴⁷ bytes of a process's address space, so the allocation fails even where the system
    // overcommits memory.
    let steps = 2_200_000;
    let grid = TimeGrid::uniform(0.0, 1.0, steps).unwrap();
    let mut solver = Solver::explicit(
        Tableau::rk4(),
        &model,
        grid,
        &[1.0],
        Checkpointing::StoreAll,
    )
    .unwrap();
    let bytes = (steps as u64 - 1) * 4 * n as u64 * 8;
    assert_eq!(solver.checkpoint_bytes(), bytes);
    let u0 = vec![1.0; n];
    let err = solver.forward(&mut model, &u0, &[]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfMemory {
                what: pnode_runtime::Buffer::Checkpoints,
                bytes: b
            } if b == bytes
        ),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "cannot allocate {bytes} bytes for the checkpoint store"
        )),
        "{err}"
    );
}
