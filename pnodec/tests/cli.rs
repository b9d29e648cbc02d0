//! The `pnodec` binary on the shared corpus (`tests/corpus/ok|err` at the workspace root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use pnode_testkit::corpus::{self, Kind};

/// Outputs: atomic writes, checks before work, devices, closed pipes, signals. (`cli.rs` is a
/// crate root beside the snapshots folder, so its module file is named by path.)
#[path = "cli/outputs.rs"]
mod outputs;

/// The corpus files of `kind` (`ok`, `err`, `err-semantic`), sorted.
fn corpus(kind: &str) -> Vec<PathBuf> {
    corpus::paths(kind_of(kind))
}

fn corpus_file(kind: &str, name: &str) -> PathBuf {
    corpus::path(kind_of(kind), name)
}

fn kind_of(name: &str) -> Kind {
    match name {
        "ok" => Kind::Ok,
        "err" => Kind::Err,
        "err-semantic" => Kind::ErrSemantic,
        other => panic!("no corpus folder `{other}`"),
    }
}

fn pnodec(args: &[&str]) -> Output {
    pnodec_stdin(args, None)
}

fn pnodec_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pnodec"))
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        std::io::Write::write_all(&mut input, text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A temporary copy of `contents` named `name`.
fn temp_file(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn check_accepts_every_ok_file() {
    for file in corpus("ok") {
        let out = pnodec(&["check", path_str(&file)]);
        assert_exit(&out, 0);
        let stdout = text(&out.stdout);
        assert!(stdout.starts_with("model `"), "{stdout}");
        assert!(stdout.trim_end().ends_with("— ok"), "{stdout}");
    }
}

#[test]
fn check_summary_of_lotka_volterra() {
    let out = pnodec(&["check", path_str(&corpus_file("ok", "lotka_volterra.pode"))]);
    assert_exit(&out, 0);
    assert_eq!(
        text(&out.stdout),
        "model `lotka_volterra`: 2 states (u[2]), 4 parameters, method rk4, 1000 steps — ok\n"
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn check_rejects_every_err_file_at_its_position() {
    for file in corpus("err") {
        let source = std::fs::read_to_string(&file).unwrap();
        let positions =
            corpus::parse_error_at(&source).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let out = pnodec(&["check", path_str(&file)]);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(stderr.contains("error[P0"), "{}: {stderr}", file.display());
        for pos in &positions {
            let location = format!("{}:{pos}", file.display());
            assert!(
                stderr.contains(&location),
                "{location} not in stderr:\n{stderr}"
            );
        }
        assert!(text(&out.stdout).is_empty(), "{}", file.display());
    }
}

#[test]
fn check_renders_labels_and_notes() {
    let out = pnodec(&[
        "check",
        path_str(&corpus_file("err", "unknown_option.pode")),
    ]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error[P006]: unknown option `methd`"),
        "{stderr}"
    );
    assert!(stderr.contains("^^^^^ unknown option"), "{stderr}");
    assert!(stderr.contains("= did you mean `method`?"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour without a terminal: {stderr}"
    );
}

#[test]
fn color_always_colours() {
    let file = corpus_file("err", "unknown_option.pode");
    let out = pnodec(&["--color", "always", "check", path_str(&file)]);
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains('\u{1b}'));
    let out = pnodec(&["check", "--color=never", path_str(&file)]);
    assert!(!text(&out.stderr).contains('\u{1b}'));
}

#[test]
fn check_several_files_reports_the_worst() {
    let ok = corpus_file("ok", "minimal.pode");
    let err = corpus_file("err", "du_dt.pode");
    let out = pnodec(&["check", path_str(&ok), path_str(&err)]);
    assert_exit(&out, 1);
    assert!(text(&out.stdout).contains("— ok"));
    let out = pnodec(&["check", path_str(&err), "/nonexistent/model.pode"]);
    assert_exit(&out, 2);
}

#[test]
fn unreadable_paths_are_usage_errors() {
    let out = pnodec(&["check", "/nonexistent/model.pode"]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot read `/nonexistent/model.pode`"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["check", path_str(dir.path())][..],
        &["fmt", path_str(dir.path())],
        &["emit", "--ast", "/nonexistent/model.pode"],
    ] {
        let out = pnodec(args);
        assert_exit(&out, 2);
        assert!(text(&out.stderr).contains("cannot read"), "{args:?}");
    }
}

#[test]
fn not_utf8_is_a_model_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bin.pode");
    std::fs::write(&path, b"model m\nstate u = \xff\n").unwrap();
    let out = pnodec(&["check", path_str(&path)]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("line 2, column 11"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bom.pode");
    std::fs::write(&path, "\u{feff}model m\nstate u=1.0\nd(u)/dt = -u\n").unwrap();
    assert_exit(&pnodec(&["check", path_str(&path)]), 0);
    assert_exit(&pnodec(&["fmt", path_str(&path)]), 0);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "model m\n\nstate u = 1.0\n\nd(u)/dt = -u\n"
    );
}

#[test]
fn usage_errors_exit_2_and_help_documents_exit_codes() {
    assert_exit(&pnodec(&[]), 2);
    assert_exit(&pnodec(&["check"]), 2);
    assert_exit(&pnodec(&["emit", "--ir", "--jvp", "x.pode"]), 2);
    assert_exit(&pnodec(&["emit", "x.pode"]), 2);
    let help = pnodec(&["--help"]);
    assert_exit(&help, 0);
    let help = text(&help.stdout);
    assert!(help.contains("Exit status:"), "{help}");
    assert!(help.contains("usage or I/O error"), "{help}");
    let fmt_help = text(&pnodec(&["fmt", "--help"]).stdout);
    assert!(fmt_help.contains("drops every"), "{fmt_help}");
    assert!(fmt_help.contains("--allow-comment-loss"), "{fmt_help}");
}

#[test]
fn fmt_check_accepts_a_formatted_file() {
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(corpus_file("ok", "multiline.pode")).unwrap();
    let formatted = pnode_grammar::print(&pnode_grammar::parse(&source).model);
    let path = temp_file(&dir, "m.pode", &formatted);
    let out = pnodec(&["fmt", "--check", path_str(&path)]);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "");
    // Plain `fmt` on it writes nothing.
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert_exit(&pnodec(&["fmt", path_str(&path)]), 0);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
}

#[test]
fn fmt_check_lists_files_that_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let source = "model m\nstate u=1.0\nd(u)/dt=-u\n";
    let path = temp_file(&dir, "m.pode", source);
    let out = pnodec(&["fmt", "--check", path_str(&path)]);
    assert_exit(&out, 1);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("m.pode: would reformat"), "{stdout}");
    assert!(
        stdout
            .contains("@@ -1,3 +1,5 @@\n model m\n-state u=1.0\n-d(u)/dt=-u\n+\n+state u = 1.0\n"),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), source);
}

