"""Training loops, functional optimizers, vmap ensembles and the recorder."""

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
    "mse",
    "record_steps",
    "sgd",
    "torch_threads",
    "train",
]
