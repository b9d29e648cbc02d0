//! What `Setup::new` resolves: grids, output times, schedules, methods, Newton options,
//! training defaults, and the data readers on good files.

use std::path::Path;

use crate::common::{self, compile};
use pnode_driver::data::{Table, write_npy};
use pnode_driver::{MethodChoice, Setup};
use pnode_ir::lower::Optimizer;
use pnode_runtime::implicit::{LineSearch, LinearSolver};
use pnode_runtime::{Budget, Checkpointing};
use pnode_testkit::corpus::{self, Kind};

fn corpus_setup(name: &str) -> Setup {
    let p = compile(&corpus::file(Kind::Ok, name).source);
    let dir = tempfile::tempdir().unwrap();
    common::synthesize(&p, dir.path(), None, 0.0);
    Setup::new(&p, dir.path(), None).unwrap()
}

fn setup(src: &str) -> Setup {
    Setup::new(&compile(src), Path::new("."), None).unwrap()
}

const HEAD: &str = "model m\nstate u = 1.0\nparam k = 1.0\nd(u)/dt = -k * u\n";

#[test]
fn defaults_without_solve_and_train_blocks() {
    let s = setup(HEAD);
    assert_eq!(s.grid.n_steps(), Some(100));
    assert_eq!(
        (s.grid.fixed().unwrap().t(0), s.grid.fixed().unwrap().t(100)),
        (0.0, 1.0)
    );
    assert_eq!(s.output_times, [1.0]);
    assert_eq!(s.checkpointing, Checkpointing::StoreAll);
    assert!(matches!(&s.method, MethodChoice::Explicit(t) if t.name() == "rk4"));
    assert_eq!(s.train.iterations, 100);
    assert_eq!(s.train.log_every, 10);
    assert!(matches!(s.train.optimizer, Optimizer::Adam { lr, .. } if lr == 1e-3));
    assert_eq!(s.notes.len(), 2, "{:?}", s.notes);
    // A solve block without outputs and checkpoint.
    let s = setup(&format!(
        "{HEAD}solve {{ method = heun, t = 1 .. 3, steps = 4 }}\n"
    ));
    assert_eq!(s.output_times, [3.0]);
    assert_eq!(
        s.grid.fixed().unwrap().to_times(),
        [1.0, 1.5, 2.0, 2.5, 3.0]
    );
    assert_eq!(
        s.notes,
        [
            "no `outputs`: the final time t = 3",
            "no `checkpoint`: store_all",
            "no `train` block: adam(lr = 1e-3), 100 iterations"
        ]
    );
}

#[test]
fn grids_and_output_times() {
    // Log-spaced: t0, then n points from a to b with a constant ratio.
    let s = setup(&format!(
        "{HEAD}solve {{ method = rk4, t = 0 .. 100, steps = logspace(1e-6, 100, 9), outputs = [1e-6, 100] }}\n"
    ));
    let t = s.grid.fixed().unwrap().to_times();
    assert_eq!(t.len(), 10);
    assert_eq!((t[0], t[1], t[9]), (0.0, 1e-6, 100.0));
    for i in 1..9 {
        assert!((t[i + 1] / t[i] - 10.0).abs() < 1e-12, "{t:?}");
    }
    assert_eq!(s.output_times, [1e-6, 100.0]);
    // Linspace outputs on a uniform grid: on-grid times snap, others are inserted.
    let s = setup(&format!(
        "{HEAD}solve {{ method = rk4, t = 0 .. 1, steps = 10, outputs = linspace(0, 1, 5) }}\n"
    ));
    assert_eq!(s.output_times, [0.0, 0.25, 0.5, 0.75, 1.0]);
    assert_eq!(s.grid.n_steps(), Some(12));
    assert!(
        s.notes[0].starts_with("2 output times are not grid points"),
        "{:?}",
        s.notes
    );
    // 0.1 · 3 is not exactly 0.3 in floating point, but within the tolerance of a grid point.
    let s = setup(&format!(
        "{HEAD}solve {{ method = rk4, t = 0 .. 1, steps = [0, 0.1, 0.30000000000000004, 1], outputs = [0.3, 1] }}\n"
    ));
    assert_eq!(s.grid.n_steps(), Some(3));
    assert_eq!(s.output_times, [0.30000000000000004, 1.0]);
}

