//! The running commands (`grad`, `solve`, `train`) of the `pnodec` binary on the examples
//! (`examples/*/*.pode` at the workspace root, except the `truth.pode` models their data
//! came from).
#![allow(missing_docs)]

use pnode_driver::{Run, Setup};
use pnode_ir::lower::Steps;
use pnode_ir::runtime::IrModel;
use pnode_testkit::corpus::{self, Kind};
use pnode_testkit::numeric::rel_max;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    corpus::workspace_root()
}

fn examples() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root().join("examples")).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "pode") && !f.ends_with("truth.pode") {
                files.push(f);
            }
        }
    }
    files.sort();
    files
}

fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

fn pnodec_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pnodec"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn pnodec(args: &[&str]) -> Output {
    pnodec_in(&root(), args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// `pnodec grad FILE --backend B` as JSON.
fn grad_json(file: &Path, backend: &str) -> Value {
    let out = pnodec(&["grad", s(file), "--backend", backend]);
    assert_exit(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The flat parameter gradient of a report, in the program's parameter order.
fn flat_grad(report: &Value, program: &pnode_ir::lower::Program) -> Vec<f64> {
    let mut g = vec![0.0; program.param_len()];
    for p in &program.params {
        let v = floats(&report["grad_params"][&p.name]);
        assert_eq!(v.len(), p.shape.len(), "{}", p.name);
        g[p.offset..p.offset + v.len()].copy_from_slice(&v);
    }
    g
}

/// `max |a − b| / max |a|`: relative to the first argument.
fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    rel_max(b, a)
}

/// Central differences of the loss (interpreter) along coordinate `i` of θ or of u0.
fn fd(run: &mut Run, model: &mut IrModel, theta: &[f64], i: usize, in_u0: bool) -> f64 {
    let eps = 1e-6;
    if in_u0 {
        let u0 = run.setup().u0.clone();
        let h = eps * u0[i].abs().max(1.0);
        let mut u = u0.clone();
        u[i] += h;
        run.set_initial_state(&u).unwrap();
        let lp = run.loss(model, theta).unwrap();
        u[i] = u0[i] - h;
        run.set_initial_state(&u).unwrap();
        let lm = run.loss(model, theta).unwrap();
        run.set_initial_state(&u0).unwrap();
        (lp - lm) / (2.0 * h)
    } else {
        let h = eps * theta[i].abs().max(1.0);
        let mut t = theta.to_vec();
        t[i] += h;
        let lp = run.loss(model, &t).unwrap();
        t[i] = theta[i] - h;
        let lm = run.loss(model, &t).unwrap();
        (lp - lm) / (2.0 * h)
    }
}

/// Up to 16 indices spread over `0..n`.
fn spread(n: usize) -> Vec<usize> {
    if n <= 16 {
        return (0..n).collect();
    }
    let mut v: Vec<usize> = (0..16).map(|k| k * (n - 1) / 15).collect();
    v.dedup();
    v
}

#[test]
fn grad_matches_finite_differences_and_the_interpreter_on_every_example() {
    let files = examples();
    assert_eq!(files.len(), 5, "{files:?}");
    for file in files {
        let jit = grad_json(&file, "jit");
        let interp = grad_json(&file, "interp");
        assert_eq!(jit["backend"], "jit");
        assert_eq!(interp["backend"], "interp");
        let source = std::fs::read_to_string(&file).unwrap();
        let program = pnode_ir::lower::compile_source(&source).program.unwrap();
        assert_eq!(jit["model"], program.name.as_str());
        let (gj, gi) = (flat_grad(&jit, &program), flat_grad(&interp, &program));
        let (uj, ui) = (floats(&jit["grad_u0"]), floats(&interp["grad_u0"]));
        let backend_err = max_rel(&gi, &gj).max(max_rel(&ui, &uj));
        // Explicit methods run the JIT's fused step, implicit ones the runtime's stepper over
        // the JIT model; the interpreter always the runtime's. The fused step performs the
        // interpreter's operations in the same order, so the results agree bit for bit.
        let explicit = !source.contains("esdirk3");
        assert_eq!(jit["stepper"], if explicit { "fused" } else { "runtime" });
        assert_eq!(interp["stepper"], "runtime");
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&gj),
            bits(&gi),
            "{}: θ gradient not bitwise",
            program.name
        );
        assert_eq!(
            bits(&uj),
            bits(&ui),
            "{}: u0 gradient not bitwise",
            program.name
        );
        let mut jit_stats = jit["stats"].clone();
        if jit.get("grid").is_some() {
            // The fused trial step evaluates f(t0, u0) itself instead of taking the one the
            // initial step-size selection made through the model: one RHS evaluation more.
            let rhs = jit_stats["rhs_evals"].as_u64().unwrap();
            jit_stats["rhs_evals"] = (rhs - 1).into();
        }
        assert_eq!(jit_stats, interp["stats"], "{}", program.name);
        let (lj, li) = (
            jit["loss"].as_f64().unwrap(),
            interp["loss"].as_f64().unwrap(),
        );
        assert!((lj - li).abs() <= 1e-12 * li.abs(), "{lj} vs {li}");
        assert!(
            backend_err <= 1e-12,
            "{}: jit vs interp {backend_err:e}",
            program.name
        );

        // Adaptive steps: the driver's adaptive gradient is bitwise the fixed-grid gradient
        // on its accepted grid (the one `grad` reports), and the differences are taken on
        // that frozen grid.
        let mut program = program;
        if let Some(grid) = jit.get("grid") {
            assert_eq!(jit["grid"], interp["grid"], "{}", program.name);
            let setup = Setup::new(&program, file.parent().unwrap(), None).unwrap();
            let theta = setup.theta0.clone();
            let mut model = IrModel::new(&program.rhs).unwrap();
            let mut run = Run::new(setup, &model).unwrap();
            let (la, ga) = run.loss_and_grad(&mut model, &theta).unwrap();
            let times = run.accepted_times().unwrap().to_vec();
            assert!(max_rel(&times, &floats(grid)) <= 1e-15, "{}", program.name);
            assert_eq!(times.len() as u64, jit["steps"].as_u64().unwrap() + 1);
            let solve = program.solve.as_mut().unwrap();
            assert!(matches!(solve.steps, Steps::Adaptive(_)));
            solve.steps = Steps::Times(times);
            let setup = Setup::new(&program, file.parent().unwrap(), None).unwrap();
            let mut frozen = Run::new(setup, &model).unwrap();
            let (lf, gf) = frozen.loss_and_grad(&mut model, &theta).unwrap();
            assert_eq!(lf.to_bits(), la.to_bits(), "{}", program.name);
            assert_eq!(gf, ga, "{}: frozen grid", program.name);
        }
        let setup = Setup::new(&program, file.parent().unwrap(), None).unwrap();
        let theta = setup.theta0.clone();
        let mut model = IrModel::new(&program.rhs).unwrap();
        let mut run = Run::new(setup, &model).unwrap();
        let mut err_p: f64 = 0.0;
        let scale = gi.iter().map(|x| x.abs()).fold(0.0, f64::max);
        for i in spread(gi.len()) {
            let d = fd(&mut run, &mut model, &theta, i, false);
            err_p = err_p.max((d - gi[i]).abs() / scale);
        }
        let mut err_u: f64 = 0.0;
        let scale_u = ui.iter().map(|x| x.abs()).fold(0.0, f64::max);
        for i in 0..ui.len() {
            let d = fd(&mut run, &mut model, &theta, i, true);
            err_u = err_u.max((d - ui[i]).abs() / scale_u);
        }
        eprintln!(
            "{}: FD relative error θ {err_p:.2e}, u0 {err_u:.2e}; jit vs interp {backend_err:.2e}; \
             JIT compile {:.1} ms",
            program.name,
            jit["compile_ms"].as_f64().unwrap()
        );
        assert!(err_p <= 1e-6, "{}: θ FD error {err_p:e}", program.name);
        assert!(err_u <= 1e-6, "{}: u0 FD error {err_u:e}", program.name);
    }
}

