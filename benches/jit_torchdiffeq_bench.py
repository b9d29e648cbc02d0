"""torchdiffeq side of the JIT benchmark (scripts/bench-jit.sh).

Reads the problem (u0, parameters, steps, t1) from the JSON line that pnode's `side_by_side`
example printed for it and computes the same gradient (problems as in jit_diffrax_bench.py:
Lotka–Volterra with L = Σ u(10), the 2-64-64-2 tanh MLP on a 64 × 2 batch with
L = ½ Σ u(1)²) by backpropagation through `torchdiffeq.odeint` (not `odeint_adjoint`): torch's
autograd tape of every operation of every step, the exact discrete gradient. float64,
`torch.set_num_threads(1)`; the caller pins the process to one core.

Methods:
  rk4_classic  classic RK4 (1/6, 1/3, 1/3, 1/6). torchdiffeq 0.2.5's method 'rk4' is Kutta's
               3/8 rule (rk4_alt_step_func); the classic step exists in the library as
               `rk_common.rk4_step_func` but no method name reaches it, so this script
               registers a FixedGridODESolver subclass calling it under the name
               'rk4_classic' in torchdiffeq's solver table. Everything else is torchdiffeq's
               own fixed-grid machinery.
  rk4          torchdiffeq's own 'rk4' (the 3/8 rule: same cost, a different method, so its
               gradient differs from pnode's by the methods' truncation-error difference).
The grid is fixed through options=dict(step_size=t1/steps); the script checks it has exactly
`steps` steps.

Prints one JSON line; the relative gradient difference to pnode goes to stderr as well.
"""

import argparse
import json
import statistics
import sys
import time

import torch
import torchdiffeq
from torchdiffeq._impl.misc import Perturb
from torchdiffeq._impl.rk_common import rk4_step_func
from torchdiffeq._impl.solvers import FixedGridODESolver
from bench_common import read_pnode, rel_diff  # noqa: E402

DTYPE = torch.float64


class ClassicRK4(FixedGridODESolver):
    """torchdiffeq's classic RK4 step (rk_common.rk4_step_func) as a fixed-grid method."""

    order = 4

    def _step_func(self, func, t0, dt, t1, y0):
        f0 = func(t0, y0, perturb=Perturb.NEXT if self.perturb else Perturb.NONE)
        return rk4_step_func(func, t0, dt, t1, y0, f0=f0, perturb=self.perturb), f0


# `torchdiffeq._impl.odeint` the attribute is the function; the module holds the table.
sys.modules["torchdiffeq._impl.odeint"].SOLVERS["rk4_classic"] = ClassicRK4


def lotka_volterra(p):
    def f(t, u):
        x, y = u[0], u[1]
        return torch.stack([p[0] * x - p[1] * x * y, p[2] * x * y - p[3] * y])

    return f


def mlp(p, widths, batch):
    """The flat-parameter tanh MLP on a flat batch × dim state (views into p)."""
    layers, off = [], 0
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        w = p[off : off + n_out * n_in].view(n_out, n_in)
        off += n_out * n_in
        layers.append((w, p[off : off + n_out]))
        off += n_out

    def f(t, u):
        h = u.view(batch, widths[0])
        for k, (w, b) in enumerate(layers):
            h = torch.nn.functional.linear(h, w, b)
            if k + 1 < len(layers):
                h = torch.tanh(h)
        return h.reshape(-1)

    return f


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", required=True, choices=["lv", "mlp"])
    ap.add_argument("--pnode", required=True, help="JSON lines printed by side_by_side")
    ap.add_argument("--method", default="rk4_classic", choices=["rk4_classic", "rk4"])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()

    torch.set_num_threads(1)
    ref = read_pnode(args.pnode, args.problem)
    steps, t1 = ref["steps"], ref["t1"]
    u0 = torch.tensor(ref["u0"], dtype=DTYPE)
    p = torch.tensor(ref["p"], dtype=DTYPE, requires_grad=True)
    if args.problem == "lv":
        f = lotka_volterra(p)

        def loss_of(u):
            return u.sum()
    else:
        f = mlp(p, ref["widths"], ref["batch"])

        def loss_of(u):
            return 0.5 * u.square().sum()

    t = torch.tensor([0.0, t1], dtype=DTYPE)
    options = dict(step_size=t1 / steps)
    grid = FixedGridODESolver._grid_constructor_from_step_size(options["step_size"])(None, u0, t)
    if len(grid) != steps + 1:
        sys.exit(f"error: torchdiffeq's grid has {len(grid) - 1} steps, not {steps}")

    def gradient():
        p.grad = None
        x = u0.clone().requires_grad_(True)
        loss = loss_of(torchdiffeq.odeint(f, x, t, method=args.method, options=options)[-1])
        loss.backward()
        return loss.item(), x.grad, p.grad

    gradient()  # warm-up
    times = []
    cpu_start = time.process_time()
    for _ in range(args.reps):
        start = time.perf_counter()
        value, g_u0, g_p = gradient()
        times.append(time.perf_counter() - start)
    # CPU time of the process (all threads) per gradient: on a shared machine it leaves out
    # the time spent waiting for the core, which the wall-clock times include.
    cpu_s_per_rep = (time.process_time() - cpu_start) / args.reps

    g = torch.cat([g_u0, g_p]).numpy()
    diff = rel_diff(g, ref["grad_u0"] + ref["grad_p"])
    print(
        f"torchdiffeq {args.method} {args.problem}: gradient median "
        f"{statistics.median(times) * 1e3:.2f} ms, CPU {cpu_s_per_rep * 1e3:.2f} ms, "
        f"min {min(times) * 1e3:.2f} ms; "
        f"max rel. diff. of the gradient to pnode {diff:.1e}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "side": "torchdiffeq",
                "problem": args.problem,
                "method": args.method,
                "backend": f"torchdiffeq {torchdiffeq.__version__} / torch {torch.__version__}",
                "steps": steps,
                "reps": args.reps,
                "loss": value,
                "loss_rel_diff": abs(value - ref["loss"]) / abs(ref["loss"]),
                "grad_rel_diff": diff,
                "times": times,
                "cpu_s_per_rep": cpu_s_per_rep,
                "loadavg": open("/proc/loadavg").read().split()[:3],
            }
        )
    )


if __name__ == "__main__":
    main()
