"""diffrax side of the adaptive-stepping benchmark (scripts/bench-adaptive.sh, issue 16).

Error-controlled steps at rtol = 1e-6, atol = 1e-9 with `PIDController(rtol, atol)` (its
default gains: an integral controller) and the automatic first step (dt0=None),
`SaveAt(t1=True)`, reverse-mode autodiff through the solver with
`RecursiveCheckpointAdjoint(checkpoints=MAX_STEPS)` (every step stored: diffrax's fastest
exact gradient; with fewer checkpoints it recomputes steps). float64, CPU, one thread
(XLA_FLAGS; the caller pins the process to one core). `jax.jit(jax.value_and_grad(loss))` is
traced and XLA-compiled ahead of the timed calls; the trace and compile times are reported apart.

Problems:
  lv:         Dopri5; Lotka–Volterra f = [α x − β x y, δ x y − γ y] to t = 10, L = Σ u(10);
  mlp:        Dopri5; f(u) = W2 tanh(W1 u + b1) + b2 (2-50-2) on a 64 × 2 batch, flat parameters
              layer by layer (W out × in row-major, then b), to t = 5, L = ½ Σ u(5)²;
  robertson:  Kvaerno5 (its default root finder, VeryChord at the controller's tolerances);
              Robertson's kinetics, k = (0.04, 3e7, 1e4), y0 = (1, 0, 0), to t = 1e5,
              L = 1e4 y2(1e5) + y3(1e5).
The inputs (u0, parameters, t1) and the reference gradient come from the JSON line pnode's
`adaptive_side_by_side` example printed, so both sides start from the same numbers. For
robertson the script also computes a reference of its own (Kvaerno5 at rtol = 1e-10,
atol = 1e-14) and reports how far it is from pnode's (a check of the reference; without a pnode
line it becomes the reference). The gradient error is max_i |g_i − g_ref,i| / max_i |g_ref,i|
over dL/du0 and dL/dθ together.

Prints one JSON line (accepted and rejected steps, times, gradient error); a summary goes to
stderr.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platforms", "cpu")

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from bench_common import read_pnode, rel_diff as rel_err  # noqa: E402
from jit_diffrax_bench import lotka_volterra, make_mlp  # noqa: E402

RTOL, ATOL = 1e-6, 1e-9
MAX_STEPS = 4096
REF_MAX_STEPS = 65536
ROBERTSON_T1 = 1e5
ROBERTSON_REF_TOL = (1e-10, 1e-14)


def robertson(t, y, k):
    y1, y2, y3 = y[0], y[1], y[2]
    return jnp.stack(
        [
            -k[0] * y1 + k[2] * y2 * y3,
            k[0] * y1 - k[2] * y2 * y3 - k[1] * y2 * y2,
            k[1] * y2 * y2,
        ]
    )


def make_solve(f, solver, t1, rtol, atol, max_steps=MAX_STEPS):
    term = diffrax.ODETerm(f)

    def solve(u0, p):
        return diffrax.diffeqsolve(
            term,
            solver,
            t0=0.0,
            t1=t1,
            dt0=None,
            y0=u0,
            args=p,
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            adjoint=diffrax.RecursiveCheckpointAdjoint(checkpoints=max_steps),
            max_steps=max_steps,
        )

    return solve


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", required=True, choices=["lv", "mlp", "robertson"])
    ap.add_argument("--pnode", help="JSON lines printed by adaptive_side_by_side")
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()

    ref = read_pnode(args.pnode, args.problem) if args.pnode else None
    if args.problem == "robertson":
        t1 = ROBERTSON_T1
        u0, p = jnp.array([1.0, 0.0, 0.0]), jnp.array([0.04, 3e7, 1e4])
        f, solver, weights = robertson, diffrax.Kvaerno5(), jnp.array([0.0, 1e4, 1.0])

        def loss_of(u):
            return jnp.dot(weights, u)
    else:
        if ref is None:
            sys.exit(f"error: --problem {args.problem} needs --pnode")
        t1 = ref["t1"]
        u0, p = jnp.asarray(ref["u0"]), jnp.asarray(ref["p"])
        solver = diffrax.Dopri5()
        if args.problem == "lv":
            f = lotka_volterra

            def loss_of(u):
                return jnp.sum(u)
        else:
            f = make_mlp(ref["widths"], ref["batch"])

            def loss_of(u):
                return 0.5 * jnp.sum(u * u)

    solve = make_solve(f, solver, t1, RTOL, ATOL)

    def loss(u0, p):
        return loss_of(solve(u0, p).ys[-1])

    stats = jax.jit(lambda u, q: solve(u, q).stats)(u0, p)
    accepted, rejected = int(stats["num_accepted_steps"]), int(stats["num_rejected_steps"])
    print(f"{args.problem}: {accepted} accepted, {rejected} rejected steps", file=sys.stderr)

    start = time.perf_counter()
    lowered = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(u0, p)
    trace_s = time.perf_counter() - start
    start = time.perf_counter()
    grad = lowered.compile()
    compile_s = time.perf_counter() - start

    value, (g_u0, g_p) = jax.block_until_ready(grad(u0, p))
    for _ in range(2):
        jax.block_until_ready(grad(u0, p))
    times = []
    cpu_start = time.process_time()
    for _ in range(args.reps):
        start = time.perf_counter()
        jax.block_until_ready(grad(u0, p))
        times.append(time.perf_counter() - start)
    # CPU time of the process (all threads) per gradient: on a shared machine it leaves out
    # the time spent waiting for the core, which the wall-clock times include.
    cpu_s_per_rep = (time.process_time() - cpu_start) / args.reps
    g = np.concatenate([np.asarray(g_u0), np.asarray(g_p)])

    extra = {}
    if args.problem == "robertson":
        ref_solve = make_solve(f, solver, t1, *ROBERTSON_REF_TOL, max_steps=REF_MAX_STEPS)

        def ref_loss(u0, p):
            return loss_of(ref_solve(u0, p).ys[-1])

        ref_value, (r_u0, r_p) = jax.jit(jax.value_and_grad(ref_loss, argnums=(0, 1)))(u0, p)
        r_stats = jax.jit(lambda u, q: ref_solve(u, q).stats)(u0, p)
        ref_grad = np.concatenate([np.asarray(r_u0), np.asarray(r_p)])
        extra["reference"] = {
            "by": f"diffrax Kvaerno5, rtol = {ROBERTSON_REF_TOL[0]:g}, "
            f"atol = {ROBERTSON_REF_TOL[1]:g}",
            "accepted": int(r_stats["num_accepted_steps"]),
            "loss": float(ref_value),
            "grad_u0": np.asarray(r_u0).tolist(),
            "grad_p": np.asarray(r_p).tolist(),
        }
        extra["grad_u0"], extra["grad_p"] = np.asarray(g_u0).tolist(), np.asarray(g_p).tolist()
        ref_loss_value = float(ref_value)
    if ref is not None:
        pnode_ref = np.asarray(ref["reference"]["grad_u0"] + ref["reference"]["grad_p"])
        if "reference" in extra:
            extra["reference"]["rel_diff_to_pnode_reference"] = rel_err(ref_grad, pnode_ref)
        ref_grad, ref_loss_value = pnode_ref, ref["reference"]["loss"]
    err = rel_err(g, ref_grad)
    method = "Kvaerno5" if args.problem == "robertson" else "Dopri5"
    print(
        f"diffrax {method} {args.problem}: {accepted} accepted, {rejected} rejected; gradient "
        f"median {statistics.median(times) * 1e3:.3f} ms, CPU {cpu_s_per_rep * 1e3:.3f} ms, "
        f"min {min(times) * 1e3:.3f} ms; trace {trace_s:.2f} s, XLA compile {compile_s:.2f} s; "
        f"gradient error {err:.1e}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "side": "diffrax",
                "problem": args.problem,
                "method": method,
                "backend": f"diffrax {diffrax.__version__} / jax {jax.__version__}",
                "rtol": RTOL,
                "atol": ATOL,
                "accepted": accepted,
                "rejected": rejected,
                "reps": args.reps,
                "loss": float(value),
                "loss_rel_err": abs(float(value) - ref_loss_value) / abs(ref_loss_value),
                "grad_rel_err": err,
                "times": times,
                "cpu_s_per_rep": cpu_s_per_rep,
                "compile_s": {"trace": trace_s, "xla": compile_s},
                "loadavg": open("/proc/loadavg").read().split()[:3],
                **extra,
            }
        )
    )


if __name__ == "__main__":
    main()
