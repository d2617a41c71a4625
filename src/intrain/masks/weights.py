"""Unstructured (weight) masks: a 0/1 mask per weight and the masked forward pass.

A weight-masked conv or linear layer keeps its dense ``weight`` Parameter (same state_dict key, same
optimizer entry) and a 0/1 buffer ``weight_mask`` of the weight's shape and dtype (1 = kept), so
both are saved and restored with the model. While a method is attached, the layer computes with
``weight ⊙ weight_mask`` (:func:`masked_forward`):

- ``straight_through=True`` (RA, Dynamic Network Surgery's recovery): the gradient with respect to
  ``W ⊙ T`` is applied to *all* of ``W``, so pruned weights keep learning and can come back;
- ``straight_through=False`` (scratch-train, fixed masks): an ordinary product, so a pruned weight
  gets zero gradient and stays exactly where it is.

The masked forward is installed on the layer instance (``module.forward``), not with
``torch.nn.utils.parametrize``, which would rename the ``weight`` key that saved runs rely on.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

WEIGHT_MASK = "weight_mask"


class _StraightThroughMask(torch.autograd.Function):
    """``W ⊙ T`` forward; the gradient with respect to ``W ⊙ T`` passes to all of ``W`` unchanged."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return weight * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def weight_mask(module: nn.Module) -> torch.Tensor | None:
    """The layer's ``weight_mask`` buffer, or None."""
    return getattr(module, WEIGHT_MASK, None)


def masked_weight(module: nn.Module, *, straight_through: bool = False) -> torch.Tensor:
    """``W ⊙ T``, the weight the masked forward computes with (``W`` when the layer has no mask):
    straight-through for RA (recovery), an ordinary product (pruned gradient = 0) otherwise."""
    mask = weight_mask(module)
    if mask is None:
        return module.weight
    if straight_through:
        return _StraightThroughMask.apply(module.weight, mask)
    return module.weight * mask


def _masked_forward(module: nn.Module, straight_through: bool, x: torch.Tensor) -> torch.Tensor:
    weight = masked_weight(module, straight_through=straight_through)
    if isinstance(module, nn.Conv2d):
        return module._conv_forward(x, weight, module.bias)
    return F.linear(x, weight, module.bias)


@contextmanager
def masked_forward(modules: Sequence[nn.Module], *, straight_through: bool = True) -> Iterator[None]:
    """Within the block, each Conv2d/Linear in ``modules`` computes with ``weight ⊙ weight_mask``."""
    for module in modules:
        module.forward = partial(_masked_forward, module, straight_through)
    try:
        yield
    finally:
        for module in modules:
            if "forward" in vars(module):
                del module.forward


def ensure_weight_mask(module: nn.Module) -> torch.Tensor:
    """The layer's ``weight_mask`` buffer: 1 = kept, 0 = pruned, in the weight's dtype (it follows the
    module through ``.to()``/``.half()``, and ``W * T`` stays a same-dtype product). Registered
    all-ones if missing; converted if of another dtype."""
    mask = weight_mask(module)
    if mask is None or mask.shape != module.weight.shape or mask.dtype != module.weight.dtype:
        kept = torch.ones_like(module.weight) if mask is None or mask.shape != module.weight.shape else mask
        if mask is not None:
            delattr(module, WEIGHT_MASK)
        module.register_buffer(WEIGHT_MASK, kept.to(module.weight.dtype))
    return getattr(module, WEIGHT_MASK)


def mask_sparsity(module: nn.Module) -> float:
    """The pruned fraction of the layer's ``weight_mask``."""
    mask = getattr(module, WEIGHT_MASK)
    return 1.0 - int(mask.count_nonzero()) / mask.numel()
