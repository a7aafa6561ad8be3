"""Token Pruning Modules, one file each; importing this package registers them all."""

from strategies.pruners import attention as _attention  # noqa: F401
from strategies.pruners import cluster as _cluster  # noqa: F401
from strategies.pruners import motion as _motion  # noqa: F401
from strategies.pruners import none as _none  # noqa: F401
from strategies.pruners import random as _random  # noqa: F401
from strategies.pruners import uniform as _uniform  # noqa: F401
from strategies.pruners.attention import AttentionPruner, attention_received
from strategies.pruners.cluster import ClusterPruner, dpc_knn_score
from strategies.pruners.motion import MotionPruner, motion_score
from strategies.pruners.none import KeepAllPruner
from strategies.pruners.random import RandomPruner
from strategies.pruners.uniform import UniformPruner, uniform_index

__all__ = [
    "AttentionPruner",
    "ClusterPruner",
    "KeepAllPruner",
    "MotionPruner",
    "RandomPruner",
    "UniformPruner",
    "attention_received",
    "dpc_knn_score",
    "motion_score",
    "uniform_index",
]
