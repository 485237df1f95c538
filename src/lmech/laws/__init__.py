"""The registered laws, one module each, in almanac order (by pillar, then as the theory builds up)."""

from lmech.core import Registry
from lmech.laws import (
    adam_edge_of_stability,
    balancedness,
    coord_check,
    critical_batch,
    depth_transfer,
    dln_modes,
    double_descent,
    edge_of_stability,
    eigenlearning,
    feature_ansatz,
    finite_width,
    fit_recovery,
    grokking,
    kernel_scaling,
    lazy_rich,
    linear_scaling_rule,
    mup_transfer,
    neural_collapse,
    ntk_convergence,
    ntk_linearization,
    ntk_regression,
    quanta,
    random_labels,
    representation_convergence,
    signal_propagation,
    spectral_bias,
)

REGISTRY = Registry(
    [
        dln_modes.LAW,
        balancedness.LAW,
        eigenlearning.LAW,
        double_descent.LAW,
        ntk_convergence.LAW,
        ntk_regression.LAW,
        ntk_linearization.LAW,
        lazy_rich.LAW,
        signal_propagation.LAW,
        finite_width.LAW,
        kernel_scaling.LAW,
        fit_recovery.LAW,
        edge_of_stability.LAW,
        adam_edge_of_stability.LAW,
        quanta.LAW,
        coord_check.LAW,
        mup_transfer.LAW,
        depth_transfer.LAW,
        critical_batch.LAW,
        linear_scaling_rule.LAW,
        random_labels.LAW,
        representation_convergence.LAW,
        neural_collapse.LAW,
        feature_ansatz.LAW,
        spectral_bias.LAW,
        grokking.LAW,
    ]
)

__all__ = ["REGISTRY"]
