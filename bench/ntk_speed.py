"""Empirical NTK speed and peak memory: lmech.observables.module_ntk against neural-tangents, in one run.

Case: a 3-hidden-layer ReLU MLP 64 -> 512 -> 512 -> 512 -> 1 (W_std = sqrt 2, b_std = 0.1, NTK parameterization,
float32; 559,105 parameters), K(x, x) with x an n x 64 standard Gaussian (seed 0), n in --sizes (256 and 1024).
The lmech model is lmech.nets.NTKMLP(64, 512, 3, 1, weight_std=2**0.5, bias_std=0.1,
gen=torch.Generator().manual_seed(0), dtype=torch.float32); its initial weights are written to a .npz and loaded
into neural-tangents' stax.serial(Dense(512), Relu(), ..., Dense(1)) (NTKLinear's weight (fan_out, fan_in) becomes
stax's W (fan_in, fan_out), bias (fan_out,) becomes b (1, fan_out); both are N(0, 1) with the scales in the forward
pass), so the two kernels are the same function and are compared value by value.
Contenders, each the first call (warm-up: tracing + XLA compilation for neural-tangents) and the median of --reps
timed calls after --warmup untimed ones (the first included):
  lmech auto / structured / jacobian / ntvp   module_ntk(model, x, method=...) (defaults: outputs="trace", chunk
                                              None = 256 MiB blocks); "auto" picks "structured" here (dense
                                              layers hold all the parameters)
  nt jacobian / ntvp / structured             jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0,
                                              implementation=JACOBIAN_CONTRACTION / NTK_VECTOR_PRODUCTS /
                                              STRUCTURED_DERIVATIVES))(x, None, params), float32
Every contender runs in its own fresh subprocess (this file re-run with --worker; lmech's under this python,
neural-tangents' under the peer venv's python), one after another, never concurrently. Peak memory is that
process's resource.getrusage(RUSAGE_SELF).ru_maxrss at the end ("peak MiB") and the same minus its value right
after the imports and the input's creation ("+MiB": what the NTK itself needed, model weights included).
"t/nt" and "+/nt" divide by neural-tangents' fastest implementation at the same n (its median seconds and its
+MiB). "err" is max |K - K_ref| / max |K_ref| over the whole matrix, K_ref lmech's structured NTK in float64 of
the same (float32) weights, computed in this process after the workers; at the smallest n that reference is also
checked against lmech's float64 Jacobian contraction, so it does not rest on the structured code alone.
A scale case (--scale-n 4096, --scale-width 1024, 3 hidden layers; 2,166,785 parameters) runs the contenders
whose estimated cost fits (estimate(): about 70 GFLOP/s fp32 on this machine class, see
/work/shared/peers/NOTES.md; skipped above --max-seconds per call or --max-gb): the n x n x P Jacobian contraction
and NTK-vector products are skipped there and say so in the table.

Threads are left at each library's default and printed: torch's intra-op pool (torch.get_num_threads()) and
XLA's CPU pool (XLA_FLAGS unset: one Eigen thread per core). The 1-minute load average is read before each
contender and printed in its row (other processes may share the 2 cores).

    .venv/bin/python bench/ntk_speed.py [--peers /tmp/peers] [--reps 5] [--sizes 256,1024] [--quick|--scale-only]

--quick runs n = 256 only (no scale case). Without <peers>/bin/python or neural_tangents there, the
neural-tangents rows are skipped with a message. This module imports only the standard library and numpy at
the top: torch/lmech and jax/neural-tangents are imported inside the functions for the venv that has them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIM_IN = 64
WIDTH = 512
DEPTH = 3
WEIGHT_STD = math.sqrt(2.0)
BIAS_STD = 0.1
FLOPS_PER_SECOND = 70e9  # fp32 matrix-multiply ceiling of this 2-core machine class (NOTES.md: about 73)
LMECH_METHODS = ("auto", "structured", "jacobian", "ntvp")
NT_METHODS = ("jacobian", "ntvp", "structured")
NT_IMPLEMENTATIONS = {
    "jacobian": "JACOBIAN_CONTRACTION",
    "ntvp": "NTK_VECTOR_PRODUCTS",
    "structured": "STRUCTURED_DERIVATIVES",
}


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


def memory_mib() -> dict[str, float]:
    """This process's resident set now ("rss") and its high-water mark ("hwm"), MiB, from /proc/self/status
    (Linux); without /proc, ru_maxrss for both."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return {"rss": int(fields["VmRSS"].split()[0]) / 1024, "hwm": int(fields["VmHWM"].split()[0]) / 1024}
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
        return {"rss": peak, "hwm": peak}


