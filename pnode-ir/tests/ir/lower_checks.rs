//! One-line checks of the lowering: diagnostics (code and message), warnings, layouts and
//! specs; pathological inputs finish quickly without panicking.

use pnode_ir::lower::*;
use pnode_ir::{Interpreter, jvp};

fn lower_body(body: &str) -> (String, Lowered) {
    let src = format!("model m\n{body}\n");
    let l = compile_source(&src);
    (src, l)
}

fn rendered(src: &str, l: &Lowered) -> String {
    l.diagnostics
        .iter()
        .map(|d| d.render_plain(src, "m.pode"))
        .collect()
}

/// An error with `code` whose message contains `message`.
#[track_caller]
fn check_err(body: &str, code: &str, message: &str) {
    let (src, l) = lower_body(body);
    assert!(l.program.is_none(), "no error:\n{src}");
    assert!(
        l.diagnostics
            .iter()
            .any(|d| d.is_error() && d.code == Some(code) && d.message.contains(message)),
        "expected {code} `{message}`, got:\n{}",
        rendered(&src, &l)
    );
}

/// Lowers, with a warning `code` whose message contains `message`.
#[track_caller]
fn check_warn(body: &str, code: &str, message: &str) {
    let (src, l) = lower_body(body);
    assert!(l.program.is_some(), "errors:\n{}", rendered(&src, &l));
    assert!(
        l.diagnostics
            .iter()
            .any(|d| !d.is_error() && d.code == Some(code) && d.message.contains(message)),
        "expected warning {code} `{message}`, got:\n{}",
        rendered(&src, &l)
    );
}

/// Lowers with no diagnostic at all.
#[track_caller]
fn program(body: &str) -> Program {
    let (src, l) = lower_body(body);
    assert!(l.diagnostics.is_empty(), "{}", rendered(&src, &l));
    l.program.expect("a program")
}

/// The RHS evaluated at the initial values given as `u`, with parameters `p`.
fn rhs_at(p: &Program, u: &[f64], th: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; p.rhs.output_len()];
    Interpreter::new(&p.rhs)
        .eval(0.5, u, th, &[], &mut out)
        .expect("lengths");
    out
}

#[test]
fn names() {
    check_err(
        "state u = 1.0\nd(u)/dt = -v",
        codes::UNKNOWN_NAME,
        "unknown name `v`",
    );
    check_err(
        "state u = 1.0\nd(w)/dt = -u",
        codes::UNKNOWN_NAME,
        "unknown state `w`",
    );
    check_err(
        "state u = 1.0\nd(u)/dt = expp(u)",
        codes::UNKNOWN_NAME,
        "unknown function `expp`",
    );
    check_err(
        "state u = 1.0\nd(u)/dt = exp",
        codes::NOT_A_VALUE,
        "`exp` is a function",
    );
    check_err(
        "state u = 1.0\nlet a = u\nd(u)/dt = a(u)",
        codes::NOT_CALLABLE,
        "`a` is a `let` value",
    );
    check_err(
        "state u = 1.0\nd(u)/dt = \"x\"",
        codes::NOT_A_VALUE,
        "found a string",
    );
    check_err(
        "state u = 1.0\nd(u)/dt = true",
        codes::NOT_A_VALUE,
        "found a boolean",
    );
    check_err(
        "state u = 1.0\nd(u)/dt = normal(1.0)",
        codes::MISPLACED,
        "`normal(…)` is not an expression",
    );
    check_err(
        "state u = 1.0\nlet t = u\nd(u)/dt = t",
        codes::MISPLACED,
        "`t` is the time",
    );
    check_err(
        "state u = 1.0\nlet a = b\nlet b = c\nlet c = a\nd(u)/dt = u",
        codes::CYCLE,
        "`a` is defined in terms of itself",
    );
    check_err(
        "const a = b\nconst b = a\nstate u = 1.0\nd(u)/dt = u",
        codes::CYCLE,
        "constant `a`",
    );
}

#[test]
fn arguments() {
    check_err(
        "state u = 1.0\nd(u)/dt = exp(u, k = 1)",
        codes::ARGUMENTS,
        "`exp` has no keyword argument `k`",
    );
    check_err(
        "state u = 1.0\nd(u)/dt = matmul(u)",
        codes::ARGUMENTS,
        "takes 2 positional arguments, found 1",
    );
    check_err(
        "state u[2] = zeros\nlayer l = linear(2)\nd(u)/dt = l(u)",
        codes::ARGUMENTS,
        "`linear` takes 2",
    );
    check_err(
        "state u[2] = zeros\nlayer l = linear(2, 2)\nd(u)/dt = l(u, u)",
        codes::ARGUMENTS,
        "`l` takes 1",
    );
    check_err(
        "state u[2] = zeros\nlayer l = mlp([2, 2], act = tanh)\nd(u)/dt = l(u)",
        codes::ARGUMENTS,
        "no keyword argument `act`",
    );
    check_err(
        "state u[2] = zeros\nlayer l = mlp([2, 2], activation = tanhh)\nd(u)/dt = l(u)",
        codes::LAYER_DEFINITION,
        "unknown activation",
    );
    check_err(
        "state u[2] = zeros\nlayer l = mlp([2])\nd(u)/dt = l(u)",
        codes::LAYER_DEFINITION,
        "at least two sizes",
    );
    check_err(
        "state u[2] = zeros\nlayer l = mlp([2, 0, 2])\nd(u)/dt = l(u)",
        codes::LAYER_DEFINITION,
        "positive integer",
    );
    check_err(
        "state h[1, 4, 4] = zeros\nlayer c = conv2d(1, 1)\nd(h)/dt = c(h)",
        codes::ARGUMENTS,
        "needs the keyword argument `kernel`",
    );
    check_err(
        "state h[1, 4, 4] = zeros\nlayer c = groupnorm(groups = 1)\nd(h)/dt = c(h)",
        codes::ARGUMENTS,
        "`channels`",
    );
    check_err(
        "state x[2, 3] = zeros\nd(x)/dt = x\nloss = sum(sum(x, axis = 2))",
        codes::INDEX,
        "no axis 2",
    );
}

