"""Infinite-width kernel speed: lmech.theory.kernels against neural-tangents, in one run on one machine.

Case: x = 2000 x 64 standard Gaussian (seed 0), K(x, x) (lmech's x2=None form; neural-tangents'
kernel_fn(x, None, ("nngp", "ntk"))), a depth-3 ReLU network (3 hidden Dense+ReLU layers and a linear
readout), W_std = sqrt(2), b_std = 0.1, NTK parameterization; NNGP and NTK together.
Contenders, each the median of --reps timed calls after --warmup untimed ones:
  lmech float64 / float32   lmech.theory.kernels.kernels(x, depth=3, activation="relu", ..., dtype=...)
  nt float64 / float32      jax.jit(kernel_fn, static_argnames="get") from neural-tangents' stax.serial,
                            each dtype in its own subprocess (jax_enable_x64 is global: on for float64,
                            off for float32); the first call (tracing + XLA compile) is reported apart.
Threads are left at each library's default and printed: torch's intra-op pool (torch.get_num_threads())
and XLA's CPU pool (XLA_FLAGS unset: one Eigen thread per core). The contenders run one after another,
never concurrently. The error columns compare every result with neural-tangents' float64 matrices:
max |a - b| / max |b| over the whole matrix.

The lmech part runs in lmech's venv; the neural-tangents part runs this same file with the peer venv's
python (neural-tangents 0.6.5 on jax 0.4.30, built by /work/shared/peers/setup_venv.sh) as a subprocess:

    .venv/bin/python bench/kernel_speed.py [--peers /tmp/peers] [--n 2000] [--reps 5]

Without <peers>/bin/python or neural_tangents there, the neural-tangents rows are skipped with a message.
This module imports only the standard library and numpy at the top: torch/lmech and jax/neural-tangents
are imported inside the function for the venv that has them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEPTH = 3
WEIGHT_STD = math.sqrt(2.0)
BIAS_STD = 0.1


def median_seconds(fn, reps: int, warmup: int) -> tuple[float, float, object]:
    """(first call's seconds, median seconds of `reps` calls after `warmup` untimed ones, last result)."""
    start = time.perf_counter()
    out = fn()
    first = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        out = fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times), out


# --------------------------------------------------------------------------------------------
# neural-tangents side (runs under the peer venv's python)


def nt_worker(args: argparse.Namespace) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import jax
    import jax._src.source_info_util

    # neural-tangents 0.6.5 looks these names up in jax.interpreters.ad, which jax 0.4.30 removed.
    jax.interpreters.ad.source_info_util = jax._src.source_info_util
    jax.interpreters.ad.config = jax.config
    jax.config.update("jax_enable_x64", args.dtype == "float64")
    import jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax

    x = jnp.asarray(np.load(args.input).astype(args.dtype))
    layer = [stax.Dense(512, W_std=WEIGHT_STD, b_std=BIAS_STD, parameterization="ntk"), stax.Relu()]
    _, _, kernel_fn = stax.serial(
        *(layer * DEPTH), stax.Dense(1, W_std=WEIGHT_STD, b_std=BIAS_STD, parameterization="ntk")
    )
    kernel_fn = jax.jit(kernel_fn, static_argnames="get")

    def call():
        return jax.block_until_ready(kernel_fn(x, None, ("nngp", "ntk")))

    first, median, out = median_seconds(call, args.reps, args.warmup)
    np.savez(args.output, nngp=np.asarray(out.nngp), ntk=np.asarray(out.ntk))
    info = {
        "first": first,
        "median": median,
        "dtype": str(out.nngp.dtype),
        "versions": f"neural-tangents {nt.__version__}, jax {jax.__version__}",
        "threads": f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '(unset)')}, devices={jax.devices()}",
    }
    Path(args.output).with_suffix(".json").write_text(json.dumps(info))


