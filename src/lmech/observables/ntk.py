"""The empirical neural tangent kernel of a model: Theta(x, x') = J(x) J(x')^T, J = d f / d theta.

Three algorithms (Novak et al. 2022, "Fast finite width neural tangent kernel", ICML, sec. 3-4):

- "jacobian": per-example Jacobians by ``vmap(jacrev)``, contracted over parameters. Memory chunk * C * P.
- "ntvp": NTK-vector products, jvp(vjp(.)): one vjp per column (x'_j, output d) and one jvp per column,
  never materialising J. Memory chunk * C * P for the batch of cotangent-parameter vectors, no n x P.
- "structured": for a dense layer h = m_w a W^T + m_b b, d f_c / d W = m_w g_c a^T with g_c = d f_c / d h, so
  its contribution is m_w^2 (A A'^T) * (G_c G'_d^T) + m_b^2 (G_c G'_d^T) (elementwise product of two n x n' Gram
  matrices; cost n n' (fan_in + fan_out) instead of n n' P). Needs the module (``module_ntk``): inputs A and
  back-propagated signals G are captured with hooks on ``nn.Linear`` and ``lmech.nets.NTKLinear`` layers; all
  other parameters (convolutions, norms, embeddings) go through the Jacobian method. Assumes examples do not
  interact in the forward pass (no batch norm) and each dense layer is called once per forward pass.

``outputs``: "trace" gives (n1, n2), the trace over outputs divided by their number (neural-tangents'
``trace_axes=(-1,)``); "full" gives (n1, n2, C, C). Scalar models (output (n,) or (n, 1)) give (n1, n2).
"auto" (cost model, multiply-adds per pair of examples and output pair, the n1 n2 C^2 factor common to all): the
Jacobian contraction costs P; NTK-vector products about 2 P (a jvp per column, never cheaper, chosen only by name to
save memory); the structured method sum over dense layers of (fan_in + fan_out) plus the Jacobian contraction of the
other parameters; "auto" takes the cheaper of structured and Jacobian.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

from lmech.core import Fn, LmechInputError, Params
from lmech.nets.ntk_mlp import NTKLinear

METHODS = ("auto", "jacobian", "ntvp", "structured")
OUTPUTS = ("trace", "full")
_CHUNK_BYTES = 256 * 2**20  # default budget for one chunk's Jacobian or cotangent batch


def empirical_ntk(
    fn: Fn, params: Params, x1, x2=None, *, method: str = "auto", outputs: str = "trace", chunk: int | None = None
) -> torch.Tensor:
    """Empirical NTK of a functional model ``fn(params, x)`` (methods "jacobian", "ntvp"; "auto" = "jacobian").

    ``chunk``: rows per block (default: as many as fit 256 MiB of Jacobian); bounds peak memory.
    """
    _check_choice("method", method, METHODS)
    if method == "structured":
        raise LmechInputError("method='structured' needs the module's layers: call module_ntk(module, ...)")
    _check_choice("outputs", outputs, OUTPUTS)
    x1, x2 = _inputs(x1, x2)
    width = _output_width(fn, params, x1)
    step = _chunk(chunk, width * sum(p.numel() for p in params.values()) * x1.element_size())
    kernel = _blocks(x1, x2, step, lambda a, b: _generic_block(fn, params, a, b, method, width))
    return _symmetric(_shape(kernel, outputs), x2 is None)


def module_ntk(
    module: nn.Module, x1, x2=None, *, method: str = "auto", outputs: str = "trace", chunk: int | None = None
) -> torch.Tensor:
    """Empirical NTK of an ``nn.Module`` (all three methods). The module and its gradients are not touched."""
    _check_choice("method", method, METHODS)
    _check_choice("outputs", outputs, OUTPUTS)
    if any(True for _ in module.buffers()):
        names = ", ".join(name for name, _ in module.named_buffers())
        raise LmechInputError(
            f"module has buffers ({names}): batch statistics or running state make the NTK "
            "depend on the batch; use a buffer-free model (e.g. no BatchNorm)"
        )
    params = {k: v.detach() for k, v in module.named_parameters()}

    def fn(p: Params, x: torch.Tensor) -> torch.Tensor:
        return functional_call(module, p, (x,))

    x1, x2 = _inputs(x1, x2)
    dense = _dense_layers(module)
    dense_params = {
        f"{name}.{kind}" if name else kind
        for name, layer in dense.items()
        for kind in ("weight", "bias")
        if getattr(layer, kind) is not None
    }
    if method == "auto":
        method = _cheaper(dense, params, dense_params)
    width = _output_width(fn, params, x1)
    if method != "structured":
        return empirical_ntk(fn, params, x1, x2, method=method, outputs=outputs, chunk=chunk)
    rest = {k: v for k, v in params.items() if k not in dense_params}
    step = _chunk(chunk, width * max(1, sum(p.numel() for p in rest.values())) * x1.element_size())
    features1 = _dense_features(module, dense, params, x1, width, step)
    features2 = features1 if x2 is None else _dense_features(module, dense, params, x2, width, step)
    kernel = _structured(features1, features2, full=outputs == "full" and width > 1)
    if rest:

        def fn_rest(p: Params, x: torch.Tensor) -> torch.Tensor:
            return fn({**params, **p}, x)

        generic = _blocks(x1, x2, step, lambda a, b: _generic_block(fn_rest, rest, a, b, "jacobian", width))
        kernel = kernel + _shape(generic, outputs)
    return _symmetric(kernel, x2 is None)


# --------------------------------------------------------------------------------------------
# Generic methods


def _per_example_jacobian(fn: Fn, params: Params, x: torch.Tensor, width: int) -> torch.Tensor:
    """(n, C, P) Jacobian, one example at a time under vmap."""

    def single(p: Params, xi: torch.Tensor) -> torch.Tensor:
        return fn(p, xi[None]).reshape(width)

    jac = vmap(jacrev(single), in_dims=(None, 0))(params, x)  # dict of (n, C, *shape)
    return torch.cat([j.reshape(len(x), width, -1) for j in jac.values()], dim=2)


def _generic_block(fn: Fn, params: Params, a: torch.Tensor, b: torch.Tensor, method: str, width: int):
    """Theta block (n_a, n_b, C, C)."""
    if method in ("auto", "jacobian"):
        ja = _per_example_jacobian(fn, params, a, width)
        jb = ja if b is a else _per_example_jacobian(fn, params, b, width)
        return torch.einsum("icp,jdp->ijcd", ja, jb)
    # ntvp: columns (j, d) of Theta = J_a J_b^T e_(j,d)
    _, pullback = vjp(lambda p: fn(p, b).reshape(len(b), width), params)
    basis = torch.eye(len(b) * width, dtype=a.dtype).reshape(-1, len(b), width)
    cotangents = vmap(pullback)(basis)[0]  # dict of (n_b C, *shape): rows of J_b

    def push(tangent: Params) -> torch.Tensor:
        return jvp(lambda p: fn(p, a).reshape(len(a), width), (params,), (tangent,))[1]

    columns = vmap(push)(cotangents)  # (n_b C, n_a, C)
    return columns.reshape(len(b), width, len(a), width).permute(2, 0, 3, 1)


# --------------------------------------------------------------------------------------------
# Structured method


def _dense_layers(module: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in module.named_modules() if isinstance(m, nn.Linear | NTKLinear)}


def _cheaper(dense: dict[str, nn.Module], params: Params, dense_params: set[str]) -> str:
    """The module docstring's cost model: "structured" when its per-pair cost is below the Jacobian contraction's."""
    total = sum(p.numel() for p in params.values())
    rest = total - sum(params[k].numel() for k in dense_params)
    structured = rest + sum(layer.weight.shape[0] + layer.weight.shape[1] for layer in dense.values())
    return "structured" if dense and structured < total else "jacobian"


def _multipliers(layer: nn.Module) -> tuple[float, float]:
    if isinstance(layer, NTKLinear):
        return layer.weight_multiplier, layer.bias_multiplier
    return 1.0, 1.0


def _dense_features(module, dense, params, x, width, step):
    """Per dense layer: (inputs A (n, fan_in), signals G (C, n, fan_out), multipliers, has bias)."""
    inputs, signals = {name: [] for name in dense}, {name: [] for name in dense}
    for start in range(0, len(x), step):
        part = x[start : start + step]
        captured: dict[str, list] = {name: [] for name in dense}
        hooks = [layer.register_forward_hook(_capture(captured[name])) for name, layer in dense.items()]
        try:
            p = {k: v.detach().requires_grad_(True) for k, v in params.items()}
            out = functional_call(module, p, (part,)).reshape(len(part), width)
        finally:
            for hook in hooks:
                hook.remove()
        for name, calls in captured.items():
            if len(calls) != 1:
                raise LmechInputError(
                    f"layer {name} ran {len(calls)} times in one forward pass; the structured NTK "
                    "needs each dense layer once: use method='jacobian'"
                )
        outs = [captured[name][0][1] for name in dense]
        grads = [torch.autograd.grad(out[:, c].sum(), outs, retain_graph=c < width - 1) for c in range(width)]
        for k, name in enumerate(dense):
            inputs[name].append(captured[name][0][0].detach())
            signals[name].append(torch.stack([g[k] for g in grads]))
    return [
        (torch.cat(inputs[name]), torch.cat(signals[name], dim=1), _multipliers(layer), layer.bias is not None)
        for name, layer in dense.items()
    ]


def _capture(store: list) -> Callable:
    def hook(_module, args, output):
        store.append((args[0].reshape(-1, args[0].shape[-1]), output))

    return hook


def _structured(features1, features2, full: bool) -> torch.Tensor:
    """sum over dense layers of m_w^2 (A A'^T) * (G_c G'_d^T) + m_b^2 (G_c G'_d^T): (n1, n2, C, C) when ``full``,
    else the mean over c of the c = d blocks, (n1, n2), without forming the C x C blocks."""
    kernel = None
    for (a1, g1, (mw, mb), bias), (a2, g2, _, _) in zip(features1, features2, strict=True):
        gram_inputs = mw * mw * (a1 @ a2.T)
        if bias:
            gram_inputs = gram_inputs + mb * mb
        if full:
            term = gram_inputs[:, :, None, None] * torch.einsum("cif,djf->ijcd", g1, g2)
        else:
            term = gram_inputs * torch.einsum("cif,cjf->ij", g1, g2) / len(g1)
        kernel = term if kernel is None else kernel + term
    return kernel


# --------------------------------------------------------------------------------------------
# Shared pieces


def _blocks(x1: torch.Tensor, x2: torch.Tensor | None, step: int, block) -> torch.Tensor:
    """Assemble (n1, n2, C, C) from row blocks; the symmetric case computes the upper block triangle."""
    other = x1 if x2 is None else x2
    rows = []
    for i in range(0, len(x1), step):
        a = x1[i : i + step]
        row = []
        for j in range(0, len(other), step):
            if x2 is None and j < i:
                row.append(None)
                continue
            b = a if (x2 is None and i == j) else other[j : j + step]
            row.append(block(a, b))
        rows.append(row)
    if x2 is None:  # fill the lower blocks by symmetry: Theta(x_j, x_i)_{dc} = Theta(x_i, x_j)_{cd}
        for i, row in enumerate(rows):
            for j in range(i):
                row[j] = rows[j][i].permute(1, 0, 3, 2)
    return torch.cat([torch.cat(row, dim=1) for row in rows], dim=0)


def _symmetric(kernel: torch.Tensor, same: bool) -> torch.Tensor:
    """Theta(x, x) is symmetric: average with its transpose so that rounding does not break it."""
    if not same:
        return kernel
    transpose = kernel.T if kernel.ndim == 2 else kernel.permute(1, 0, 3, 2)
    return (kernel + transpose) / 2


def _shape(kernel: torch.Tensor, outputs: str) -> torch.Tensor:
    if outputs == "full" and kernel.shape[-1] > 1:
        return kernel
    return kernel.diagonal(dim1=2, dim2=3).mean(-1)


def _output_width(fn: Fn, params: Params, x: torch.Tensor) -> int:
    with torch.no_grad():
        out = fn(params, x[:1])
    if out.ndim > 2 or out.shape[0] != 1:
        raise LmechInputError(f"the model must map (n, ...) inputs to (n,) or (n, C) outputs; got {tuple(out.shape)}")
    return 1 if out.ndim == 1 else out.shape[1]


def _inputs(x1, x2):
    a = torch.as_tensor(x1)
    if a.ndim < 2 or a.shape[0] == 0:
        raise LmechInputError(f"x1 must be a batch (n, ...) with n >= 1; got shape {tuple(a.shape)}")
    if x2 is None:
        return a, None
    b = torch.as_tensor(x2)
    if b.shape[1:] != a.shape[1:] or b.shape[0] == 0:
        raise LmechInputError(f"x2 must have shape (m, {', '.join(map(str, a.shape[1:]))}); got {tuple(b.shape)}")
    return a, b


def _chunk(chunk: int | None, bytes_per_row: int) -> int:
    if chunk is None:
        return max(1, min(4096, _CHUNK_BYTES // max(1, bytes_per_row)))
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise LmechInputError(f"chunk must be a positive integer (rows per block) or None; got {chunk!r}")
    return chunk


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise LmechInputError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def relative_frobenius(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b||_F / ||b||_F."""
    return (torch.linalg.norm(a - b) / torch.linalg.norm(b)).item() if torch.linalg.norm(b) > 0 else math.inf
