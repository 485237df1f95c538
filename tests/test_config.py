"""Validation at the boundary: errors name the field, the constraint, the value and the source."""

import pytest
from pydantic import ValidationError

from lmech.config import make_config, parse_assignments, parse_value
from lmech.core import LmechInputError
from lmech.laws import REGISTRY

DLN = REGISTRY.get("dln-modes")


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("1e-3") == 1e-3 and parse_value("true") is True
    assert parse_value("[5, 3]") == [5, 3] and parse_value("5,3,1") == [5, 3, 1]
    assert parse_value("aligned") == "aligned" and parse_value("none") is None


def test_parse_assignments_rejects_malformed():
    assert parse_assignments(["a=1", "b = x"]) == {"a": "1", "b": "x"}
    for bad in ("lr", "=3", "lr="):
        with pytest.raises(LmechInputError, match="key=value"):
            parse_assignments([bad])


def test_unknown_key_lists_accepted_keys_with_types_and_defaults():
    with pytest.raises(LmechInputError) as err:
        make_config(DLN, overrides={"widht": "3"})
    text = str(err.value)
    assert "'widht'" in text and "depth (int, default 2)" in text and "lr (float, default 0.001)" in text


def test_out_of_range_names_key_constraint_and_source():
    with pytest.raises(LmechInputError) as err:
        make_config(DLN, overrides={"width": "-3"})
    text = str(err.value)
    assert "width" in text and "greater than or equal to 1" in text and "-3" in text and "--set width=-3" in text


def test_cross_field_rules():
    with pytest.raises(LmechInputError, match="strictly decreasing"):
        make_config(DLN, overrides={"singular_values": [1, 2]})
    with pytest.raises(LmechInputError, match="small init"):
        make_config(DLN, overrides={"init_scale": 1.0})
    with pytest.raises(LmechInputError, match="raise init_scale or lr"):
        make_config(DLN, overrides={"depth": 4, "init_scale": 1e-4})
    with pytest.raises(LmechInputError, match="init: input should be 'random' or 'aligned'; got 'orthogonal'"):
        make_config(DLN, overrides={"init": "orthogonal"})


def test_scale_and_seed():
    assert make_config(DLN, "full").seeds == 5
    assert make_config(DLN, seed=4).seed == 4
    with pytest.raises(LmechInputError, match="scale must be one of quick, full"):
        make_config(DLN, "huge")
    with pytest.raises(LmechInputError, match="seed"):
        make_config(DLN, seed=-1)


def test_configs_are_frozen():
    cfg = make_config(DLN)
    with pytest.raises(ValidationError):
        cfg.depth = 3


def test_non_finite_and_boolean_values_are_refused():
    with pytest.raises(LmechInputError, match="lr: input should be a finite number"):
        make_config(DLN, overrides={"lr": "Infinity"})
    with pytest.raises(LmechInputError, match="depth must be int, not a boolean"):
        make_config(DLN, overrides={"depth": "true"})


def test_a_single_value_for_a_list_key_is_a_one_element_list():
    cfg = make_config(REGISTRY.get("balancedness"), overrides={"kinds": "relu"})
    assert cfg.kinds == ["relu"]
    with pytest.raises(LmechInputError, match="kinds must not repeat"):
        make_config(REGISTRY.get("balancedness"), overrides={"kinds": "linear,linear"})


def test_an_underflowing_init_scale_is_named():
    with pytest.raises(LmechInputError, match="init_scale=1e-200 makes the initial mode strength underflow"):
        make_config(DLN, overrides={"init_scale": "1e-200"})


def test_default_init_scale_depends_on_depth():
    assert make_config(DLN).scale == 1e-3
    deep = make_config(DLN, overrides={"depth": 4})
    assert 0.01 < deep.scale < 0.5  # the scale that starts the strongest mode at lam_min / 20
