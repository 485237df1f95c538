"""Scaling-law forms as frozen specs: the law's variables, its parameters, and log L as a function of both.

Every form is fitted in an internal parametrization where the loss's logarithm is smooth and unconstrained except for
the exponents (Hoffmann et al. 2022, appendix D.2, "approach 3"): amplitudes and offsets enter through their
logarithms, e.g. Chinchilla's L = E + A/N^alpha + B/D^beta becomes
log L = LSE(a - alpha log N, b - beta log D, e), with (a, b, e) = log (A, B, E).

- ``power_law``: L = E + A x^-alpha (one variable, irreducible loss E).
- ``kaplan_n`` / ``kaplan_d``: L = (N_c / N)^alpha_N, L = (D_c / D)^alpha_D (Kaplan et al. 2020, eqs. 1.1-1.2; no
  offset).
- ``chinchilla``: L = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, eq. 2).
- ``broken_power_law``: L = E + A x^-alpha (1 + (x/d)^(1/f))^(-(beta - alpha) f): slope -alpha below the break d,
  -beta above, sharpness f (Caballero et al. 2023, "Broken neural scaling laws", eq. 1 with one break).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lmech.core import LmechInputError

LogLoss = Callable[[torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor]
"""log_loss(theta (..., k), {variable: (n,)}) -> (..., n) log of the predicted loss."""


@dataclass(frozen=True)
class Form:
    """A scaling-law form.

    ``internal``: names of the fitted coordinates; ``bounds``: (low, high) per internal coordinate (exponents are
    bounded, log-amplitudes are not); ``grid``: starting values per internal coordinate (their product is the grid of
    L-BFGS starts); ``public(theta)`` maps internal coordinates to the reported parameters ``parameters``.
    """

    name: str
    formula: str
    variables: tuple[str, ...]
    parameters: tuple[str, ...]
    internal: tuple[str, ...]
    bounds: tuple[tuple[float, float], ...]
    grid: tuple[tuple[float, ...], ...]
    log_loss: LogLoss
    public: Callable[[Sequence[float]], dict[str, float]]
    exponents: tuple[str, ...]
    reference: str
    design: Callable[[Mapping[str, np.ndarray]], np.ndarray] | None = None
    """When log L = LSE_t (M_t theta): the (terms, n, k) matrices M_t for the data (a closed-form gradient)."""

    def predict(self, params: Mapping[str, float], **variables) -> torch.Tensor:
        """L at the given variables (float64) from public parameters."""
        theta = torch.tensor([self.to_internal(params)[k] for k in self.internal], dtype=torch.float64)
        return torch.exp(self.log_loss(theta, columns(self, variables)))

    def to_internal(self, params: Mapping[str, float]) -> dict[str, float]:
        missing = [p for p in self.parameters if p not in params]
        if missing:
            raise LmechInputError(
                f"form {self.name!r} needs parameters {', '.join(self.parameters)}; missing {missing}"
            )
        return _TO_INTERNAL[self.name](params)


def columns(form: Form, variables: Mapping[str, object]) -> dict[str, torch.Tensor]:
    missing = [v for v in form.variables if v not in variables]
    if missing:
        raise LmechInputError(f"form {form.name!r} needs the variables {', '.join(form.variables)}; missing {missing}")
    cols = {v: torch.as_tensor(variables[v], dtype=torch.float64).reshape(-1) for v in form.variables}
    for v, col in cols.items():
        if not bool(torch.all(torch.isfinite(col) & (col > 0))):
            raise LmechInputError(f"variable {v} must be finite and positive everywhere")
    return cols


def _lse(*terms: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(torch.stack(torch.broadcast_tensors(*terms)), dim=0)


def _power_law(theta, cols):
    e, a, alpha = theta[..., 0:1], theta[..., 1:2], theta[..., 2:3]
    return _lse(a - alpha * torch.log(cols["x"]), e)


def _kaplan(variable: str) -> LogLoss:
    def log_loss(theta, cols):
        a, alpha = theta[..., 0:1], theta[..., 1:2]
        return a - alpha * torch.log(cols[variable])

    return log_loss


def _chinchilla(theta, cols):
    e, a, b, alpha, beta = (theta[..., i : i + 1] for i in range(5))
    return _lse(a - alpha * torch.log(cols["N"]), b - beta * torch.log(cols["D"]), e)


def _broken(theta, cols):
    e, a, alpha, beta, log_d, log_f = (theta[..., i : i + 1] for i in range(6))
    u = torch.log(cols["x"])
    f = torch.exp(log_f)
    term = a - alpha * u - (beta - alpha) * f * torch.nn.functional.softplus((u - log_d) / f)
    return _lse(term, e)


def _design(*terms: Callable[[Mapping[str, np.ndarray]], list]) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    """Stack term builders, each giving the k columns (arrays or scalars) of one linear term, into (terms, n, k)."""

    def design(cols: Mapping[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(cols.values())))
        return np.stack(
            [np.stack([np.broadcast_to(np.asarray(c, dtype=np.float64), (n,)) for c in t(cols)], 1) for t in terms]
        )

    return design


EXPONENT = (0.0, 5.0)
FREE = (-math.inf, math.inf)

FORMS: dict[str, Form] = {
    "power_law": Form(
        "power_law",
        "L = E + A x^-alpha",
        ("x",),
        ("E", "A", "alpha"),
        ("e", "a", "alpha"),
        (FREE, FREE, EXPONENT),
        ((-1.0, 0.0, 1.0), (0.0, 2.5, 5.0, 10.0), (0.1, 0.3, 0.6, 1.0)),
        _power_law,
        lambda t: {"E": math.exp(t[0]), "A": math.exp(t[1]), "alpha": t[2]},
        ("alpha",),
        "Hestness et al. 2017; Kaplan et al. 2020",
        _design(lambda c: [0, 1, -np.log(c["x"])], lambda c: [1, 0, 0]),
    ),
    "kaplan_n": Form(
        "kaplan_n",
        "L = (N_c / N)^alpha_N",
        ("N",),
        ("N_c", "alpha_N"),
        ("a", "alpha"),
        (FREE, EXPONENT),
        ((0.0, 5.0, 10.0), (0.05, 0.1, 0.3, 0.6)),
        _kaplan("N"),
        lambda t: {"N_c": math.exp(t[0] / t[1]) if t[1] > 0 else math.inf, "alpha_N": t[1]},
        ("alpha_N",),
        "Kaplan et al. 2020, eq. 1.1",
        _design(lambda c: [1, -np.log(c["N"])]),
    ),
    "kaplan_d": Form(
        "kaplan_d",
        "L = (D_c / D)^alpha_D",
        ("D",),
        ("D_c", "alpha_D"),
        ("a", "alpha"),
        (FREE, EXPONENT),
        ((0.0, 5.0, 10.0), (0.05, 0.1, 0.3, 0.6)),
        _kaplan("D"),
        lambda t: {"D_c": math.exp(t[0] / t[1]) if t[1] > 0 else math.inf, "alpha_D": t[1]},
        ("alpha_D",),
        "Kaplan et al. 2020, eq. 1.2",
        _design(lambda c: [1, -np.log(c["D"])]),
    ),
    "chinchilla": Form(
        "chinchilla",
        "L = E + A / N^alpha + B / D^beta",
        ("N", "D"),
        ("E", "A", "B", "alpha", "beta"),
        ("e", "a", "b", "alpha", "beta"),
        (FREE, FREE, FREE, EXPONENT, EXPONENT),
        ((-1.0, 0.0, 1.0), (0.0, 5.0, 10.0, 15.0), (0.0, 5.0, 10.0, 15.0), (0.2, 0.5, 1.0), (0.2, 0.5, 1.0)),
        _chinchilla,
        lambda t: {"E": math.exp(t[0]), "A": math.exp(t[1]), "B": math.exp(t[2]), "alpha": t[3], "beta": t[4]},
        ("alpha", "beta"),
        "Hoffmann et al. 2022, eq. 2 and appendix D.2 (approach 3)",
        _design(
            lambda c: [0, 1, 0, -np.log(c["N"]), 0],
            lambda c: [0, 0, 1, 0, -np.log(c["D"])],
            lambda c: [1, 0, 0, 0, 0],
        ),
    ),
    "broken_power_law": Form(
        "broken_power_law",
        "L = E + A x^-alpha (1 + (x/d)^(1/f))^(-(beta - alpha) f)",
        ("x",),
        ("E", "A", "alpha", "beta", "d", "f"),
        ("e", "a", "alpha", "beta", "log_d", "log_f"),
        (FREE, FREE, EXPONENT, EXPONENT, FREE, (-3.0, 3.0)),
        ((-1.0, 0.0), (0.0, 5.0), (0.1, 0.5), (0.3, 1.0), (2.0, 6.0, 10.0), (-1.0, 0.5)),
        _broken,
        lambda t: {
            "E": math.exp(t[0]),
            "A": math.exp(t[1]),
            "alpha": t[2],
            "beta": t[3],
            "d": math.exp(t[4]),
            "f": math.exp(t[5]),
        },
        ("alpha", "beta"),
        "Caballero, Gupta, Rish & Krueger 2023, eq. 1 (one break)",
    ),
}

_TO_INTERNAL: dict[str, Callable[[Mapping[str, float]], dict[str, float]]] = {
    "power_law": lambda p: {"e": math.log(p["E"]), "a": math.log(p["A"]), "alpha": p["alpha"]},
    "kaplan_n": lambda p: {"a": p["alpha_N"] * math.log(p["N_c"]), "alpha": p["alpha_N"]},
    "kaplan_d": lambda p: {"a": p["alpha_D"] * math.log(p["D_c"]), "alpha": p["alpha_D"]},
    "chinchilla": lambda p: {
        "e": math.log(p["E"]),
        "a": math.log(p["A"]),
        "b": math.log(p["B"]),
        "alpha": p["alpha"],
        "beta": p["beta"],
    },
    "broken_power_law": lambda p: {
        "e": math.log(p["E"]),
        "a": math.log(p["A"]),
        "alpha": p["alpha"],
        "beta": p["beta"],
        "log_d": math.log(p["d"]),
        "log_f": math.log(p["f"]),
    },
}


def form(name: str) -> Form:
    """The form called ``name``; an unknown name lists the known ones."""
    try:
        return FORMS[name]
    except KeyError:
        raise LmechInputError(f"form must be one of {', '.join(FORMS)}; got {name!r}") from None
