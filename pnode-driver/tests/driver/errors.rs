//! Bad input: missing and malformed data files, shape mismatches, solver failures, options
//! that cannot be used. Every case is an error naming what is wrong; none panics.

use std::path::Path;

use crate::common::{compile, run_for};
use pnode_driver::data::{Table, write_npy};
use pnode_driver::{Error, Run, Setup};
use pnode_ir::runtime::IrModel;

fn setup_err(src: &str, dir: &Path) -> Error {
    Setup::new(&compile(src), dir, None).unwrap_err()
}

const FIT: &str = "model fit
state u[2] = [1.0, 0.5]
param k = 0.5
d(u)/dt = -k * u
solve { method = rk4, t = 0 .. 1, steps = 10, outputs = linspace(0.1, 1, 10) }
loss = mse(u, data(\"obs.csv\"))
";

#[test]
fn missing_data_file_names_the_resolved_path() {
    let dir = tempfile::tempdir().unwrap();
    let e = setup_err(FIT, dir.path());
    let msg = e.to_string();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(
        msg.contains(&dir.path().join("obs.csv").display().to_string()),
        "{msg}"
    );
}

/// `(file contents, message fragments)` for the loss data of [`FIT`] (10 outputs × 2).
#[test]
fn loss_data_shape_mismatches_name_file_and_both_sizes() {
    let rows = |r: usize, c: usize| -> String {
        (0..r)
            .map(|i| vec![format!("{i}"); c].join(","))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let cases = [
        (rows(9, 2), "found 9 rows × 2 columns"),
        (rows(11, 2), "found 11 rows × 2 columns"),
        (rows(10, 3), "found 10 rows × 3 columns"),
        (rows(10, 1), "or one column of 20 values"),
    ];
    for (text, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("obs.csv"), text).unwrap();
        let e = setup_err(FIT, dir.path());
        let msg = e.to_string();
        assert!(matches!(e, Error::DataShape { .. }), "{msg}");
        assert!(msg.contains("obs.csv") && msg.contains(want), "{msg}");
        assert!(
            msg.contains("expected 10 rows (one per output time) × 2 columns"),
            "{msg}"
        );
    }
    // One column of K·n values is the flattened table.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("obs.csv"), rows(20, 1)).unwrap();
    let s = Setup::new(&compile(FIT), dir.path(), None).unwrap();
    assert_eq!(s.fits[0].data.len(), 20);
    // A column past the last.
    let src = FIT.replace("data(\"obs.csv\")", "data(\"obs.csv\", column = 4)");
    std::fs::write(dir.path().join("obs.csv"), rows(20, 2)).unwrap();
    let msg = setup_err(&src, dir.path()).to_string();
    assert!(
        msg.contains("column 4") && msg.contains("number of columns 2"),
        "{msg}"
    );
}

#[test]
fn malformed_csv_files_name_the_line() {
    let cases: [(&[u8], &str); 7] = [
        (b"a,b\n1,2\n1,x\n", ":3: field 2 is `x`, not a number"),
        (
            b"1,2\n# comment\n\n1,2,3\n",
            ":4: 3 fields, but the first row has 2",
        ),
        (b"", "no data rows"),
        (b"t,u\n", "no data rows"),
        (b"1,2\n1,NaN\n", ":2: field 2 is NaN; data must be finite"),
        (b"1,2\n\xff\xfe,1\n", ":2: not UTF-8"),
        (b"1,,2\n", ":1: field 2 is ``, not a number"),
    ];
    for (bytes, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        std::fs::write(&path, bytes).unwrap();
        let e = Table::read(&path).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::Csv { .. }), "{msg}");
        assert!(msg.contains(want), "{msg:?} lacks {want:?}");
    }
}

fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn malformed_npy_files_are_clear_errors() {
    let f8 = |n: usize| -> Vec<u8> { (0..n).flat_map(|i| (i as f64).to_le_bytes()).collect() };
    let dict = |descr: &str, fortran: &str, shape: &str| {
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}")
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"PK\x03\x04 not npy".to_vec(), "not an NPY file"),
        (
            npy(&dict("<f8", "False", "(2, 3)"), &f8(5)),
            "needs 48 bytes of data, found 40",
        ),
        (
            npy(&dict(">f8", "False", "(2,)"), &f8(2)),
            "unsupported dtype `>f8`",
        ),
        (
            npy(&dict("<i8", "False", "(2,)"), &f8(2)),
            "unsupported dtype `<i8`",
        ),
        (npy(&dict("<f8", "True", "(2,)"), &f8(2)), "Fortran-order"),
        (
            npy("{'descr': '<f8', 'shape': (2,), }", &f8(2)),
            "no boolean `fortran_order`",
        ),
        (
            npy(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}",
                &f8(2),
            ),
            "expected a string",
        ),
        (
            npy(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 'y'}",
                &f8(2),
            ),
            "unknown key `x`",
        ),
        (
            npy(&dict("<f8", "False", "(2, q)"), &f8(2)),
            "expected a dimension",
        ),
        (npy("[1, 2]", &f8(2)), "expected `{`"),
        (
            npy(&dict("<f8", "False", "(99999999999, 99999999999)"), &f8(2)),
            "too large",
        ),
        (
            b"\x93NUMPY\x01\x00\xff\x00{".to_vec(),
            "the header claims 255 bytes",
        ),
        (
            b"\x93NUMPY\x07\x00\x10\x00".to_vec(),
            "unsupported NPY format version 7.0",
        ),
        (
            npy(
                &dict("<f8", "False", "(2,)"),
                &[f8(1), f64::INFINITY.to_le_bytes().to_vec()].concat(),
            ),
            "element 1 is inf",
        ),
    ];
    for (bytes, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.npy");
        std::fs::write(&path, &bytes).unwrap();
        let e = Table::read(&path).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::Npy { .. }), "{msg}");
        assert!(
            msg.contains(want) && msg.contains("d.npy"),
            "{msg:?} lacks {want:?}"
        );
    }
}

