"""Predictions: pure functions of numbers and tensors, in float64, each citing its source."""

from lmech.theory.deep_linear import half_time, mode_trajectory, staircase_loss, time_to_reach
from lmech.theory.eigenlearning import EigenlearningResult, effective_regularization, eigenlearning, kernel_eigensystem
from lmech.theory.kernel_regression import LinearizedDynamics, kernel_ridge, linearized_dynamics
from lmech.theory.kernels import Kernels, kernels, nngp, ntk
from lmech.theory.random_features import RandomFeatureResult, random_feature_regression

__all__ = [
    "EigenlearningResult",
    "Kernels",
    "LinearizedDynamics",
    "RandomFeatureResult",
    "effective_regularization",
    "eigenlearning",
    "half_time",
    "kernel_eigensystem",
    "kernel_ridge",
    "kernels",
    "linearized_dynamics",
    "mode_trajectory",
    "nngp",
    "ntk",
    "random_feature_regression",
    "staircase_loss",
    "time_to_reach",
]