def start_measuring() -> dict:
    """Call after the imports and the input's creation: note the resident set, then reset the high-water mark to
    it (writing 5 to /proc/self/clear_refs), so that the peak read at the end is the NTK's own."""
    before = memory_mib()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before["reset"] = True
    except OSError:
        before["reset"] = False
    return before


def finish_measuring(before: dict) -> dict:
    """{"baseline": resident MiB before the work, "peak": the process's peak MiB, "grown": peak during the work
    minus baseline, "ru_maxrss": getrusage's figure (includes the parent's resident set at the fork)}."""
    after = memory_mib()
    peak = max(before["hwm"], after["hwm"])
    grown = after["hwm"] - before["rss"] if before["reset"] else after["hwm"] - before["hwm"]
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"baseline": before["rss"], "peak": peak, "grown": grown, "ru_maxrss": ru_maxrss}


def layer_sizes(width: int) -> list[tuple[int, int]]:
    dims = [DIM_IN] + [width] * DEPTH + [1]
    return list(itertools.pairwise(dims))


def parameter_count(width: int) -> int:
    return sum(fan_in * fan_out + fan_out for fan_in, fan_out in layer_sizes(width))


def estimate(library: str, method: str, n: int, width: int) -> tuple[float, float]:
    """(seconds per call, bytes) lower-bound estimates for K(x, x) with x of n rows, float32.

    jacobian: the contraction J J^T is 2 n^2 P flops; neural-tangents holds J (n P floats), lmech 256 MiB blocks.
    ntvp: one jvp per column, about 2 forward passes' flops (2 P per example) for each of n^2 pairs: 4 n^2 P.
    structured: forward/backward (about 6 n P) plus per layer 2 n^2 (fan_in + fan_out) for the two Gram matrices,
    a few n x n matrices in memory."""
    p = parameter_count(width)
    if method == "jacobian":
        flops = 2.0 * n * n * p
        memory = n * p * 4.0 if library == "nt" else 2 * 256 * 2**20 + 4.0 * n * n
    elif method == "ntvp":
        flops = 4.0 * n * n * p
        memory = 2 * 256 * 2**20 + 4.0 * n * n
    else:
        flops = 6.0 * n * p + sum(2.0 * n * n * (a + b) for a, b in layer_sizes(width))
        # lmech keeps each dense layer's inputs and back-propagated signals (n x (fan_in + fan_out)) and a few n x n
        # Gram matrices; neural-tangents' structured derivatives hold per-example factors of the same order
        memory = 8 * 4.0 * n * n + 4.0 * n * sum(a + b for a, b in layer_sizes(width))
    return flops / FLOPS_PER_SECOND, memory


# --------------------------------------------------------------------------------------------
# workers: one contender in a fresh process


def worker(args: argparse.Namespace) -> None:
    (nt_worker if args.worker == "nt" else lmech_worker)(args)


def lmech_worker(args: argparse.Namespace) -> None:
    import torch

    import lmech
    from lmech.nets import NTKMLP

    x = torch.as_tensor(np.load(args.input))
    before = start_measuring()
    model = NTKMLP(
        DIM_IN,
        args.width,
        DEPTH,
        1,
        weight_std=WEIGHT_STD,
        bias_std=BIAS_STD,
        gen=torch.Generator().manual_seed(0),
        dtype=torch.float32,
    )
    with np.load(args.weights) as weights:  # the same constructor must give the weights neural-tangents gets
        for name, value in model.named_parameters():
            if not np.array_equal(value.detach().numpy(), weights[name]):
                raise SystemExit(f"lmech worker: {name} differs from the weights in {args.weights}")

    def call():
        return lmech.observables.module_ntk(model, x, method=args.method)

    first, median, out = median_seconds(call, args.reps, args.warmup)
    np.save(args.output, out.numpy())
    info = {
        "first": first,
        "median": median,
        **finish_measuring(before),
        "dtype": str(out.dtype),
        "threads": f"torch {torch.__version__}, intra-op threads {torch.get_num_threads()}, "
        f"inter-op {torch.get_num_interop_threads()} (defaults)",
    }
    Path(args.output).with_suffix(".json").write_text(json.dumps(info))


