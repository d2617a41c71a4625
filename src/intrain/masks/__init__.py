"""Pruning masks, one module per kind, each a buffer on the layer it masks (so in ``state_dict()``):

- :mod:`intrain.masks.filters` — structured masks: a bool ``filter_mask`` per output filter
  (PWT, PRT), with the followers that carry a filter's channels and the gradient masking that
  keeps a pruned filter at zero;
- :mod:`intrain.masks.weights` — unstructured masks: a 0/1 ``weight_mask`` per weight (RA,
  scratch-train) and the masked forward pass, straight-through or not.

:data:`FILTER_MASK` and :data:`WEIGHT_MASK` are the buffers' names, the only spelling of them in
the package: state_dict keys are ``<layer>.filter_mask`` and ``<layer>.weight_mask``.
"""

from .filters import (FILTER_MASK, Follower, PrunableLayer, ensure_mask, find_prunable_layers, follower_channels,
                      is_depthwise, masked_gradients, prune_filters, sync_followers)
from .weights import WEIGHT_MASK, ensure_weight_mask, mask_sparsity, masked_forward, masked_weight, weight_mask

__all__ = [
    "FILTER_MASK", "WEIGHT_MASK",
    "Follower", "PrunableLayer", "ensure_mask", "find_prunable_layers", "follower_channels",
    "is_depthwise", "masked_gradients", "prune_filters", "sync_followers",
    "ensure_weight_mask", "mask_sparsity", "masked_forward", "masked_weight", "weight_mask",
]