#[test]
fn grad_writes_json_and_never_overwrites_silently() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.json");
    let file = example("lotka_volterra/lotka_volterra.pode");
    let r = pnodec(&["grad", s(&file), "--out", s(&out)]);
    assert_exit(&r, 0);
    assert!(text(&r.stderr).contains("g.json"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["method"], "rk4");
    assert_eq!(v["steps"], 500);
    assert_eq!(floats(&v["grad_params"]["theta"]).len(), 4);
    assert!(v["stats"]["reversed_steps"].as_u64() == Some(500));
    std::fs::write(&out, "keep me").unwrap();
    let r = pnodec(&["grad", s(&file), "--out", s(&out)]);
    assert_exit(&r, 2);
    assert!(text(&r.stderr).contains("g.json"), "{}", text(&r.stderr));
    assert!(text(&r.stderr).contains("--force"), "{}", text(&r.stderr));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    assert_exit(&pnodec(&["grad", s(&file), "--out", s(&out), "--force"]), 0);
    assert!(std::fs::read_to_string(&out).unwrap().contains("\"loss\""));
}

#[test]
fn model_errors_and_run_errors_have_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pode");
    std::fs::write(&bad, "model m\nstate u = 1.0\nd(u)/dt = v\n").unwrap();
    let r = pnodec(&["grad", s(&bad)]);
    assert_exit(&r, 1);
    assert!(text(&r.stderr).contains("I001"), "{}", text(&r.stderr));
    // No loss: a gradient cannot be taken.
    let noloss = dir.path().join("noloss.pode");
    std::fs::write(
        &noloss,
        "model m\nstate u = 1.0\nparam k = 1.0\nd(u)/dt = -k * u\n",
    )
    .unwrap();
    let r = pnodec(&["grad", s(&noloss)]);
    assert_exit(&r, 1);
    assert!(text(&r.stderr).contains("no `loss`"), "{}", text(&r.stderr));
    let r = pnodec_in(dir.path(), &["train", "noloss.pode"]);
    assert_exit(&r, 1);
    assert!(
        text(&r.stderr).contains("training needs one"),
        "{}",
        text(&r.stderr)
    );
    assert!(!dir.path().join("m.params.json").exists());
    // A missing data file is an I/O error.
    let nodata = dir.path().join("nodata.pode");
    std::fs::write(
        &nodata,
        "model m\nstate u = 1.0\nparam k = 1.0\nd(u)/dt = -k * u\nloss = mse(u, data(\"none.csv\"))\n",
    )
    .unwrap();
    let r = pnodec(&["grad", s(&nodata)]);
    assert_exit(&r, 2);
    assert!(text(&r.stderr).contains("none.csv"), "{}", text(&r.stderr));
    // Convolutions: the JIT says to use the interpreter, which runs the model, or to rebuild
    // with libtorch (which, built in, runs it by default: tests/torch.rs).
    let conv = corpus::path(Kind::Ok, "conv_block");
    let r = pnodec(&["grad", s(&conv), "--backend", "jit"]);
    assert_exit(&r, 1);
    assert!(
        text(&r.stderr).contains("--backend interp"),
        "{}",
        text(&r.stderr)
    );
    if !cfg!(feature = "torch") {
        let r = pnodec(&["grad", s(&conv)]);
        assert_exit(&r, 1);
        let msg = text(&r.stderr);
        assert!(
            msg.contains("--features torch") && msg.contains("--backend interp"),
            "{msg}"
        );
        let r = pnodec(&["grad", s(&conv), "--backend", "torch"]);
        assert_exit(&r, 1);
        assert!(
            text(&r.stderr).contains("--features torch"),
            "{}",
            text(&r.stderr)
        );
    }
    assert_exit(&pnodec(&["grad", s(&conv), "--backend", "interp"]), 0);
}