#[test]
fn checkpoint_modes_methods_and_newton_options() {
    let ck = |c: &str| {
        setup(&format!(
            "{HEAD}solve {{ method = rk4, t = 0 .. 1, steps = 10, checkpoint = {c} }}\n"
        ))
        .checkpointing
    };
    assert_eq!(ck("store_all"), Checkpointing::StoreAll);
    assert_eq!(ck("solution_only"), Checkpointing::SolutionOnly);
    assert_eq!(
        ck("revolve(slots = 3)"),
        Checkpointing::Revolve { slots: 3 }
    );
    assert_eq!(ck("online(slots = 4)"), Checkpointing::Online { slots: 4 });
    assert_eq!(
        ck("budget(bytes = 2KiB)"),
        Checkpointing::Budget(Budget::Bytes(2048))
    );
    assert_eq!(
        ck("budget(vectors = 7)"),
        Checkpointing::Budget(Budget::Vectors(7))
    );

    let r = corpus_setup("robertson");
    let MethodChoice::Theta { theta, newton } = r.method else {
        panic!()
    };
    assert_eq!(theta, 0.5);
    assert_eq!(
        (newton.atol, newton.rtol, newton.max_iters),
        (1e-10, 1e-10, 20)
    );
    assert_eq!(newton.line_search, LineSearch::Backtracking(8));
    assert!(matches!(newton.linear, LinearSolver::Gmres(_)));
    // krylov options without linear_solver choose GMRES with them.
    let MethodChoice::Dirk { tableau, newton } = corpus_setup("trbdf2").method else {
        panic!()
    };
    assert_eq!(tableau.name(), "trbdf2");
    let LinearSolver::Gmres(g) = newton.linear else {
        panic!("{newton:?}")
    };
    assert_eq!((g.rtol, g.restart), (1e-12, 30));
    let MethodChoice::Theta { theta, newton } = corpus_setup("van_der_pol").method else {
        panic!()
    };
    assert_eq!(
        (theta, newton.linear, newton.line_search, newton.max_iters),
        (1.0, LinearSolver::Dense, LineSearch::None, 50)
    );
    // The user tableau: Heun, order 2 found from the order conditions.
    let MethodChoice::Explicit(t) = corpus_setup("user_tableau").method else {
        panic!()
    };
    assert_eq!((t.name(), t.order(), t.stages()), ("erk", 2, 2));
    let MethodChoice::Explicit(t) = corpus_setup("forced_oscillator").method else {
        panic!()
    };
    assert_eq!(t.name(), "midpoint");
}

#[test]
fn training_options() {
    let s = corpus_setup("layers");
    assert_eq!(s.train.batch_size, Some(32));
    assert_eq!(s.train.iterations, 500);
    assert!(
        matches!(s.train.optimizer, Optimizer::Sgd { lr, momentum } if lr == 0.01 && momentum == 0.9)
    );
    let s = corpus_setup("hybrid_physics");
    assert_eq!((s.train.seed, s.train.log_every), (42, 10));
    let p = compile(&corpus::file(Kind::Ok, "hybrid_physics").source);
    // The seed override wins over the train block's seed.
    let dir = tempfile::tempdir().unwrap();
    common::synthesize(&p, dir.path(), None, 0.0);
    assert_eq!(Setup::new(&p, dir.path(), Some(7)).unwrap().train.seed, 7);
}

