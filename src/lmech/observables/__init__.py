"""Measurements of a training state, each an ``Observable(init, measure)`` made by a factory."""

from lmech.observables.basic import accuracy, held_out_loss
from lmech.observables.collapse import collapse_metrics, neural_collapse
from lmech.observables.conservation import invariant_drift, linear_invariants, neuron_invariants
from lmech.observables.curvature import (
    Eigen,
    HessianOperator,
    PreconditionedOperator,
    hutchinson_trace,
    hvp,
    sharpness,
    top_eigenvalues,
)
from lmech.observables.feature_ansatz import agop, ansatz_scores, eigenspace_overlap, matrix_correlation
from lmech.observables.fourier import fourier_power
from lmech.observables.learnability import learnability, learnability_observable
from lmech.observables.linear import end_to_end_map, mode_strengths
from lmech.observables.noise import NoiseScale, noise_scale, per_example_gradients
from lmech.observables.ntk import empirical_ntk, module_ntk
from lmech.observables.regime import (
    feature_change,
    kernel_alignment,
    kernel_distance,
    parameter_movement,
    regime,
)
from lmech.observables.similarity import (
    CrossMoments,
    linear_cka,
    mutual_knn,
    null_baseline,
    procrustes,
    rbf_cka,
)

__all__ = [
    "CrossMoments",
    "Eigen",
    "HessianOperator",
    "NoiseScale",
    "PreconditionedOperator",
    "accuracy",
    "agop",
    "ansatz_scores",
    "collapse_metrics",
    "eigenspace_overlap",
    "empirical_ntk",
    "end_to_end_map",
    "feature_change",
    "fourier_power",
    "held_out_loss",
    "hutchinson_trace",
    "hvp",
    "invariant_drift",
    "kernel_alignment",
    "kernel_distance",
    "learnability",
    "learnability_observable",
    "linear_cka",
    "linear_invariants",
    "matrix_correlation",
    "mode_strengths",
    "module_ntk",
    "mutual_knn",
    "neural_collapse",
    "neuron_invariants",
    "noise_scale",
    "null_baseline",
    "parameter_movement",
    "per_example_gradients",
    "procrustes",
    "rbf_cka",
    "regime",
    "sharpness",
    "top_eigenvalues",
]
