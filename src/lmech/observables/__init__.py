"""Measurements of a training state, each an ``Observable(init, measure)`` made by a factory."""

from lmech.observables.basic import accuracy, held_out_loss
from lmech.observables.conservation import invariant_drift, linear_invariants, neuron_invariants
from lmech.observables.linear import end_to_end_map, mode_strengths

__all__ = [
    "accuracy",
    "end_to_end_map",
    "held_out_loss",
    "invariant_drift",
    "linear_invariants",
    "mode_strengths",
    "neuron_invariants",
]