#[test]
fn data_readers_on_good_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(
        p("a.csv"),
        "# comment\ntime, x, y\n0, 1.5, -2\n\n1, 2.5e-3, 3\n",
    )
    .unwrap();
    let t = Table::read(&p("a.csv")).unwrap();
    assert_eq!((t.rows, t.cols), (2, 3));
    assert_eq!(t.values, [0.0, 1.5, -2.0, 1.0, 2.5e-3, 3.0]);
    assert_eq!(t.column(1).unwrap().values, [1.5, 2.5e-3]);
    std::fs::write(p("w.txt"), "1 2\t3\n  4 5 6  \n").unwrap();
    assert_eq!(
        Table::read(&p("w.txt")).unwrap().values,
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );

    write_npy(
        &p("b.npy"),
        &[2, 2, 3],
        &(0..12).map(f64::from).collect::<Vec<_>>(),
    )
    .unwrap();
    let t = Table::read(&p("b.npy")).unwrap();
    assert_eq!((t.rows, t.cols, t.values[11]), (2, 6, 11.0));
    // float32, format 2.0, 0-d.
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}";
    let mut b = b"\x93NUMPY\x02\x00".to_vec();
    b.extend_from_slice(&(header.len() as u32 + 1).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    b.push(b'\n');
    for x in [0.5f32, -1.25, 3.0] {
        b.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(p("c.npy"), b).unwrap();
    let t = Table::read(&p("c.npy")).unwrap();
    assert_eq!((t.rows, t.cols, t.values), (3, 1, vec![0.5, -1.25, 3.0]));
    write_npy(&p("d.npy"), &[], &[4.5]).unwrap();
    assert_eq!(Table::read(&p("d.npy")).unwrap().values, [4.5]);
}

#[test]
fn element_names_and_trajectory_csv() {
    let src = "model m\nstate x[2, 2] = [[1, 2], [3, 4]]\nstate s = 0.5\nparam k = 1.0\nlayer f = linear(1, 2)\nd(x)/dt = -k * x\nd(s)/dt = sum(f([s]))\nsolve { method = euler, t = 0 .. 1, steps = 2, outputs = [0.5, 1] }\n";
    let (mut run, mut model) = common::run_for(src, Path::new("."));
    let s = run.setup().clone();
    assert_eq!(
        s.state_names(),
        ["x[0,0]", "x[0,1]", "x[1,0]", "x[1,1]", "s"]
    );
    assert_eq!(
        s.param_names(),
        [
            "k",
            "f.weight[0,0]",
            "f.weight[1,0]",
            "f.bias[0]",
            "f.bias[1]"
        ]
    );
    let mut theta = s.theta0.clone();
    theta[1..].fill(0.0);
    let traj = run.solve(&mut model, &theta).unwrap();
    assert_eq!(
        traj.to_csv(&s.state_names()),
        "t,x[0,0],x[0,1],x[1,0],x[1,1],s\n0.5,0.5,1,1.5,2,0.5\n1,0.25,0.5,0.75,1,0.5\n"
    );
}

/// `steps = data(..)` and a layer's `init = data(..)` through the one resolver: the grid of
/// the file is the inline list's bit for bit, θ0 is the file; wrong files are typed errors.
#[test]
fn grid_points_and_layer_weights_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let times = [0.0, 0.1, 0.25, 0.6, 1.0];
    pnode_driver::data::write_csv(&dir.path().join("t.csv"), 1, &times).unwrap();
    let w: Vec<f64> = (0..12).map(|i| 0.1 * i as f64 - 0.5).collect();
    write_npy(&dir.path().join("w6.npy"), &[2, 3], &w[..6]).unwrap();
    write_npy(&dir.path().join("w.npy"), &[12], &w).unwrap();
    let model = |steps: &str, init: &str| {
        format!(
            "model m\nstate x[2] = [1.0, 0.5]\nlayer l = linear(2, 2{init})\nlayer g = \
             linear(2, 2)\nd(x)/dt = g(l(x))\nsolve {{ method = rk4, t = 0 .. 1, steps = \
             {steps}, outputs = [0.5, 1.0] }}\n"
        )
    };
    let file = Setup::new(
        &compile(&model("data(\"t.csv\")", ", init = data(\"w6.npy\")")),
        dir.path(),
        None,
    )
    .unwrap();
    let inline = Setup::new(
        &compile(&model("[0.0, 0.1, 0.25, 0.6, 1.0]", "")),
        dir.path(),
        None,
    )
    .unwrap();
    assert_eq!(file.grid, inline.grid, "0.5 inserted into both");
    assert_eq!(
        file.grid.fixed().unwrap().to_times(),
        [0.0, 0.1, 0.25, 0.5, 0.6, 1.0]
    );
    // l's weight [2, 2] and bias [2] are the file's six values, whatever its shape.
    assert_eq!(file.theta0[..6], w[..6]);
    assert_eq!(file.program.params[0].name, "l.weight");
    // The layer holds 6 parameters; the file 12: a typed error with both sizes.
    let err = Setup::new(
        &compile(&model("4", ", init = data(\"w.npy\")")),
        dir.path(),
        None,
    );
    let Err(pnode_driver::Error::DataShape {
        path,
        expected,
        found,
        ..
    }) = err
    else {
        panic!("{err:?}");
    };
    assert!(
        path.ends_with("w.npy")
            && expected.starts_with("6 values")
            && found.starts_with("12 values")
    );
    // A grid file that does not run from t0 to t1.
    pnode_driver::data::write_csv(&dir.path().join("bad.csv"), 1, &[0.0, 0.5]).unwrap();
    let err = Setup::new(&compile(&model("data(\"bad.csv\")", "")), dir.path(), None);
    assert!(
        matches!(&err, Err(pnode_driver::Error::DataShape { what, .. }) if what.contains("steps")),
        "{err:?}"
    );
}
