"""Which filters a pruning step removes, given one score per filter: the selection rules the
filter-pruning methods share (:class:`~intrain.methods.filter_pruning.FilterPruning`'s scopes, SFP's
per-layer zeroing). Each takes per-unit scores and kept masks (a unit is a layer, or a group of
coupled layers whose channel stands for ``weights[i]`` filters) and returns the indices to prune;
none ever empties a unit.
"""

from __future__ import annotations

import math

import torch

from .round_to import rounded_kept


def required_filters(original: int, fraction: float) -> int:
    return math.ceil(fraction * original - 1e-9)


def layer_choice(score: torch.Tensor, kept: torch.Tensor, original: int, fraction: float) -> torch.Tensor:
    """Indices to prune so the layer reaches ``fraction`` of its original filters (keeps ≥ 1)."""
    pruned_before = original - int(kept.sum())
    wanted = min(required_filters(original, fraction), original - 1) - pruned_before
    if wanted <= 0:
        return torch.empty(0, dtype=torch.long)
    candidates = kept.nonzero().flatten()
    order = torch.argsort(score[candidates], stable=True)
    return candidates[order[:wanted]]


def one_per_layer_choice(score: torch.Tensor, kept: torch.Tensor, original: int, fraction: float) -> torch.Tensor:
    """PWT's Algorithm 2: the layer's lowest-scored kept filter, while the layer is below ``fraction``
    of its original filters (keeps >= 1)."""
    if original - int(kept.sum()) >= min(required_filters(original, fraction), original - 1):
        return torch.empty(0, dtype=torch.long)
    candidates = kept.nonzero().flatten()
    return candidates[torch.argsort(score[candidates], stable=True)[:1]]


def layer_then_filter_choice(kept: list[torch.Tensor], originals: list[int], fraction: float, weights: list[int],
                             generator: torch.Generator) -> list[torch.Tensor]:
    """PWT's Algorithm 3: until ``fraction`` of all filters are pruned, draw a layer uniformly, then
    one of its kept filters uniformly (a layer down to one filter is not drawn: never empties a layer).
    ``weights`` as in :func:`global_choice`."""
    total = sum(o * w for o, w in zip(originals, weights))
    wanted = required_filters(total, fraction) - sum((o - int(k.sum())) * w for o, k, w in zip(originals, kept, weights))
    remaining = [k.nonzero().flatten().tolist() for k in kept]
    chosen: list[list[int]] = [[] for _ in kept]
    while wanted > 0:
        open_layers = [i for i, r in enumerate(remaining) if len(r) > 1]
        if not open_layers:
            break
        layer = open_layers[int(torch.randint(len(open_layers), (1,), generator=generator))]
        position = int(torch.randint(len(remaining[layer]), (1,), generator=generator))
        chosen[layer].append(remaining[layer].pop(position))
        wanted -= weights[layer]
    return [torch.tensor(c, dtype=torch.long) for c in chosen]


def rounded_choice(chosen: list[torch.Tensor], scores: list[torch.Tensor], kept: list[torch.Tensor],
                   originals: list[int], weights: list[int], fraction: float, round_to: int) -> list[torch.Tensor]:
    """``chosen`` with every unit's kept count a multiple of ``round_to``
    (:func:`~intrain.methods.round_to.rounded_kept`), its lowest-scored filters pruned."""
    current = [int(k.sum()) for k in kept]
    wanted = [c - int(idx.numel()) for c, idx in zip(current, chosen)]
    required = required_filters(sum(o * w for o, w in zip(originals, weights)), fraction)
    targets = rounded_kept(wanted, current, originals, weights, round_to, required)
    result = []
    for score, k, c, target in zip(scores, kept, current, targets):
        candidates = k.nonzero().flatten()
        result.append(candidates[torch.argsort(score[candidates], stable=True)[:c - target]])
    return result


def global_choice(
    scores: list[torch.Tensor], kept: list[torch.Tensor], originals: list[int], fraction: float,
    weights: list[int] | None = None,
) -> list[torch.Tensor]:
    """One ranking over all unpruned filters; never empties a layer. ``weights[i]`` is how many
    filters one channel of unit ``i`` stands for (the members of a coupled group; default 1)."""
    weights = weights if weights is not None else [1] * len(scores)
    total = sum(o * w for o, w in zip(originals, weights))
    wanted = required_filters(total, fraction) - sum((o - int(k.sum())) * w for o, k, w in zip(originals, kept, weights))
    chosen: list[list[int]] = [[] for _ in scores]
    if wanted <= 0:
        return [torch.empty(0, dtype=torch.long) for _ in scores]
    layer_of = torch.cat([torch.full((int(k.sum()),), i) for i, k in enumerate(kept)])
    index_of = torch.cat([k.nonzero().flatten() for k in kept])
    flat = torch.cat([s[k] for s, k in zip(scores, kept)])
    remaining = [int(k.sum()) for k in kept]
    for position in torch.argsort(flat, stable=True).tolist():
        layer = int(layer_of[position])
        if remaining[layer] <= 1:
            continue
        chosen[layer].append(int(index_of[position]))
        remaining[layer] -= 1
        wanted -= weights[layer]
        if wanted <= 0:
            break
    return [torch.tensor(c, dtype=torch.long) for c in chosen]