#[test]
fn truncated_and_corrupted_npy_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.npy");
    write_npy(&good, &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let path = dir.path().join("bad.npy");
    for cut in 0..bytes.len() {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert!(
            Table::read(&path).is_err(),
            "a file cut at {cut} bytes was accepted"
        );
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let mut b = bytes.clone();
        for _ in 0..3 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x as usize) % b.len();
            b[i] = (x >> 32) as u8;
        }
        std::fs::write(&path, &b).unwrap();
        let _ = Table::read(&path);
    }
}

#[test]
fn initial_value_of_the_wrong_size_names_file_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    write_npy(&dir.path().join("x0.npy"), &[5, 2], &[0.5; 10]).unwrap();
    let src = "model m\nstate x[4, 2] = data(\"x0.npy\")\nd(x)/dt = -x\n";
    let msg = setup_err(src, dir.path()).to_string();
    assert!(
        msg.contains("x0.npy") && msg.contains("initial value of state `x` [4, 2]"),
        "{msg}"
    );
    assert!(
        msg.contains("expected 8 values, found 10 values (5 rows × 2 columns)"),
        "{msg}"
    );
}

#[test]
fn output_times_from_files_are_checked() {
    let src = "model m\nstate u = 1.0\nd(u)/dt = -u\nsolve { method = rk4, t = 0 .. 1, steps = 4, outputs = data(\"t.csv\") }\n";
    for (text, want) in [
        ("0.5,1\n", "one column of times"),
        (
            "0.5\n0.25\n",
            "must increase strictly: time 1 = 0.25 after 0.5",
        ),
        ("0.5\n2\n", "output time 1 in"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.csv"), text).unwrap();
        let msg = setup_err(src, dir.path()).to_string();
        assert!(msg.contains(want), "{msg:?} lacks {want:?}");
    }
}

#[test]
fn a_non_finite_state_names_the_step_and_time() {
    // u' = u² from u = 1 blows up at t = 1.
    let src = "model m\nstate u = 1.0\nd(u)/dt = u ^ 2\nsolve { method = euler, t = 0 .. 2, steps = 200 }\nloss = u\n";
    let dir = tempfile::tempdir().unwrap();
    let (mut run, mut model) = run_for(src, dir.path());
    let theta: Vec<f64> = Vec::new();
    for e in [
        run.solve(&mut model, &theta).unwrap_err(),
        run.loss_and_grad(&mut model, &theta).unwrap_err(),
    ] {
        let Error::Runtime(pnode_runtime::Error::NonFiniteState { step, t, .. }) = e else {
            panic!("{e:?}")
        };
        assert!(step > 100 && step < 200, "{step}");
        assert_eq!(t, run.setup().grid.fixed().unwrap().t(step + 1));
        assert!(
            e.to_string()
                .contains(&format!("after step {step} (t = {t})"))
        );
    }
}

#[test]
fn options_that_cannot_be_used_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Minibatches need a data fit.
    let src = "model m\nstate u = 1.0\nparam k = 1.0\nd(u)/dt = -k * u\nsolve { method = rk4, t = 0 .. 1, steps = 4 }\nloss = u ^ 2\ntrain { optimizer = adam(lr = 0.1), batch_size = 4 }\n";
    let msg = setup_err(src, dir.path()).to_string();
    assert!(
        msg.starts_with("invalid `batch_size`: minibatches of 4"),
        "{msg}"
    );
    // PETSc without the runtime's feature: the runtime's own error, at setup.
    let src = "model m\nstate u = 1.0\nd(u)/dt = -u\nsolve { method = theta(0.75), t = 0 .. 1, steps = 4, linear_solver = petsc }\n";
    // (With the runtime's `petsc` feature enabled elsewhere in the build, it is accepted.)
    if let Err(e) = Setup::new(&compile(src), dir.path(), None) {
        let msg = e.to_string();
        assert!(
            msg.contains("needs pnode-runtime built with the `petsc` feature"),
            "{msg}"
        );
    }
    // A log-spaced grid of one point.
    let src = "model m\nstate u = 1.0\nd(u)/dt = -u\nsolve { method = rk4, t = 0 .. 1, steps = logspace(1, 1, 1) }\n";
    let l = pnode_ir::lower::compile_source(src);
    if let Some(p) = l.program {
        let msg = Setup::new(&p, dir.path(), None).unwrap_err().to_string();
        assert!(msg.starts_with("invalid `steps`"), "{msg}");
    }
    // No loss: no gradient, no training.
    let src = "model m\nstate u = 1.0\nparam k = 1.0\nd(u)/dt = -k * u\n";
    let (mut run, mut model) = run_for(src, dir.path());
    let msg = run
        .loss_and_grad(&mut model, &[1.0])
        .unwrap_err()
        .to_string();
    assert_eq!(msg, "the model `m` has no `loss`; a gradient needs one");
    assert!(run.train(&mut model, |_| {}).is_err());
    // A model of other sizes.
    let other = compile("model o\nstate u[3] = zeros\nd(u)/dt = -u\n");
    let setup = Setup::new(&compile(src), dir.path(), None).unwrap();
    let msg = Run::new(setup, &IrModel::new(&other.rhs).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("the model has 3 states and 0 parameters, the program 1 and 1"),
        "{msg}"
    );
    // Parameters of the wrong length.
    let e = run.solve(&mut model, &[1.0, 2.0]).unwrap_err();
    assert!(e.to_string().contains("parameters"), "{e}");
}

