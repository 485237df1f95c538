"""Ensemble throughput: E models trained at once versus a Python loop over them, and against the
machine's fp32 matrix-multiply ceiling, measured in one run (medians; not a timed test).

Cases (from the foundation issue):
  A. 16 MLPs (16 -> 32 -> 32 -> 1, ReLU) on 256 samples, full-batch GD: overhead-bound; bar: >= 3x the loop.
  B. 32 MLPs (64 -> 128 -> 128 -> 10, ReLU, MSE on one-hot) on all 1797 digits, full-batch GD:
     compute-bound; bar: >= 75% of the ceiling.
Each contender runs whole GD steps (forward, backward, update) through the same data (lmech's
train() also evaluates the loss after the last update: one extra forward pass, counted against it):
  loop           a Python loop over E nn.Modules: backward() and an in-place update
  vmap(grad)     torch.func.vmap(torch.func.grad(loss)) over stacked parameters
  lmech (vmap)   lmech.train.train(ensemble=True): vmap forward, one reverse pass for all members
  lmech (fused)  lmech.train.train(ensemble=True, grad_fn=mlp_gradients(...)): hand-derived backward,
                 batched GEMMs on contiguous operands, reused buffers
"(its matrix products alone)" times only the GEMMs of the fused step: the bound this machine's BLAS
sets before any element-wise work. Run: .venv/bin/python bench/ensemble_speed.py [--threads N]
[--reps K] [--allocator]
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import statistics
import time
from collections.abc import Callable

import torch
from torch.func import grad_and_value, vmap

from lmech.data import digits, generator, mlp_teacher, one_hot
from lmech.nets import MLP, ensemble
from lmech.train import gd, mlp_gradients, mse, train


def median_seconds(fn, reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ceiling(reps: int, size: int = 2048) -> float:
    """fp32 GFLOP/s of a large square matmul (the machine's practical ceiling)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / median_seconds(lambda: a @ b, reps + 4) / 1e9


def contenders(nets: list[MLP], x: torch.Tensor, y: torch.Tensor, lr: float, steps: int) -> dict:
    depth = len(nets[0].layers) - 1
    fn, stacked = ensemble(nets)

    def loop() -> None:
        for net in nets:
            for _ in range(steps):
                net.zero_grad(set_to_none=True)
                mse(net(x), y).backward()
                with torch.no_grad():
                    for p in net.parameters():
                        p.sub_(lr * p.grad)

    step = vmap(grad_and_value(lambda p, xb, yb: mse(fn(p, xb), yb)), in_dims=(0, None, None))

    def vmap_grad() -> None:
        params = stacked
        for _ in range(steps):
            grads, _ = step(params, x, y)
            params = {k: v - lr * grads[k] for k, v in params.items()}

    fused = mlp_gradients(depth, "relu", "mse")
    return {
        "loop": loop,
        "vmap(grad)": vmap_grad,
        "lmech (vmap)": lambda: train(fn, stacked, x, y, loss=mse, optimizer=gd(lr), steps=steps, ensemble=True),
        "lmech (fused)": lambda: train(
            fn, stacked, x, y, loss=mse, optimizer=gd(lr), steps=steps, ensemble=True, grad_fn=fused
        ),
    }


def gemm_only(nets: list[MLP], x: torch.Tensor, steps: int) -> Callable[[], None]:
    """Just the matrix products of the fused step (same shapes and layouts, no element-wise work):
    what the step would cost if everything else were free, i.e. the best this machine's BLAS allows."""
    _fn, stacked = ensemble(nets)
    ws = [stacked[f"layers.{i}.weight"] for i in range(len(nets[0].layers))]
    wts = [w.transpose(1, 2).contiguous() for w in ws]
    ens, n = len(nets), x.shape[0]
    acts = [torch.randn(ens, n, w.shape[1]) for w in ws]
    xs = x.expand(ens, *x.shape)

    def run() -> None:
        for _ in range(steps):
            for i, wt in enumerate(wts):
                torch.bmm(xs if i == 0 else acts[i - 1], wt, out=acts[i])
            for i in range(len(ws) - 1, 0, -1):
                torch.bmm(acts[i].transpose(1, 2), acts[i - 1])
                torch.bmm(acts[i], ws[i])
            torch.bmm(acts[0].transpose(1, 2), xs)

    return run


def keep_freed_memory() -> None:
    """Ask glibc to keep freed memory (mmap threshold 1 GiB, no trimming) instead of returning
    30 MB blocks to the OS and faulting them back in on the next step (Linux/glibc only)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 1 << 31)  # M_TRIM_THRESHOLD


def gd_flops(n: int, dims: list[int], members: int) -> float:
    """FLOPs of one full-batch GD step: forward 2n sum(in*out), weight gradients the same, input
    gradients for every layer but the first."""
    layers = list(itertools.pairwise(dims))
    forward = sum(2 * n * a * b for a, b in layers)
    return members * (2 * forward + sum(2 * n * a * b for a, b in layers[1:]))


def run_case(name: str, nets: list[MLP], x: torch.Tensor, y: torch.Tensor, steps: int, reps: int, peak: float):
    dims = [nets[0].layers[0].in_features] + [layer.out_features for layer in nets[0].layers]
    flops = gd_flops(x.shape[0], dims, len(nets)) * steps
    print(f"\n{name}: {len(nets)} MLPs {'-'.join(map(str, dims))}, n = {x.shape[0]}, {steps} GD steps per timing")
    print(f"  {'contender':28s} {'ms/step':>9s} {'GFLOP/s':>9s} {'of ceiling':>11s} {'vs loop':>8s}")
    results = {}

    def report(label: str, fn: Callable[[], None]) -> None:
        seconds = median_seconds(fn, reps) / steps
        results[label] = seconds
        rate = flops / steps / seconds / 1e9
        print(f"  {label:28s} {seconds * 1e3:9.2f} {rate:9.1f} {rate / peak:10.1%} {results['loop'] / seconds:7.2f}x")

    for label, fn in contenders(nets, x, y, 0.05, steps).items():
        report(label, fn)
    report("(its matrix products alone)", gemm_only(nets, x, steps))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: all cores)")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--allocator", action="store_true", help="re-run case B with glibc keeping freed memory")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = ceiling(args.reps)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32 matmul ceiling {peak:.1f} GFLOP/s")

    small = mlp_teacher(16, 256, gen=generator(0))
    nets = [MLP(16, 32, 2, 1, gen=generator(i)) for i in range(16)]
    a = run_case("A (overhead-bound)", nets, small.x, small.y, 20, args.reps, peak)

    data = digits()
    x = torch.cat([data.x, data.x_test])
    y = one_hot(torch.cat([data.y, data.y_test]), 10)
    nets = [MLP(64, 128, 2, 10, gen=generator(i)) for i in range(32)]
    b = run_case("B (compute-bound)", nets, x, y, 8, args.reps, peak)

    flops = gd_flops(x.shape[0], [64, 128, 128, 10], 32)
    print(
        f"\nbars: A: lmech (vmap) {a['loop'] / a['lmech (vmap)']:.2f}x and lmech (fused) "
        f"{a['loop'] / a['lmech (fused)']:.2f}x the loop (bar >= 3x); B: lmech (fused) "
        f"{flops / b['lmech (fused)'] / 1e9 / peak:.1%} of the ceiling (bar >= 75%), "
        f"{b['(its matrix products alone)'] / b['lmech (fused)']:.0%} of its matrix products' own speed"
    )
    if args.allocator:
        keep_freed_memory()
        print("\nafter mallopt (glibc keeps freed memory):")
        nets = [MLP(64, 128, 2, 10, gen=generator(i)) for i in range(32)]
        run_case("B (compute-bound)", nets, x, y, 8, args.reps, peak)


if __name__ == "__main__":
    main()
