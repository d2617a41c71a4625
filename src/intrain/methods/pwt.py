"""PWT — pruning filters while training (Roy et al., Algorithms 1–3).

At the end of every pruning epoch, filters are pruned until the pruned fraction of all prunable
filters reaches the schedule's ``P`` (Algorithm 1's inner loop), lowest score first. The score is
one of the :mod:`intrain.criteria`; the ``scope`` is ``global`` (one ranking across layers, the
paper's loop over all conv layers) or ``layer`` (every layer pruned to ``P`` on its own).
No layer is ever emptied: each keeps at least one filter.

The same class runs the prune-then-retrain baseline (PRT-E), which is just another schedule; see
:mod:`intrain.methods.baselines`.
"""

from __future__ import annotations

import math
import time
from contextlib import ExitStack
from typing import Any, Callable

import torch

from .. import criteria
from ..masks import PrunableLayer, ensure_mask, find_prunable_layers, masked_gradients, prune_filters
from ..schedules import pruned_fraction
from .base import PruneEvent, PruningMethod

Schedule = Callable[[int], float]  # epochs done -> required pruned fraction


class FilterPruning(PruningMethod):
    """Structured filter pruning driven by a schedule of pruned fractions."""

    name = "pwt"

    def __init__(
        self,
        schedule: Schedule,
        *,
        criterion: str = "l1",
        scope: str = "global",
        include_linear: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if criterion not in ("l1", "mean-activation", "random"):
            raise ValueError(f"unknown criterion '{criterion}'")
        if scope not in ("global", "layer"):
            raise ValueError(f"unknown scope '{scope}'")
        self.schedule = schedule
        self.criterion = criterion
        self.scope = scope
        self.include_linear = include_linear
        self.seed = seed
        self.layers: list[PrunableLayer] = []
        self._original: dict[str, int] = {}
        self.activations: criteria.ActivationMeans | None = None

    # ------------------------------------------------------------------ lifecycle
    def _install(self, stack: ExitStack) -> None:
        self.layers = find_prunable_layers(self.model, include_linear=self.include_linear)
        if not self.layers:
            raise ValueError("the model has no prunable layers (Conv2d, or Linear with include_linear)")
        for layer in self.layers:
            ensure_mask(layer)
            self._original.setdefault(layer.name, layer.num_filters)
        stack.enter_context(masked_gradients(self.layers))
        if self.criterion == "mean-activation":
            previous = self.activations
            self.activations = criteria.ActivationMeans([layer.activation_site for layer in self.layers])
            if previous is not None and all(s.numel() in (0, l.num_filters) for s, l in zip(previous.sums, self.layers)):
                self.activations.load_state_dict(previous.state_dict())
            stack.enter_context(self.activations.recording())

    # ------------------------------------------------------------------ events
    def on_epoch_begin(self, epoch: int) -> None:
        super().on_epoch_begin(epoch)
        if self.activations is not None:
            self.activations.reset()

    def on_epoch_end(self, epoch: int) -> PruneEvent | None:
        self._require_model()
        required = self.schedule(epoch + 1)
        if required <= self.pruned_filter_fraction() + 1e-12:
            return None
        start = time.perf_counter()
        pruned = self.prune_to(required, epoch)
        return PruneEvent(epoch, self.pruned_filter_fraction(), pruned, time.perf_counter() - start)

    # ------------------------------------------------------------------ pruning
    def scores(self, epoch: int) -> list[torch.Tensor]:
        """One score per filter and layer (lower = pruned first)."""
        if self.criterion == "l1":
            return [criteria.l1(layer.module.weight) for layer in self.layers]
        if self.criterion == "mean-activation":
            means = self.activations.means()
            if any(m.numel() == 0 for m in means):
                raise RuntimeError("mean-activation pruning needs a training epoch's forward passes first")
            return means
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return [criteria.random_scores(layer.num_filters, generator) for layer in self.layers]

    def prune_to(self, fraction: float, epoch: int = 0) -> int:
        """Prune lowest-scored filters until at least ``fraction`` of all filters are pruned."""
        scores = [s.detach().float().cpu() for s in self.scores(epoch)]
        kept = [layer.mask.cpu() for layer in self.layers]
        originals = [self._original[layer.name] for layer in self.layers]
        if self.scope == "layer":
            chosen = [_layer_choice(s, k, o, fraction) for s, k, o in zip(scores, kept, originals)]
        else:
            chosen = _global_choice(scores, kept, originals, fraction)
        for layer, idx in zip(self.layers, chosen):
            prune_filters(layer, idx, self.optimizer)
        return sum(int(idx.numel()) for idx in chosen)

    # ------------------------------------------------------------------ reporting and state
    def original_filters(self) -> dict[str, int]:
        return dict(self._original)

    def pruned_filter_fraction(self) -> float:
        if not self.layers:
            return 0.0
        total = sum(self._original[layer.name] for layer in self.layers)
        kept = sum(int(layer.mask.sum()) for layer in self.layers)
        return 1.0 - kept / total

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["original"] = dict(self._original)
        if self.activations is not None:
            state["activations"] = self.activations.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._original.update({str(k): int(v) for k, v in state.get("original", {}).items()})
        if self.activations is not None and "activations" in state:
            self.activations.load_state_dict(state["activations"])


def _required(original: int, fraction: float) -> int:
    return math.ceil(fraction * original - 1e-9)


def _layer_choice(score: torch.Tensor, kept: torch.Tensor, original: int, fraction: float) -> torch.Tensor:
    """Indices to prune so the layer reaches ``fraction`` of its original filters (keeps ≥ 1)."""
    pruned_before = original - int(kept.sum())
    wanted = min(_required(original, fraction), original - 1) - pruned_before
    if wanted <= 0:
        return torch.empty(0, dtype=torch.long)
    candidates = kept.nonzero().flatten()
    order = torch.argsort(score[candidates], stable=True)
    return candidates[order[:wanted]]


def _global_choice(
    scores: list[torch.Tensor], kept: list[torch.Tensor], originals: list[int], fraction: float
) -> list[torch.Tensor]:
    """One ranking over all unpruned filters; never empties a layer."""
    total = sum(originals)
    wanted = _required(total, fraction) - (total - sum(int(k.sum()) for k in kept))
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
        wanted -= 1
        if wanted == 0:
            break
    return [torch.tensor(c, dtype=torch.long) for c in chosen]


def pwt(
    *,
    target: float,
    epochs: int,
    rate: float | None = None,
    initial: float = 0.0,
    every: int = 1,
    criterion: str = "l1",
    scope: str = "global",
    include_linear: bool = False,
    seed: int = 0,
) -> FilterPruning:
    """PWT with the paper's schedule: ``initial`` growing by ``rate`` per epoch (default
    ``target / epochs``) up to ``target``, applied every ``every`` epochs (Mod-N)."""
    step = rate if rate is not None else (target - initial) / epochs

    def schedule(epochs_done: int) -> float:
        return pruned_fraction(epochs_done, target=target, rate=step, initial=initial, every=every)

    return FilterPruning(schedule, criterion=criterion, scope=scope, include_linear=include_linear, seed=seed)
