//! Adaptive steps through the driver: `method = dopri5(rtol = …)` resolves to the runtime's
//! adaptive solver, whose gradient is bitwise the fixed-grid gradient on the accepted grid
//! (written back into a model as `steps = [t_0, …, t_N]`), whatever the checkpointing, and
//! matches central differences of the loss on that frozen grid.

use crate::common::{compile, run_for, synthesize};
use pnode_driver::Error;

fn lv(method: &str, steps: &str, checkpoint: &str) -> String {
    format!(
        "model lv
state u[2] = [1.0, 1.0]
param theta[4] = [1.5, 1.0, 3.0, 1.0]
d(u[0])/dt = theta[0] * u[0] - theta[1] * u[0] * u[1]
d(u[1])/dt = -theta[2] * u[1] + theta[3] * u[0] * u[1]
solve {{
    method = {method}
    t = 0 .. 6
    {steps}
    outputs = linspace(0.5, 6, 12)
    checkpoint = {checkpoint}
}}
loss = mse(u, data(\"obs.csv\"))
"
    )
}

const ADAPTIVE: &str = "dopri5(rtol = 1e-6, atol = [1e-9, 1e-8])";

#[test]
fn adaptive_gradient_is_the_fixed_grid_gradient_on_the_accepted_grid() {
    let dir = tempfile::tempdir().unwrap();
    let src = lv(ADAPTIVE, "", "store_all");
    synthesize(
        &compile(&src),
        dir.path(),
        Some(&[1.5, 1.0, 3.0, 1.0]),
        0.05,
    );
    let theta = [1.3, 0.9, 3.2, 1.1];
    let (mut run, mut model) = run_for(&src, dir.path());
    let (loss, g) = run.loss_and_grad(&mut model, &theta).unwrap();
    let stats = run.adaptive_stats().expect("adaptive steps");
    let times = run.accepted_times().expect("an accepted grid").to_vec();
    assert_eq!(stats.accepted_steps as usize, times.len() - 1);
    assert!(stats.accepted_steps > 20, "{stats:?}");
    assert_eq!(run.stats().reversed_steps, stats.accepted_steps);
    // Every output time is a point of the accepted grid, bit for bit.
    for &t in &run.setup().output_times {
        assert!(times.iter().any(|&x| x.to_bits() == t.to_bits()), "{t}");
    }

    // Every checkpointing of adaptive steps gives the same bits.
    for ck in ["solution_only", "online(slots = 3)", "budget(vectors = 4)"] {
        let (mut r, mut m) = run_for(&lv(ADAPTIVE, "", ck), dir.path());
        let (l2, g2) = r.loss_and_grad(&mut m, &theta).unwrap();
        assert_eq!(l2.to_bits(), loss.to_bits(), "{ck}");
        assert_eq!(g2, g, "{ck}");
        assert_eq!(r.accepted_times().unwrap(), &times[..], "{ck}");
    }

    // The fixed-grid run on the accepted grid: the same loss and gradient, bitwise.
    let list: Vec<String> = times.iter().map(|t| format!("{t:?}")).collect();
    let fixed_src = lv(
        "dopri5",
        &format!("steps = [{}]", list.join(", ")),
        "store_all",
    );
    let (mut fixed, mut fm) = run_for(&fixed_src, dir.path());
    assert_eq!(fixed.setup().grid.n_steps(), Some(times.len() - 1));
    let (lf, gf) = fixed.loss_and_grad(&mut fm, &theta).unwrap();
    assert_eq!(lf.to_bits(), loss.to_bits());
    assert_eq!(gf, g);

    // Central differences of the loss on that frozen grid.
    let scale = g.dp.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    for i in 0..theta.len() {
        let h = 1e-6 * theta[i].abs();
        let mut tp = theta;
        tp[i] += h;
        let lp = fixed.loss(&mut fm, &tp).unwrap();
        tp[i] = theta[i] - h;
        let lm = fixed.loss(&mut fm, &tp).unwrap();
        let fd = (lp - lm) / (2.0 * h);
        let err = (fd - g.dp[i]).abs() / scale;
        assert!(
            err <= 1e-7,
            "θ[{i}]: gradient {} vs FD {fd}: {err:e}",
            g.dp[i]
        );
    }
}

#[test]
fn adaptive_steps_refuse_what_needs_the_number_of_steps_and_name_failures() {
    let dir = tempfile::tempdir().unwrap();
    let src = lv(ADAPTIVE, "", "revolve(slots = 4)");
    synthesize(
        &compile(&lv(ADAPTIVE, "", "store_all")),
        dir.path(),
        None,
        0.0,
    );
    let p = compile(&src);
    let setup = pnode_driver::Setup::new(&p, dir.path(), None).unwrap();
    let model = pnode_ir::runtime::IrModel::new(&p.rhs).unwrap();
    let e = pnode_driver::Run::new(setup, &model).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("revolve(4)"), "{msg}");

    // Too few step attempts: the error names the time, the step size and a component.
    let (mut run, mut model) = run_for(
        &lv("dopri5(rtol = 1e-10, max_steps = 20)", "", "store_all"),
        dir.path(),
    );
    let theta = run.setup().theta0.clone();
    let e = run.loss_and_grad(&mut model, &theta).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Runtime(_)), "{e:?}");
    assert!(
        msg.contains("20") && msg.contains("t = ") && msg.contains("component"),
        "{msg}"
    );
}