#[test]
fn solve_writes_csv_npy_and_a_plot() {
    let dir = tempfile::tempdir().unwrap();
    let file = example("robertson/robertson.pode");
    let r = pnodec(&["solve", s(&file)]);
    assert_exit(&r, 0);
    let csv = text(&r.stdout);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("t,y[0],y[1],y[2]"));
    assert_eq!(lines.count(), 7);
    let (npy, svg) = (dir.path().join("y.npy"), dir.path().join("y.svg"));
    let r = pnodec(&["solve", s(&file), "--out", s(&npy), "--plot", s(&svg)]);
    assert_exit(&r, 0);
    let table = pnode_driver::data::read_table(&npy, None).unwrap();
    assert_eq!((table.rows, table.cols), (7, 4));
    assert_eq!(table.values[4 * 6], 40.0);
    // Mass is conserved: y0 + y1 + y2 = 1.
    for row in table.values.chunks(4) {
        assert!((row[1] + row[2] + row[3] - 1.0).abs() < 1e-10, "{row:?}");
    }
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.contains("<svg") && plot.contains("log10 t"));
    let r = pnodec(&["solve", s(&file), "--out", s(&npy)]);
    assert_exit(&r, 2);
    assert!(text(&r.stderr).contains("y.npy"));
    let csv_path = dir.path().join("y.csv");
    assert_exit(&pnodec(&["solve", s(&file), "--out", s(&csv_path)]), 0);
    assert_eq!(
        std::fs::read_to_string(&csv_path).unwrap(),
        csv,
        "file and stdout agree"
    );
}

#[test]
fn train_reduces_the_spiral_loss_tenfold_with_its_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = example("spiral/spiral.pode");
    let start = std::time::Instant::now();
    let r = pnodec_in(
        dir.path(),
        &["train", s(&file), "--log", "loss.csv", "--plot", "loss.svg"],
    );
    let secs = start.elapsed().as_secs_f64();
    assert_exit(&r, 0);
    let stderr = text(&r.stderr);
    assert!(stderr.contains("spiral.params.json"), "{stderr}");
    let params: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("spiral.params.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(params["iterations"], 300);
    assert_eq!(floats(&params["params"]["net.0.weight"]).len(), 32);
    let log = std::fs::read_to_string(dir.path().join("loss.csv")).unwrap();
    assert_eq!(log.lines().next(), Some("iteration,loss,grad_norm"));
    let first: f64 = log
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let last = params["loss"].as_f64().unwrap();
    eprintln!(
        "spiral: loss {first:.4e} → {last:.4e} ({:.1}×) in {secs:.1} s",
        first / last
    );
    assert!(first / last >= 10.0, "{first} → {last}");
    assert!(
        std::fs::read_to_string(dir.path().join("loss.svg"))
            .unwrap()
            .contains("<svg")
    );
    // A second run takes the next free name, and explicit paths that exist are refused.
    let r = pnodec_in(dir.path(), &["train", s(&file), "-n", "2"]);
    assert_exit(&r, 0);
    assert!(
        text(&r.stderr).contains("spiral.params-1.json"),
        "{}",
        text(&r.stderr)
    );
    let r = pnodec_in(
        dir.path(),
        &["train", s(&file), "-n", "2", "--log", "loss.csv"],
    );
    assert_exit(&r, 2);
    assert!(text(&r.stderr).contains("loss.csv"));
}

#[test]
fn a_training_failure_keeps_the_last_good_parameters() {
    let dir = tempfile::tempdir().unwrap();
    // u(1) = 1/(1 − k) blows up for k ≥ 1; the first SGD step jumps far past it.
    let model = dir.path().join("blowup.pode");
    std::fs::write(
        &model,
        "model blowup\nstate u = 1.0\nparam k = 0.5\nd(u)/dt = k * u ^ 2\n\
         solve { method = rk4\n t = 0 .. 1\n steps = 100 }\nloss = (u - 10) ^ 2\n\
         train { optimizer = sgd(lr = 1.0), iterations = 5 }\n",
    )
    .unwrap();
    let r = pnodec_in(dir.path(), &["train", "blowup.pode", "--out", "p.json"]);
    assert_exit(&r, 1);
    let stderr = text(&r.stderr);
    // Counted from 1 as the progress lines count: the second iteration failed, one was done.
    assert!(
        stderr.contains("training stopped in iteration 2 of 5, after 1 finished iteration:"),
        "{stderr}"
    );
    assert!(stderr.contains("last good"), "{stderr}");
    let p: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("p.json")).unwrap()).unwrap();
    assert_eq!(floats(&p["params"]["k"]), [0.5]);
    assert_eq!(p["iterations"], 1);
}