#[test]
fn fmt_rewrites_idempotently_and_keeps_the_ast() {
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(corpus_file("ok", "multiline.pode")).unwrap();
    let path = temp_file(&dir, "multiline.pode", &source);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let out = pnodec(&["fmt", path_str(&path)]);
    assert_exit(&out, 0);
    let first = std::fs::read_to_string(&path).unwrap();
    assert_ne!(first, source);
    assert_eq!(
        pnode_grammar::parse(&first).model.without_spans(),
        pnode_grammar::parse(&source).model.without_spans()
    );
    assert_exit(&pnodec(&["fmt", path_str(&path)]), 0);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    assert_exit(&pnodec(&["fmt", "--check", path_str(&path)]), 0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn fmt_never_rewrites_a_file_with_syntax_errors() {
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(corpus_file("err", "two_broken_items.pode")).unwrap();
    let path = temp_file(&dir, "broken.pode", &source);
    for args in [&["fmt"][..], &["fmt", "--allow-comment-loss"]] {
        let mut args = args.to_vec();
        args.push(path_str(&path));
        let out = pnodec(&args);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(stderr.contains("error[P001]"), "{stderr}");
        assert!(stderr.contains("not formatted"), "{stderr}");
        assert_eq!(std::fs::read(&path).unwrap(), source.as_bytes());
    }
}

#[test]
fn fmt_refuses_to_drop_comments_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(corpus_file("ok", "comments.pode")).unwrap();
    let path = temp_file(&dir, "comments.pode", &source);
    let out = pnodec(&["fmt", path_str(&path)]);
    assert_exit(&out, 1);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("lines 4, 6, 7, 8, 11, 12"), "{stderr}");
    assert!(stderr.contains("--allow-comment-loss"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), source);

    let out = pnodec(&["fmt", "--allow-comment-loss", path_str(&path)]);
    assert_exit(&out, 0);
    let formatted = std::fs::read_to_string(&path).unwrap();
    assert!(
        formatted.starts_with("# The model's doc comment.\n"),
        "{formatted}"
    );
    assert!(!formatted.contains("trailing"), "{formatted}");
}

