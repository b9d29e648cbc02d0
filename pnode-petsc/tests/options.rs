//! PETSc options pass through `PNODE_PETSC_OPTIONS` (read once, at initialization, so this
//! test has its own process): `-snes_max_it 1` must stop a solve that needs several Newton
//! iterations.
#![cfg(feature = "petsc")]
#![allow(unsafe_code)]

use pnode_petsc::{Error, StageSolver};

#[test]
fn options_from_the_environment_reach_snes() {
    // SAFETY: set before PETSc starts and before this test spawns any thread.
    unsafe { std::env::set_var("PNODE_PETSC_OPTIONS", "-snes_max_it 1") };
    let solver = StageSolver::new(2, 1e-14, 1e-14, 50).unwrap();
    let mut y = [1.5, 1.5];
    let err = solver
        .solve(
            &mut y,
            &mut |y, g| {
                g[0] = y[0] * y[0] + y[1] - 3.0;
                g[1] = y[0] + y[1] * y[1] - 5.0;
            },
            &mut |at, v, out| {
                out[0] = 2.0 * at[0] * v[0] + v[1];
                out[1] = v[0] + 2.0 * at[1] * v[1];
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::SnesDiverged { iterations: 1, .. }),
        "{err}"
    );
}
