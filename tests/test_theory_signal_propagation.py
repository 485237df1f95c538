"""The mean-field signal-propagation maps against closed forms (ReLU) and an independent quadrature (tanh)."""

import math

import numpy as np
import pytest

from lmech.theory.signal_propagation import fixed_point, signal_trajectory


def _tanh_maps(q, c, w2, b2):
    """One layer of the q- and c-maps by 2-d Gauss-Hermite (numpy's probabilists' rule, 200 points)."""
    z, w = np.polynomial.hermite_e.hermegauss(200)
    w = w / w.sum()
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    ww = np.outer(w, w)
    u = math.sqrt(q) * z1
    v = math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
    q_next = w2 * np.sum(ww * np.tanh(u) ** 2) + b2
    return q_next, (w2 * np.sum(ww * np.tanh(u) * np.tanh(v)) + b2) / q_next


def test_tanh_recursion_matches_an_independent_quadrature():
    w2, b2 = 3.0, 0.05
    traj = signal_trajectory(1.2, 1.2, 0.3, 6, activation="tanh", weight_std=math.sqrt(w2), bias_std=math.sqrt(b2))
    q, c = 1.2, 0.3
    for layer in range(1, 6):
        q, c = _tanh_maps(q, c, w2, b2)
        assert traj.q1[layer] == pytest.approx(q, rel=1e-8)
        assert traj.q2[layer] == pytest.approx(q, rel=1e-8)
        assert traj.c[layer] == pytest.approx(c, abs=1e-8)


def test_relu_maps_in_closed_form():
    """q' = W^2 q / 2 + b^2; c' from the arc-cosine kernel (Cho & Saul 2009): E[relu(u) relu(v)] =
    q (sin t + (pi - t) cos t) / (2 pi), t = arccos c."""
    w2, b2, q, c = 1.0, 0.1, 1.1, (0.3 + 0.1) / 1.1
    traj = signal_trajectory(q, q, c, 4, activation="relu", weight_std=1.0, bias_std=math.sqrt(b2))
    for layer in range(1, 4):
        t = math.acos(c)
        cross = w2 * q * (math.sin(t) + (math.pi - t) * math.cos(t)) / (2 * math.pi) + b2
        q = w2 * q / 2 + b2
        c = cross / q
        assert traj.q1[layer] == pytest.approx(q, rel=1e-12)
        assert traj.c[layer] == pytest.approx(c, abs=1e-12)


def test_relu_fixed_point_and_chi1():
    """q* = b^2 / (1 - W^2 / 2) and chi_1 = W^2 E[step(u)^2] = W^2 / 2; ordered phase: c* = 1."""
    fp = fixed_point(activation="relu", weight_std=1.0, bias_std=math.sqrt(0.1))
    assert fp.q == pytest.approx(0.2, rel=1e-9)
    assert fp.chi1 == pytest.approx(0.5, rel=1e-9)
    assert fp.c == pytest.approx(1.0, abs=1e-6)


def test_tanh_phases_on_either_side_of_chi1_equal_one():
    order = fixed_point(activation="tanh", weight_std=math.sqrt(0.8), bias_std=math.sqrt(0.05))
    chaos = fixed_point(activation="tanh", weight_std=math.sqrt(3.0), bias_std=math.sqrt(0.05))
    assert order.chi1 < 1 and order.c == pytest.approx(1.0, abs=1e-6)
    assert chaos.chi1 > 1 and chaos.c < 0.5
    # the fixed point is a fixed point: one more layer does not move it
    again = signal_trajectory(
        chaos.q, chaos.q, chaos.c, 2, activation="tanh", weight_std=math.sqrt(3.0), bias_std=math.sqrt(0.05)
    )
    assert again.q1[1] == pytest.approx(chaos.q, rel=1e-9) and again.c[1] == pytest.approx(chaos.c, abs=1e-9)


def test_tanh_without_bias_sits_at_the_edge_when_weight_variance_is_one():
    """b = 0: q* = 0 and chi_1 = W^2 phi'(0)^2 = W^2, so W^2 = 1 is the boundary (Poole et al. 2016)."""
    below = fixed_point(activation="tanh", weight_std=math.sqrt(0.9), bias_std=0.0)
    assert below.q < 1e-9 and below.chi1 == pytest.approx(0.9, rel=1e-6)
