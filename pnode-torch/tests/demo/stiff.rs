//! PNODE's stiff experiment, small: classic RK4 on the observation steps blows up on Robertson's
//! true kinetics and cannot fit the data with the network, while Crank–Nicolson trains the same
//! GELU network on the same steps (through Newton stage solves with exact discrete-adjoint
//! gradients), and the model it learns is too stiff for RK4 on those steps.

use crate::torch_lock;
use pnode_torch::demo::stiff::{StiffConfig, StiffMethod, rk4_on_truth, train};

#[test]
fn rk4_fails_on_the_steps_where_crank_nicolson_trains() {
    // libtorch's global generator seeds the network: the demos take turns (on one thread).
    let _lock = torch_lock();
    let config = StiffConfig {
        iterations: 60,
        ..StiffConfig::default()
    };
    let rk4 = rk4_on_truth(&config)
        .unwrap()
        .expect("RK4 must fail on these steps");
    assert!(rk4.contains("non-finite state"), "{rk4}");

    let cn = train(&config, |_, _| {}).unwrap();
    eprintln!("Crank–Nicolson losses {:?}", cn.losses);
    assert!(cn.failure.is_none(), "{:?}", cn.failure);
    assert_eq!(cn.losses.len(), 60);
    let (first, last) = (cn.losses[0], *cn.losses.last().unwrap());
    assert!(last < 0.05 * first, "loss {first} → {last}");
    // Newton ran (and was counted) in every step of the last gradient.
    assert!(cn.stats.newton_iterations >= 40, "{:?}", cn.stats);
    assert_eq!(cn.stats.reversed_steps, 40);
    assert!(cn.learned.iter().flatten().all(|v| v.is_finite()));
    // The y₂ transient is learned: its peak (3.65e-5 in the data) within 20 %.
    let peak = cn.learned.iter().map(|u| u[1]).fold(0.0, f64::max);
    let true_peak = cn.truth.iter().map(|u| u[1]).fold(0.0, f64::max);
    assert!(
        (peak / true_peak - 1.0).abs() < 0.2,
        "y2 peak {peak} vs {true_peak}"
    );
    // The learned model is stiff: RK4 on the training steps cannot reproduce it.
    match &cn.rk4_on_learned {
        // Diverges (an infinite or NaN loss) or at least misses the fit by far.
        Ok(loss) => assert!(
            loss.is_nan() || *loss >= 100.0 * last,
            "RK4 on the learned model: loss {loss}"
        ),
        Err(e) => assert!(e.contains("non-finite"), "{e}"),
    }

    let rk = train(
        &StiffConfig {
            method: StiffMethod::Rk4,
            ..config
        },
        |_, _| {},
    )
    .unwrap();
    eprintln!("RK4 losses {:?}", rk.losses);
    let rk_last = *rk.losses.last().unwrap();
    // The same network, optimizer and steps with RK4 stalls far above Crank–Nicolson.
    assert!(
        rk_last > 0.5 * rk.losses[0],
        "RK4 loss {} → {rk_last}",
        rk.losses[0]
    );
    assert!(
        rk_last > 10.0 * last,
        "RK4 {rk_last} vs Crank–Nicolson {last}"
    );
}