#[test]
fn bench_prints_both_backends() {
    let file = example("lotka_volterra/lotka_volterra.pode");
    let r = pnodec(&["bench", s(&file), "--reps", "1"]);
    assert_exit(&r, 0);
    let out = text(&r.stdout);
    assert!(
        out.contains("compile ms") && out.contains("stepper"),
        "{out}"
    );
    // An explicit method: the fused step (the default), the runtime's stepper over the JIT
    // kernels, the interpreter.
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(2)
        .take(3)
        .map(|l| l.split_whitespace().take(2).collect())
        .collect();
    assert_eq!(
        rows,
        [["jit", "fused"], ["jit", "runtime"], ["interp", "runtime"]],
        "{out}"
    );
    assert!(out.contains("jit fused speed-up over jit runtime"), "{out}");
    assert!(
        out.contains("jit fused speed-up over interp runtime"),
        "{out}"
    );
    // An implicit method runs the runtime's stepper with either backend.
    let rob = example("robertson/robertson.pode");
    let r = pnodec(&["bench", s(&rob), "--reps", "1"]);
    assert_exit(&r, 0);
    let out = text(&r.stdout);
    assert!(
        out.lines().any(|l| l.starts_with("jit      runtime")),
        "{out}"
    );
    assert!(!out.contains("fused"), "{out}");
    // The JIT cannot compile convolutions; the interpreter is timed alone.
    let conv = corpus::path(Kind::Ok, "conv_block");
    let r = pnodec(&["bench", s(&conv), "--reps", "1"]);
    assert_exit(&r, 0);
    assert!(
        text(&r.stderr).contains("interpreter only"),
        "{}",
        text(&r.stderr)
    );
    assert!(!text(&r.stdout).lines().any(|l| l.starts_with("jit ")));
}

#[test]
fn emit_rust_and_schedule() {
    let lv = example("lotka_volterra/lotka_volterra.pode");
    let r = pnodec(&["emit", "--rust", s(&lv)]);
    assert_exit(&r, 0);
    let rust = text(&r.stdout);
    assert!(rust.contains("RhsVjp for LotkaVolterra"), "{rust}");
    assert!(rust.contains("pub struct LotkaVolterraStepper"), "{rust}");
    let rob = example("robertson/robertson.pode");
    let r = pnodec(&["emit", "--rust", s(&rob)]);
    assert_exit(&r, 0);
    assert!(text(&r.stdout).contains("`esdirk3` is implicit"));
    let r = pnodec(&["emit", "--schedule", s(&lv)]);
    assert_exit(&r, 0);
    let sched = text(&r.stdout);
    assert!(
        sched.contains("schedule `revolve(10)`: 500 steps"),
        "{sched}"
    );
    assert!(sched.contains("predicted: 500 forward steps"), "{sched}");
    // Rust generation does not cover convolutions: an error on the model.
    let conv = corpus::path(Kind::Ok, "conv_block");
    let r = pnodec(&["emit", "--rust", s(&conv)]);
    assert_exit(&r, 1);
    assert!(
        text(&r.stderr).contains("cannot generate Rust"),
        "{}",
        text(&r.stderr)
    );
}

#[test]
fn emit_clif_prints_every_kernel() {
    let lv = example("lotka_volterra/lotka_volterra.pode");
    let r = pnodec(&["emit", "--clif", s(&lv)]);
    assert_exit(&r, 0);
    let clif = text(&r.stdout);
    assert!(
        clif.starts_with("; Cranelift IR of model `lotka_volterra`, as pnode-jit generates it\n")
    );
    assert!(
        clif.contains("fused steps of `rk4` (4 live stages)"),
        "{clif}"
    );
    let sig = "(f64, f64, i64, i64, i64, i64, i64)";
    let names: Vec<&str> = clif
        .lines()
        .filter_map(|l| l.strip_prefix("function %"))
        .map(|l| {
            assert!(l.contains(sig), "{l}");
            l.split('(').next().unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "rhs",
            "jvp",
            "vjp",
            "erk_step",
            "erk_step_keep",
            "erk_recompute",
            "erk_adjoint"
        ]
    );
    // Buffer lengths: 2 states, 4 rates, 4 stages.
    assert!(clif.contains("; lengths: u 2, p 4, x 0, out 2,"), "{clif}");
    assert!(clif.contains("; lengths: u 8, p 4, x 2, out 6,"), "{clif}");
    // RK4's b_1 = 1/6 is a constant of the fused step.
    assert!(clif.contains("f64const 0x1.5555555555555p-3"), "{clif}");
    // Every function is closed and every kernel returns.
    assert_eq!(clif.matches("\n}\n").count(), 7, "{clif}");
    assert_eq!(clif.matches("    return\n").count(), 7, "{clif}");
    let r = pnodec(&["emit", "--clif=optimized", s(&lv)]);
    assert_exit(&r, 0);
    assert!(text(&r.stdout).contains("after Cranelift's optimizer"));
    // An implicit method: the model's kernels only.
    let rob = example("robertson/robertson.pode");
    let r = pnodec(&["emit", "--clif", s(&rob)]);
    assert_exit(&r, 0);
    let clif = text(&r.stdout);
    assert_eq!(clif.matches("\nfunction %").count(), 3, "{clif}");
    assert!(clif.contains("`esdirk3` is implicit"), "{clif}");
    // Convolutions are not lowered: an error on the model, exit 1.
    let conv = corpus::path(Kind::Ok, "conv_block");
    let r = pnodec(&["emit", "--clif", s(&conv)]);
    assert_exit(&r, 1);
    assert!(
        text(&r.stderr).contains("cannot generate Cranelift IR"),
        "{}",
        text(&r.stderr)
    );
    assert!(r.stdout.is_empty());
}