#[test]
fn fmt_stdin_to_stdout() {
    let out = pnodec_stdin(&["fmt", "-"], Some("model m\nstate u=1.0\n"));
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "model m\n\nstate u = 1.0\n");
    let out = pnodec_stdin(&["fmt", "-"], Some("model m\n\nstate u = 1.0\n"));
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout), "model m\n\nstate u = 1.0\n");
    let out = pnodec_stdin(&["fmt", "-"], Some("model m\nstate u = \n"));
    assert_exit(&out, 1);
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains("<stdin>:2:"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn emit_ast() {
    let file = corpus_file("ok", "minimal.pode");
    let out = pnodec(&["emit", "--ast", path_str(&file)]);
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Model {"), "{stdout}");
    assert!(stdout.contains("span: Span"), "{stdout}");
    let out = pnodec(&["emit", "--ast=dsl", path_str(&file)]);
    assert_exit(&out, 0);
    let source = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        text(&out.stdout),
        pnode_grammar::print(&pnode_grammar::parse(&source).model)
    );
    let out = pnodec(&["emit", "--ast", path_str(&corpus_file("err", "du_dt.pode"))]);
    assert_exit(&out, 1);
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn check_rejects_every_semantic_error_at_its_position() {
    for file in corpus("err-semantic") {
        let source = std::fs::read_to_string(&file).unwrap();
        let positions =
            corpus::parse_error_at(&source).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let out = pnodec(&["check", path_str(&file)]);
        assert_exit(&out, 1);
        let stderr = text(&out.stderr);
        assert!(stderr.contains("error[I0"), "{}: {stderr}", file.display());
        for pos in &positions {
            let location = format!("{}:{pos}", file.display());
            assert!(
                stderr.contains(&location),
                "{location} not in stderr:\n{stderr}"
            );
        }
    }
}

#[test]
fn warnings_alone_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(
        &dir,
        "w.pode",
        "model w\nstate u = 1.0\nparam k = 0.5\nd(u)/dt = -u\n",
    );
    let out = pnodec(&["check", path_str(&path)]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("warning[W"), "{stderr}");
    assert!(stderr.contains("w.pode:3:7"), "{stderr}");
    assert!(text(&out.stdout).ends_with("— ok (1 warning)\n"));
}

#[test]
fn check_reads_stdin() {
    let out = pnodec_stdin(
        &["check", "-"],
        Some("model s\nstate u = 1.0\nd(u)/dt = -u\n"),
    );
    assert_exit(&out, 0);
    assert_eq!(
        text(&out.stdout),
        "model `s`: 1 state (u), 0 parameters, no solve block — ok\n"
    );
    let out = pnodec_stdin(
        &["check", "-"],
        Some("model s\nstate u = 1.0\nd(u)/dt = -v\n"),
    );
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("<stdin>:3:12"),
        "{}",
        text(&out.stderr)
    );
}

/// The rendered diagnostics of a few files, run from the corpus folder so that the paths
/// in the snapshot are relative.
#[test]
fn rendered_diagnostics_snapshot() {
    let root = corpus::workspace_root().join("tests/corpus");
    let mut all = String::new();
    for file in [
        "err/header_not_first.pode",
        "err/unknown_option.pode",
        "err/two_broken_items.pode",
        "err-semantic/several_errors.pode",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_pnodec"))
            .args(["check", "--color=never", file])
            .current_dir(&root)
            .output()
            .unwrap();
        assert_exit(&out, 1);
        all += &format!("$ pnodec check {file}\n{}\n", text(&out.stderr));
    }
    insta::assert_snapshot!("rendered_diagnostics", all);
}

#[test]
fn emit_ir_of_lotka_volterra() {
    let file = corpus_file("ok", "lotka_volterra.pode");
    let out = pnodec(&["emit", "--ir", path_str(&file)]);
    assert_exit(&out, 0);
    insta::assert_snapshot!("emit_ir_lotka_volterra", text(&out.stdout));
}

