"""The small decoder-only transformer, its roles under the parametrization tables, and the train_lm task."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from lmech.core import LmechInputError, generator
from lmech.laws.transformer_tasks import train_lm
from lmech.nets import MLP, functional
from lmech.nets.transformer import Transformer, transformer_branches, transformer_roles
from lmech.parametrize import (
    MEAN_FIELD,
    MUP,
    NTK,
    ROLES,
    SP,
    initialise,
    learning_rates,
    multipliers,
    param_groups,
    with_multipliers,
)
from lmech.train import adam

VOCAB, CONTEXT = 97, 16


def small(width: int = 32, n_layers: int = 2, n_heads: int = 4, scale: float | None = None, seed: int = 0):
    return Transformer(VOCAB, CONTEXT, width, n_layers, n_heads, 2, scale, gen=generator(seed))


def tokens(batch: int = 3, t: int = CONTEXT, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, t), generator=generator(seed))


def test_causal():
    """Changing token t changes no output before t (and does change the output at t)."""
    model, x = small(), tokens()
    x2 = x.clone()
    x2[:, 7] = (x2[:, 7] + 1) % VOCAB
    with torch.no_grad():
        a, b = model(x), model(x2)
    assert a.shape == (3, CONTEXT, VOCAB)
    torch.testing.assert_close(a[:, :7], b[:, :7], rtol=0, atol=1e-6)  # float32 reassociation at most
    assert (a[:, 7] - b[:, 7]).abs().max() > 1e-3
    with torch.no_grad():  # a shorter sequence gives the same outputs on its positions
        torch.testing.assert_close(model(x[:, :5]), a[:, :5], rtol=1e-5, atol=1e-5)


def test_functional_equals_module():
    model, x = small(), tokens()
    fn, params = functional(model)
    with torch.no_grad():
        assert torch.equal(fn(params, x), model(x))


def test_attention_matches_manual_and_scale_is_applied():
    """SDPA with the custom scale equals softmax(s q.k + causal mask) v; doubling the scale doubles the logits."""
    model = small(scale=0.3)
    attn = model.blocks[0].attn
    h = torch.randn(2, CONTEXT, 32, generator=generator(2))
    with torch.no_grad():
        logits = attn.logits(h)  # (2, heads, t, t)
        mask = torch.ones(CONTEXT, CONTEXT, dtype=torch.bool).tril()
        weights = torch.softmax(logits.masked_fill(~mask, -math.inf), dim=-1)
        v = attn._heads(attn.v(h))
        manual = attn.o((weights @ v).transpose(1, 2).reshape(h.shape))
        torch.testing.assert_close(attn(h), manual, rtol=1e-5, atol=1e-6)
        q, k = attn._heads(attn.q(h)), attn._heads(attn.k(h))
        torch.testing.assert_close(logits, 0.3 * q @ k.transpose(-1, -2))
        other = small(scale=0.6).blocks[0].attn  # same seed -> same weights, twice the scale
        torch.testing.assert_close(other.logits(h), 2.0 * logits)
    assert small().attention_scale == pytest.approx(1 / math.sqrt(8))  # default 1/sqrt(head_dim), head_dim 32/4


def test_roles_and_branches_cover_every_parameter():
    _, params = functional(small(n_layers=3))
    roles, branches = transformer_roles(params), transformer_branches(params)
    assert set(roles) == set(params) and set(roles.values()) <= set(ROLES)
    assert [k for k, r in roles.items() if r == "input"] == ["embed.weight", "pos.weight"]
    assert [k for k, r in roles.items() if r == "output"] == ["unembed.weight"]
    assert roles["unembed.bias"] == "output_bias"  # vocab-sized: nothing in it grows with width
    assert all(roles[k] == "bias" for k, p in params.items() if p.dim() == 1 and k != "unembed.bias")
    assert all(roles[k] == "hidden" for k, p in params.items() if p.dim() == 2 and k.startswith("blocks."))
    outs = sorted(k for k, part in branches.items() if part == "out")
    assert len(outs) == 3 * 4 and all(".attn.o." in k or ".mlp.proj." in k for k in outs)
    assert set(branches) == {k for k in params if k.startswith("blocks.")}
    _, mlp = functional(MLP(4, 8, 2, 1, gen=generator(0)))
    with pytest.raises(LmechInputError, match="lmech Transformer"):
        transformer_roles(mlp)
    with pytest.raises(LmechInputError, match="lmech Transformer"):
        transformer_branches({**params, "extra.weight": torch.zeros(2, 2)})


def test_sp_at_base_width_is_the_default_init():
    """initialise(SP, m = 1) from the same generator state reproduces the module's own init exactly, and that init
    has the stated statistics: weight std 1/sqrt(fan_in), LayerNorm gains 1, biases 0."""
    _, params = functional(small(width=64, seed=5))
    again = initialise(params, transformer_roles(params), SP, 1.0, generator(5))
    assert all(torch.equal(again[k], params[k]) for k in params)
    for name, p in params.items():
        if p.dim() == 2:
            assert p.std().item() == pytest.approx(p.shape[-1] ** -0.5, rel=0.1), name  # >= 1024 draws: ~2% error
        else:
            assert torch.equal(p, torch.ones_like(p) if name.endswith("weight") else torch.zeros_like(p)), name


def test_ntk_equals_sp_function_at_init():
    """abc symmetry: NTK's init m^1/2 and multiplier m^-1/2 on hidden and output weights give SP's function."""
    m, x = 4.0, tokens()
    fn, shapes = functional(small(width=64))
    roles = transformer_roles(shapes)
    sp = with_multipliers(fn, multipliers(roles, SP, m))(initialise(shapes, roles, SP, m, generator(3)), x)
    ntk = with_multipliers(fn, multipliers(roles, NTK, m))(initialise(shapes, roles, NTK, m, generator(3)), x)
    torch.testing.assert_close(ntk, sp, rtol=1e-4, atol=1e-5)


def test_mup_adam_step():
    """muP (width 64 over base 16): the table's init, multipliers and per-parameter Adam rates run a step."""
    m, base_lr = 4.0, 1e-2
    fn, shapes = functional(small(width=64))
    roles, branches = transformer_roles(shapes), transformer_branches(shapes)
    params = initialise(shapes, roles, MUP, m, generator(4))
    forward = with_multipliers(fn, multipliers(roles, MUP, m, branches))
    rates = learning_rates(roles, MUP, m, base_lr, "adam", branches)
    assert rates["embed.weight"] == base_lr and rates["blocks.0.attn.q.weight"] == base_lr / m
    assert rates["unembed.weight"] == base_lr / m and rates["unembed.bias"] == base_lr
    assert params["unembed.weight"].std().item() == pytest.approx(64**-0.5 / 2, rel=0.1)  # output init m^-1/2
    x, y = tokens(seed=6), tokens(seed=7)

    def loss(p):
        return F.cross_entropy(forward(p, x).flatten(0, 1), y.flatten())

    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    before = loss(leaves)
    grads = dict(zip(leaves, torch.autograd.grad(before, list(leaves.values())), strict=True))
    opt = adam(rates)
    with torch.no_grad():
        new, _ = opt.update(grads, opt.init(params), params)
        after = loss(new)
    assert math.isfinite(after.item()) and after.item() < before.item()
    for k in ("embed.weight", "blocks.1.mlp.fc.weight"):  # Adam's first step moves every entry by ~lr
        assert (new[k] - params[k]).abs().max().item() == pytest.approx(rates[k], rel=1e-3)
    torch_opt = torch.optim.Adam(param_groups(leaves, rates))  # the same rates as torch.optim groups
    torch_opt.zero_grad()
    loss(leaves).backward()
    torch_opt.step()
    torch.testing.assert_close(leaves["blocks.1.mlp.fc.weight"].detach(), new["blocks.1.mlp.fc.weight"])