#[test]
fn solve_with_trained_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let file = example("lotka_volterra/lotka_volterra.pode");
    let r = pnodec_in(
        dir.path(),
        &["train", s(&file), "-n", "20", "--out", "p.json"],
    );
    assert_exit(&r, 0);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("p.json")).unwrap()).unwrap();
    let theta = floats(&saved["params"]["theta"]);
    let r = pnodec_in(
        dir.path(),
        &[
            "solve",
            s(&file),
            "--params",
            "p.json",
            "--out",
            "fit.csv",
            "--plot",
            "fit.svg",
        ],
    );
    assert_exit(&r, 0);
    let stderr = text(&r.stderr);
    assert!(
        stderr.contains("parameters from p.json (trained 20 iterations"),
        "{stderr}"
    );
    // The trajectory is the driver's solve at the saved parameters, bit for bit.
    let source = std::fs::read_to_string(&file).unwrap();
    let program = pnode_ir::lower::compile_source(&source).program.unwrap();
    let setup = Setup::new(&program, file.parent().unwrap(), None).unwrap();
    assert_ne!(setup.theta0, theta, "training moved the parameters");
    let mut model = IrModel::new(&program.rhs).unwrap();
    let mut run = Run::new(setup.clone(), &model).unwrap();
    let expected = run.solve(&mut model, &theta).unwrap();
    let csv = std::fs::read_to_string(dir.path().join("fit.csv")).unwrap();
    assert_eq!(csv, expected.to_csv(&setup.state_names()));
    assert!(
        std::fs::read_to_string(dir.path().join("fit.svg"))
            .unwrap()
            .contains("<svg")
    );
    // Without --params: θ0, a different trajectory.
    let r = pnodec_in(dir.path(), &["solve", s(&file)]);
    assert_exit(&r, 0);
    assert_ne!(text(&r.stdout), csv);

    // Errors name the file and the parameter; nothing is written.
    let bad = |name: &str, json: &str, code: i32, needles: &[&str]| {
        std::fs::write(dir.path().join(name), json).unwrap();
        let r = pnodec_in(
            dir.path(),
            &["solve", s(&file), "--params", name, "--out", "bad.csv"],
        );
        assert_exit(&r, code);
        let stderr = text(&r.stderr);
        for n in needles.iter().chain(&[name]) {
            assert!(stderr.contains(n), "{n} missing in: {stderr}");
        }
        assert!(!dir.path().join("bad.csv").exists());
    };
    bad(
        "short.json",
        r#"{"params": {"theta": [1, 2, 3]}}"#,
        1,
        &["parameter `theta` has 3 values", "shape [4] (4 values)"],
    );
    bad(
        "renamed.json",
        r#"{"params": {"rates": [1, 2, 3, 4]}}"#,
        1,
        &["no parameter `theta`", "the file has `rates`"],
    );
    bad(
        "extra.json",
        r#"{"params": {"theta": [1, 2, 3, 4], "k": [1]}}"#,
        1,
        &["`k` is not a parameter of model `lotka_volterra`"],
    );
    bad(
        "text.json",
        r#"{"params": {"theta": [1, 2, "x", 4]}}"#,
        1,
        &["parameter `theta`: value 2"],
    );
    bad("flat.json", "[1, 2, 3, 4]", 1, &["no `params` object"]);
    bad("broken.json", "{\"params\": ", 1, &["not JSON"]);
    // A missing file is an I/O error.
    let r = pnodec_in(dir.path(), &["solve", s(&file), "--params", "none.json"]);
    assert_exit(&r, 2);
    assert!(text(&r.stderr).contains("none.json"), "{}", text(&r.stderr));
    // Another model's parameters of the same names and sizes are used, with a note.
    std::fs::write(
        dir.path().join("other.json"),
        r#"{"model": "other", "params": {"theta": [1.5, 1.0, 3.0, 1.0]}}"#,
    )
    .unwrap();
    let r = pnodec_in(dir.path(), &["solve", s(&file), "--params", "other.json"]);
    assert_exit(&r, 0);
    assert!(
        text(&r.stderr).contains("written for model `other`"),
        "{}",
        text(&r.stderr)
    );
}

#[test]
fn models_with_opaque_layers_are_refused_by_every_backend_but_emit_as_rust() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ext.pode");
    std::fs::write(
        &file,
        "model ext\nstate u[2] = [1, 0]\nlayer net = opaque(2, 2)\nd(u)/dt = net(u)\n\
         solve { method = rk4, t = 0 .. 1, steps = 10 }\n",
    )
    .unwrap();
    let out = pnodec(&["check", s(&file)]);
    assert_exit(&out, 0);
    for backend in ["auto", "jit", "interp"] {
        let out = pnodec(&["solve", s(&file), "--backend", backend]);
        assert_exit(&out, 1);
        let err = text(&out.stderr);
        assert!(
            err.contains("declares the opaque layer `net`") && err.contains("pnode::model!"),
            "{backend}: {err}"
        );
    }
    let out = pnodec(&["emit", "--rust", s(&file)]);
    assert_exit(&out, 0);
    let src = text(&out.stdout);
    assert!(src.contains("self.layers.forward(0,"), "{src}");
    assert!(src.contains("pub const LAYERS"), "{src}");
}

/// `param z` declared before a layer and `param a`: declaration order is not alphabetical.
const ORDER_MODEL: &str = "model order\n\nstate u[2] = [1.0, 0.5]\nparam z = 0.3\n\
layer net = linear(2, 2)\nparam a[2] = [0.1, -0.2]\n\nd(u)/dt = z * net(u) + a\n\n\
solve {\n    method = rk4\n    t = 0 .. 1\n    steps = 20\n    outputs = [0.5, 1.0]\n}\n\n\
loss = sum(u ^ 2)\n\ntrain {\n    optimizer = adam(lr = 0.01)\n    iterations = 3\n    \
log_every = 1\n}\n";

/// The rows of `pnodec solve`'s CSV as numbers (header skipped).
fn csv_rows(csv: &str) -> Vec<Vec<f64>> {
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').map(|x| x.parse().unwrap()).collect())
        .collect()
}