#[test]
fn shapes() {
    check_err(
        "state u[2] = zeros\nd(u)/dt = u + [1.0, 2.0, 3.0]",
        codes::SHAPE_MISMATCH,
        "[2] and [3] do not broadcast",
    );
    check_err(
        "state u[2] = zeros\nd(u)/dt = u * [[1.0], [2.0, 3.0]][0]",
        codes::SHAPE_MISMATCH,
        "array elements of different shapes",
    );
    check_err(
        "state u[2] = zeros\nd(u)/dt = u @ u * 0 + 1 @ u",
        codes::SHAPE_MISMATCH,
        "matrix product: [] @ [2]",
    );
    check_err(
        "state u[2] = zeros\nd(u)/dt = transpose(u)",
        codes::SHAPE_MISMATCH,
        "needs a matrix",
    );
    check_err(
        "state h[3, 4, 4] = zeros\nlayer n = groupnorm(groups = 1, channels = 2)\nd(h)/dt = n(h)",
        codes::LAYER_SHAPE,
        "expects [2, H, W]",
    );
    check_err(
        "state h[1, 2, 2] = zeros\nlayer c = conv2d(1, 1, kernel = 3)\nd(h)/dt = c(h)",
        codes::LAYER_SHAPE,
        "at least 3×3",
    );
    check_err(
        "state h[4] = zeros\nlayer c = conv2d(1, 1, kernel = 3)\nd(h)/dt = c(h)",
        codes::LAYER_SHAPE,
        "expects [1, H, W]",
    );
    check_err(
        "state u[2] = zeros\nlayer l = linear(3, 2)\nd(u)/dt = l(u)",
        codes::LAYER_SHAPE,
        "linear `l` expects a trailing dimension 3, found [2]",
    );
}

#[test]
fn indices() {
    check_err(
        "state u[2] = zeros\nd(u)/dt = u[-3] + u",
        codes::INDEX,
        "out of bounds",
    );
    check_err(
        "state u[2] = zeros\nd(u)/dt = u[0.5] + u",
        codes::INDEX,
        "must be an integer",
    );
    check_err(
        "state u[2] = zeros\nd(u)/dt = u[u[0]] + u",
        codes::NOT_CONSTANT,
        "must be a constant",
    );
    check_err(
        "state u[2] = zeros\nd(u)/dt = u[1:1] + u",
        codes::INDEX,
        "empty slice",
    );
    check_err(
        "state u[2] = zeros\nd(u)/dt = u[0:3] + u",
        codes::INDEX,
        "out of bounds",
    );
    let p = program("state u[3] = [1, 2, 3]\nd(u)/dt = u[-1] + u[:, ] * 0 + u[1:][0]");
    assert_eq!(rhs_at(&p, &[1.0, 2.0, 3.0], &[]), [5.0, 5.0, 5.0]);
}

#[test]
fn equations() {
    check_err(
        "state u[2] = zeros\nd(u[0])/dt = 1\nd(u[0])/dt = 2",
        codes::COVERAGE,
        "given twice",
    );
    check_err(
        "state u[4] = zeros\nd(u[0:2])/dt = u[2:4]\nd(u[1:4])/dt = u[0:3]",
        codes::COVERAGE,
        "given twice",
    );
    check_err(
        "state u[2] = zeros\nd(u[0])/dt = 1",
        codes::COVERAGE,
        "1 of the 2 components",
    );
    check_err(
        "state u[2] = zeros\nd(u)/dt = [1.0, 2.0, 3.0]",
        codes::EQUATION_SHAPE,
        "has shape [3], but the equation needs [2]",
    );
    check_err(
        "state u = 1.0\nconst c = 1.0\nd(c)/dt = u\nd(u)/dt = u",
        codes::NOT_A_STATE,
        "`c` is a constant",
    );
    // A scalar right-hand side broadcasts to its block; blocks along an inner axis.
    let p = program("state x[2, 2] = zeros\nd(x[:, 0])/dt = 1\nd(x[:, 1])/dt = [2.0, 3.0]");
    assert_eq!(rhs_at(&p, &[0.0; 4], &[]), [1.0, 2.0, 1.0, 3.0]);
}

