"""Measurements of a training state, each an ``Observable(init, measure)`` made by a factory."""

from lmech.observables.basic import accuracy, held_out_loss
from lmech.observables.conservation import invariant_drift, linear_invariants, neuron_invariants
from lmech.observables.linear import end_to_end_map, mode_strengths
from lmech.observables.ntk import empirical_ntk, module_ntk

__all__ = [
    "accuracy",
    "empirical_ntk",
    "end_to_end_map",
    "held_out_loss",
    "invariant_drift",
    "linear_invariants",
    "mode_strengths",
    "module_ntk",
    "neuron_invariants",
]