def test_compiled_multiplied_forward_matches_eager():
    """torch.compile (aot_eager) sees through Multiplied: same outputs as eager under mean-field's multipliers."""
    m = 2.0
    fn, shapes = functional(small(width=32, n_layers=1, n_heads=2))
    roles = transformer_roles(shapes)
    params = initialise(shapes, roles, MEAN_FIELD, m, generator(8))
    forward = with_multipliers(fn, multipliers(roles, MEAN_FIELD, m))
    x = tokens(seed=9)
    try:
        compiled = torch.compile(forward, backend="aot_eager")(params, x)
    except Exception as err:  # any compile failure means "unavailable here"; a wrong result fails below
        pytest.skip(f"torch.compile(backend='aot_eager') unavailable in this torch build: {err!r}")
    with torch.no_grad():
        torch.testing.assert_close(compiled.detach(), forward(params, x), rtol=1e-6, atol=1e-6)


def test_bad_constructor_arguments():
    with pytest.raises(LmechInputError, match="divisible by n_heads"):
        Transformer(VOCAB, CONTEXT, 30, 1, 4, gen=generator(0))
    with pytest.raises(LmechInputError, match="attention_scale"):
        Transformer(VOCAB, CONTEXT, 32, 1, 4, attention_scale=-1.0, gen=generator(0))
    with pytest.raises(LmechInputError, match="context"):
        small()(tokens(t=CONTEXT + 1))


