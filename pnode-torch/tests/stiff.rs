//! PNODE's stiff experiment, small: classic RK4 on the observation steps blows up on Robertson's
//! true kinetics, while Crank–Nicolson trains a GELU network on them through Newton stage
//! solves with exact discrete-adjoint gradients.

use pnode_torch::demo::stiff::{StiffConfig, rk4_on_truth, train};

#[test]
fn rk4_fails_on_the_steps_where_crank_nicolson_trains() {
    pnode_torch::tch::set_num_threads(1);
    let config = StiffConfig {
        iterations: 20,
        ..StiffConfig::default()
    };
    let rk4 = rk4_on_truth(&config)
        .unwrap()
        .expect("RK4 must fail on these steps");
    assert!(rk4.contains("non-finite state"), "{rk4}");

    let cn = train(&config, |_, _| {}).unwrap();
    eprintln!("losses {:?}", cn.losses);
    assert!(cn.failure.is_none(), "{:?}", cn.failure);
    assert_eq!(cn.losses.len(), 20);
    let (first, last) = (cn.losses[0], *cn.losses.last().unwrap());
    assert!(last < 0.2 * first, "loss {first} → {last}");
    // Newton ran (and was counted) in every step of the last gradient.
    assert!(cn.stats.newton_iterations >= 40, "{:?}", cn.stats);
    assert_eq!(cn.stats.reversed_steps, 40);
    assert!(cn.learned.iter().flatten().all(|v| v.is_finite()));
}
