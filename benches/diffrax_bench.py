"""diffrax side of the implicit-integrator benchmark (scripts/bench-implicit.sh).

Robertson's kinetics (k = 0.04, 3e7, 1e4; y0 = [1, 0, 0]) on the grid 0, 1e-6, ..., 10 (1000
steps log-spaced from 1e-6: exactly the grid of pnode's `implicit-bench`), fixed steps through
`StepTo`, loss L = 1e4 * y2(10) + y3(10), gradient dL/dy0 and dL/dk by reverse-mode autodiff
through the solver with `RecursiveCheckpointAdjoint(checkpoints=steps)` (every step stored: the
fastest exact gradient diffrax has). float64, CPU, one thread; `jax.jit` compile time is
measured and reported apart from the timed calls.

Methods: `ImplicitEuler`; a Crank–Nicolson tableau (θ = 1/2 as a 2-stage ESDIRK, diffrax has
none built in); `Kvaerno3` (Kværnø's ESDIRK3, the same method as pnode's `esdirk3` up to the
10-digit γ diffrax writes); `Kvaerno5`. The root finders get the same tolerances as pnode's
Newton (1e-10) and up to 25 iterations.

Prints one JSON line per run.
"""

import argparse
import json
import os
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
import optimistix as optx  # noqa: E402
from diffrax._local_interpolation import ThirdOrderHermitePolynomialInterpolation  # noqa: E402
from diffrax._solver.runge_kutta import AbstractESDIRK, ButcherTableau  # noqa: E402

TOL = 1e-10
MAX_ROOT_STEPS = 25
WEIGHTS = jnp.array([0.0, 1e4, 1.0])


class CrankNicolson(AbstractESDIRK):
    """Crank–Nicolson as an ESDIRK: stages z1 = y0, z2 = y0 + h/2 (f(z1) + f(z2))."""

    tableau = ButcherTableau(
        a_lower=(np.array([0.5]),),
        a_predictor=(np.array([1.0]),),
        a_diagonal=np.array([0.0, 0.5]),
        b_sol=np.array([0.5, 0.5]),
        b_error=np.array([0.5, -0.5]),
        c=np.array([1.0]),
    )
    interpolation_cls = ThirdOrderHermitePolynomialInterpolation.from_k
    root_finder: optx.AbstractRootFinder = diffrax.VeryChord(rtol=TOL, atol=TOL)
    root_find_max_steps: int = MAX_ROOT_STEPS

    def order(self, terms):
        return 2


def solver_for(method):
    if method == "be":
        return diffrax.ImplicitEuler(
            root_finder=optx.Chord(rtol=TOL, atol=TOL), root_find_max_steps=MAX_ROOT_STEPS
        )
    if method == "cn":
        return CrankNicolson()
    cls = {"esdirk3": diffrax.Kvaerno3, "kvaerno5": diffrax.Kvaerno5}[method]
    return cls(
        root_finder=diffrax.VeryChord(rtol=TOL, atol=TOL), root_find_max_steps=MAX_ROOT_STEPS
    )


def robertson(t, y, k):
    y1, y2, y3 = y
    return jnp.stack(
        [
            -k[0] * y1 + k[2] * y2 * y3,
            k[0] * y1 - k[2] * y2 * y3 - k[1] * y2 * y2,
            k[1] * y2 * y2,
        ]
    )


def log_grid(steps):
    return np.concatenate([[0.0], 1e-6 * 1e7 ** (np.arange(steps) / (steps - 1))])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", required=True, choices=["be", "cn", "esdirk3", "kvaerno5"])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()

    grid = log_grid(args.steps)
    ts, t_end = jnp.asarray(grid), float(grid[-1])
    solver = solver_for(args.method)
    term = diffrax.ODETerm(robertson)

    def final_state(y0, k):
        sol = diffrax.diffeqsolve(
            term,
            solver,
            t0=0.0,
            t1=t_end,
            dt0=None,
            y0=y0,
            args=k,
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=diffrax.StepTo(ts=ts),
            adjoint=diffrax.RecursiveCheckpointAdjoint(checkpoints=args.steps),
            max_steps=args.steps,
        )
        return sol.ys[-1]

    def loss(y0, k):
        return jnp.dot(WEIGHTS, final_state(y0, k))

    y0 = jnp.array([1.0, 0.0, 0.0])
    k = jnp.array([0.04, 3e7, 1e4])
    forward = jax.jit(final_state)
    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))

    start = time.perf_counter()
    y_final = forward(y0, k).block_until_ready()
    forward_compile = time.perf_counter() - start
    start = time.perf_counter()
    value, (g_y0, g_k) = jax.block_until_ready(grad(y0, k))
    gradient_compile = time.perf_counter() - start

    forward_times, gradient_times = [], []
    for _ in range(args.reps):
        start = time.perf_counter()
        forward(y0, k).block_until_ready()
        forward_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        jax.block_until_ready(grad(y0, k))
        gradient_times.append(time.perf_counter() - start)

    print(
        json.dumps(
            {
                "side": "diffrax",
                "method": args.method,
                "backend": f"diffrax {diffrax.__version__} / jax {jax.__version__}",
                "steps": args.steps,
                "reps": args.reps,
                "loss": float(value),
                "y_final": [float(x) for x in y_final],
                "grad_u0": [float(x) for x in g_y0],
                "grad_k": [float(x) for x in g_k],
                "forward_times": forward_times,
                "gradient_times": gradient_times,
                "compile_s": {"forward": forward_compile, "gradient": gradient_compile},
            }
        )
    )


if __name__ == "__main__":
    main()
