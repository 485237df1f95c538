"""Predictions: pure functions of numbers and tensors, in float64, each citing its source."""

from lmech.theory.deep_linear import half_time, mode_trajectory, staircase_loss, time_to_reach

__all__ = ["half_time", "mode_trajectory", "staircase_loss", "time_to_reach"]
