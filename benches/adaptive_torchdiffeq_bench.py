"""torchdiffeq side of the adaptive-stepping benchmark (scripts/bench-adaptive.sh, issue 16).

Reads the problem (u0, parameters, t1) and the reference gradient from the JSON line pnode's
`adaptive_side_by_side` example printed (problems as in adaptive_diffrax_bench.py:
Lotka–Volterra with L = Σ u(10), the 2-50-2 tanh MLP on a 64 × 2 batch with L = ½ Σ u(5)²)
and computes the gradient with torchdiffeq's `dopri5` at rtol = 1e-6, atol = 1e-9 in one of
two ways:

  backprop  backpropagation through `torchdiffeq.odeint`: torch's autograd tape of every
            operation of every step (the step-size selection included, as far as torchdiffeq
            records it);
  adjoint   `torchdiffeq.odeint_adjoint`: the continuous adjoint, solved backwards with dopri5
            at the same tolerances (its defaults adjoint_rtol = rtol, adjoint_atol = atol).

Accepted and rejected steps are counted with torchdiffeq's step callbacks
(`callback_accept_step`, `callback_reject_step`; for the adjoint also the backward solve's
`_adjoint` callbacks, reported apart). float64, `torch.set_num_threads(1)`; the caller pins the
process to one core. Robertson is not run: torchdiffeq has no adaptive implicit method.

Prints one JSON line; a summary goes to stderr.
"""

import argparse
import json
import statistics
import sys
import time

import torch
import torchdiffeq
from bench_common import read_pnode, rel_diff as rel_err  # noqa: E402

DTYPE = torch.float64
RTOL, ATOL = 1e-6, 1e-9


class Field(torch.nn.Module):
    """The right-hand side with its flat parameter vector and step counters."""

    def __init__(self, p, rhs):
        super().__init__()
        self.p = torch.nn.Parameter(p)
        self.rhs = rhs
        self.counts = dict(accepted=0, rejected=0, accepted_adjoint=0, rejected_adjoint=0)

    def forward(self, t, u):
        return self.rhs(self.p, u)

    def callback_accept_step(self, t0, y0, dt):
        self.counts["accepted"] += 1

    def callback_reject_step(self, t0, y0, dt):
        self.counts["rejected"] += 1

    def callback_accept_step_adjoint(self, t0, y0, dt):
        self.counts["accepted_adjoint"] += 1

    def callback_reject_step_adjoint(self, t0, y0, dt):
        self.counts["rejected_adjoint"] += 1


def lotka_volterra(p, u):
    x, y = u[0], u[1]
    return torch.stack([p[0] * x - p[1] * x * y, p[2] * x * y - p[3] * y])


def mlp(widths, batch):
    """The flat-parameter tanh MLP on a flat batch × dim state."""
    shapes, off = [], 0
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        shapes.append((off, n_out, n_in))
        off += n_out * n_in + n_out

    def rhs(p, u):
        h = u.view(batch, widths[0])
        for k, (o, n_out, n_in) in enumerate(shapes):
            w = p[o : o + n_out * n_in].view(n_out, n_in)
            b = p[o + n_out * n_in : o + n_out * n_in + n_out]
            h = torch.nn.functional.linear(h, w, b)
            if k + 1 < len(shapes):
                h = torch.tanh(h)
        return h.reshape(-1)

    return rhs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", required=True, choices=["lv", "mlp"])
    ap.add_argument("--pnode", required=True, help="JSON lines printed by adaptive_side_by_side")
    ap.add_argument("--mode", default="backprop", choices=["backprop", "adjoint"])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()

    torch.set_num_threads(1)
    ref = read_pnode(args.pnode, args.problem)
    u0 = torch.tensor(ref["u0"], dtype=DTYPE)
    p = torch.tensor(ref["p"], dtype=DTYPE)
    if args.problem == "lv":
        field = Field(p, lotka_volterra)

        def loss_of(u):
            return u.sum()
    else:
        field = Field(p, mlp(ref["widths"], ref["batch"]))

        def loss_of(u):
            return 0.5 * u.square().sum()

    t = torch.tensor([0.0, ref["t1"]], dtype=DTYPE)
    solve = torchdiffeq.odeint_adjoint if args.mode == "adjoint" else torchdiffeq.odeint

    def gradient():
        field.p.grad = None
        for k in field.counts:
            field.counts[k] = 0
        x = u0.clone().requires_grad_(True)
        loss = loss_of(solve(field, x, t, rtol=RTOL, atol=ATOL, method="dopri5")[-1])
        loss.backward()
        return loss.item(), x.grad, field.p.grad

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
    ref_loss = ref["reference"]["loss"]
    err = rel_err(g, ref["reference"]["grad_u0"] + ref["reference"]["grad_p"])
    c = dict(field.counts)
    adjoint_steps = (
        f" (+ adjoint solve {c['accepted_adjoint']} accepted, {c['rejected_adjoint']} rejected)"
        if args.mode == "adjoint"
        else ""
    )
    print(
        f"torchdiffeq dopri5 {args.mode} {args.problem}: {c['accepted']} accepted, "
        f"{c['rejected']} rejected{adjoint_steps}; gradient median "
        f"{statistics.median(times) * 1e3:.2f} ms, CPU {cpu_s_per_rep * 1e3:.2f} ms, "
        f"min {min(times) * 1e3:.2f} ms; gradient error {err:.1e}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "side": "torchdiffeq",
                "problem": args.problem,
                "mode": args.mode,
                "backend": f"torchdiffeq {torchdiffeq.__version__} / torch {torch.__version__}",
                "rtol": RTOL,
                "atol": ATOL,
                "accepted": c["accepted"],
                "rejected": c["rejected"],
                "accepted_adjoint": c["accepted_adjoint"],
                "rejected_adjoint": c["rejected_adjoint"],
                "reps": args.reps,
                "loss": value,
                "loss_rel_err": abs(value - ref_loss) / abs(ref_loss),
                "grad_rel_err": err,
                "times": times,
                "cpu_s_per_rep": cpu_s_per_rep,
                "loadavg": open("/proc/loadavg").read().split()[:3],
            }
        )
    )


if __name__ == "__main__":
    main()
