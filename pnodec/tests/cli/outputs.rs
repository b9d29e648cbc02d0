//! Outputs that survive failures: atomic writes, checks before any work, failed writes that
//! exit non-zero, closed pipes, SIGINT and SIGTERM during `train`, default names.

use super::{assert_exit, path_str, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A one-parameter model whose iterations take microseconds; `iterations` from the caller.
fn tiny(dir: &Path, iterations: u64) -> PathBuf {
    let path = dir.join("tiny.pode");
    let text = format!(
        "model tiny\nstate u = 1.0\nparam k = 0.5\nd(u)/dt = -k * u\n\
         solve {{ method = rk4\n t = 0 .. 1\n steps = 4 }}\nloss = (u - 0.2) ^ 2\n\
         train {{ optimizer = adam(lr = 0.001), iterations = {iterations}, log_every = 100000 }}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pnodec"));
    c.args(args).current_dir(dir).stdin(Stdio::null());
    c
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().unwrap()
}

/// `args` run under a file-size limit of 0 bytes (SIGXFSZ ignored): every write of a byte to
/// a regular file fails with EFBIG, as on a full disk.
fn run_without_room(dir: &Path, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 0 && trap '' XFSZ && exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_pnodec"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn outputs_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    tiny(dir.path(), 5);
    let r = run_in(
        dir.path(),
        &["train", "tiny.pode", "--out", "x", "--plot", "x"],
    );
    assert_exit(&r, 2);
    let stderr = text(&r.stderr);
    assert!(
        stderr.contains("`--out` and `--plot` both name `x`"),
        "{stderr}"
    );
    assert!(!stderr.contains("exists"), "{stderr}");
    assert!(!stderr.contains("training `tiny`"), "{stderr}");
    let r = run_in(
        dir.path(),
        &["solve", "tiny.pode", "-o", "t.csv", "--plot", "./t.csv"],
    );
    assert_exit(&r, 2);
    assert!(text(&r.stderr).contains("both name"), "{}", text(&r.stderr));
    // A missing folder and a file used as a folder are found before training.
    for out in ["no/such/p.json", "tiny.pode/p.json"] {
        let r = run_in(dir.path(), &["train", "tiny.pode", "--out", out]);
        assert_exit(&r, 2);
        let stderr = text(&r.stderr);
        assert!(
            stderr.contains(&format!("cannot write `{out}`")),
            "{stderr}"
        );
        assert!(stderr.contains("folder"), "{stderr}");
        assert!(!stderr.contains("at path"), "{stderr}");
        assert!(!stderr.contains("training `tiny`"), "{stderr}");
    }
    let r = run_in(dir.path(), &["train", "tiny.pode", "--save-every", "0"]);
    assert_exit(&r, 2);
    assert_eq!(names(dir.path()), ["tiny.pode"]);
}

#[test]
fn a_failed_write_leaves_nothing_behind_and_the_rerun_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    tiny(dir.path(), 5);
    let outputs = ["--out", "p.json", "--log", "l.csv", "--plot", "l.svg"];
    let train: Vec<&str> = ["train", "tiny.pode"].into_iter().chain(outputs).collect();
    let r = run_without_room(dir.path(), &train);
    assert_exit(&r, 2);
    let stderr = text(&r.stderr);
    assert!(stderr.contains("cannot write `p.json`"), "{stderr}");
    assert!(stderr.contains("cannot write `l.csv`"), "{stderr}");
    // No truncated output and no temporary file.
    assert_eq!(names(dir.path()), ["tiny.pode"]);
    for cmd in [
        vec!["solve", "tiny.pode", "--out", "t.csv", "--plot", "t.svg"],
        vec!["solve", "tiny.pode", "--out", "t.npy"],
        vec!["grad", "tiny.pode", "--out", "g.json"],
    ] {
        let r = run_without_room(dir.path(), &cmd);
        assert_exit(&r, 2);
        assert!(
            text(&r.stderr).contains("cannot write"),
            "{}",
            text(&r.stderr)
        );
        assert_eq!(names(dir.path()), ["tiny.pode"], "{cmd:?}");
    }
    // The rerun is not refused: nothing "exists".
    assert_exit(&run_in(dir.path(), &train), 0);
    assert_eq!(json(&dir.path().join("p.json"))["iterations"], 5);
    let log = std::fs::read_to_string(dir.path().join("l.csv")).unwrap();
    assert_eq!(log.lines().count(), 6, "{log}");
    let r = run_in(dir.path(), &["grad", "tiny.pode", "--out", "g.json"]);
    assert_exit(&r, 0);
    assert!(json(&dir.path().join("g.json"))["loss"].is_f64());
    assert_eq!(
        names(dir.path()),
        ["g.json", "l.csv", "l.svg", "p.json", "tiny.pode"]
    );
}