#[test]
fn declarations() {
    check_err(
        "state u[2, 0] = zeros\nd(u)/dt = u",
        codes::DIMENSION,
        "positive integer, found 0",
    );
    check_err(
        "const n = 1.5\nstate u[n] = zeros\nd(u)/dt = u",
        codes::DIMENSION,
        "found 1.5",
    );
    check_err(
        "state u[1, 1, 1, 1, 1] = zeros\nd(u)/dt = u",
        codes::DIMENSION,
        "the most is 4",
    );
    check_err(
        "state u[100000, 100000] = zeros\nd(u)/dt = u",
        codes::TOO_LARGE,
        "too large",
    );
    check_err(
        "state u[2] = [[1.0, 2.0]]\nd(u)/dt = u",
        codes::INITIALIZER,
        "initial value of shape [1, 2]",
    );
    check_err(
        "state u = 1.0\nparam k = normal(0)\nd(u)/dt = k * u",
        codes::INITIALIZER,
        "positive standard deviation",
    );
    check_err(
        "state u = 1.0\nconst k = xavier\nd(u)/dt = k * u",
        codes::INITIALIZER,
        "needs a matrix",
    );
    check_err(
        "state u = 1.0\nconst k[2] = normal(1.0)\nd(u)/dt = k * u",
        codes::INITIALIZER,
        "constant `k` needs a value",
    );
    check_err(
        "state u = data(\"u.csv\")\nd(u)/dt = u",
        codes::INITIALIZER,
        "shape must be declared",
    );
    check_err(
        "state u = 1.0\nconst A[2048, 2048] = zeros\nd(u)/dt = u + sum(A)",
        codes::TOO_LARGE,
        "constant `A`",
    );
    let p = program("const n = 2\nstate u[n] = 0.5\nparam w[n, n] = xavier\nd(u)/dt = w @ u");
    assert_eq!(p.states[0].init, Initializer::Fill(0.5));
    assert_eq!(p.params[0].init, Initializer::Xavier);
    let p = program("state u = [1.0, 2.0]\nd(u)/dt = -u");
    assert_eq!(p.states[0].shape.dims(), [2]);
}

#[test]
fn layouts() {
    let p = program(
        "state a[2] = zeros\nparam k = 1.0\nlayer net = mlp([2, 3, 2])\nstate b = 1.0\n\
         layer n2 = linear(2, 1)\nparam j[2] = [1.0, 2.0]\n\
         d(a)/dt = net(a) * k + j\nd(b)/dt = n2(a)[0]",
    );
    let names: Vec<(&str, usize, usize)> = p
        .params
        .iter()
        .map(|v| (v.name.as_str(), v.offset, v.shape.len()))
        .collect();
    assert_eq!(
        names,
        [
            ("k", 0, 1),
            ("net.0.weight", 1, 6),
            ("net.0.bias", 7, 3),
            ("net.1.weight", 10, 6),
            ("net.1.bias", 16, 2),
            ("n2.weight", 18, 2),
            ("n2.bias", 20, 1),
            ("j", 21, 2),
        ]
    );
    let states: Vec<(&str, usize)> = p
        .states
        .iter()
        .map(|s| (s.name.as_str(), s.offset))
        .collect();
    assert_eq!(states, [("a", 0), ("b", 2)]);
    assert_eq!((p.state_len(), p.param_len()), (3, 23));
    // The MLP layout is pnode_ir::layers::mlp's: a linear layer with W = I, b = 0 is x ↦ x.
    let p = program("state u[2] = zeros\nlayer l = linear(2, 2)\nd(u)/dt = l(u)");
    assert_eq!(
        rhs_at(&p, &[3.0, 4.0], &[1.0, 0.0, 0.0, 1.0, 0.5, 0.0]),
        [3.5, 4.0]
    );
    assert!(jvp(&p.rhs).is_ok());
}

#[test]
fn adaptive_methods_take_tolerances_instead_of_steps() {
    let solve = |opts: &str| format!("state u[2] = [1.0, 2.0]\nd(u)/dt = -u\nsolve {{\n{opts}\n}}");
    let p = program(&solve(
        "method = dopri5(rtol = 1e-6, atol = [1e-9, 1e-8], h0 = 1e-3, h_min = 1e-12, \
         h_max = 0.5, max_steps = 5000), t = 0 .. 2, outputs = [1, 2]",
    ));
    let s = p.solve.expect("a solve block");
    assert_eq!(s.method, Method::Dopri5);
    assert_eq!(
        s.steps,
        Steps::Adaptive(StepControl {
            rtol: Some(Tolerance::Scalar(1e-6)),
            atol: Some(Tolerance::PerComponent(vec![1e-9, 1e-8])),
            h0: Some(1e-3),
            h_min: Some(1e-12),
            h_max: Some(0.5),
            max_steps: Some(5000),
        })
    );
    // Every pair, explicit and implicit; options left out stay unset (the runtime's defaults).
    for m in ADAPTIVE_METHOD_NAMES {
        let p = program(&solve(&format!("method = {m}(rtol = 1e-4), t = 0 .. 1")));
        let s = p.solve.expect("a solve block");
        assert!(s.method.has_error_estimate(), "{m}");
        assert_eq!(
            s.steps,
            Steps::Adaptive(StepControl {
                rtol: Some(Tolerance::Scalar(1e-4)),
                ..StepControl::default()
            })
        );
    }
    // A method without arguments is still a fixed-step method.
    let p = program(&solve("method = dopri5, t = 0 .. 1, steps = 4"));
    assert_eq!(p.solve.expect("a solve block").steps, Steps::Uniform(4));
    let cases = [
        (
            "method = dopri5(rtol = 1e-6), t = 0 .. 1, steps = 10",
            codes::OPTION_METHOD,
            "`steps` and tolerances on the method conflict",
        ),
        (
            "method = dopri5, t = 0 .. 1",
            codes::MISSING,
            "needs `steps`",
        ),
        (
            "method = rk4(rtol = 1e-6), t = 0 .. 1",
            codes::OPTION_VALUE,
            "`rk4` has no error estimate",
        ),
        (
            "method = sdirk2(rtol = 1e-6), t = 0 .. 1",
            codes::OPTION_VALUE,
            "`sdirk2` has no error estimate",
        ),
        (
            "method = dopri5(rtl = 1e-6), t = 0 .. 1",
            codes::ARGUMENTS,
            "no keyword argument `rtl`",
        ),
        (
            "method = dopri5(1e-6), t = 0 .. 1",
            codes::ARGUMENTS,
            "only keyword arguments",
        ),
        (
            "method = dopri5(rtol = 2), t = 0 .. 1",
            codes::OPTION_VALUE,
            "`rtol` must be a number in [0, 1)",
        ),
        (
            "method = dopri5(atol = -1), t = 0 .. 1",
            codes::OPTION_VALUE,
            "`atol` must be a number ≥ 0",
        ),
        (
            "method = dopri5(atol = [1e-9]), t = 0 .. 1",
            codes::OPTION_VALUE,
            "`atol` has 1 components, the state has 2",
        ),
        (
            "method = dopri5(atol = [1e-9, -1]), t = 0 .. 1",
            codes::OPTION_VALUE,
            "`atol` component 1 must be",
        ),
        (
            "method = dopri5(rtol = 0, atol = 0), t = 0 .. 1",
            codes::OPTION_VALUE,
            "both 0",
        ),
        (
            "method = dopri5(h0 = 0), t = 0 .. 1",
            codes::OPTION_VALUE,
            "`h0` must be a step size > 0",
        ),
        (
            "method = dopri5(h_min = 1, h_max = 0.5), t = 0 .. 1",
            codes::OPTION_VALUE,
            "below `h_min`",
        ),
        (
            "method = dopri5(max_steps = 0.5), t = 0 .. 1",
            codes::OPTION_VALUE,
            "`max_steps` must be a positive integer",
        ),
        (
            "method = dopri5(rtol = 1e-6), t = 0 .. 1, max_iters = 3",
            codes::OPTION_METHOD,
            "only applies to implicit methods",
        ),
    ];
    for (opts, code, message) in cases {
        check_err(&solve(opts), code, message);
    }
}

