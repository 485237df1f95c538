"""Sharpness (top Hessian eigenvalue) speed and accuracy: lmech against PyHessian, side by side in one run.

Case (the issue's): MSE, 0.5 sum ||f - y||^2 / n, on the first 1000 digits (lmech.data.digits, standardised; one-hot
targets), tanh MLP 64-256-256-10 (lmech.nets.MLP, seed 0; 85,002 parameters), float32. The weights and data are written
to a .npz and loaded by each contender in a fresh process (lmech under this python, PyHessian under the peer venv's:
../shared/peers/setup_venv.sh), one after another.
Reference: lmech's Lanczos to a residual tolerance of 1e-10 on the same float32 weights (the "converged" value);
"error" is |estimate / reference - 1|.
Rows:
  product          median seconds of one Hessian-vector product (lmech reverse-over-reverse on a retained graph,
                   lmech forward-over-reverse, PyHessian's double backward on its retained graph)
  sharpness        from scratch (graph built, random start): median seconds of --reps calls, products used, error;
                   lmech at Lanczos tolerances 1e-2 and 1e-3 (4 and 8 Lanczos vectors), PyHessian's power iteration
                   at its default tol 1e-3 and at 1e-6
BLAS: lmech pins scipy's BLAS to one thread inside top_eigenvalues; torch keeps its default threads in both.

    .venv/bin/python bench/sharpness_speed.py [--peers /tmp/peers] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, reps: int):
    fn()  # warm-up
    times, out = [], None
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def make_case(path: Path) -> float:
    import torch

    from lmech.data import digits
    from lmech.nets import MLP, functional
    from lmech.observables import HessianOperator, top_eigenvalues

    d = digits()
    x, y = d.x[:1000], torch.nn.functional.one_hot(d.y[:1000], 10).float()
    net = MLP(64, 256, 2, 10, activation_name="tanh", gen=torch.Generator().manual_seed(0))
    fn, params = functional(net)
    np.savez(path, x=x.numpy(), y=y.numpy(), **{k: v.numpy() for k, v in params.items()})

    def loss(p):
        diff = fn(p, x) - y
        return 0.5 * (diff * diff).sum() / len(x)

    return float(top_eigenvalues(HessianOperator(loss, params), tol=1e-10).values[0])


def lmech_worker(case: Path, reps: int) -> dict:
    import torch

    from lmech.nets import MLP, functional
    from lmech.observables import HessianOperator, top_eigenvalues

    data = np.load(case)
    x, y = torch.as_tensor(data["x"]), torch.as_tensor(data["y"])
    fn, params = functional(MLP(64, 256, 2, 10, activation_name="tanh", gen=torch.Generator().manual_seed(0)))
    params = {k: torch.as_tensor(data[k]) for k in params}

    def loss(p):
        diff = fn(p, x) - y
        return 0.5 * (diff * diff).sum() / len(x)

    out = {}
    for method in ("reverse", "forward"):
        op = HessianOperator(loss, params, method)
        v = torch.randn(op.dim, generator=torch.Generator().manual_seed(1))
        out[f"product {method}"] = {"seconds": timed(lambda op=op, v=v: op(v), 20)[0]}
    for tol, ncv in ((1e-2, 4), (1e-3, 8)):

        def run(tol=tol, ncv=ncv):
            return top_eigenvalues(HessianOperator(loss, params), tol=tol, ncv=ncv)

        seconds, eig = timed(run, reps)
        out[f"sharpness tol {tol:g}"] = {"seconds": seconds, "products": eig.products + 1, "value": eig.values[0]}
    out["threads"] = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    return out


def pyhessian_worker(case: Path, reps: int) -> dict:
    import pyhessian  # noqa: F401  (its __init__ rebinds pyhessian.hessian to the class; take the module)
    import torch
    from torch import nn

    ph = sys.modules["pyhessian.hessian"]
    data = np.load(case)
    x, y = torch.as_tensor(data["x"]), torch.as_tensor(data["y"])
    model = nn.Sequential(nn.Linear(64, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 10))
    with torch.no_grad():
        for i, layer in enumerate((0, 2, 4)):
            model[layer].weight.copy_(torch.as_tensor(data[f"layers.{i}.weight"]))
            model[layer].bias.copy_(torch.as_tensor(data[f"layers.{i}.bias"]))

    def criterion(out, target):
        return 0.5 * ((out - target) ** 2).sum() / len(out)

    count = {"n": 0}
    original = ph.hessian_vector_product

    def counted(*args, **kwargs):
        count["n"] += 1
        return original(*args, **kwargs)

    ph.hessian_vector_product = counted
    out = {}
    h = ph.hessian(model, criterion, data=(x, y), cuda=False)
    v = [torch.randn_like(p) for p in h.params]
    out["product pyhessian"] = {"seconds": timed(lambda: original(h.gradsH, h.params, v), 20)[0]}
    for tol in (1e-3, 1e-6):

        def run(tol=tol):
            count["n"] = 0
            hh = ph.hessian(model, criterion, data=(x, y), cuda=False)
            values, _ = hh.eigenvalues(maxIter=1000, tol=tol)
            return values[0], count["n"]

        seconds, (value, products) = timed(run, reps)
        out[f"sharpness pyhessian tol {tol:g}"] = {"seconds": seconds, "products": products, "value": value}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=Path, default=Path("/tmp/peers"))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--worker", choices=("lmech", "pyhessian"), help=argparse.SUPPRESS)
    parser.add_argument("--case", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        fn = lmech_worker if args.worker == "lmech" else pyhessian_worker
        print(json.dumps(fn(args.case, args.reps)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        case = Path(tmp) / "case.npz"
        reference = make_case(case)
        print(
            f"MSE on 1000 digits, tanh MLP 64-256-256-10 (85,002 parameters), float32; reference sharpness "
            f"{reference:.6f}; load average {os.getloadavg()[0]:.2f}"
        )
        rows = {}
        workers = [("lmech", Path(sys.executable))]
        peer = args.peers / "bin" / "python"
        if peer.exists():
            workers.append(("pyhessian", peer))
        else:
            print(f"skipping PyHessian: {peer} not found (build it with ../shared/peers/setup_venv.sh)")
        for name, python in workers:
            env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
            done = subprocess.run(
                [str(python), __file__, "--worker", name, "--case", str(case), "--reps", str(args.reps)],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if done.returncode != 0:
                print(f"{name} failed:\n{done.stderr[-2000:]}")
                continue
            rows.update(json.loads(done.stdout.strip().splitlines()[-1]))
    print(rows.pop("threads", ""))
    base = rows.get("product pyhessian", {}).get("seconds")
    print(f"{'contender':32s} {'seconds':>9s} {'vs PyHessian':>12s} {'products':>9s} {'error':>9s}")
    for name, r in rows.items():
        ratio = f"{r['seconds'] / base:12.2f}" if base and name.startswith("product") else f"{'':12s}"
        products = f"{r['products']:9d}" if "products" in r else f"{'':9s}"
        error = f"{abs(r['value'] / reference - 1):9.1e}" if "value" in r else f"{'':9s}"
        print(f"{name:32s} {r['seconds']:9.4f} {ratio} {products} {error}")


if __name__ == "__main__":
    main()
