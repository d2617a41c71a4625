"""Pruning methods: small objects with named event methods that any training loop can drive.

Importing this package registers every method (:mod:`intrain.methods.registry`), in this order.
"""

from . import registry
from .base import PruneEvent, PruningMethod
from .dense import dense
from .filter_pruning import FilterPruning
from .pwt import pwt
from .prt import prt
from .ra import RedundancyAwareTraining, ra
from .scratch import FixedMasks, scratch
from .sfp import SoftFilterPruning, sfp
from .slim import NetworkSlimming, slim

__all__ = ["FilterPruning", "FixedMasks", "NetworkSlimming", "PruneEvent", "PruningMethod", "RedundancyAwareTraining",
           "SoftFilterPruning", "dense", "prt", "pwt", "ra", "registry", "scratch", "sfp", "slim"]
