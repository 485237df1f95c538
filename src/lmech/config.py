"""Law configurations: frozen, validated once where input enters, with errors that say the fix.

A law's config is a pydantic model whose field defaults are the quick scale. ``make_config``
applies a scale preset, then the user's overrides (Python values, or strings from
``--set key=value``), and turns every validation problem into one :class:`LmechInputError`
naming the field, the constraint, the received value and where it came from.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lmech.core import Law, LmechInputError


def ascending(values: list[int], field: str, low: int = 1) -> list[int]:
    """``values`` if they are distinct integers >= ``low`` in increasing order, else a ValueError naming ``field``
    (for a pydantic ``field_validator``: widths, dataset sizes)."""
    if values != sorted(set(values)) or any(v < low for v in values):
        what = "positive integers" if low == 1 else f"integers >= {low}"
        raise ValueError(f"{field} must be distinct {what} in increasing order; got {values}")
    return values


def even_grid(values: list[float], field: str) -> list[float]:
    """``values`` if they are finite, distinct, increasing and evenly spaced (a log2 learning-rate grid, which the
    parabola around its minimum needs), else a ValueError naming ``field``."""
    if values != sorted(set(values)) or any(not math.isfinite(v) for v in values):
        raise ValueError(f"{field} must be finite, distinct and increasing; got {values}")
    steps = np.diff(values)
    if not np.allclose(steps, steps[0]):
        raise ValueError(f"{field} must be evenly spaced; got {values}")
    return values


class LawConfig(BaseModel):
    """Base of every law's config: frozen, no unknown fields, JSON round-trip for provenance."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    seed: int = Field(0, ge=0, description="base random seed")


def parse_value(text: str) -> Any:
    """A ``--set`` value: JSON (numbers, lists, true/false/null), comma lists, or a plain string."""
    text = text.strip()
    if text.lower() in {"none", "null"}:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if "," in text:
        return [parse_value(part) for part in text.split(",") if part.strip()]
    return text


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a malformed item is a clear error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise LmechInputError(f"--set expects key=value (e.g. --set lr=0.01); got {item!r}")
        out[key.strip()] = value.strip()
    return out


def type_name(annotation: Any) -> str:
    """A readable type: ``int``, ``list[float]``, ``int | None``, ``one of 'a', 'b'``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin in (Union, UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def describe_fields(config_cls: type[BaseModel], defaults: Mapping[str, Any] | None = None) -> str:
    """One line per accepted key: name, type, default and description."""
    defaults = defaults or {}
    lines = []
    for name, info in config_cls.model_fields.items():
        kind = type_name(info.annotation)
        default = defaults.get(name, info.default)
        lines.append(f"  {name} ({kind}, default {default!r}): {info.description or ''}".rstrip(": "))
    return "\n".join(lines)


def make_config(law: Law, scale: str = "quick", seed: int = 0, overrides: Mapping[str, Any] | None = None) -> Any:
    """The validated config of ``law`` at ``scale`` with ``seed`` and user ``overrides``."""
    if scale not in law.scales:
        raise LmechInputError(f"scale must be one of {', '.join(law.scales)}; got {scale!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise LmechInputError(f"seed must be a non-negative integer; got {seed!r}")
    cls = law.config
    base = {**law.scales[scale], "seed": seed}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(cls.model_fields))
    if unknown:
        raise LmechInputError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for law "
            f"{law.id!r}; accepted keys:\n{describe_fields(cls, base)}"
        )
    values = {
        k: _coerce(cls.model_fields[k].annotation, parse_value(v) if isinstance(v, str) else v)
        for k, v in overrides.items()
    }
    for key, value in values.items():
        if isinstance(value, bool) and bool not in _leaf_types(cls.model_fields[key].annotation):
            raise LmechInputError(
                f"{key} must be {type_name(cls.model_fields[key].annotation)}, not a boolean; got {overrides[key]!r}"
            )
    try:
        return cls(**{**base, **values})
    except ValidationError as exc:
        raise LmechInputError(_explain(law.id, exc, overrides)) from None


def _coerce(annotation: Any, value: Any) -> Any:
    """A single value given for a list field becomes a one-element list (``--set kinds=relu``)."""
    if get_origin(annotation) is list and not isinstance(value, (list, tuple)):
        return [value]
    return value


def _leaf_types(annotation: Any) -> set:
    args = get_args(annotation)
    return set().union(*(_leaf_types(a) for a in args)) if args else {annotation}


def _explain(law_id: str, exc: ValidationError, raw: Mapping[str, Any]) -> str:
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "config"
        top = str(err["loc"][0]) if err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ")
        msg = msg[0].lower() + msg[1:] if msg else msg
        source = f" (from --set {top}={raw[top]})" if isinstance(raw.get(top), str) else ""
        got = f"; got {err['input']!r}" if top and "input" in err and not isinstance(err["input"], dict) else ""
        problems.append(f"{field}: {msg}{got}{source}")
    return f"invalid config for law {law_id!r}: " + "; ".join(problems)