TINY = {
    "parametrization": "mup", "width": 32, "base_width": 16, "n_layers": 1, "n_heads": 2, "context": 16,
    "batch": 16, "steps": 60, "log2_lr": -6.0, "seed": 0, "chars": 20_000, "eval_windows": 64,
}  # fmt: skip


def test_train_lm_learns_below_chance():
    out = train_lm(TINY)
    assert not out["diverged"] and out["diverged_step"] is None
    assert out["chance"] == pytest.approx(math.log(97))
    for k in ("train_loss", "validation_loss"):
        assert math.isfinite(out[k]) and out[k] < out["chance"] - 1.0, out  # well below log(vocab) = 4.57
    again = train_lm(TINY)
    assert (again["train_loss"], again["validation_loss"]) == (out["train_loss"], out["validation_loss"])


def test_train_lm_attention_scale_follows_the_table():
    """muP: 1/sqrt(head_dim) * (head_dim / base_head_dim)^-1/2; with a fixed head_dim the heads grow instead."""
    short = {**TINY, "steps": 2, "eval_windows": 16}
    heads = train_lm(short)  # n_heads 2: head_dim 16 at width 32, 8 at base width 16
    assert heads["attention_scale"] == pytest.approx(16**-0.5 * 2**-0.5) and heads["n_heads"] == 2
    assert train_lm({**short, "parametrization": "sp"})["attention_scale"] == pytest.approx(16**-0.5)
    fixed = train_lm({k: v for k, v in short.items() if k != "n_heads"} | {"head_dim": 8})
    assert fixed["attention_scale"] == pytest.approx(8**-0.5) and fixed["n_heads"] == 4
    assert not fixed["diverged"]


def test_train_lm_huge_lr_diverges_without_raising():
    for table in ("sp", "mup"):
        out = train_lm({**TINY, "parametrization": table, "log2_lr": 10.0})
        assert out["diverged"] and out["diverged_step"] is not None and math.isnan(out["validation_loss"])


def test_train_lm_bad_config():
    with pytest.raises(LmechInputError, match="lacks keys"):
        train_lm({"width": 32})
    with pytest.raises(LmechInputError, match="exactly one of n_heads"):
        train_lm({**TINY, "head_dim": 8})
    with pytest.raises(LmechInputError, match="parametrization"):
        train_lm({**TINY, "parametrization": "xp"})
    with pytest.raises(LmechInputError, match="head_dim must be a positive integer dividing"):
        train_lm({k: v for k, v in TINY.items() if k != "n_heads"} | {"head_dim": 5})
    with pytest.raises(LmechInputError, match="unknown keys"):
        train_lm({**TINY, "lr": 0.1})