def nt_worker(args: argparse.Namespace) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import jax
    import jax._src.source_info_util

    # neural-tangents 0.6.5 looks these names up in jax.interpreters.ad, which jax 0.4.30 removed.
    jax.interpreters.ad.source_info_util = jax._src.source_info_util
    jax.interpreters.ad.config = jax.config
    import jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax

    x = jnp.asarray(np.load(args.input))
    before = start_measuring()
    layers = []
    for _ in range(DEPTH):
        layers += [stax.Dense(args.width, W_std=WEIGHT_STD, b_std=BIAS_STD, parameterization="ntk"), stax.Relu()]
    layers.append(stax.Dense(1, W_std=WEIGHT_STD, b_std=BIAS_STD, parameterization="ntk"))
    _, apply_fn, _ = stax.serial(*layers)
    params = []
    with np.load(args.weights) as weights:
        for k in range(DEPTH + 1):
            w, b = weights[f"layers.{k}.weight"], weights[f"layers.{k}.bias"]
            params.append((jnp.asarray(w.T), jnp.asarray(b[None, :])))
            if k < DEPTH:
                params.append(())
    implementation = getattr(nt.NtkImplementation, NT_IMPLEMENTATIONS[args.method])
    ntk_fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0, implementation=implementation))

    def call():
        return jax.block_until_ready(ntk_fn(x, None, params))

    first, median, out = median_seconds(call, args.reps, args.warmup)
    np.save(args.output, np.asarray(out))
    info = {
        "first": first,
        "median": median,
        **finish_measuring(before),
        "dtype": str(out.dtype),
        "threads": f"neural-tangents {nt.__version__}, jax {jax.__version__}; "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '(unset)')}, devices={jax.devices()}",
    }
    Path(args.output).with_suffix(".json").write_text(json.dumps(info))


# --------------------------------------------------------------------------------------------
# driver (lmech's venv)


def peers_python(peers: Path) -> Path | None:
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
    return python


def run_worker(python: Path, library: str, method: str, case: dict, args: argparse.Namespace, tmp: Path) -> dict:
    """One contender in a fresh process: its timings and peak memory, its kernel under "kernel", or "note"."""
    load = os.getloadavg()[0]
    seconds, memory = estimate(library, method, case["n"], case["width"])
    if seconds > args.max_seconds or memory > args.max_gb * 1e9:
        return {"load": load, "note": f"skipped: est. {seconds:.0f} s/call, {memory / 1e9:.1f} GB"}
    output = tmp / f"{library}_{method}_{case['n']}_{case['width']}.npy"
    command = [str(python), __file__, "--worker", library, "--method", method, "--width", str(case["width"])]
    command += ["--input", str(case["input"]), "--weights", str(case["weights"]), "--output", str(output)]
    command += ["--reps", str(args.reps), "--warmup", str(args.warmup)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"load": load, "note": f"timed out after {args.timeout} s"}
    if done.returncode != 0:
        print(f"{library} {method} n={case['n']} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        return {"load": load, "note": f"failed (exit {done.returncode})"}
    info = json.loads(output.with_suffix(".json").read_text())
    info["kernel"] = np.load(output)
    info["load"] = load
    return info


def relative_error(a: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - reference).max() / np.abs(reference).max())


def make_case(n: int, width: int, tmp: Path) -> dict:
    """Write x (n x 64, seed 0, float32) and the seed-0 NTKMLP's weights; return the float64 reference helpers."""
    import torch

    from lmech.nets import NTKMLP

    x = np.random.default_rng(0).standard_normal((n, DIM_IN)).astype(np.float32)
    model = NTKMLP(
        DIM_IN,
        width,
        DEPTH,
        1,
        weight_std=WEIGHT_STD,
        bias_std=BIAS_STD,
        gen=torch.Generator().manual_seed(0),
        dtype=torch.float32,
    )
    weights = tmp / f"weights_{width}.npz"
    np.savez(weights, **{name: p.detach().numpy() for name, p in model.named_parameters()})
    np.save(tmp / f"x_{n}.npy", x)
    return {"n": n, "width": width, "input": tmp / f"x_{n}.npy", "weights": weights, "x": x, "model": model}


