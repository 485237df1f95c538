"""Hand-derived gradients for ensembles of MLPs that share their inputs, into reused buffers.

A drop-in replacement for :func:`lmech.train.loop.gradients` (``(params, x, y) -> (grads,
losses)``) when the model is an ensemble of :class:`lmech.nets.MLP` (parameters stacked along a
leading axis E by ``lmech.nets.ensemble``). It exists for throughput on CPUs:

- the first layer of all E members is one GEMM, x (n, d) @ [W_1^(1); ...; W_1^(E)]^T, because
  the members share x; deeper layers are batched GEMMs (``baddbmm`` with the bias folded in);
- the backward pass is written out (dZ = act'(Z) * dH, dW = dZ^T H, db = sum_n dZ, dH = dZ W),
  so no autograd graph is built;
- every activation and gradient lives in a buffer allocated once per batch size: with fresh
  30 MB tensors every step, glibc returned and re-faulted their pages, which cost more than the
  element-wise work (measured here: vmap(grad) at 36% of the matrix-multiply ceiling, 60% with
  the allocator told to keep freed memory).

The returned gradients are views of those buffers, valid until the next call.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lmech.core import LmechInputError, Params

Gradients = Callable[[Params, torch.Tensor, torch.Tensor], tuple[Params, torch.Tensor]]

_threshold_backward = torch.ops.aten.threshold_backward.grad_input


def mlp_gradients(depth: int, activation: str = "relu", loss: str = "mse", prefix: str = "layers") -> Gradients:
    """Gradients of ``loss`` for E stacked MLPs with ``depth`` hidden layers (named
    ``{prefix}.{i}.weight`` / ``.bias`` as in :class:`lmech.nets.MLP`); ``loss`` is "mse"
    ((1/2n) sum ||f - y||^2 per member) or "cross_entropy" (y holds class indices: (n,) shared by the members,
    or (E, n), one labelling per member)."""
    if activation not in ("relu", "tanh", "linear"):
        raise LmechInputError(f"fused MLP gradients support activation relu, tanh or linear; got {activation!r}")
    if loss not in ("mse", "cross_entropy"):
        raise LmechInputError(f"fused MLP gradients support loss mse or cross_entropy; got {loss!r}")
    names = [(f"{prefix}.{i}.weight", f"{prefix}.{i}.bias") for i in range(depth + 1)]
    buffers: dict[tuple, dict[str, torch.Tensor]] = {}

    def step(params: Params, x: torch.Tensor, y: torch.Tensor) -> tuple[Params, torch.Tensor]:
        weights = [params[w] for w, _ in names]
        biases = [params.get(b) for _, b in names]
        key = (x.shape[0], x.dtype, *(tuple(w.shape) for w in weights), biases[0] is not None)
        buf = buffers.get(key)
        if buf is None:
            buffers.clear()  # one batch size at a time: free the old buffers first
            buf = buffers[key] = _allocate(weights, x, biases[0] is not None)
        with torch.no_grad():
            hidden = _forward(weights, biases, x, activation, buf)
            losses, d_out = _loss_grad(hidden[-1], y, loss, buf)
            grads = _backward(weights, biases, x, hidden, d_out, activation, buf)
        out = {}
        for (w, b), (dw, db) in zip(names, grads, strict=True):
            out[w] = dw
            if db is not None:
                out[b] = db
        return out, losses

    return step


def _allocate(weights: list[torch.Tensor], x: torch.Tensor, bias: bool) -> dict[str, torch.Tensor]:
    """Buffers for one batch size: activations, output, and the gradients of every layer."""
    n, ens, opts = x.shape[0], weights[0].shape[0], {"dtype": x.dtype}
    buf = {"wide": torch.empty(n, ens * weights[0].shape[1], **opts)}  # layer 1, members side by side
    for i in range(1, len(weights)):
        if i < len(weights) - 1:
            buf[f"h{i + 1}"] = torch.empty(ens, n, weights[i].shape[1], **opts)  # output of layer i
        buf[f"dz{i}"] = torch.empty(ens, n, weights[i].shape[2], **opts)  # gradient at layer i's input
    buf["out"] = torch.empty(ens, n, weights[-1].shape[1], **opts)
    buf["d_out"] = torch.empty_like(buf["out"])
    for i, w in enumerate(weights):
        buf[f"dw{i}"] = torch.empty_like(w)
        if bias:
            buf[f"db{i}"] = torch.empty(w.shape[0], w.shape[1], **opts)
    return buf


def _act_(z: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "relu":
        return z.relu_()
    if activation == "tanh":
        return z.tanh_()
    return z


def _act_backward_(grad: torch.Tensor, h: torch.Tensor, activation: str) -> torch.Tensor:
    """grad <- act'(z) * grad, written in terms of the activation h = act(z), in place."""
    if activation == "relu":
        return _threshold_backward(grad, h, 0, grad_input=grad)
    if activation == "tanh":
        return grad.mul_(1 - h * h)
    return grad