#[cfg(target_os = "linux")]
#[test]
fn devices_are_written_directly_and_a_full_one_fails() {
    let (null, full) = (Path::new("/dev/null"), Path::new("/dev/full"));
    assert!(
        null.exists() && full.exists(),
        "Linux has /dev/null and /dev/full"
    );
    let dir = tempfile::tempdir().unwrap();
    tiny(dir.path(), 3);
    for cmd in [
        vec!["train", "tiny.pode", "--out"],
        vec!["grad", "tiny.pode", "--out"],
        vec!["solve", "tiny.pode", "--out"],
        vec!["solve", "tiny.pode", "--plot"],
    ] {
        let with = |dev: &Path, force: bool| {
            let mut args = cmd.clone();
            args.push(path_str(dev));
            if force {
                args.push("--force");
            }
            run_in(dir.path(), &args)
        };
        // Without --force a device is an existing file; with it, it is written to.
        let r = with(null, false);
        assert_exit(&r, 2);
        assert!(text(&r.stderr).contains("--force"), "{}", text(&r.stderr));
        assert_exit(&with(null, true), 0);
        let r = with(full, true);
        assert_exit(&r, 2);
        assert!(
            text(&r.stderr).contains("cannot write `/dev/full`"),
            "{cmd:?}: {}",
            text(&r.stderr)
        );
    }
    assert_eq!(names(dir.path()), ["tiny.pode"]);
}

/// The writing end of a pipe whose reader is already closed: every write fails with EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

#[test]
fn closed_pipes_neither_panic_nor_lose_the_parameters() {
    let dir = tempfile::tempdir().unwrap();
    tiny(dir.path(), 2000);
    let status = command(dir.path(), &["train", "tiny.pode", "--out", "p.json"])
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .status()
        .unwrap();
    assert_ne!(status.code(), Some(101), "pnodec panicked");
    assert_eq!(status.code(), Some(0), "{status}");
    assert_eq!(json(&dir.path().join("p.json"))["iterations"], 2000);
    // Notes on a closed stderr do not stop the outputs after them.
    let status = command(
        dir.path(),
        &["solve", "tiny.pode", "--out", "t.csv", "--plot", "t.svg"],
    )
    .stdout(Stdio::null())
    .stderr(closed_pipe())
    .status()
    .unwrap();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(dir.path().join("t.svg").exists());
    // Data on a closed stdout is a failed write: not 0, not a panic.
    for (args, code) in [
        (vec!["grad", "tiny.pode"], 2),
        (vec!["solve", "tiny.pode"], 2),
    ] {
        let status = command(dir.path(), &args)
            .stdout(closed_pipe())
            .stderr(closed_pipe())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(code), "{args:?}: {status}");
    }
}

