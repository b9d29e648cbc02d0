"""What the side-by-side benchmark scripts share: reading pnode's JSON line of a problem (its
inputs and gradient, so every contestant starts from the same numbers) and the relative
difference of two gradients. Plain Python and numpy: no jax, no torch."""

import json
import sys

import numpy as np


def rel_diff(a, b):
    """max |a − b| / max |b|: relative to the second argument."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def read_pnode(path, problem):
    """The `"side": "pnode"` JSON line of `problem` in the file `path` (exit if none)."""
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if r.get("side") == "pnode" and r["problem"] == problem:
                    return r
    sys.exit(f"error: no pnode line for problem {problem!r} in {path}")