/// `t` and `u` of a `grad` report as CSV rows `t, u…`.
fn grad_rows(v: &Value) -> Vec<Vec<f64>> {
    floats(&v["t"])
        .iter()
        .zip(v["u"].as_array().unwrap())
        .map(|(t, u)| std::iter::once(*t).chain(floats(u)).collect())
        .collect()
}

#[test]
fn grad_lists_parameters_in_declaration_order_with_flat_theta_and_states() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("order.pode"), ORDER_MODEL).unwrap();
    let r = pnodec_in(dir.path(), &["grad", "order.pode"]);
    assert_exit(&r, 0);
    let json = text(&r.stdout);
    let program = pnode_ir::lower::compile_source(ORDER_MODEL)
        .program
        .unwrap();
    let names: Vec<&str> = program.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["z", "net.weight", "net.bias", "a"]);
    // The keys are written in declaration order, not alphabetically.
    let section =
        &json[json.find("\"grad_params\"").unwrap()..json.find("\"grad_theta\"").unwrap()];
    let at: Vec<usize> = names
        .iter()
        .map(|n| section.find(&format!("\"{n}\": [")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{section}");
    let v: Value = serde_json::from_str(&json).unwrap();
    // grad_theta is θ's layout: the concatenation of grad_params in that order.
    let concat: Vec<f64> = names
        .iter()
        .flat_map(|n| floats(&v["grad_params"][*n]))
        .collect();
    let theta = floats(&v["grad_theta"]);
    assert_eq!(theta.len(), program.param_len());
    assert_eq!(theta, concat);
    assert_eq!(theta, flat_grad(&v, &program));
    assert!(theta.iter().all(|g| *g != 0.0), "{theta:?}");
    // u at the output times is what `solve` writes, bit for bit.
    let r = pnodec_in(dir.path(), &["solve", "order.pode"]);
    assert_exit(&r, 0);
    let rows = grad_rows(&v);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].len(), 3);
    assert_eq!(rows, csv_rows(&text(&r.stdout)));
    assert_eq!(floats(&v["t"]), [0.5, 1.0]);
}

#[test]
fn grad_bench_and_train_take_params_like_solve() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("order.pode"), ORDER_MODEL).unwrap();
    std::fs::write(
        dir.path().join("p.json"),
        r#"{"model": "order", "params": {"a": [0.25, -0.5], "z": 0.7,
            "net.weight": [0.1, -0.2, 0.3, 0.4], "net.bias": [0.05, -0.05]}}"#,
    )
    .unwrap();
    let theta = [0.7, 0.1, -0.2, 0.3, 0.4, 0.05, -0.05, 0.25, -0.5];
    let r = pnodec_in(dir.path(), &["grad", "order.pode", "--params", "p.json"]);
    assert_exit(&r, 0);
    assert!(
        text(&r.stderr).contains("parameters from p.json"),
        "{}",
        text(&r.stderr)
    );
    let at_p: Value = serde_json::from_slice(&r.stdout).unwrap();
    let loss = at_p["loss"].as_f64().unwrap();
    // The loss is the driver's at those parameters; the trajectory is `solve --params`'.
    let program = pnode_ir::lower::compile_source(ORDER_MODEL)
        .program
        .unwrap();
    let setup = Setup::new(&program, dir.path(), None).unwrap();
    let mut model = IrModel::new(&program.rhs).unwrap();
    let mut run = Run::new(setup, &model).unwrap();
    let expected = run.loss(&mut model, &theta).unwrap();
    assert!(
        (loss - expected).abs() <= 1e-14 * expected,
        "{loss} vs {expected}"
    );
    let r = pnodec_in(dir.path(), &["solve", "order.pode", "--params", "p.json"]);
    assert_exit(&r, 0);
    assert_eq!(grad_rows(&at_p), csv_rows(&text(&r.stdout)));
    // Without --params: θ0, another loss.
    let r = pnodec_in(dir.path(), &["grad", "order.pode"]);
    assert_exit(&r, 0);
    let at_theta0: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_ne!(at_theta0["loss"], at_p["loss"]);

    // Train warm-starts: its first logged loss is the loss at those parameters.
    let r = pnodec_in(
        dir.path(),
        &[
            "train",
            "order.pode",
            "--params",
            "p.json",
            "-n",
            "2",
            "--log",
            "log.csv",
            "--out",
            "trained.json",
        ],
    );
    assert_exit(&r, 0);
    assert!(
        text(&r.stderr).contains("parameters from p.json"),
        "{}",
        text(&r.stderr)
    );
    let log = std::fs::read_to_string(dir.path().join("log.csv")).unwrap();
    let first: Vec<&str> = log.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(first[0], "0");
    assert_eq!(first[1].parse::<f64>().unwrap(), loss, "{log}");
    // The file it writes lists the parameters in declaration order too, and reads back.
    let trained = std::fs::read_to_string(dir.path().join("trained.json")).unwrap();
    assert!(
        trained.find("\"z\"").unwrap() < trained.find("\"a\"").unwrap(),
        "{trained}"
    );
    assert_exit(
        &pnodec_in(
            dir.path(),
            &["grad", "order.pode", "--params", "trained.json"],
        ),
        0,
    );
    // A bad file is refused by every command, naming it.
    std::fs::write(dir.path().join("bad.json"), r#"{"params": {"z": 1}}"#).unwrap();
    for cmd in ["grad", "train", "bench"] {
        let r = pnodec_in(dir.path(), &[cmd, "order.pode", "--params", "bad.json"]);
        assert_exit(&r, 1);
        let err = text(&r.stderr);
        assert!(
            err.contains("bad.json") && err.contains("no parameter `net.weight`"),
            "{cmd}: {err}"
        );
    }
    // bench times at the parameters of the file.
    let r = pnodec_in(
        dir.path(),
        &[
            "bench",
            "order.pode",
            "--params",
            "p.json",
            "--backend",
            "interp",
            "--reps",
            "1",
        ],
    );
    assert_exit(&r, 0);
    assert!(text(&r.stderr).contains("parameters from p.json"));
}

