//! The explicit-stepper hook: `Run::with_explicit_stepper`.

use crate::common;
use pnode_driver::{Error, Run, Setup};
use pnode_ir::runtime::IrModel;
use pnode_runtime::{ErkStepper, Tableau};
use std::path::Path;

const DECAY: &str = "model decay\nstate u[2] = [1.0, 2.0]\nparam k[2] = [0.5, 0.25]\n\
    d(u)/dt = -k * u\nsolve { method = rk4\n t = 0 .. 1\n steps = 50\n outputs = [0.5, 1.0] }\n\
    loss = sum(u ^ 2)\n";

fn setup_of(src: &str) -> Setup {
    let p = common::compile(src);
    Setup::new(&p, Path::new("."), None).unwrap()
}

#[test]
fn a_supplied_stepper_runs_in_place_of_the_default() {
    let setup = setup_of(DECAY);
    let mut model = IrModel::new(&setup.program.rhs).unwrap();
    let theta = setup.theta0.clone();
    let mut plain = Run::new(setup.clone(), &model).unwrap();
    let mut calls = 0;
    let mut hooked = Run::with_explicit_stepper(setup, &model, |t| {
        calls += 1;
        assert_eq!(t.name(), "rk4");
        Ok(ErkStepper::new(t.clone(), 2, 2))
    })
    .unwrap();
    assert_eq!(calls, 1);
    assert!(hooked.explicit_stepper().is_some());
    let (l1, g1) = plain.loss_and_grad(&mut model, &theta).unwrap();
    let (l2, g2) = hooked.loss_and_grad(&mut model, &theta).unwrap();
    assert_eq!(l1.to_bits(), l2.to_bits());
    assert_eq!(g1.dp, g2.dp);
    assert_eq!(g1.du0, g2.du0);
    // u_i(t) = u0_i e^{-k_i t}: L = Σ_i u0_i² (e^{-k_i} + e^{-2 k_i}) over t = 0.5 and 1.
    let exact: f64 = [(1.0f64, 0.5f64), (2.0, 0.25)]
        .iter()
        .map(|(u0, k)| u0 * u0 * ((-k).exp() + (-2.0 * k).exp()))
        .sum();
    assert!((l1 - exact).abs() < 1e-9, "{l1} vs {exact}");
    assert_eq!(plain.stats(), hooked.stats());
}

#[test]
fn a_stepper_of_another_tableau_is_refused() {
    let setup = setup_of(DECAY);
    let model = IrModel::new(&setup.program.rhs).unwrap();
    let err = Run::with_explicit_stepper(setup, &model, |_| {
        Ok(ErkStepper::new(Tableau::midpoint(), 2, 2))
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                option: "method",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("`rk4`"), "{err}");
}

#[test]
fn implicit_methods_never_call_the_hook_and_errors_pass_through() {
    let src = DECAY.replace("method = rk4", "method = crank_nicolson");
    let setup = setup_of(&src);
    let model = IrModel::new(&setup.program.rhs).unwrap();
    let run: Run<ErkStepper> =
        Run::with_explicit_stepper(setup, &model, |_| panic!("called for an implicit method"))
            .unwrap();
    assert!(run.explicit_stepper().is_none());
    let setup = setup_of(DECAY);
    let err = Run::<ErkStepper>::with_explicit_stepper(setup, &model, |_| {
        Err(Error::Config {
            option: "method",
            reason: "no stepper today".into(),
        })
    })
    .unwrap_err();
    assert!(err.to_string().contains("no stepper today"), "{err}");
}