def reference_kernel(case: dict, method: str = "structured") -> np.ndarray:
    """lmech's NTK in float64 of the same float32 weights (model.double() converts them exactly)."""
    import copy

    import torch

    import lmech

    model = copy.deepcopy(case["model"]).double()
    return lmech.observables.module_ntk(model, torch.as_tensor(case["x"], dtype=torch.float64), method=method).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=Path, default=Path("/tmp/peers"), help="peer venv with neural-tangents")
    parser.add_argument("--sizes", default="256,1024", help="comma-separated n (kernel is n x n), width 512")
    parser.add_argument("--quick", action="store_true", help="n = 256 only, no scale case")
    parser.add_argument("--scale-only", action="store_true", help="only the scale case")
    parser.add_argument("--reps", type=int, default=5, help="timed calls per contender (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first (the first one is reported)")
    parser.add_argument("--scale-n", type=int, default=4096, help="n of the scale case (0: none)")
    parser.add_argument("--scale-width", type=int, default=1024, help="hidden width of the scale case")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="skip contenders estimated slower per call")
    parser.add_argument("--max-gb", type=float, default=20.0, help="skip contenders estimated to need more memory")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds before a contender's process is killed")
    parser.add_argument("--worker", choices=("lmech", "nt"), help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, default=WIDTH, help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    sizes = [256] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    cases = [] if args.scale_only else [(n, WIDTH) for n in sizes]
    if args.scale_n and not args.quick:
        cases.append((args.scale_n, args.scale_width))
    print(
        f"empirical NTK K(x, x), x: n x {DIM_IN} Gaussian (seed 0); MLP {DIM_IN} -> width x {DEPTH} ReLU -> 1, "
        f"W_std = sqrt 2, b_std = {BIAS_STD}, NTK parameterization, float32, same weights in both libraries; "
        f"first call, then median of {args.reps} after {args.warmup} warm-up; each contender in a fresh process"
    )
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; load average at start: {os.getloadavg()[0]:.2f}")
    nt_python = peers_python(args.peers)
    header = (
        f"{'contender':18s} {'n':>5s} {'width':>5s} {'load':>5s} {'first s':>8s} {'median s':>9s} {'t/nt':>6s} "
        f"{'peak MiB':>9s} {'+MiB':>7s} {'+/nt':>6s} {'err':>8s} {'ru_maxrss':>9s}"
    )
    threads_shown = False
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for n, width in cases:
            case = make_case(n, width, tmp)
            results: dict[tuple[str, str], dict] = {}
            for method in LMECH_METHODS:
                results["lmech", method] = run_worker(Path(sys.executable), "lmech", method, case, args, tmp)
            if nt_python is not None:
                for method in NT_METHODS:
                    results["nt", method] = run_worker(nt_python, "nt", method, case, args, tmp)
            if not threads_shown:
                for who in ("lmech", "nt"):
                    shown = [r["threads"] for (w, _), r in results.items() if w == who and "threads" in r]
                    if shown:
                        print(f"{who}: {shown[0]}")
                        threads_shown = True
            print_case(case, results, args, header, check=n == min(sizes) and not args.scale_only)
    sys.stdout.flush()


def print_case(case: dict, results: dict, args: argparse.Namespace, header: str, check: bool) -> None:
    n, width = case["n"], case["width"]
    reference = reference_kernel(case)
    print(f"\nn = {n}, width {width} ({parameter_count(width):,} parameters)")
    print(header)
    nt_ran = {m: r for (who, m), r in results.items() if who == "nt" and "median" in r}
    fastest = min(nt_ran, key=lambda m: nt_ran[m]["median"]) if nt_ran else None
    best = nt_ran.get(fastest)
    for (who, method), r in results.items():
        name = f"{who} {method}"
        if "median" not in r:
            print(f"{name:18s} {n:5d} {width:5d} {r['load']:5.2f}  {r['note']}")
            continue
        t_ratio = m_ratio = f"{'':6s}"
        if best is not None:
            t_ratio = f"{r['median'] / best['median']:6.2f}"
            m_ratio = f"{r['grown'] / best['grown']:6.2f}" if best["grown"] > 0 else f"{'n/a':>6s}"
        error = relative_error(r["kernel"], reference)
        print(
            f"{name:18s} {n:5d} {width:5d} {r['load']:5.2f} {r['first']:8.3f} {r['median']:9.3f} {t_ratio} "
            f"{r['peak']:9.0f} {r['grown']:7.0f} {m_ratio} {error:8.1e} {r['ru_maxrss']:9.0f}"
        )
    if best is not None:
        print(f"  nt fastest at n = {n}: {fastest}, {best['median']:.3f} s, +{best['grown']:.0f} MiB")
        mine = results.get(("lmech", "structured"), {})
        for method, r in nt_ran.items():
            if "kernel" in mine:
                diff = relative_error(mine["kernel"], r["kernel"].astype(np.float64))
                print(f"  lmech structured vs nt {method}: max rel diff {diff:.1e}")
    if check:
        diff = relative_error(reference_kernel(case, "jacobian"), reference)
        print(f"  float64 reference (lmech structured) vs lmech jacobian in float64: max rel diff {diff:.1e}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