#[test]
fn emit_jvp_and_vjp() {
    for name in ["lotka_volterra.pode", "van_der_pol.pode", "spiral_mlp.pode"] {
        let file = corpus_file("ok", name);
        let ir = text(&pnodec(&["emit", "--ir", path_str(&file)]).stdout);
        for (flag, extra) in [("--jvp", ", v: "), ("--vjp", ", w: ")] {
            let out = pnodec(&["emit", flag, path_str(&file)]);
            assert_exit(&out, 0);
            let stdout = text(&out.stdout);
            assert!(stdout.starts_with("fn(t, u: "), "{name} {flag}: {stdout}");
            assert!(stdout.contains(extra), "{name} {flag}: {stdout}");
            assert!(stdout.contains("  return %"), "{name} {flag}: {stdout}");
            assert!(stdout.trim_end().ends_with('}'), "{name} {flag}: {stdout}");
            assert!(stdout.lines().count() > 3, "{name} {flag}: {stdout}");
            assert_ne!(stdout, ir);
        }
    }
    let out = pnodec(&[
        "emit",
        "--vjp",
        path_str(&corpus_file("err-semantic", "unknown_name.pode")),
    ]);
    assert_exit(&out, 1);
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).contains("error[I001]"));
}

#[test]
fn emit_ast_needs_only_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "m.pode", "model m\nstate u = 1.0\nd(u)/dt = v\n");
    let out = pnodec(&["emit", "--ast=dsl", path_str(&path)]);
    assert_exit(&out, 0);
    assert_eq!(
        text(&out.stdout),
        "model m\n\nstate u = 1.0\n\nd(u)/dt = v\n"
    );
    let out = pnodec(&["emit", "--ir", path_str(&path)]);
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("m.pode:3:11"),
        "{}",
        text(&out.stderr)
    );
}

#[cfg(unix)]
#[test]
fn fmt_follows_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let target = temp_file(&dir, "real.pode", "model m\nstate u=1.0\n");
    let link = dir.path().join("link.pode");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_exit(&pnodec(&["fmt", path_str(&link)]), 0);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "model m\n\nstate u = 1.0\n"
    );
}

/// `const NAME = data(..)`: `check`, `emit` and the run commands read the file relative to the
/// model's folder; the lowered model is the inline constant's, and a missing file is a
/// diagnostic at the `data(..)` with the file named.
#[test]
fn const_data_reads_the_file_next_to_the_model() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    temp_file(&dir, "sub/rates.csv", "k\n0.5\n-0.125\n");
    let body = "state u[2] = [1.0, 2.0]\nd(u)/dt = k * u\n\
                solve { method = rk4, t = 0 .. 1, steps = 8 }\n";
    let from_file = temp_file(
        &dir,
        "sub/m.pode",
        &format!("model m\nconst k = data(\"rates.csv\", column = 0)\n{body}"),
    );
    let inline = temp_file(
        &dir,
        "inline.pode",
        &format!("model m\nconst k = [0.5, -0.125]\n{body}"),
    );
    let check = pnodec(&["check", path_str(&from_file)]);
    assert_exit(&check, 0);
    assert!(text(&check.stdout).contains("2 states (u[2])"));
    let ir = |p: &Path| {
        let out = pnodec(&["emit", "--ir", path_str(p)]);
        assert_exit(&out, 0);
        out.stdout
    };
    assert_eq!(text(&ir(&from_file)), text(&ir(&inline)));
    let solve = |p: &Path| {
        let out = pnodec(&["solve", path_str(p)]);
        assert_exit(&out, 0);
        out.stdout
    };
    assert_eq!(text(&solve(&from_file)), text(&solve(&inline)));

    let missing = temp_file(
        &dir,
        "missing.pode",
        &format!("model m\nconst k[2] = data(\"nowhere.csv\")\n{body}"),
    );
    let out = pnodec(&["check", path_str(&missing)]);
    assert_exit(&out, 1);
    let err = text(&out.stderr);
    assert!(
        err.contains("error[I012]: cannot read constant `k`: cannot read `")
            && err.contains("nowhere.csv")
            && err.contains(":2:14"),
        "{err}"
    );
}

/// A scalar decay model with `steps` RK4 steps and a loss.
fn decay_model(steps: &str) -> String {
    format!(
        "model big\nstate u = 1.0\nparam k = 0.5\nd(u)/dt = -k * u\nsolve {{\n  method = rk4\n  \
         t = 0 .. 1\n  steps = {steps}\n}}\nloss = u ^ 2\n"
    )
}

