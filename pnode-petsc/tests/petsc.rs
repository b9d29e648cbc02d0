//! PETSc solves against known answers (only with the `petsc` feature).
#![cfg(feature = "petsc")]

use pnode_petsc::{Error, StageSolver};

#[test]
fn snes_solves_a_nonlinear_system_and_ksp_a_transposed_one() {
    // G(y) = [y0² + y1 − 3, y0 + y1² − 5] has the root (1, 2).
    let solver = StageSolver::new(2, 1e-14, 1e-14, 50).unwrap();
    let mut y = [1.5, 1.5];
    let stats = solver
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
        .unwrap();
    assert!(
        (y[0] - 1.0).abs() < 1e-12 && (y[1] - 2.0).abs() < 1e-12,
        "{y:?}"
    );
    assert!(stats.iterations >= 2);
    // A = [[2, 1], [3, 4]]: Aᵀ x = b with b = Aᵀ [1, −1] = [−1, −3].
    let mut x = [0.0, 0.0];
    solver
        .solve_transpose(&[-1.0, -3.0], &mut x, &mut |v, out| {
            out[0] = 2.0 * v[0] + 3.0 * v[1];
            out[1] = v[0] + 4.0 * v[1];
        })
        .unwrap();
    assert!(
        (x[0] - 1.0).abs() < 1e-12 && (x[1] + 1.0).abs() < 1e-12,
        "{x:?}"
    );
}

#[test]
fn a_panicking_callback_is_an_error_not_an_abort() {
    let solver = StageSolver::new(1, 1e-12, 1e-12, 10).unwrap();
    let mut y = [1.0];
    let err = solver
        .solve(&mut y, &mut |_, _| panic!("boom"), &mut |_, v, o| {
            o[0] = v[0]
        })
        .unwrap_err();
    assert_eq!(err, Error::CallbackPanicked);
}
