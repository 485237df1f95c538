"""Training loops, functional optimizers, vmap ensembles and the recorder."""

from lmech.train.fused import mlp_gradients
from lmech.train.loop import LOSSES, MemberOutcome, TrainResult, cross_entropy, gradients, mse, train
from lmech.train.optim import OPTIMIZERS, Optimizer, adam, gd, sgd
from lmech.train.recorder import Recorder, record_steps
from lmech.train.threads import torch_threads

__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "MemberOutcome",
    "Optimizer",
    "Recorder",
    "TrainResult",
    "adam",
    "cross_entropy",
    "gd",
    "gradients",
    "mlp_gradients",
    "mse",
    "record_steps",
    "sgd",
    "torch_threads",
    "train",
]