#[test]
fn solve_options() {
    let solve = |opts: &str| format!("state u = 1.0\nd(u)/dt = -u\nsolve {{\n{opts}\n}}");
    check_err(
        &solve("method = rk4, t = 0 .. 1, steps = 10, max_iters = 3"),
        codes::OPTION_METHOD,
        "`max_iters` only applies to implicit methods",
    );
    check_err(
        &solve("method = theta(1.5), t = 0 .. 1, steps = 10"),
        codes::OPTION_VALUE,
        "in (0, 1]",
    );
    check_err(
        &solve("method = theta, t = 0 .. 1, steps = 10"),
        codes::OPTION_VALUE,
        "needs arguments",
    );
    check_err(
        &solve("method = rk4(1), t = 0 .. 1, steps = 10"),
        codes::OPTION_VALUE,
        "`rk4` has no error estimate",
    );
    check_err(
        &solve("method = crank_nicolson, t = 0 .. 1, steps = 10, linear_solver = lu"),
        codes::OPTION_VALUE,
        "`linear_solver` expects gmres",
    );
    check_err(
        &solve("method = crank_nicolson, t = 0 .. 1, steps = 10, line_search = 1"),
        codes::OPTION_VALUE,
        "`true` or `false`",
    );
    check_err(
        &solve("method = crank_nicolson, t = 0 .. 1, steps = 10, newton_tol = -1"),
        codes::OPTION_VALUE,
        "must be positive",
    );
    check_err(
        &solve("method = rk4, t = 0, steps = 10"),
        codes::OPTION_VALUE,
        "a range",
    );
    check_err(
        &solve("method = rk4, t = 0 .. 1"),
        codes::MISSING,
        "needs `steps`",
    );
    check_err(
        &solve("method = rk4, t = 0 .. 1, steps = [0, 0.5, 0.4, 1]"),
        codes::TIMES,
        "increase strictly",
    );
    check_err(
        &solve("method = rk4, t = 0 .. 1, steps = [0, 0.5]"),
        codes::TIMES,
        "from t0 = 0 to t1 = 1",
    );
    check_err(
        &solve("method = rk4, t = 0 .. 1, steps = logspace(1e-3, 2, 10)"),
        codes::TIMES,
        "must end at t1",
    );
    check_err(
        &solve("method = rk4, t = 0 .. 1, steps = 10, outputs = [0.5, 2]"),
        codes::TIMES,
        "outside the time span",
    );
    check_err(
        &solve("method = rk4, t = 0 .. 1, steps = 10, outputs = []"),
        codes::OPTION_VALUE,
        "non-empty list",
    );
    check_err(
        &solve("method = rk4, t = 0 .. 1, steps = 10, checkpoint = revolve(4)"),
        codes::ARGUMENTS,
        "takes 0 positional",
    );
    check_err(
        &solve("method = rk4, t = 0 .. 1, steps = 10, checkpoint = revolve()"),
        codes::OPTION_VALUE,
        "needs `slots = n`",
    );
    check_err(
        &solve(
            "method = rk4, t = 0 .. 1, steps = 10, checkpoint = budget(bytes = 1MB, vectors = 2)",
        ),
        codes::OPTION_VALUE,
        "exactly one",
    );
    check_err(
        &solve("method = rk4, t = 0 .. 1, steps = 10, checkpoint = store_al"),
        codes::OPTION_VALUE,
        "schedule",
    );
    check_err(
        &solve("method = erk(a = [[0]], b = [1]), t = 0 .. 1, steps = 1"),
        codes::TABLEAU,
        "needs `c = …`",
    );
    check_err(
        &solve(
            "method = erk(a = [[0, 0], [1]], b = [0.5, 0.5], c = [0, 1]), t = 0 .. 1, steps = 1",
        ),
        codes::TABLEAU,
        "row 1 of `a` has 1 entries",
    );
    check_err(
        &solve(
            "method = erk(a = [[0, 0], [1, 0]], b = [0.5, 0.5], c = [0, 0.5]), t = 0 .. 1, steps = 1",
        ),
        codes::TABLEAU,
        "row sum",
    );
    check_warn(
        &solve("method = sdirk2, t = 0 .. 1, steps = 4, linear_solver = dense, krylov_tol = 1e-9"),
        codes::NO_EFFECT,
        "no effect",
    );
    let p = program(&solve(
        "method = sdirk2, t = 0 .. 2, steps = logspace(0.01, 2, 5), outputs = linspace(1, 2, 3)\n\
         checkpoint = budget(bytes = 2KiB), max_iters = 7, linear_solver = petsc",
    ));
    let s = p.solve.expect("solve");
    assert_eq!(s.method, Method::Sdirk2);
    assert_eq!(
        s.steps,
        Steps::Logspace {
            start: 0.01,
            end: 2.0,
            count: 5
        }
    );
    assert_eq!(
        s.outputs,
        Some(Outputs::Linspace {
            start: 1.0,
            end: 2.0,
            count: 3
        })
    );
    assert_eq!(s.checkpoint, Some(Checkpoint::BudgetBytes(2048)));
    assert_eq!(
        (s.newton.max_iters, s.newton.linear_solver),
        (Some(7), Some(LinearSolver::Petsc))
    );
}