/// Issue 15, finding 7: a uniform grid whose points would overflow (`t1 - t0` infinite) or
/// repeat is a typed error of the resolver, not NaN time points.
#[test]
fn a_grid_that_does_not_fit_f64_is_a_typed_error() {
    use pnode_driver::resolve::time_grid;
    use pnode_ir::lower::Steps;
    let data = pnode_driver::FsData::new(Path::new("."));
    let e = time_grid(&Steps::Uniform(10), -1e308, 1e308, &data).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TimeGrid {
                t0: -1e308,
                t1: 1e308,
                steps: 10
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("t1 - t0 overflows"), "{e}");
    let e = time_grid(&Steps::Uniform(100_000_000), 1.0, 1.000000000001, &data).unwrap_err();
    assert!(matches!(e, Error::TimeGrid { .. }), "{e:?}");
    let ok = time_grid(&Steps::Uniform(4), -8e307, 8e307, &data)
        .unwrap()
        .to_times();
    assert_eq!((ok.len(), ok[0], ok[4]), (5, -8e307, 8e307));
    assert!(
        ok.windows(2).all(|w| w[0] < w[1] && w[1].is_finite()),
        "{ok:?}"
    );
}

/// Issue 15, finding 3: `steps = 10⁹` stores nothing per step (the uniform grid computes its
/// points), so the setup and solver of a Revolve gradient over it fit in 1 MB with the grid,
/// the output and 10 slots, while store-all is refused before any step, naming `checkpoint`.
/// A grid that must be listed (an output time off the uniform points is inserted) is counted
/// at 32 bytes a point and refused naming `steps` before it is made.
#[test]
fn a_billion_uniform_steps_cost_no_grid_memory() {
    use pnode_driver::memory::{Limit, MemoryUse, set_max_memory};
    let src = |ck: &str, outputs: &str| {
        format!(
            "model big\nstate u = 1.0\nparam k = 0.5\nd(u)/dt = -k * u\nsolve {{ method = rk4, \
             t = 0 .. 1, steps = 1000000000, checkpoint = {ck}{outputs} }}\nloss = u ^ 2\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let megabyte = Some(Limit::Given(1_000_000));
    let (run, _) = run_for(&src("revolve(slots = 10)", ""), dir.path());
    assert!(run.checkpoint_bytes() < 1000, "{}", run.checkpoint_bytes());
    run.check_checkpoint_memory(megabyte).unwrap();
    let (run, _) = run_for(&src("store_all", ""), dir.path());
    let e = run.check_checkpoint_memory(megabyte).unwrap_err();
    assert!(
        matches!(e, Error::Memory { what: MemoryUse::Checkpoint, bytes, .. }
            if bytes == run.checkpoint_bytes() && bytes > 8_000_000_000),
        "{e:?}"
    );
    // The preflight of the resolver reads the process-wide limit: set it only around this
    // call (no other test of this binary sets one).
    set_max_memory(Some(1_000_000_000));
    let inserted = Setup::new(
        &compile(&src("revolve(slots = 10)", ", outputs = [0.1234567895]")),
        dir.path(),
        None,
    );
    set_max_memory(None);
    match inserted {
        Err(Error::Memory {
            what: MemoryUse::Steps,
            bytes: 32_000_000_064,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}
