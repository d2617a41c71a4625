"""Counts read off a model: non-zero parameters, sparsity, per-layer filters."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .masks import FILTER_MASK, masked_weight, weight_mask

_WEIGHTED = (nn.Conv2d, nn.Linear)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def nonzero_parameters(model: nn.Module) -> int:
    """Parameters that are not exactly zero, counting masked weights as zero."""
    total = 0
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            values = p.detach()
            if name == "weight" and weight_mask(module) is not None:
                values = values * weight_mask(module)
            total += int(torch.count_nonzero(values))
    return total


def prunable_weights(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _WEIGHTED)]


def sparsity(model: nn.Module) -> float:
    """Fraction of conv and linear weights that are zero."""
    zeros = total = 0
    for _, module in prunable_weights(model):
        weight = masked_weight(module).detach()  # what the forward pass uses
        zeros += weight.numel() - int(torch.count_nonzero(weight))
        total += weight.numel()
    return zeros / total if total else 0.0


def layer_report(model: nn.Module, original_filters: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Per conv/linear layer: name, kind, filters (before pruning), filters_pruned, filters_empty (filters
    without a single non-zero weight: the pruned ones, and those unstructured pruning emptied), sparsity."""
    original_filters = original_filters or {}
    rows = []
    for name, module in prunable_weights(model):
        weight = masked_weight(module).detach()  # what the forward pass uses
        current = weight.shape[0]
        mask = getattr(module, FILTER_MASK, None)
        kept = int(mask.sum()) if mask is not None else current
        filters = original_filters.get(name, current)
        rows.append(
            {
                "name": name,
                "kind": "conv" if isinstance(module, nn.Conv2d) else "linear",
                "filters": filters,
                "filters_pruned": filters - kept,
                "filters_empty": filters - current + int((weight.flatten(1) == 0).all(dim=1).sum()),
                "weights": weight.numel(),
                "sparsity": 1.0 - int(torch.count_nonzero(weight)) / weight.numel(),
            }
        )
    return rows


def emptied_filters(row: dict[str, Any]) -> int:
    """Filters of a :func:`layer_report` row that weight pruning, not filter pruning, left with no weight
    (0 for rows written before ``filters_empty`` existed)."""
    return max(0, row.get("filters_empty", 0) - row["filters_pruned"])


def empty_filter_notes(layers: list[dict[str, Any]]) -> dict[str, str]:
    """``{layer: line}`` for each layer that weight pruning left with whole filters at zero: those filters
    pass on only their bias."""
    notes = {}
    for row in layers:
        if (empty := emptied_filters(row)) > 0:
            notes[row["name"]] = (f"{row['name']}: {empty} of {row['filters']} filters have no weight left "
                                  f"({100 * row['sparsity']:.1f}% of the layer pruned)")
    return notes
