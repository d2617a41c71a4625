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

A depthwise convolution (``groups == in_channels == out_channels``) has no filters of its own to
choose: its channel ``c`` filters channel ``c`` of its input only. It is a :class:`Follower` of the
layers that produce its input: when their filter is pruned, the depthwise channel's weight and bias
and its BatchNorm's γ/β are zeroed and masked too (otherwise the BatchNorm's β would revive the
channel), and compaction removes them together. A BatchNorm after a concatenation (DenseNet) follows
the layers of the concatenated branches the same way. Which channels follow which filters is traced
with Torch-Pruning's dependency graph (:func:`intrain.channels.channel_structure_in_graph`).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import nn

from ..errors import ConfigError

FILTER_MASK = "filter_mask"
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def is_depthwise(module: nn.Module) -> bool:
    """A depthwise convolution: one filter per input channel (``groups == in == out > 1``)."""
    return (isinstance(module, nn.Conv2d) and module.groups > 1
            and module.groups == module.in_channels == module.out_channels)


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
        return getattr(self.module, FILTER_MASK)

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

    The last linear layer (the classifier) is never prunable. Depthwise convolutions are not
    prunable layers: they follow their input's filters (see the module docstring). Other grouped
    convolutions (``1 < groups``, ResNeXt-style) are refused: a filter of theirs sees only its
    group's input channels, so removing channels would have to keep every group the same size.
    """
    leaves = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear) + _NORMS)]
    linears = [n for n, m in leaves if isinstance(m, nn.Linear)]
    classifier = linears[-1] if linears else None
    layers: list[PrunableLayer] = []
    for i, (name, module) in enumerate(leaves):
        if isinstance(module, nn.Conv2d):
            if is_depthwise(module):
                continue
            if module.groups != 1:
                raise ConfigError(
                    f"layer '{name}' is a grouped convolution (groups={module.groups}, {module.in_channels} "
                    f"input and {module.out_channels} output channels): filter pruning supports ordinary "
                    "(groups=1) and depthwise (groups = input = output channels) convolutions only; "
                    "weight pruning (method ra) supports any convolution"
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


@dataclass
class Follower:
    """A module with per-channel parameters but no filters to choose (a depthwise conv, a BatchNorm
    after a depthwise conv or a concatenation) whose channels carry prunable layers' filters.

    ``sources`` are ``(layer, layer channels, follower channels)``: channel ``targets[k]`` carries
    filter ``channels[k]`` of ``layer``. A follower channel is pruned when every filter it carries is
    (coupled layers are pruned together); channels that carry none (e.g. the network input
    concatenated) are never pruned. ``mask`` (True = kept) is kept up to date by
    :func:`sync_followers`; it is not a buffer, it derives from the layers' masks.
    """

    name: str
    module: nn.Module  # a depthwise nn.Conv2d or a BatchNorm
    sources: list[tuple[PrunableLayer, torch.Tensor, torch.Tensor]]
    mask: torch.Tensor

    @property
    def params(self) -> list[nn.Parameter]:
        """Parameters whose first dimension indexes the follower's channels."""
        found = [getattr(self.module, "weight", None), getattr(self.module, "bias", None)]
        return [p for p in found if isinstance(p, nn.Parameter)]


def follower_channels(module: nn.Module) -> int:
    return module.weight.shape[0] if isinstance(module, nn.Conv2d) else module.num_features


def _follower_kept(follower: Follower) -> torch.Tensor:
    """bool per follower channel: kept unless every filter it carries is pruned."""
    carried = torch.zeros_like(follower.mask)
    kept = torch.zeros_like(follower.mask)
    for layer, channels, targets in follower.sources:
        targets = targets.to(kept.device)
        carried[targets] = True
        kept[targets[layer.mask[channels.to(layer.mask.device)].to(kept.device)]] = True
    return kept | ~carried


def sync_followers(followers: Sequence[Follower], optimizer: torch.optim.Optimizer | None) -> None:
    """Prune (zero, mask, clear optimizer state of) every follower channel whose filters are all pruned."""
    for follower in followers:
        newly = (follower.mask & ~_follower_kept(follower)).nonzero().flatten()
        prune_filters(follower, newly, optimizer)


def ensure_mask(layer: PrunableLayer) -> torch.Tensor:
    """Register the ``filter_mask`` buffer (all kept) if the layer has none, and return it."""
    if not hasattr(layer.module, FILTER_MASK) or getattr(layer.module, FILTER_MASK).numel() != layer.num_filters:
        if hasattr(layer.module, FILTER_MASK):
            delattr(layer.module, FILTER_MASK)
        layer.module.register_buffer(
            FILTER_MASK, torch.ones(layer.num_filters, dtype=torch.bool, device=layer.module.weight.device)
        )
    return layer.mask


@torch.no_grad()
def prune_filters(layer: PrunableLayer | Follower, indices: torch.Tensor, optimizer: torch.optim.Optimizer | None) -> None:
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


def _mask_hook(mask: torch.Tensor):
    def hook(grad: torch.Tensor) -> torch.Tensor:
        return grad * mask.view(-1, *([1] * (grad.dim() - 1))).to(grad.dtype)

    return hook


@contextmanager
def masked_gradients(layers: Sequence[PrunableLayer | Follower]) -> Iterator[None]:
    """Within the block, gradients of pruned filters' parameters are zero."""
    handles = [p.register_hook(_mask_hook(layer.mask)) for layer in layers for p in layer.params]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