def run_nt(peers: Path, x: np.ndarray, dtype: str, args: argparse.Namespace, tmp: Path) -> dict | None:
    python = peers / "bin" / "python"
    if not python.exists():
        print(f"skipping neural-tangents: {python} not found (build it with /work/shared/peers/setup_venv.sh)")
        return None
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util, sys; sys.exit(importlib.util.find_spec('neural_tangents') is None)",
        ],
        capture_output=True,
    )
    if probe.returncode != 0:
        print(f"skipping neural-tangents: {python} cannot find the neural_tangents package")
        return None
    np.save(tmp / "x.npy", x)
    output = tmp / f"nt_{dtype}.npz"
    command = [str(python), __file__, "--nt-worker", "--dtype", dtype, "--input", str(tmp / "x.npy")]
    command += ["--output", str(output), "--reps", str(args.reps), "--warmup", str(args.warmup)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"neural-tangents {dtype} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        return None
    info = json.loads(output.with_suffix(".json").read_text())
    with np.load(output) as arrays:
        info["nngp"], info["ntk"] = arrays["nngp"], arrays["ntk"]
    return info


# --------------------------------------------------------------------------------------------
# lmech side (runs under lmech's venv)


def run_lmech(x: np.ndarray, dtype_name: str, args: argparse.Namespace) -> dict:
    import torch

    from lmech.theory.kernels import kernels

    dtype = getattr(torch, dtype_name)
    xt = torch.as_tensor(x)

    def call():
        return kernels(xt, depth=DEPTH, activation="relu", weight_std=WEIGHT_STD, bias_std=BIAS_STD, dtype=dtype)

    first, median, out = median_seconds(call, args.reps, args.warmup)
    return {"first": first, "median": median, "nngp": out.nngp.double().numpy(), "ntk": out.ntk.double().numpy()}


def relative_error(a: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - reference).max() / np.abs(reference).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=Path, default=Path("/tmp/peers"), help="peer venv with neural-tangents")
    parser.add_argument("--n", type=int, default=2000, help="number of inputs (kernel is n x n)")
    parser.add_argument("--d", type=int, default=64, help="input dimension")
    parser.add_argument("--reps", type=int, default=5, help="timed calls per contender (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (the first one is reported)")
    parser.add_argument("--nt-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float64", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.nt_worker:
        nt_worker(args)
        return

    import torch

    x = np.random.default_rng(0).standard_normal((args.n, args.d))
    print(
        f"K(x, x), x: {args.n} x {args.d} Gaussian; depth {DEPTH} ReLU, W_std = sqrt 2, b_std = {BIAS_STD}, "
        f"NTK parameterization; NNGP + NTK; median of {args.reps} after {args.warmup} warm-up"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; torch {torch.__version__}, "
        f"intra-op threads {torch.get_num_threads()}, inter-op {torch.get_num_interop_threads()} (defaults); "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    results: dict[tuple[str, str], dict] = {}
    for dtype in ("float64", "float32"):
        results["lmech", dtype] = run_lmech(x, dtype, args)
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float64", "float32"):
            info = run_nt(args.peers, x, dtype, args, Path(tmp))
            if info is None:
                break
            results["nt", dtype] = info
    if ("nt", "float64") in results:
        nt64 = results["nt", "float64"]
        print(f"neural-tangents: {nt64['versions']}; {nt64['threads']}")

    header = f"{'contender':10s} {'dtype':8s} {'first call s':>12s} {'median s':>9s} {'lmech/nt':>9s}"
    print(header + f" {'NNGP err vs nt64':>17s} {'NTK err vs nt64':>16s}")
    reference = results.get(("nt", "float64"))
    for (who, dtype), r in results.items():
        nt = results.get(("nt", dtype))
        ratio = f"{r['median'] / nt['median']:9.2f}" if who == "lmech" and nt else f"{'':9s}"
        errors = "  (no neural-tangents reference)"
        if reference is not None:
            nngp_error, ntk_error = (relative_error(r[k], reference[k]) for k in ("nngp", "ntk"))
            errors = f" {nngp_error:17.2e} {ntk_error:16.2e}"
        print(f"{who:10s} {dtype:8s} {r['first']:12.3f} {r['median']:9.3f} {ratio}{errors}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
