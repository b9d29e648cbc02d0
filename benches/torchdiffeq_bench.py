"""torchdiffeq side of the pnode-torch vs torchdiffeq benchmark (scripts/bench-torch.sh).

One (workload, method) per process, one JSON line on stdout:

    python benches/torchdiffeq_bench.py --workload b --method odeint_adjoint [--weights F.npz]
    python benches/torchdiffeq_bench.py --export DIR      # writes DIR/{a,b,c}.npz

Workloads (tanh MLPs, loss = mean(u(1)^2), t in [0, 1], float32, one thread):
  a: 2-64-2,          batch 64,  100 steps
  b: 64-512-512-64,   batch 256, 100 steps
  c: 16-128-128-16,   batch 128, 2000 steps
Method 'rk4' of torchdiffeq is the 3/8 rule (rk4_alt_step_func); the grid is fixed through
options=dict(step_size=1/N) (the script checks that it has exactly N steps). The pnode side
uses Tableau::rk38() on the same grid, so both sides compute the same numbers.

Memory: peak RSS increase of one gradient after a warm-up gradient: glibc's malloc_trim(0)
returns the memory the warm-up freed (so it cannot be reused unseen), "5" is written to
/proc/self/clear_refs (resets VmHWM), VmRSS is read, one gradient runs, then VmHWM is read.
The Rust side does the same.
"""

import argparse
import ctypes
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torchdiffeq
from torch import nn

WORKLOADS = {
    "a": dict(dim=2, hidden=[64], batch=64, steps=100),
    "b": dict(dim=64, hidden=[512, 512], batch=256, steps=100),
    "c": dict(dim=16, hidden=[128, 128], batch=128, steps=2000),
}
DEFAULT_REPS = {"a": 20, "b": 5, "c": 3}
DTYPE = torch.float32


class Mlp(nn.Module):
    """f(t, u) = L_out(tanh(... tanh(L_in(u)))); autonomous."""

    def __init__(self, dim, hidden):
        super().__init__()
        sizes = [dim] + hidden + [dim]
        self.layers = nn.ModuleList(
            nn.Linear(a, b, dtype=DTYPE) for a, b in zip(sizes[:-1], sizes[1:])
        )

    def forward(self, t, u):
        for layer in self.layers[:-1]:
            u = torch.tanh(layer(u))
        return self.layers[-1](u)


def build(workload, weights=None, seed=0):
    """The model and the initial state: from an .npz (w{i}, b{i}, x0) or from a seed."""
    w = WORKLOADS[workload]
    torch.manual_seed(seed)
    model = Mlp(w["dim"], w["hidden"])
    x0 = torch.randn(w["batch"], w["dim"], dtype=DTYPE)
    if weights is not None:
        data = np.load(weights)
        with torch.no_grad():
            for i, layer in enumerate(model.layers):
                layer.weight.copy_(torch.from_numpy(data[f"w{i}"]))
                layer.bias.copy_(torch.from_numpy(data[f"b{i}"]))
        x0 = torch.from_numpy(data["x0"]).clone()
    return model, x0


def export(directory):
    os.makedirs(directory, exist_ok=True)
    for name in WORKLOADS:
        model, x0 = build(name)
        arrays = {"x0": x0.numpy()}
        for i, layer in enumerate(model.layers):
            arrays[f"w{i}"] = layer.weight.detach().numpy()
            arrays[f"b{i}"] = layer.bias.detach().numpy()
        np.savez(os.path.join(directory, f"{name}.npz"), **arrays)


def proc_status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak():
    ctypes.CDLL(None).malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", choices=sorted(WORKLOADS))
    p.add_argument("--method", choices=["odeint", "odeint_adjoint"])
    p.add_argument("--reps", type=int, help="timed repetitions (median reported)")
    p.add_argument("--weights", help=".npz with w{i}, b{i}, x0 (from --export)")
    p.add_argument("--export", metavar="DIR", help="write DIR/{a,b,c}.npz and exit")
    args = p.parse_args()
    if args.export:
        export(args.export)
        return
    if not args.workload or not args.method:
        p.error("--workload and --method are required")

    torch.set_num_threads(1)
    w = WORKLOADS[args.workload]
    n = w["steps"]
    reps = args.reps or DEFAULT_REPS[args.workload]
    model, x0 = build(args.workload, args.weights)
    params = tuple(model.parameters())
    t = torch.tensor([0.0, 1.0], dtype=DTYPE)
    options = dict(step_size=1.0 / n)
    grid = torchdiffeq._impl.solvers.FixedGridODESolver._grid_constructor_from_step_size(
        options["step_size"]
    )(None, x0, t)
    assert len(grid) == n + 1, f"torchdiffeq grid has {len(grid) - 1} steps, not {n}"

    if args.method == "odeint":
        def solve(x):
            return torchdiffeq.odeint(model, x, t, method="rk4", options=options)[-1]
    else:
        def solve(x):
            return torchdiffeq.odeint_adjoint(
                model, x, t, method="rk4", options=options, adjoint_params=params
            )[-1]

    def forward():
        with torch.no_grad():
            return solve(x0)

    def gradient():
        for q in params:
            q.grad = None
        x = x0.clone().requires_grad_(True)
        loss = solve(x).square().mean()
        loss.backward()
        return loss.item(), x.grad

    def timed(fn):
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return times

    loss, dx = gradient()  # warm-up
    reset_peak()
    rss_before = proc_status("VmRSS")
    gradient()
    peak = proc_status("VmHWM")
    forward()  # warm-up
    forward_times = timed(forward)
    grad_times = timed(gradient)
    print(json.dumps({
        "side": "torchdiffeq",
        "workload": args.workload,
        "method": args.method,
        "dtype": "float32",
        "steps": n,
        "reps": reps,
        "forward_s": statistics.median(forward_times),
        "gradient_s": statistics.median(grad_times),
        "forward_times": forward_times,
        "gradient_times": grad_times,
        "rss_before_bytes": rss_before,
        "peak_rss_increase_bytes": peak - rss_before,
        "loss": loss,
        "grad_x_norm": dx.norm().item(),
        "grad_params_norm": torch.sqrt(sum(q.grad.square().sum() for q in params)).item(),
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "torch": torch.__version__,
        "torchdiffeq": torchdiffeq.__version__,
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
