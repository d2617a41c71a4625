"""Pruning methods: small objects with named event methods that any training loop can drive."""

from .base import PruneEvent, PruningMethod
from .baselines import dense, prt
from .pwt import FilterPruning, pwt

__all__ = ["FilterPruning", "PruneEvent", "PruningMethod", "dense", "prt", "pwt"]
