//! Discrete-adjoint gradients for every tableau: against central finite differences of the same
//! discrete solve, bitwise identical across every checkpoint schedule, and by Taylor tests.

use crate::common::{Setup, lotka_volterra, mlp, pseudo_random, same_bits};
use pnode_runtime::{Budget, Checkpointing, Tableau};
use pnode_testkit::numeric::{ip, rel_max};

/// Every schedule compared with store-all: solution-only, Revolve with several slot counts,
/// multistage at several vector budgets (mixing stage and solution slots), online and
/// two-level.
fn schedules() -> Vec<Checkpointing> {
    let mut all = vec![Checkpointing::SolutionOnly];
    all.extend([1, 2, 3, 5, 9].map(|slots| Checkpointing::Revolve { slots }));
    all.extend([1, 4, 7, 20].map(|v| Checkpointing::Budget(Budget::Vectors(v))));
    all.extend([1, 3].map(|slots| Checkpointing::Online { slots }));
    all.push(Checkpointing::TwoLevel {
        ram_slots: 2,
        disk_slots: 3,
    });
    all
}

/// Gradient vs finite differences, and every schedule bitwise identical to store-all.
fn check_gradient<M: pnode_runtime::model::RhsVjp>(mut setup: Setup<M>) {
    let name = setup.tableau.name().to_string();
    let (loss_a, g_all) = setup.gradient(Checkpointing::StoreAll);
    for mode in schedules() {
        let (loss_b, g_other) = setup.gradient(mode.clone());
        assert_eq!(
            loss_a.to_bits(),
            loss_b.to_bits(),
            "{name} {mode:?}: losses differ"
        );
        assert!(
            same_bits(&g_all, &g_other),
            "{name}: store-all and {mode:?} gradients are not bitwise identical"
        );
    }
    let fd = setup.fd_gradient(1e-6);
    let e_u0 = rel_max(&g_all.du0, &fd.du0);
    let e_p = rel_max(&g_all.dp, &fd.dp);
    eprintln!("{name}: relative error vs FD: dL/du0 {e_u0:.1e}, dL/dθ {e_p:.1e}");
    assert!(e_u0 <= 1e-6, "{name}: dL/du0 relative error {e_u0:.2e}");
    assert!(e_p <= 1e-6, "{name}: dL/dθ relative error {e_p:.2e}");
}

#[test]
fn lotka_volterra_gradients_match_finite_differences_for_every_tableau() {
    for tableau in Tableau::all() {
        check_gradient(lotka_volterra(tableau));
    }
}

#[test]
fn mlp_gradients_match_finite_differences_for_every_tableau() {
    for tableau in Tableau::all() {
        check_gradient(mlp(tableau));
    }
}

/// Taylor test: r(ε) = |L(x+εδ) − L(x) − ε ∇L·δ| = O(ε²), so r halves twice per halving of ε.
fn taylor_rates<M: pnode_runtime::model::RhsVjp>(
    setup: &mut Setup<M>,
    mode: Checkpointing,
) -> Vec<f64> {
    let (loss0, g) = setup.gradient(mode);
    let du = pseudo_random(setup.u0.len(), 11);
    let dp = pseudo_random(setup.p.len(), 12);
    let slope = ip(&g.du0, &du) + ip(&g.dp, &dp);
    let (u0, p) = (setup.u0.clone(), setup.p.clone());
    let residual = |setup: &mut Setup<M>, eps: f64| {
        let u: Vec<f64> = u0.iter().zip(&du).map(|(x, d)| x + eps * d).collect();
        let q: Vec<f64> = p.iter().zip(&dp).map(|(x, d)| x + eps * d).collect();
        (setup.loss(&u, &q) - loss0 - eps * slope).abs()
    };
    let r: Vec<f64> = (0..5)
        .map(|k| residual(setup, 1e-2 / f64::powi(2.0, k)))
        .collect();
    r.windows(2).map(|w| (w[0] / w[1]).log2()).collect()
}

#[test]
fn taylor_test_rate_is_two_for_every_tableau_and_mode() {
    for tableau in Tableau::all() {
        for mode in [Checkpointing::StoreAll, Checkpointing::SolutionOnly] {
            let name = format!("{} / {:?}", tableau.name(), mode);
            for rates in [
                taylor_rates(&mut lotka_volterra(tableau.clone()), mode.clone()),
                taylor_rates(&mut mlp(tableau.clone()), mode.clone()),
            ] {
                assert!(
                    rates.iter().all(|r| (1.9..=2.1).contains(r)),
                    "{name}: Taylor rates {rates:?}"
                );
            }
        }
    }
}