/// Waits until `cond` holds (or fails the test after 60 s: a hung pnodec, not a slow one).
fn wait_for(child: &mut Child, what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("pnodec ended ({status}) before {what}");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The number in `… after N of M iterations`.
fn iterations_done(stderr: &str, signal: &str) -> usize {
    let key = format!("interrupted by {signal} after ");
    let at = stderr.find(&key).unwrap_or_else(|| panic!("{stderr}")) + key.len();
    stderr[at..].split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn sigint_and_sigterm_save_the_work_done() {
    for (signal, code, save_every) in [("INT", 130, true), ("TERM", 143, false)] {
        let dir = tempfile::tempdir().unwrap();
        tiny(dir.path(), 1_000_000_000);
        let err_path = dir.path().join("stderr.txt");
        let mut args = vec!["train", "tiny.pode", "--out", "p.json", "--log", "l.csv"];
        if save_every {
            args.extend(["--save-every", "3"]);
        }
        let mut child = command(dir.path(), &args)
            .stderr(std::fs::File::create(&err_path).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        if save_every {
            // A periodic save is there, whole, while training goes on.
            let p = dir.path().join("p.json");
            wait_for(&mut child, "a periodic save", || p.exists());
            let saved = json(&p)["iterations"].as_u64().unwrap();
            assert_eq!(saved % 3, 0, "{saved}");
        } else {
            wait_for(&mut child, "the first progress line", || {
                std::fs::read_to_string(&err_path).is_ok_and(|s| s.contains("iteration "))
            });
        }
        let killed = Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        let stderr = std::fs::read_to_string(&err_path).unwrap();
        assert_eq!(status.code(), Some(code), "{stderr}");
        let done = iterations_done(&stderr, &format!("SIG{signal}"));
        assert!(done >= 1, "{stderr}");
        assert!(
            stderr.contains(&format!(
                "wrote p.json (the parameters after iteration {done})"
            )),
            "{stderr}"
        );
        assert!(stderr.contains("wrote l.csv"), "{stderr}");
        let p = json(&dir.path().join("p.json"));
        assert_eq!(p["iterations"].as_u64(), Some(done as u64), "{stderr}");
        assert!(p["params"]["k"][0].is_f64());
        let log = std::fs::read_to_string(dir.path().join("l.csv")).unwrap();
        assert_eq!(log.lines().count(), done + 1, "one row per iteration done");
        let last = log.lines().last().unwrap();
        assert!(last.starts_with(&format!("{},", done - 1)), "{last}");
        assert_eq!(
            names(dir.path()),
            ["l.csv", "p.json", "stderr.txt", "tiny.pode"]
        );
    }
}

#[test]
fn concurrent_trainings_with_the_default_name_take_the_next_suffix() {
    let dir = tempfile::tempdir().unwrap();
    tiny(dir.path(), 50);
    let children: Vec<Child> = (0..4)
        .map(|_| {
            command(dir.path(), &["train", "tiny.pode"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_exit(&out, 0);
    }
    assert_eq!(
        names(dir.path()),
        [
            "tiny.params-1.json",
            "tiny.params-2.json",
            "tiny.params-3.json",
            "tiny.params.json",
            "tiny.pode"
        ]
    );
}

#[test]
fn emit_schedule_reads_no_loss_data_and_prints_the_model_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("fit.pode");
    std::fs::write(
        &model,
        "model fit\nstate u = 1.0\nparam k = 0.5\nd(u)/dt = -k * u\n\
         solve { method = rk4\n t = 0 .. 1\n steps = 40\n outputs = [0.5, 1.0]\n \
         checkpoint = revolve(slots = 3) }\nloss = mse(u, data(\"missing.csv\"))\n",
    )
    .unwrap();
    let r = run_in(dir.path(), &["emit", "--schedule", "fit.pode"]);
    assert_exit(&r, 0);
    let out = text(&r.stdout);
    assert!(out.contains("checkpointing revolve(slots = 3)"), "{out}");
    assert!(!out.contains('{'), "Rust Debug text: {out}");
    // Training does need the data, and says which file and term.
    let r = run_in(dir.path(), &["grad", "fit.pode"]);
    assert_exit(&r, 2);
    assert!(
        text(&r.stderr).contains("missing.csv"),
        "{}",
        text(&r.stderr)
    );
}