#[test]
fn loss_and_train() {
    let base =
        "state u[2] = [1.0, 2.0]\nd(u)/dt = -u\nsolve { method = rk4, t = 0 .. 1, steps = 4 }\n";
    check_err(
        &format!("{base}loss = sqrt(mse(u, data(\"o.csv\")))"),
        codes::LOSS,
        "can only be fitted by a term",
    );
    check_err(
        &format!("{base}loss = mse(u, data(\"o.csv\", column = -1))"),
        codes::OPTION_VALUE,
        "non-negative",
    );
    check_err(
        &format!("{base}loss = mse(u, data(1))"),
        codes::OPTION_VALUE,
        "file name string",
    );
    check_err(
        &format!("{base}loss = sum(u)\ntrain {{ optimizer = adamw(lr = 1) }}"),
        codes::OPTION_VALUE,
        "unknown optimizer `adamw`",
    );
    check_err(
        &format!("{base}loss = sum(u)\ntrain {{ optimizer = adam(lr = 0) }}"),
        codes::OPTION_VALUE,
        "must be positive",
    );
    check_err(
        &format!("{base}loss = sum(u)\ntrain {{ optimizer = sgd(lr = 0.1, beta1 = 0.9) }}"),
        codes::ARGUMENTS,
        "no keyword argument `beta1`",
    );
    check_err(
        &format!("{base}loss = sum(u)\ntrain {{ iterations = 0 }}"),
        codes::OPTION_VALUE,
        "positive integer",
    );
    check_err(
        "state u = 1.0\nd(u)/dt = -u\nloss = u\ntrain { iterations = 3 }",
        codes::MISSING,
        "needs a `solve` block",
    );
    let p = program(&format!(
        "{base}loss = 2 * mse(u[0], data(\"a.csv\")) - mae(data(\"b.csv\", column = 1), u) / 4 + 0.5 * sum(u ^ 2) - u[1]\n\
         train {{ optimizer = sgd(lr = 0.1), seed = 7 }}"
    ));
    let l = p.loss.expect("loss");
    let fits: Vec<(Metric, f64, &str, Option<u64>)> = l
        .fits
        .iter()
        .map(|f| (f.metric, f.weight, f.data.path.as_str(), f.data.column))
        .collect();
    assert_eq!(
        fits,
        [
            (Metric::Mse, 2.0, "a.csv", None),
            (Metric::Mae, -0.25, "b.csv", Some(1))
        ]
    );
    let e = l.expr.expect("expression part");
    let mut out = [0.0];
    Interpreter::new(&e)
        .eval(0.0, &[1.0, 2.0], &[], &[], &mut out)
        .expect("eval");
    assert_eq!(out, [0.5 * 5.0 - 2.0]);
    let p2 = program(&format!(
        "{base}const w = 0.25\nloss = 2 * w * 4 * mse(u, data(\"a.csv\")) / (1 + 1)"
    ));
    let fit = &p2.loss.as_ref().expect("loss").fits;
    assert_eq!((fit.len(), fit[0].weight), (1, 1.0));
    let t = p.train.expect("train");
    assert_eq!(
        t.optimizer,
        Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.0
        }
    );
    assert_eq!(t.seed, Some(7));
}

#[test]
fn warnings() {
    check_warn(
        "state u = 1.0\nparam k = 1.0\nd(u)/dt = -u",
        codes::UNUSED_PARAM,
        "unused parameter `k`",
    );
    check_warn(
        "state u[2] = zeros\nlayer n = linear(2, 2)\nd(u)/dt = -u",
        codes::UNUSED_LAYER,
        "unused layer `n`",
    );
    check_warn(
        "state u = 1.0\nlet a = 2 * u\nd(u)/dt = -u",
        codes::UNUSED_LET,
        "unused `let` `a`",
    );
    check_warn(
        "state u = 1.0\nconst c = 2\nd(u)/dt = -u",
        codes::UNUSED_CONST,
        "unused constant `c`",
    );
    // A parameter used only by an unused `let` is unused too; `_` silences.
    check_warn(
        "state u = 1.0\nparam k = 1.0\nlet a = k * u\nd(u)/dt = -u",
        codes::UNUSED_PARAM,
        "`k`",
    );
    program("state u = 1.0\nparam _k = 1.0\nd(u)/dt = -u");
    // Uses in shapes, the loss and options count.
    program(
        "const n = 2\nconst s = 3\nstate u[n] = zeros\nd(u)/dt = -u\nsolve { method = rk4, t = 0 .. 1, steps = s }",
    );
}