def _forward(weights, biases, x, activation, buf) -> list[torch.Tensor]:
    """[h_1, ..., h_depth, f]: activations of each hidden layer (E, n, h) and the outputs."""
    ens, h1 = weights[0].shape[0], weights[0].shape[1]
    w_cat = weights[0].reshape(ens * h1, -1)  # (E h1, d)
    if biases[0] is not None:
        torch.addmm(biases[0].reshape(-1), x, w_cat.T, out=buf["wide"])
    else:
        torch.mm(x, w_cat.T, out=buf["wide"])
    hidden = [_act_(buf["wide"], activation).view(x.shape[0], ens, h1).permute(1, 0, 2)]  # (E, n, h1), strided
    last = len(weights) - 1
    for i in range(1, len(weights)):
        out = buf["out"] if i == last else buf[f"h{i + 1}"]
        if biases[i] is not None:
            torch.baddbmm(biases[i].unsqueeze(1), hidden[-1], weights[i].transpose(1, 2), out=out)
        else:
            torch.bmm(hidden[-1], weights[i].transpose(1, 2), out=out)
        hidden.append(out if i == last else _act_(out, activation))
    return hidden


def _loss_grad(out: torch.Tensor, y: torch.Tensor, loss: str, buf) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member losses (E,) and dL/df (E, n, o)."""
    n, d_out = out.shape[1], buf["d_out"]
    if loss == "mse":
        torch.sub(out, y.reshape(1, n, -1), out=d_out)
        losses = 0.5 * d_out.pow(2).sum((1, 2)) / n
        return losses, d_out.mul_(1.0 / n)
    logp = torch.log_softmax(out, dim=-1)
    labels = y.long().reshape(-1, n, 1).expand(out.shape[0], n, 1)  # (n,) shared or (E, n) per-member labels
    losses = -logp.gather(-1, labels).squeeze(-1).mean(1)
    torch.exp(logp, out=d_out)
    d_out.scatter_add_(-1, labels, torch.full(labels.shape, -1.0, dtype=out.dtype))
    return losses, d_out.mul_(1.0 / n)


def _backward(weights, biases, x, hidden, d_out, activation, buf):
    """[(dW_i, db_i)] for every layer, from the output back to the first."""
    grads = [None] * len(weights)
    dz = d_out
    for i in range(len(weights) - 1, 0, -1):
        h_prev = hidden[i - 1]
        torch.bmm(dz.transpose(1, 2), h_prev, out=buf[f"dw{i}"])
        db = torch.sum(dz, 1, out=buf[f"db{i}"]) if biases[i] is not None else None
        grads[i] = (buf[f"dw{i}"], db)
        dh = torch.bmm(dz, weights[i], out=buf[f"dz{i}"])  # (E, n, h_{i})
        dz = _act_backward_(dh, h_prev, activation)
    torch.bmm(dz.transpose(1, 2), x.expand(dz.shape[0], *x.shape), out=buf["dw0"])
    db = torch.sum(dz, 1, out=buf["db0"]) if biases[0] is not None else None
    grads[0] = (buf["dw0"], db)
    return grads