/// Issue 15, finding 3: `steps = 1000000000` used to abort allocating its grid. A uniform grid
/// now stores nothing per step, so what cannot fit is what the steps would store, refused
/// before it is allocated (exit 1, no output file, no abort), naming the option and the bytes:
/// store-all checkpoints of a gradient (`checkpoint`), 10⁹ output times (`outputs`), and the
/// grid when it must be listed, here because an output time off its points is inserted
/// (`steps`, 32 bytes a point).
#[test]
fn sizes_past_the_memory_limit_are_refused_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let with_outputs = |outputs: &str| {
        decay_model("1000000000").replace("  steps", &format!("  outputs = {outputs}\n  steps"))
    };
    let cases = [
        (
            decay_model("1000000000"),
            "grad",
            "checkpoint",
            CHECKPOINT_BYTES,
            "use a `checkpoint`",
        ),
        (
            with_outputs("linspace(0, 1, 1000000000)"),
            "solve",
            "outputs",
            32_000_000_000,
            "use fewer `outputs`",
        ),
        (
            with_outputs("[0.1234567895]"),
            "solve",
            "steps",
            32_000_000_064,
            "use fewer `steps`",
        ),
    ];
    for (source, command, what, bytes, advice) in cases {
        let model = temp_file(&dir, "big.pode", &source);
        let r = pnodec(&[
            command,
            "--max-memory",
            "2GB",
            "-o",
            path_str(&out),
            path_str(&model),
        ]);
        assert_exit(&r, 1);
        let err = text(&r.stderr);
        assert!(
            err.contains(&format!(
                "not enough memory for `{what}`: it needs {bytes} bytes"
            )) && err.contains("more than the 2000000000 bytes allowed by --max-memory; ")
                && err.contains(advice),
            "{what}: {err}"
        );
        assert!(!out.exists());
    }
    let model = temp_file(&dir, "big.pode", &decay_model("1000000000"));
    let r = pnodec(&["solve", "--max-memory", "lots", path_str(&model)]);
    assert_exit(&r, 2);
    assert!(text(&r.stderr).contains("`lots` is not a size"));
}

/// Bytes of the store-all checkpoints of 10⁹ RK4 steps of a scalar state, the schedule's
/// predicted peak: 8 bytes × 4 stage vectors × (10⁹ − 1) steps.
const CHECKPOINT_BYTES: u64 = 31_999_999_968;

/// A 2²²-element state with store-all over 10⁵ steps needs 13 TB of checkpoints: the
/// gradient is refused before its first step, naming `checkpoint`, while the schedule's
/// summary still prints the prediction.
#[test]
fn a_checkpoint_store_past_the_memory_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let model = temp_file(
        &dir,
        "wide.pode",
        "model wide\nstate u[4194304] = ones\nparam k = 0.5\nd(u)/dt = -k * u\nsolve {\n  \
         method = rk4\n  t = 0 .. 1\n  steps = 100000\n}\nloss = sum(u ^ 2)\n",
    );
    let r = pnodec(&["emit", "--schedule", path_str(&model)]);
    assert_exit(&r, 0);
    assert!(
        text(&r.stdout).contains("(13421638582272 bytes)"),
        "{}",
        text(&r.stdout)
    );
    let out = dir.path().join("g.json");
    let r = pnodec(&["grad", "-o", path_str(&out), path_str(&model)]);
    assert_exit(&r, 1);
    let err = text(&r.stderr);
    assert!(
        err.contains("not enough memory for `checkpoint`: it needs 13421638582272 bytes"),
        "{err}"
    );
    // Without --max-memory the limit is the available memory.
    #[cfg(target_os = "linux")]
    assert!(err.contains("bytes available (MemAvailable)"), "{err}");
    assert!(!out.exists());
}

/// `pnodec ARGS` under `ulimit -v KIB` (with `RUST_BACKTRACE=1`, under which a failed stack
/// mapping used to deadlock), killed after 60 s: `None` if it had to be killed.
fn pnodec_under_ulimit(kib: u64, args: &[&str]) -> Option<Output> {
    let script = format!("ulimit -v {kib}; exec \"$0\" \"$@\"");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_pnodec"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Some(child.wait_with_output().unwrap())
}

