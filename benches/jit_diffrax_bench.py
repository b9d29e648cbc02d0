"""diffrax side of the JIT benchmark (scripts/bench-jit.sh).

Reads the problem (u0, parameters, steps, t1) from the JSON line that pnode's `side_by_side`
example printed for it, so both sides start from the same numbers, and computes the same
exact discrete gradient:

  lv:  Lotka–Volterra f = [α x − β x y, δ x y − γ y], 1000 steps to t = 10, L = Σ u(10);
  mlp: f(u) = W3 tanh(W2 tanh(W1 u + b1) + b2) + b3 (2-64-64-2) on a 64 × 2 batch, flat
       parameters layer by layer (W out × in row-major, then b), 100 steps to t = 1,
       L = ½ Σ u(1)².

Classic RK4 (Kutta 1901; Hairer–Nørsett–Wanner I, Table II.1.1) as a custom `ButcherTableau`
in an `AbstractERK` subclass (diffrax has no classic RK4 built in), `ConstantStepSize` with
dt0 = t1 / steps (the script checks that diffrax took exactly `steps` steps),
`SaveAt(t1=True)`, reverse-mode autodiff through the solver with
`RecursiveCheckpointAdjoint(checkpoints=steps)` (every step stored: diffrax's fastest exact
gradient). float64, CPU, one thread (XLA_FLAGS; the caller pins the process to one core).
`jax.jit(jax.value_and_grad(loss))` is traced and XLA-compiled ahead of the timed calls; the
trace and compile times are reported apart.

Prints one JSON line; the relative gradient difference to pnode goes to stderr as well.
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
from diffrax._local_interpolation import ThirdOrderHermitePolynomialInterpolation  # noqa: E402
from diffrax._solver.runge_kutta import AbstractERK, ButcherTableau  # noqa: E402
from bench_common import read_pnode, rel_diff  # noqa: E402


class ClassicRK4(AbstractERK):
    """Classic RK4: c = (0, ½, ½, 1), a21 = a32 = ½, a43 = 1, b = (1/6, 1/3, 1/3, 1/6).

    No embedded method (b_error = 0): it runs with ConstantStepSize only.
    """

    tableau = ButcherTableau(
        a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
        b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
        b_error=np.zeros(4),
        c=np.array([0.5, 0.5, 1.0]),
    )
    interpolation_cls = ThirdOrderHermitePolynomialInterpolation.from_k

    def order(self, terms):
        return 4


def lotka_volterra(t, u, p):
    x, y = u[0], u[1]
    return jnp.stack([p[0] * x - p[1] * x * y, p[2] * x * y - p[3] * y])


def make_mlp(widths, batch):
    """The flat-parameter tanh MLP on a flat batch × dim state."""
    shapes, off = [], 0
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        shapes.append((off, n_out, n_in))
        off += n_out * n_in + n_out

    def f(t, u, p):
        h = u.reshape(batch, widths[0])
        for k, (o, n_out, n_in) in enumerate(shapes):
            w = p[o : o + n_out * n_in].reshape(n_out, n_in)
            b = p[o + n_out * n_in : o + n_out * n_in + n_out]
            h = h @ w.T + b
            if k + 1 < len(shapes):
                h = jnp.tanh(h)
        return h.reshape(-1)

    return f


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", required=True, choices=["lv", "mlp"])
    ap.add_argument("--pnode", required=True, help="JSON lines printed by side_by_side")
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()

    ref = read_pnode(args.pnode, args.problem)
    steps, t1 = ref["steps"], ref["t1"]
    u0, p = jnp.asarray(ref["u0"]), jnp.asarray(ref["p"])
    if args.problem == "lv":
        f = lotka_volterra

        def loss_of(u):
            return jnp.sum(u)
    else:
        f = make_mlp(ref["widths"], ref["batch"])

        def loss_of(u):
            return 0.5 * jnp.sum(u * u)

    term = diffrax.ODETerm(f)
    solver = ClassicRK4()

    def solve(u0, p):
        return diffrax.diffeqsolve(
            term,
            solver,
            t0=0.0,
            t1=t1,
            dt0=t1 / steps,
            y0=u0,
            args=p,
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=diffrax.ConstantStepSize(),
            adjoint=diffrax.RecursiveCheckpointAdjoint(checkpoints=steps),
            max_steps=steps,
        )

    def loss(u0, p):
        return loss_of(solve(u0, p).ys[-1])

    n_steps = int(jax.jit(lambda u, q: solve(u, q).stats["num_steps"])(u0, p))
    if n_steps != steps:
        sys.exit(f"error: diffrax took {n_steps} steps, not {steps}")

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
    diff = rel_diff(g, ref["grad_u0"] + ref["grad_p"])
    print(
        f"diffrax {args.problem}: gradient median {statistics.median(times) * 1e3:.3f} ms, "
        f"CPU {cpu_s_per_rep * 1e3:.3f} ms, min {min(times) * 1e3:.3f} ms; "
        f"trace {trace_s:.2f} s, XLA compile {compile_s:.2f} s; "
        f"max rel. diff. of the gradient to pnode {diff:.1e}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "side": "diffrax",
                "problem": args.problem,
                "backend": f"diffrax {diffrax.__version__} / jax {jax.__version__}",
                "steps": steps,
                "reps": args.reps,
                "loss": float(value),
                "loss_rel_diff": abs(float(value) - ref["loss"]) / abs(ref["loss"]),
                "grad_rel_diff": diff,
                "times": times,
                "cpu_s_per_rep": cpu_s_per_rep,
                "compile_s": {"trace": trace_s, "xla": compile_s},
                "loadavg": open("/proc/loadavg").read().split()[:3],
            }
        )
    )


if __name__ == "__main__":
    main()