#[test]
fn pathological_inputs_finish() {
    let many = |n: usize, f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>().join("\n");
    let cases = [
        // Many component equations, and many duplicates.
        format!("state u[3000] = zeros\n{}", many(3000, &|i| format!("d(u[{i}])/dt = -u[{i}]"))),
        format!("state u = 1.0\n{}", many(3000, &|_| "d(u)/dt = -u".to_string())),
        // A long chain of lets, in reverse order.
        format!("state u = 1.0\n{}\nd(u)/dt = a0", many(3000, &|i| format!("let a{i} = a{} + 1", i + 1)) + "\nlet a3000 = u"),
        // Many unknown names.
        format!("state u = 1.0\n{}\nd(u)/dt = u", many(2000, &|i| format!("let x{i} = y{i}"))),
        // Huge layers, counts and products.
        "state u[2] = zeros\nlayer l = mlp([2, 4000000, 4000000, 2])\nd(u)/dt = l(u)".into(),
        "state u[2] = zeros\nlayer l = conv2d(4000000, 4000000, kernel = 4000000)\nd(u)/dt = u".into(),
        "state u = 1.0\nconst A[1000, 1000] = ones\nd(u)/dt = u + sum(A @ A @ A)".into(),
        "state u = 1.0\nd(u)/dt = -u\nsolve { method = rk4, t = 0 .. 1, steps = 1e300, outputs = linspace(0, 1, 1e19) }".into(),
        "state u[4194304] = zeros\nstate v[4194304] = zeros\nd(u)/dt = -u\nd(v)/dt = -v".into(),
        format!("state u = 1.0\nd(u)/dt = {}u{}", "(".repeat(200), ")".repeat(200)),
        format!("state u = 1.0\nd(u)/dt = {}", vec!["u"; 400].join(" * ")),
        format!("state u[2] = [{}]\nd(u)/dt = u", "[".repeat(100) + &"]".repeat(100)),
    ];
    for src in &cases {
        let start = std::time::Instant::now();
        let (s, l) = lower_body(src);
        let _ = rendered(&s, &l);
        let secs = start.elapsed().as_secs_f64();
        assert!(
            secs < 10.0,
            "{secs:.1} s for\n{}",
            &src[..src.len().min(200)]
        );
    }
}

/// Expressions as deep as the parser allows lower on a small thread stack (the lowering's
/// recursion runs on a grown stack).
#[test]
fn deep_expressions_on_a_small_stack() {
    let depth = pnode_grammar::MAX_EXPR_DEPTH - 16;
    let calls = pnode_grammar::MAX_EXPR_DEPTH / 2 - 8;
    let cases = [
        (
            format!("state u = 0.5\nd(u)/dt = {}u", "-".repeat(depth)),
            0,
        ),
        (
            format!("state u = 0.5\nd(u)/dt = {}", vec!["u"; depth].join(" ^ ")),
            0,
        ),
        (
            format!(
                "state u = 0.5\nd(u)/dt = {}u{}",
                "tanh(".repeat(calls),
                ")".repeat(calls)
            ),
            0,
        ),
        (
            format!(
                "state u = 0.5\nloss = {}\nd(u)/dt = u",
                vec!["mse(u, 1)"; depth].join(" - ")
            ),
            0,
        ),
        (
            format!(
                "state u = 0.5\nd(u)/dt = {}u{}",
                "[".repeat(4),
                "]".repeat(4)
            ),
            1,
        ),
    ];
    for (src, expected) in cases {
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let (s, l) = lower_body(&src);
                let _ = rendered(&s, &l);
                l.diagnostics.iter().filter(|d| d.is_error()).count()
            })
            .expect("thread");
        assert_eq!(handle.join().expect("no stack overflow"), expected);
    }
}

/// The errors of lowering `body`.
fn errors(body: &str) -> (String, Vec<pnode_grammar::Diagnostic>) {
    let (src, l) = lower_body(body);
    let errs = l.diagnostics.into_iter().filter(|d| d.is_error()).collect();
    (src, errs)
}

