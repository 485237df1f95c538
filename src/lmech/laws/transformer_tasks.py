"""Task: train the small decoder-only transformer (lmech.nets.Transformer) on the standard-library character corpus
(lmech.data.stdlib_corpus) under a parametrization table, and report its cross-entropy in nats per character.

Training (one run): Adam (Kingma & Ba 2015; b1 0.9, b2 0.999, eps 1e-8, no weight decay) with per-parameter learning
rates 2^log2_lr * m^lr_role * r^lr_depth (lmech.parametrize.learning_rates, m = width / base_width, r = n_layers /
base_n_layers), decayed linearly to zero over ``steps`` (lr_t = lr (1 - t / steps), as in mup-transfer: the last
steps are not noisy); forward multipliers m^multiplier_role via with_multipliers; the table's initialisation
(initialise, gain 1); the table's attention logit scale 1/sqrt(head_dim) * (head_dim / base_head_dim)^attention
(muP: 1/head_dim up to a constant; Yang et al. 2022, "Tensor Programs V", sec. 4 and Table 3). Widths grow with a
fixed number of heads (``n_heads``: head_dim = width / n_heads grows) or a fixed head size (``head_dim``: the number
of heads grows and the logit scale stays 1/sqrt(head_dim)). Minibatches: ``batch`` random windows of ``context``
characters of the training text (the same sequence for every learning rate of a seed: common random numbers).
Evaluation: mean next-character cross-entropy over ``eval_windows`` fixed random windows of the training text and of
the validation text. Divergence: Adam's steps are bounded by the learning rate, so even at absurd rates the loss of
this LayerNorm network grows without becoming NaN (2^10 under SP: 4e7 nats/char after 30 steps); a training loss that
is non-finite or above ``max_loss`` (default 3 log(vocab), three times chance; the initial loss is ~ log(vocab) + 1/2)
stops the run and reports ``diverged`` with the step (never raises).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch.nn import functional as F

from lmech.core import DATA, INIT, LmechInputError, generator
from lmech.data.stdlib_text import TextCorpus, lm_batches, stdlib_corpus
from lmech.nets.functional import functional
from lmech.nets.transformer import Transformer, transformer_branches, transformer_roles
from lmech.parametrize import (
    attention_scale,
    depth_multiplier,
    initialise,
    learning_rates,
    multipliers,
    parametrization,
    width_multiplier,
    with_multipliers,
)
from lmech.train import adam, torch_threads

REQUIRED = ("parametrization", "width", "base_width", "n_layers", "context", "batch", "steps", "log2_lr", "seed")
MAX_LOSS_FACTOR = 3.0  # a loss above 3 x chance (log vocab; the initial loss is ~ log vocab + 1/2) is divergence
DEFAULTS: dict[str, Any] = {
    "mlp_ratio": 4,
    "chars": 1_000_000,
    "eval_windows": 256,
    "base_n_layers": None,
    "max_loss": None,
    "member": 0,
}


def _config(config: Mapping[str, Any]) -> dict[str, Any]:
    missing = [k for k in REQUIRED if k not in config]
    if missing:
        raise LmechInputError(f"train_lm config lacks keys {missing}; required: {', '.join(REQUIRED)}")
    if ("n_heads" in config) == ("head_dim" in config):
        raise LmechInputError("train_lm config needs exactly one of n_heads (fixed heads) or head_dim (fixed size)")
    unknown = sorted(set(config) - set(REQUIRED) - set(DEFAULTS) - {"n_heads", "head_dim"})
    if unknown:
        raise LmechInputError(f"train_lm config has unknown keys {unknown}")
    c = {**DEFAULTS, **config}
    c["base_n_layers"] = c["base_n_layers"] or c["n_layers"]
    for k in ("width", "base_width", "n_layers", "base_n_layers", "context", "batch", "steps", "eval_windows"):
        if not isinstance(c[k], int) or c[k] < 1:
            raise LmechInputError(f"{k} must be a positive integer; got {c[k]!r}")
    if not (isinstance(c["log2_lr"], int | float) and math.isfinite(c["log2_lr"])):
        raise LmechInputError(f"log2_lr must be a finite number; got {c['log2_lr']!r}")
    key = "n_heads" if "n_heads" in c else "head_dim"
    if not isinstance(c[key], int) or c[key] < 1 or c["width"] % c[key] or c["base_width"] % c[key]:
        raise LmechInputError(
            f"{key} must be a positive integer dividing width ({c['width']}) and base_width ({c['base_width']});"
            f" got {c[key]!r}"
        )
    heads, base = (c[key], c[key]) if key == "n_heads" else (c["width"] // c[key], c["base_width"] // c[key])
    if c["max_loss"] is not None and not (isinstance(c["max_loss"], int | float) and c["max_loss"] > 0):
        raise LmechInputError(f"max_loss must be a positive number or None (3 log vocab); got {c['max_loss']!r}")
    c["heads"], c["head_dim_"], c["base_head_dim"] = heads, c["width"] // heads, c["base_width"] // base
    return c


def _evaluate(forward, params, tokens: torch.Tensor, c: dict[str, Any], gen: torch.Generator) -> float:
    """Mean next-character cross-entropy (nats) over ``eval_windows`` random windows, in chunks of ``batch``."""
    total, left = 0.0, c["eval_windows"]
    with torch.no_grad():
        while left > 0:
            x, y = lm_batches(tokens, c["context"], min(left, c["batch"]), gen)
            logits = forward(params, x)  # (b, context, vocab)
            total += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
            left -= x.shape[0]
    return total / (c["eval_windows"] * c["context"])


def train_lm(config: Mapping[str, Any], corpus: TextCorpus | None = None) -> dict[str, Any]:
    """Train one transformer language model (see the module docstring); returns final ``train_loss`` and
    ``validation_loss`` (nats/char, NaN if diverged), ``diverged``, ``diverged_step``, ``chance`` (log vocab), the
    ``attention_scale`` and ``n_heads`` used, and ``seconds``. ``corpus`` reuses an already read corpus (then
    ``chars`` is ignored)."""
    c = _config(config)
    start = time.perf_counter()
    corpus = corpus if corpus is not None else stdlib_corpus(c["chars"])
    table = parametrization(c["parametrization"])
    m = width_multiplier(c["width"], c["base_width"])
    r = depth_multiplier(c["n_layers"], c["base_n_layers"])
    scale = attention_scale(table, c["head_dim_"], c["base_head_dim"])
    with torch_threads(1):
        model = Transformer(
            corpus.vocab_size, c["context"], c["width"], c["n_layers"], c["heads"], c["mlp_ratio"], scale,
            gen=generator(c["seed"], INIT, c["member"]),
        )  # fmt: skip
        fn, shapes = functional(model)
        roles, branches = transformer_roles(shapes), transformer_branches(shapes)
        params = initialise(shapes, roles, table, m, generator(c["seed"], INIT, c["member"]))
        forward = with_multipliers(fn, multipliers(roles, table, m, branches, r))
        rates = learning_rates(roles, table, m, 2.0 ** c["log2_lr"], "adam", branches, r)

        def loss(p, x, y):
            return F.cross_entropy(forward(p, x).flatten(0, 1), y.flatten())

        state = adam(rates).init(params)
        batches = generator(c["seed"], DATA, c["member"])
        diverged_step, max_loss = None, c["max_loss"] or MAX_LOSS_FACTOR * math.log(corpus.vocab_size)
        for t in range(c["steps"]):
            x, y = lm_batches(corpus.train, c["context"], c["batch"], batches)
            leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
            value = loss(leaves, x, y)  # plain reverse mode: ~15% faster here than torch.func.grad_and_value
            grads = dict(zip(leaves, torch.autograd.grad(value, list(leaves.values())), strict=True))
            if not float(value.detach()) <= max_loss:  # also catches NaN
                diverged_step = t
                break
            now = {k: lr * (1.0 - t / c["steps"]) for k, lr in rates.items()}
            with torch.no_grad():
                params, state = adam(now).update(grads, state, params)
        train_loss = val_loss = math.nan
        if diverged_step is None:
            train_loss = _evaluate(forward, params, corpus.train, c, generator(c["seed"], DATA, c["member"], 1))
            val_loss = _evaluate(forward, params, corpus.validation, c, generator(c["seed"], DATA, c["member"], 2))
            if not (train_loss <= max_loss and val_loss <= max_loss):
                diverged_step = c["steps"]
    return {
        "train_loss": train_loss,
        "validation_loss": val_loss,
        "diverged": diverged_step is not None,
        "diverged_step": diverged_step,
        "chance": math.log(corpus.vocab_size),
        "attention_scale": scale,
        "n_heads": c["heads"],
        "seconds": time.perf_counter() - start,
    }
