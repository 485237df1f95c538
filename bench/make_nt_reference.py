"""Write tests/data/nt_kernels.json: infinite-width NNGP and NTK matrices of fully-connected nets computed
by neural-tangents, an independent reference for lmech.theory.kernels.

Runs ONLY in the peer venv (neural-tangents 0.6.5 on jax 0.4.30, built by /work/shared/peers/setup_venv.sh,
default /tmp/peers); neural-tangents and jax are not, and must not become, dependencies of lmech. Rerun
from the repository root with:

    /tmp/peers/bin/python bench/make_nt_reference.py [--out tests/data/nt_kernels.json]

Network, for every case (neural_tangents.stax, float64 via jax_enable_x64):

    serial(*[Dense(width, W_std, b_std, parameterization=P), act] * depth, Dense(1, W_std, b_std, parameterization=P))

with kernel_fn(x1, x2, ("nngp", "ntk")) (stored as "x1_x2", shape 7x4) and kernel_fn(x1, None, ...) (stored as
"x1_x1", shape 7x7). Grid: depth in {1, 2, 3}; act in {Relu(), Erf() = erf(x), Gelu() (exact erf-GELU, its
closed-form kernel), Sigmoid_like() = 0.5 erf(x / 2.4020563531719796) + 0.5}; (W_std, b_std) in {(1, 0),
(sqrt 2, 0.1), (1.5, 0.5)}; P in {"ntk", "standard"} with width = 64 and s = (1, 1); plus a few
"standard" cases with b_std=None (no bias at all; with b_std=0.0 the standard-parameterization NTK still gains
+1 per Dense layer from the trainable zero-variance bias). The inputs are stored in the file: x1 is 7x5 and x2
is 4x5 standard Gaussian (seed 0), with x2[0] = x1[2], x2[1] = x1[5] and x2[2] = 2.5 * x1[0], so the angle-0
branches of the arc-cosine formulas are exercised off the diagonal.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax
import jax._src.source_info_util

# neural-tangents 0.6.5 looks these names up in jax.interpreters.ad, which jax 0.4.30 removed.
jax.interpreters.ad.source_info_util = jax._src.source_info_util
jax.interpreters.ad.config = jax.config
jax.config.update("jax_enable_x64", True)

import jaxlib  # noqa: E402
import neural_tangents as nt  # noqa: E402
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

WIDTH = 64
SEED = 0
NUMBER_LIST = re.compile(r"\[\s*([-+0-9.eE,\s]+?)\s*\]")  # innermost lists of numbers go on one line
SIGMOID_LIKE_B = 1 / 2.4020563531719796

ACTIVATIONS = {
    "relu": (stax.Relu, {}, "stax.Relu(): max(x, 0); arc-cosine kernel, exact"),
    "erf": (stax.Erf, {"a": 1.0, "b": 1.0, "c": 0.0}, "stax.Erf(a=1, b=1, c=0): a*erf(b*x)+c; arcsine kernel, exact"),
    "gelu": (
        stax.Gelu,
        {"approximate": False},
        "stax.Gelu(): x*Phi(x) (erf GELU); closed-form kernel of Tsuchida et al. arXiv:2002.08517, exact "
        "(approximate= only changes the finite-width apply_fn)",
    ),
    "sigmoid_like": (
        stax.Erf,
        {"a": 0.5, "b": SIGMOID_LIKE_B, "c": 0.5},
        "stax.Sigmoid_like() = Erf(a=0.5, b=1/2.4020563531719796, c=0.5): an erf fit to the logistic sigmoid, "
        "not the sigmoid itself",
    ),
}
STDS = [(1.0, 0.0), (math.sqrt(2.0), 0.1), (1.5, 0.5)]
NO_BIAS = [("relu", math.sqrt(2.0)), ("erf", math.sqrt(2.0))]


def inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    x1 = rng.standard_normal((7, 5))
    x2 = rng.standard_normal((4, 5))
    x2[0] = x1[2]
    x2[1] = x1[5]
    x2[2] = 2.5 * x1[0]
    return x1, x2


def kernel_fn(depth: int, activation: str, w_std: float, b_std: float | None, param: str):
    make, kwargs, _ = ACTIVATIONS[activation]
    hidden = [stax.Dense(WIDTH, W_std=w_std, b_std=b_std, parameterization=param), make(**kwargs)]
    _, _, fn = stax.serial(*(hidden * depth), stax.Dense(1, W_std=w_std, b_std=b_std, parameterization=param))
    return fn


def rows(a) -> list[list[float]]:
    return [[float(v) for v in row] for row in np.asarray(a, dtype=np.float64)]


def case(x1, x2, depth: int, activation: str, w_std: float, b_std: float | None, param: str) -> dict:
    fn = kernel_fn(depth, activation, w_std, b_std, param)
    k12 = fn(x1, x2, ("nngp", "ntk"))
    k11 = fn(x1, None, ("nngp", "ntk"))
    _, kwargs, _ = ACTIVATIONS[activation]
    return {
        "depth": depth,
        "activation": activation,
        "activation_kwargs": kwargs,
        "weight_std": w_std,
        "bias_std": b_std,
        "parameterization": param,
        "width": WIDTH,
        "s": [1, 1],
        "dense_input_widths": [x1.shape[1]] + [WIDTH] * depth,
        "x1_x2": {"nngp": rows(k12.nngp), "ntk": rows(k12.ntk)},
        "x1_x1": {"nngp": rows(k11.nngp), "ntk": rows(k11.ntk)},
    }


CONVENTIONS = {
    "input_kernel": "K0(x, x') = x . x' / d (d = input dimension, 5 here); requirements.py _cov, line 638",
    "dense_ntk": "nngp <- W_std^2 nngp + b_std^2; ntk <- nngp_new + W_std^2 ntk (ntk starts at 0); linear.py 909-912",
    "dense_standard": "ntk <- n_in * nngp_in + W_std^2 ntk (+1 if b_std is not None, even b_std = 0.0); then nngp <- "
    "W_std^2 nngp + b_std^2; n_in = layer input width / s[0] (d for the first Dense, `width` after); linear.py 913-919",
    "activation": "nngp <- E[phi(u) phi(u')], ntk <- ntk * E[phi'(u) phi'(u')], "
    "(u, u') ~ N(0, [[K11, K12], [K12, K22]])",
    "readout": "final Dense(1, W_std, b_std) with the same stds; its nngp/ntk are what is stored",
    "layout": "matrix[i][j] pairs row i of x1 with row j of x2 (or of x1 for x1_x1)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parents[1] / "tests" / "data" / "nt_kernels.json")
    )
    args = parser.parse_args()

    x1, x2 = inputs()
    cases = []
    for param in ("ntk", "standard"):
        for activation in ACTIVATIONS:
            for w_std, b_std in STDS:
                for depth in (1, 2, 3):
                    cases.append(case(x1, x2, depth, activation, w_std, b_std, param))
    for activation, w_std in NO_BIAS:
        for depth in (1, 2, 3):
            cases.append(case(x1, x2, depth, activation, w_std, None, "standard"))

    doc = {
        "description": "Infinite-width NNGP and NTK of stax.serial(*[Dense(width, W_std, b_std, parameterization=P), "
        "act] * depth, Dense(1, W_std, b_std, parameterization=P)) from neural-tangents, float64.",
        "generator": "bench/make_nt_reference.py (run with the peer venv: /tmp/peers/bin/python)",
        "versions": {
            "neural_tangents": nt.__version__,
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "dtype": "float64",
        "conventions": CONVENTIONS,
        "activations": {name: spec[2] for name, spec in ACTIVATIONS.items()},
        "inputs": {
            "seed": SEED,
            "generator": "numpy.random.default_rng(seed): x1 = standard_normal((7, 5)), x2 = standard_normal((4, 5))",
            "ties": "x2[0] = x1[2], x2[1] = x1[5], x2[2] = 2.5 * x1[0]",
            "x1": rows(x1),
            "x2": rows(x2),
        },
        "cases": cases,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = NUMBER_LIST.sub(lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", json.dumps(doc, indent=1))
    out.write_text(text + "\n")
    print(f"wrote {len(cases)} cases to {out} ({len(text) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