/// One cycle, however long, is one error: at its first member, the cycle in a note, its next
/// members labelled; definitions that merely use a cycle are skipped silently.
#[test]
fn one_error_per_cycle() {
    let (src, e) =
        errors("state u = 1.0\nlet d = a\nlet a = b + u\nlet b = c\nlet c = 2 * a\nd(u)/dt = d");
    assert_eq!(e.len(), 1, "{e:?}");
    let d = &e[0];
    assert_eq!(d.code, Some(codes::CYCLE));
    assert_eq!(d.message, "`a` is defined in terms of itself");
    let at = |l: &pnode_grammar::Label| &src[l.span.start..l.span.end];
    let primary = d.labels.iter().find(|l| l.primary).unwrap();
    assert_eq!((at(primary), primary.message.as_str()), ("a", "uses `b`"));
    let secondary: Vec<_> = d
        .labels
        .iter()
        .filter(|l| !l.primary)
        .map(|l| (at(l), l.message.as_str()))
        .collect();
    assert_eq!(
        secondary,
        [("b", "which uses `c`"), ("c", "which uses `a`")]
    );
    assert_eq!(
        d.notes,
        ["the cycle (3 definitions): `a` → `b` → `c` → `a`"]
    );

    // A self-reference, constants, two cycles joined by a chain: one error per cycle.
    let (_, e) = errors("state u = 1.0\nlet a = a + u\nd(u)/dt = a");
    assert_eq!(e.len(), 1);
    assert!(e[0].notes.is_empty());
    let (_, e) = errors("const y = x\nconst x = 2 * y\nconst z = x\nstate u = 1.0\nd(u)/dt = u");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].message, "constant `y` is defined in terms of itself");
    let (_, e) = errors(
        "state u = 1.0\nlet a = b\nlet b = a + m\nlet m = p\nlet p = q\nlet q = p\nd(u)/dt = u",
    );
    let msgs: Vec<_> = e.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "`a` is defined in terms of itself",
            "`p` is defined in terms of itself"
        ]
    );

    // A 20 001-long cycle: one error listing 8 members.
    let n = 20_001;
    let body = (0..n)
        .map(|i| format!("let a{i} = a{} + 1", (i + 1) % n))
        .collect::<Vec<_>>()
        .join("\n");
    let start = std::time::Instant::now();
    let (_, e) = errors(&format!("state u = 1.0\n{body}\nd(u)/dt = u + a0"));
    assert!(start.elapsed().as_secs_f64() < 20.0);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].labels.len(), 8);
    assert_eq!(
        e[0].notes,
        [
            "the cycle (20001 definitions): `a0` → `a1` → `a2` → `a3` → `a4` → `a5` → `a6` → \
             `a7` → … 19993 more → `a0`"
        ]
    );
}

fn matmul_chain(lets: usize) -> String {
    let mut s = "const A[1024, 1024] = ones\nstate u[1024] = zeros\nlet B0 = A @ A\n".to_string();
    for i in 1..lets {
        s += &format!("let B{i} = B{} @ A\n", i - 1);
    }
    s + &format!("d(u)/dt = B{} @ u", lets - 1)
}

/// Constant folding has one budget per model: beyond it, operations of the model stay
/// symbolic, and constants that must be known at compile time are an I020 error.
#[test]
fn constant_folding_has_a_budget() {
    for lets in [20, 300] {
        let start = std::time::Instant::now();
        let p = program(&matmul_chain(lets));
        let secs = start.elapsed().as_secs_f64();
        assert!(secs < 20.0, "{secs:.1} s for {lets} products");
        // Not folded: the products are in the right-hand side.
        let ir = p.rhs.to_string();
        assert!(ir.matches("matmul").count() > lets, "{ir}");
    }
    // Small folds still happen once the budget is spent (indices must be constant).
    let p = program(
        "const A[1024, 1024] = ones\nstate u[1024] = zeros\nlet B = A @ A\n\
         d(u)/dt = B @ u + u[2 * 3 - 1] + sum(A[1 + 1])",
    );
    assert!(p.rhs.to_string().contains("const 1024.0 : []"), "{}", p.rhs);
    // Within the budget everything folds.
    let p = program("const A[64, 64] = ones\nstate u[64] = zeros\nd(u)/dt = (A @ A @ A) @ u");
    assert_eq!(p.rhs.to_string().matches("matmul").count(), 1);

    // Constants must fold: one error, at the expression, stating the budget.
    let (src, e) = errors(
        "const A[1024, 1024] = ones\nconst B = A @ A\nconst C = B @ A\nstate u[1024] = zeros\n\
         d(u)/dt = C @ u",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].code, Some(codes::TOO_LARGE));
    let s = e[0].primary_span().unwrap();
    assert_eq!(&src[s.start..s.end], "A @ A");
    assert!(e[0].notes[0].contains("2^28"), "{:?}", e[0].notes);
    // So must indices.
    check_err(
        "const A[1024, 1024] = ones\nstate u[2] = zeros\nd(u)/dt = u[sum(A @ A) - 1048576 * 1024]",
        codes::TOO_LARGE,
        "too large to evaluate at compile time",
    );
    // Declared constants spend the byte budget: 16 of 8 MiB fit, the 17th does not.
    let consts: String = (0..17)
        .map(|i| format!("const _A{i}[1024, 1024] = {i}\n"))
        .collect();
    let (src, e) = errors(&format!("{consts}state u = 1.0\nd(u)/dt = u"));
    assert_eq!(e.len(), 1, "{e:?}");
    let s = e[0].primary_span().unwrap();
    assert_eq!(&src[s.start..s.end], "_A16");
}

/// A byte-order mark before the header is accepted, and positions stay right.
#[test]
fn byte_order_mark() {
    let src = "\u{feff}model m\nstate u = 1.0\nd(u)/dt = -u\n";
    let l = compile_source(src);
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    let src = "\u{feff}model m\nstate u = 1.0\nd(u)/dt = -v\n";
    let l = compile_source(src);
    let s = l.diagnostics[0].primary_span().unwrap();
    assert_eq!(&src[s.start..s.end], "v");
}