#[test]
fn bench_takes_a_backend_and_prints_json() {
    let file = example("lotka_volterra/lotka_volterra.pode");
    let bench = |args: &[&str]| {
        let mut all = vec!["bench", s(&file), "--reps", "1"];
        all.extend_from_slice(args);
        pnodec(&all)
    };
    let rows = |v: &Value| -> Vec<(String, String)> {
        v["timings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["backend"].as_str().unwrap().to_string(),
                    r["stepper"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let r = bench(&["--json"]);
    assert_exit(&r, 0);
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["model"], "lotka_volterra");
    assert_eq!(
        (v["states"].as_u64(), v["params"].as_u64()),
        (Some(2), Some(4))
    );
    assert_eq!(
        (v["steps"].as_u64(), v["reps"].as_u64()),
        (Some(500), Some(1))
    );
    let owned = |a: &[(&str, &str)]| -> Vec<(String, String)> {
        a.iter()
            .map(|(b, s)| (b.to_string(), s.to_string()))
            .collect()
    };
    assert_eq!(
        rows(&v),
        owned(&[("jit", "fused"), ("jit", "runtime"), ("interp", "runtime")])
    );
    for t in v["timings"].as_array().unwrap() {
        for key in ["compile_ms", "forward_ms", "gradient_ms"] {
            let x = t[key].as_f64().unwrap();
            assert!(x.is_finite() && x >= 0.0, "{key}: {t}");
        }
        assert!(t["forward_ms"].as_f64().unwrap() > 0.0, "{t}");
    }
    // Keys in the documented order.
    let json = text(&r.stdout);
    let at: Vec<usize> = [
        "\"model\"",
        "\"states\"",
        "\"params\"",
        "\"steps\"",
        "\"reps\"",
        "\"timings\"",
    ]
    .iter()
    .map(|k| json.find(k).unwrap())
    .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{json}");
    let row = &json[json.find("\"timings\"").unwrap()..];
    let at: Vec<usize> = [
        "\"backend\"",
        "\"stepper\"",
        "\"compile_ms\"",
        "\"forward_ms\"",
        "\"gradient_ms\"",
    ]
    .iter()
    .map(|k| row.find(k).unwrap())
    .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{json}");

    let r = bench(&["--json", "--backend", "jit"]);
    assert_exit(&r, 0);
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(rows(&v), owned(&[("jit", "fused"), ("jit", "runtime")]));
    let r = bench(&["--json", "--backend", "interp"]);
    assert_exit(&r, 0);
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(rows(&v), owned(&[("interp", "runtime")]));
    // The table with one backend: one row, no speed-ups.
    let r = bench(&["--backend", "interp"]);
    assert_exit(&r, 0);
    let out = text(&r.stdout);
    let table: Vec<&str> = out.lines().skip(2).collect();
    assert_eq!(table.len(), 1, "{out}");
    assert!(table[0].starts_with("interp   runtime"), "{out}");
    assert!(!out.contains("speed-up"), "{out}");
    // A model without a loss: no gradient timing.
    let dir = tempfile::tempdir().unwrap();
    let noloss = dir.path().join("noloss.pode");
    std::fs::write(
        &noloss,
        "model m\nstate u = 1.0\nparam k = 1.0\nd(u)/dt = -k * u\n",
    )
    .unwrap();
    let r = pnodec(&[
        "bench",
        s(&noloss),
        "--reps",
        "1",
        "--json",
        "--backend",
        "jit",
    ]);
    assert_exit(&r, 0);
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(v["timings"][0]["gradient_ms"].is_null(), "{v}");
    // The JIT refuses convolutions: asked for explicitly, that is an error, not a fallback.
    let conv = corpus::path(Kind::Ok, "conv_block");
    let r = pnodec(&["bench", s(&conv), "--reps", "1", "--backend", "jit"]);
    assert_exit(&r, 1);
    assert!(
        text(&r.stderr).contains("--backend interp"),
        "{}",
        text(&r.stderr)
    );
    if !cfg!(feature = "torch") {
        let r = bench(&["--backend", "torch"]);
        assert_exit(&r, 1);
        assert!(
            text(&r.stderr).contains("--features torch"),
            "{}",
            text(&r.stderr)
        );
    }
}

/// An 80-state stiff reaction–advection–diffusion model (above the 64 states that the implicit
/// default solves densely): `EXTRA` is replaced by more `solve` options, `U0` by the initial
/// state.
const DIFFUSION_MODEL: &str = "model diffusion80\n\nstate u[80] = U0\nparam D = 1.0\n\
param k = 2.0\nparam a = 0.3\n\n\
d(u[1:79])/dt = D * 6561 * (u[0:78] - 2 * u[1:79] + u[2:80]) + a * 40.5 * (u[2:80] - u[0:78]) \
+ k * (u[1:79] - u[1:79] ^ 3)\n\
d(u[0])/dt = D * 6561 * (u[1] - 2 * u[0]) + a * 40.5 * u[1] + k * (u[0] - u[0] ^ 3)\n\
d(u[79])/dt = D * 6561 * (u[78] - 2 * u[79]) - a * 40.5 * u[78] + k * (u[79] - u[79] ^ 3)\n\n\
solve {\n    method = METHOD\n    t = 0 .. T1\n    steps = STEPS\n    outputs = [T1]\nEXTRA}\n\n\
loss = sum((u - 0.2) ^ 2)\n";

fn diffusion(dir: &Path, name: &str, u0: &str, method: &str, extra: &str) -> PathBuf {
    let p = dir.join(name);
    let (t1, steps) = if method == "esdirk3" {
        ("0.5", "20")
    } else {
        ("1", "10")
    };
    let text = DIFFUSION_MODEL
        .replace("U0", u0)
        .replace("METHOD", method)
        .replace("T1", t1)
        .replace("STEPS", steps)
        .replace("EXTRA", extra);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn the_default_gmres_gives_round_off_gradients_on_80_states() {
    let dir = tempfile::tempdir().unwrap();
    let auto = diffusion(dir.path(), "auto.pode", "0.5", "esdirk3", "");
    let dense = diffusion(
        dir.path(),
        "dense.pode",
        "0.5",
        "esdirk3",
        "    linear_solver = dense\n",
    );
    let ga = grad_json(&auto, "jit");
    let gd = grad_json(&dense, "jit");
    assert!(
        ga["stats"]["linear_iterations"].as_u64().unwrap() > 0,
        "GMRES ran"
    );
    assert_eq!(gd["stats"]["linear_iterations"].as_u64(), Some(0));
    // Measured: 1.8e-14 (the former default, krylov_tol = 1e-12: 3.0e-12).
    let e = max_rel(&floats(&gd["grad_theta"]), &floats(&ga["grad_theta"]));
    eprintln!("80 states, ESDIRK3: GMRES default vs dense LU, dL/dθ {e:.2e}");
    assert!(e <= 2e-13, "{e:e}");
    let (la, ld) = (ga["loss"].as_f64().unwrap(), gd["loss"].as_f64().unwrap());
    assert!((la - ld).abs() <= 1e-14 * ld, "{la} vs {ld}");
}

#[test]
fn a_gmres_failure_in_the_reverse_sweep_says_what_failed_and_what_to_change() {
    // At rest (u = 0 is a steady state) the forward stage systems have zero right-hand sides;
    // the adjoint's transposed ones do not, and GMRES(1) cannot solve them within its 1000
    // iterations on this stiff Laplacian.
    let dir = tempfile::tempdir().unwrap();
    for (method, at) in [
        ("backward_euler", "step 9 (stage at t = 1)"),
        ("esdirk3", "step 19 (stage 3 at t = 0.5)"),
    ] {
        let file = diffusion(
            dir.path(),
            &format!("{method}.pode"),
            "zeros",
            method,
            "    krylov_restart = 1\n",
        );
        let r = pnodec(&["grad", s(&file)]);
        assert_exit(&r, 1);
        let err = text(&r.stderr);
        for needle in [
            "transposed stage linear solve",
            "adjoint (reverse) sweep",
            &format!("failed in {at}"),
            "GMRES reached its iteration cap after 1000 Krylov iterations",
            "residual norm",
            "`krylov_tol`",
            "`krylov_restart`",
            "`linear_solver = dense`",
        ] {
            assert!(
                err.contains(needle),
                "{method}: {needle:?} missing in: {err}"
            );
        }
        assert!(
            !err.contains("NaN") && !err.contains("Newton failed"),
            "{err}"
        );
    }
}

#[test]
fn adaptive_steps_show_their_grid_in_solve_grad_emit_and_check() {
    let file = example("spiral/spiral_adaptive.pode");
    let dir = tempfile::tempdir().unwrap();
    let grid_csv = dir.path().join("grid.csv");
    let out = pnodec(&["solve", s(&file), "--grid", s(&grid_csv)]);
    assert_exit(&out, 0);
    let grid: Vec<f64> = std::fs::read_to_string(&grid_csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.parse().unwrap())
        .collect();
    let report = grad_json(&file, "jit");
    // serde_json's float parsing may be off by an ulp: the texts are the shortest round-trip
    // forms of the same bits.
    let reported = floats(&report["grid"]);
    assert_eq!(reported.len(), grid.len());
    assert!(max_rel(&grid, &reported) <= 1e-15, "solve's grid is grad's");
    assert_eq!(report["steps"].as_u64().unwrap() as usize, grid.len() - 1);
    assert!(report["rejected_steps"].as_u64().is_some());
    assert_eq!((grid[0], *grid.last().unwrap()), (0.0, 4.0));
    assert!(grid.windows(2).all(|w| w[0] < w[1]));
    // Every output time is an accepted grid point.
    for t in floats(&report["t"]) {
        assert!(grid.iter().any(|g| (g - t).abs() <= 1e-15 * t), "{t}");
    }
    let stats = &report["stats"];
    assert_eq!(stats["peak_slots"], 8, "online(slots = 8) holds");
    assert_eq!(stats["reversed_steps"], report["steps"]);

    let out = pnodec(&["emit", "--schedule", s(&file)]);
    assert_exit(&out, 0);
    let text = text(&out.stdout);
    assert!(text.contains("adaptive steps"), "{text}");
    assert!(
        text.contains("at most 8 solution slots (128 bytes)")
            && text.contains("N(d-1)/2")
            && text.contains("rejected steps hold no memory"),
        "{text}"
    );
    let out = pnodec(&["check", s(&file)]);
    assert_exit(&out, 0);
    assert!(
        text_of(&out).contains("adaptive steps (rtol 1e-6, atol 1e-9)"),
        "{}",
        text_of(&out)
    );
}

fn text_of(out: &Output) -> String {
    text(&out.stdout) + &text(&out.stderr)
}
