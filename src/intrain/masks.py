"""Structured (filter) masks: which layers can be pruned, and how a filter is pruned for good.

A pruned filter ``o`` of a conv (or an output neuron of a hidden linear layer) has

- ``weight[o]`` and ``bias[o]`` zeroed, and the following BatchNorm's ``weight[o]`` (γ) and
  ``bias[o]`` (β) zeroed too: in eval mode BatchNorm would otherwise turn the zero channel into the
  constant ``β − γ·μ/σ`` and feed it to the next layer;
- its gradients masked (tensor hooks, registered inside :func:`masked_gradients`) and the optimizer's
  per-parameter state for those entries cleared, so Adam's moments, SGD momentum or weight decay
  cannot revive it: it stays exactly zero through any number of steps;
- ``filter_mask[o] = False`` in a bool buffer named ``filter_mask`` on the layer, so the mask is part
  of the model's ``state_dict()``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import nn

from .errors import ConfigError

MASK_BUFFER = "filter_mask"
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass
class PrunableLayer:
    """A layer whose output filters can be pruned, with the BatchNorm that normalises its output."""

    name: str
    module: nn.Module  # nn.Conv2d or nn.Linear
    norm: nn.Module | None = None

    @property
    def kind(self) -> str:
        return "conv" if isinstance(self.module, nn.Conv2d) else "linear"

    @property
    def num_filters(self) -> int:
        return self.module.weight.shape[0]

    @property
    def mask(self) -> torch.Tensor:
        return getattr(self.module, MASK_BUFFER)

    @property
    def params(self) -> list[nn.Parameter]:
        """Parameters whose first dimension indexes this layer's filters."""
        found = [self.module.weight, self.module.bias]
        if self.norm is not None and self.norm.affine:
            found += [self.norm.weight, self.norm.bias]
        return [p for p in found if p is not None]

    @property
    def activation_site(self) -> nn.Module:
        """The module whose output is this layer's normalised feature map."""
        return self.norm if self.norm is not None else self.module


def find_prunable_layers(model: nn.Module, *, include_linear: bool = False) -> list[PrunableLayer]:
    """Conv layers (and, optionally, hidden linear layers) in definition order, each paired with the
    BatchNorm that directly follows it in module order when its size matches.

    The last linear layer (the classifier) is never prunable. Grouped and depthwise convolutions are
    refused: their filters are tied to input channels, which filter pruning would silently break.
    """
    leaves = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear) + _NORMS)]
    linears = [n for n, m in leaves if isinstance(m, nn.Linear)]
    classifier = linears[-1] if linears else None
    layers: list[PrunableLayer] = []
    for i, (name, module) in enumerate(leaves):
        if isinstance(module, nn.Conv2d):
            if module.groups != 1:
                raise ConfigError(
                    f"layer '{name}' is a grouped/depthwise convolution (groups={module.groups}); "
                    "filter pruning of grouped convolutions is not supported"
                )
        elif not (isinstance(module, nn.Linear) and include_linear and name != classifier):
            continue
        norm = None
        if i + 1 < len(leaves):
            next_module = leaves[i + 1][1]
            if isinstance(next_module, _NORMS) and next_module.num_features == module.weight.shape[0]:
                norm = next_module
        layers.append(PrunableLayer(name, module, norm))
    return layers


def ensure_mask(layer: PrunableLayer) -> torch.Tensor:
    """Register the ``filter_mask`` buffer (all kept) if the layer has none, and return it."""
    if not hasattr(layer.module, MASK_BUFFER) or getattr(layer.module, MASK_BUFFER).numel() != layer.num_filters:
        if hasattr(layer.module, MASK_BUFFER):
            delattr(layer.module, MASK_BUFFER)
        layer.module.register_buffer(
            MASK_BUFFER, torch.ones(layer.num_filters, dtype=torch.bool, device=layer.module.weight.device)
        )
    return layer.mask


@torch.no_grad()
def prune_filters(layer: PrunableLayer, indices: torch.Tensor, optimizer: torch.optim.Optimizer | None) -> None:
    """Prune the filters ``indices`` of ``layer`` for good (see the module docstring)."""
    if indices.numel() == 0:
        return
    indices = indices.to(layer.mask.device)
    layer.mask[indices] = False
    for param in layer.params:
        param[indices] = 0
        if optimizer is not None:
            for value in optimizer.state.get(param, {}).values():
                if torch.is_tensor(value) and value.shape == param.shape:
                    value[indices] = 0


@torch.no_grad()
def apply_masks(layers: Sequence[PrunableLayer]) -> None:
    """Zero every masked filter's parameters (after loading weights, say)."""
    for layer in layers:
        pruned = (~layer.mask).nonzero().flatten()
        for param in layer.params:
            param[pruned] = 0


def _mask_hook(mask: torch.Tensor):
    def hook(grad: torch.Tensor) -> torch.Tensor:
        return grad * mask.view(-1, *([1] * (grad.dim() - 1))).to(grad.dtype)

    return hook


@contextmanager
def masked_gradients(layers: Sequence[PrunableLayer]) -> Iterator[None]:
    """Within the block, gradients of pruned filters' parameters are zero."""
    handles = [p.register_hook(_mask_hook(layer.mask)) for layer in layers for p in layer.params]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