#[test]
fn data_files_in_steps_layers_and_constants() {
    use pnode_ir::lower::{DataSource, Initializer, Steps};
    let src = |path: &str, column| DataSource {
        path: path.into(),
        column,
    };
    // `steps = data(..)` keeps the file for the driver to read.
    let p = program(
        "state x = 1.0\nd(x)/dt = -x\nsolve { method = rk4, t = 0 .. 1, \
         steps = data(\"t.csv\", column = 1) }",
    );
    assert_eq!(p.solve.unwrap().steps, Steps::Data(src("t.csv", Some(1))));
    // `init = data(..)`: every parameter of the layer takes its part of one file.
    let p = program(
        "state x[2] = 1.0\nlayer net = mlp([2, 3, 2], init = data(\"w.npy\"))\nd(x)/dt = net(x)",
    );
    let parts: Vec<(String, Initializer)> = p
        .params
        .iter()
        .map(|v| (v.name.clone(), v.init.clone()))
        .collect();
    let part = |start| Initializer::DataPart {
        source: src("w.npy", None),
        start,
        total: 6 + 3 + 6 + 2,
    };
    assert_eq!(
        parts,
        [
            ("net.0.weight".to_string(), part(0)),
            ("net.0.bias".to_string(), part(6)),
            ("net.1.weight".to_string(), part(9)),
            ("net.1.bias".to_string(), part(15)),
        ]
    );
    let p = program(
        "state x[2] = 1.0\nlayer l = linear(2, 2, init = data(\"l.csv\", column = 0))\nd(x)/dt = l(x)",
    );
    assert_eq!(p.params.len(), 2);
    assert!(matches!(
        &p.params[1].init,
        Initializer::DataPart {
            start: 4,
            total: 6,
            ..
        }
    ));
    // Errors: an opaque layer has no `init`, `init` must be `data(..)`, constants need values.
    check_err(
        "state x[2] = 1.0\nlayer g = opaque(2, 2, init = data(\"w.npy\"))\nd(x)/dt = g(x)",
        "I004",
        "no keyword argument `init`",
    );
    check_err(
        "state x[2] = 1.0\nlayer l = linear(2, 2, init = zeros)\nd(x)/dt = l(x)",
        pnode_ir::lower::codes::OPTION_VALUE,
        "`data` expects",
    );
    check_err(
        "const c[2] = data(\"c.csv\")\nstate x[2] = 1.0\nd(x)/dt = c * x",
        "I012",
        "constant `c` needs a value",
    );
}

/// A [`ConstData`] over in-memory tables, by path.
struct Tables(Vec<(&'static str, usize, usize, Vec<f64>)>);

impl ConstData for Tables {
    fn read(&self, src: &DataSource) -> Option<Result<ConstTable, ConstDataError>> {
        Some(match self.0.iter().find(|(p, ..)| *p == src.path) {
            Some((_, rows, cols, values)) => match src.column {
                None => Ok(ConstTable {
                    rows: *rows,
                    cols: *cols,
                    values: values.clone(),
                }),
                Some(k) => Ok(ConstTable {
                    rows: *rows,
                    cols: 1,
                    values: values
                        .iter()
                        .skip(k as usize)
                        .step_by(*cols)
                        .copied()
                        .collect(),
                }),
            },
            None => Err(ConstDataError(format!("no file {}", src.path).into())),
        })
    }
}

/// `const NAME = data(..)`: read through the lowering's reader, folded like a literal
/// (the same IR, bit for bit, as the inline values), shapes checked against the file.
#[test]
fn const_data_is_read_through_the_reader_and_folds_like_a_literal() {
    let files = Tables(vec![
        ("c.csv", 2, 1, vec![0.25, -3.0]),
        ("m.csv", 2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    ]);
    let lowered = |src: &str| compile_source_with(&format!("model m\n{src}"), &files);
    let ok = |src: &str| {
        let l = lowered(src);
        l.program
            .unwrap_or_else(|| panic!("{src}: {:?}", l.diagnostics))
    };
    let tail = "state x[2] = 1.0\nd(x)/dt = c * x";
    let from_file = ok(&format!("const c[2] = data(\"c.csv\")\n{tail}"));
    let inline = ok(&format!("const c[2] = [0.25, -3.0]\n{tail}"));
    assert_eq!(from_file.rhs.to_string(), inline.rhs.to_string());
    // No declared shape: one column is a vector, a table a matrix; `column = k` a vector.
    let m = ok("const m = data(\"m.csv\")\nstate x[3] = 1.0\nd(x)/dt = m[1] * x");
    let m_inline = ok(
        "const m = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]\nstate x[3] = 1.0\n\
                       d(x)/dt = m[1] * x",
    );
    assert_eq!(m.rhs.to_string(), m_inline.rhs.to_string());
    let col = ok("const k = data(\"m.csv\", column = 2)\nstate x[2] = 1.0\nd(x)/dt = k * x");
    let col_inline = ok("const k = [3.0, 6.0]\nstate x[2] = 1.0\nd(x)/dt = k * x");
    assert_eq!(col.rhs.to_string(), col_inline.rhs.to_string());
    // A declared shape takes the values row-major; a constant can size a state.
    let n = ok("const m[3, 2] = data(\"m.csv\")\nconst n = m[2, 1]\n\
                state x[n] = 1.0\nd(x)/dt = -x");
    assert_eq!(n.state_len(), 6);
    // Errors, at the initializer's span: a count that does not fit, an unreadable file.
    let expect_err = |src: &str, needle: &str| {
        let l = lowered(src);
        let e = l.diagnostics.iter().find(|d| d.is_error()).expect(src);
        assert_eq!(e.code, Some("I012"), "{src}: {e:?}");
        assert!(e.message.contains(needle), "{src}: {}", e.message);
        let span = e.primary_span().unwrap();
        assert_eq!(&src[span.start - 8..span.start - 4], "data", "{src}");
    };
    expect_err(
        "const c[3] = data(\"c.csv\")\nstate x[3] = 1.0\nd(x)/dt = c * x",
        "constant `c` of shape [3] needs 3 values; \"c.csv\" has 2 (2 × 1)",
    );
    expect_err(
        "const c[2] = data(\"missing.csv\")\nstate x[2] = 1.0\nd(x)/dt = c * x",
        "cannot read constant `c`: no file missing.csv",
    );
}