/// Issue 15, finding 5: `check` of a small model needs no new stack mapping. The address space
/// is limited to what `pnodec --version` needs plus 8 MiB; the parse used to map a fresh
/// 16 MiB stack every time, which then panicked (or, with `RUST_BACKTRACE=1`, deadlocked).
#[test]
fn check_works_in_a_small_address_space() {
    let baseline = (2..256u64)
        .map(|mib| mib * 4096)
        .find(|&kib| {
            pnodec_under_ulimit(kib, &["--version"]).is_some_and(|out| out.status.success())
        })
        .expect("pnodec --version runs with at most 1 GiB of address space");
    let dir = tempfile::tempdir().unwrap();
    let model = temp_file(
        &dir,
        "small.pode",
        "model small\nstate u[2] = [1.0, 2.0]\nparam k = 0.5\nlet v = -k * (u + 1)\n\
         d(u)/dt = v\nsolve { method = rk4, t = 0 .. 1, steps = 10 }\n",
    );
    let out = pnodec_under_ulimit(baseline + 8192, &["check", path_str(&model)])
        .expect("check finished (no deadlock)");
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).starts_with("model `small`: 2 states (u[2]), 1 parameter"),
        "{}",
        text(&out.stdout)
    );
}

/// Issue 15, finding 6: a file over the size limit is refused unread with one error (exit 1),
/// from a path or from standard input.
#[test]
fn a_file_over_the_size_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let limit = pnode_grammar::MAX_SOURCE_BYTES;
    let body = format!("model m\n{}", "#".repeat(limit + 1 - "model m\n".len()));
    let big = temp_file(&dir, "big.pode", &body);
    let out = pnodec(&["check", "--color", "never", path_str(&big)]);
    assert_exit(&out, 1);
    let err = text(&out.stderr);
    assert!(
        err.contains("big.pode` is 8388609 bytes; a model file may have at most 8388608 bytes"),
        "{err}"
    );
    assert_eq!(err.matches("error").count(), 1, "{err}");
    let out = pnodec_stdin(&["check", "--color", "never", "-"], Some(&body));
    assert_exit(&out, 1);
    assert!(
        text(&out.stderr).contains("`<stdin>` is more than 8388608 bytes"),
        "{}",
        text(&out.stderr)
    );
    // At the limit it is read and checked.
    let at_limit = temp_file(&dir, "at.pode", &body[..limit]);
    let out = pnodec(&["check", path_str(&at_limit)]);
    assert_exit(&out, 0);
}

/// Issue 15, finding 6: garbage gets at most 100 errors and the note that checking stopped;
/// a line too long to quote is located by a note instead of being printed.
#[test]
fn garbage_stops_after_the_error_limit() {
    let dir = tempfile::tempdir().unwrap();
    let garbage: String = (0..1000).map(|i| format!("let x{i} = ) (\n")).collect();
    let f = temp_file(&dir, "g.pode", &format!("model g\n{garbage}"));
    let out = pnodec(&["check", "--color", "never", path_str(&f)]);
    assert_exit(&out, 1);
    let err = text(&out.stderr);
    assert_eq!(err.matches("error[P001]").count(), 100, "{err}");
    assert!(
        err.contains(
            "note: aborting after 100 errors\n = the rest is not checked; fix these errors first"
        ),
        "{}",
        &err[err.len().saturating_sub(400)..]
    );
    assert!(
        err.ends_with("g.pode: 100 errors\n"),
        "{}",
        &err[err.len() - 100..]
    );

    let sum = format!(
        "model s\nstate u = 1.0\nd(u)/dt = {}\n",
        vec!["u"; 5000].join(" + ")
    );
    let f = temp_file(&dir, "s.pode", &sum);
    let out = pnodec(&["check", "--color", "never", path_str(&f)]);
    assert_exit(&out, 1);
    let err = text(&out.stderr);
    assert!(err.len() < 1000, "{err}");
    assert!(
        err.contains("s.pode:3:2069: the expression is more than 512 operators deep here (the line is too long to show)"),
        "{err}"
    );
}

/// Issue 15, finding 7: `check` rejects a time span whose grid points overflow (the run used to
/// fail with "time point 0 is NaN" after `check` said ok).
#[test]
fn check_rejects_a_time_span_that_overflows() {
    let out = pnodec_stdin(
        &["check", "--color", "never", "-"],
        Some(
            "model m\nstate u = 1.0\nd(u)/dt = -u\n\
             solve { method = rk4, t = -1e308 .. 1e308, steps = 10 }\n",
        ),
    );
    assert_exit(&out, 1);
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "error[I017]: the time span -1e308 .. 1e308 is too long: t1 - t0 overflows a 64-bit float"
        ),
        "{err}"
    );
}
