"""Pruning methods: small objects with named event methods that any training loop can drive."""

from .base import PruneEvent, PruningMethod
from .baselines import dense, prt
from .pwt import FilterPruning, pwt
from .ra import RedundancyAwareTraining, ra
from .scratch import FixedMasks, scratch

__all__ = ["FilterPruning", "FixedMasks", "PruneEvent", "PruningMethod", "RedundancyAwareTraining", "dense", "prt",
           "pwt", "ra", "scratch"]
