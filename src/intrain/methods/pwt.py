"""PWT — pruning filters while training (Roy et al., Algorithms 1–3).

At the end of every pruning epoch, filters are pruned until the pruned fraction of all prunable
filters reaches the schedule's ``P`` (Algorithm 1's inner loop), lowest score first. The score is
one of the :mod:`intrain.criteria`; the ``scope`` is ``global`` (one ranking across layers, the
paper's loop over all conv layers) or ``layer`` (every layer pruned to ``P`` on its own).
No layer is ever emptied: each keeps at least one filter.

``layer`` is the default. The normalised L1 score (mean |w|) is not comparable across layers of a
He-initialised network: a layer's weights scale as sqrt(2 / fan_in), so a global ranking prunes the
layers of large fan-in first. Measured on LeNet-5 (Fashion-MNIST, 80% target): a global L1 ranking
put 49 of conv2's 50 filters at the bottom.

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
        scope: str = "layer",
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
        # layers whose filters are tied by residual additions, pruned together (names; found once)
        self.groups: list[list[str]] | None = None
        self._example_input: torch.Tensor | None = None  # one zero example, shaped like the inputs

    # ------------------------------------------------------------------ lifecycle
    def _install(self, stack: ExitStack) -> None:
        self.layers = find_prunable_layers(self.model, include_linear=self.include_linear)
        if not self.layers:
            raise ValueError("the model has no prunable layers (Conv2d, or Linear with include_linear)")
        for layer in self.layers:
            ensure_mask(layer)
            self._original.setdefault(layer.name, layer.num_filters)
        stack.enter_context(masked_gradients(self.layers))
        if self._example_input is None:
            # a closure, not a bound method: deepcopy(model) copies hooks' functions by reference
            handle = self.model.register_forward_pre_hook(lambda module, inputs: self._record_input(inputs))
            stack.callback(handle.remove)
        if self.criterion == "mean-activation":
            previous = self.activations
            self.activations = criteria.ActivationMeans([layer.activation_site for layer in self.layers])
            if previous is not None and all(s.numel() in (0, l.num_filters) for s, l in zip(previous.sums, self.layers)):
                self.activations.load_state_dict(previous.state_dict())
            stack.enter_context(self.activations.recording())

    def _record_input(self, inputs: tuple) -> None:
        """From a forward pre-hook: keep one zero example shaped like the model's input (for tracing)."""
        if self._example_input is None and inputs and torch.is_tensor(inputs[0]) and inputs[0].dim() > 0:
            x = inputs[0]
            self._example_input = torch.zeros((1, *x.shape[1:]), dtype=x.dtype, device=x.device)

    def coupled_layers(self) -> list[list[int]]:
        """Indices into :attr:`layers` of the groups whose filters are tied index for index (residual
        additions: a channel can only be removed when every member has it pruned), traced once with
        Torch-Pruning's dependency graph after the first forward pass; singletons until then."""
        if self.groups is None and self._example_input is not None:
            from ..compaction import coupled_groups

            self.groups = coupled_groups(self.model, self._example_input, [layer.name for layer in self.layers])
        position = {layer.name: i for i, layer in enumerate(self.layers)}
        if self.groups is None:
            return [[i] for i in range(len(self.layers))]
        groups = [[position[n] for n in names if n in position] for names in self.groups]
        groups = [g for g in groups if g]
        if any(len({self.layers[i].num_filters for i in g}) > 1 for g in groups):
            return [[i] for i in range(len(self.layers))]  # sizes diverged: cannot align indices
        return groups

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
        """Prune lowest-scored filters until at least ``fraction`` of all filters are pruned.

        Coupled layers (:meth:`coupled_layers`) are ranked as one unit: a channel's score is the mean
        of its members' scores, and pruning it prunes that filter in every member.
        """
        scores = [s.detach().float().cpu() for s in self.scores(epoch)]
        kept = [layer.mask.cpu() for layer in self.layers]
        groups = self.coupled_layers()
        unit_scores = [torch.stack([scores[i] for i in g]).mean(dim=0) for g in groups]
        unit_kept = [torch.stack([kept[i] for i in g]).any(dim=0) for g in groups]
        originals = [self._original[self.layers[g[0]].name] for g in groups]
        if self.scope == "layer":
            chosen = [_layer_choice(s, k, o, fraction) for s, k, o in zip(unit_scores, unit_kept, originals)]
        else:
            chosen = _global_choice(unit_scores, unit_kept, originals, fraction, [len(g) for g in groups])
        pruned = 0
        for group, idx in zip(groups, chosen):
            for i in group:
                fresh = idx[kept[i][idx]] if idx.numel() else idx
                prune_filters(self.layers[i], fresh, self.optimizer)
                pruned += int(fresh.numel())
        return pruned

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
    scores: list[torch.Tensor], kept: list[torch.Tensor], originals: list[int], fraction: float,
    weights: list[int] | None = None,
) -> list[torch.Tensor]:
    """One ranking over all unpruned filters; never empties a layer. ``weights[i]`` is how many
    filters one channel of unit ``i`` stands for (the members of a coupled group; default 1)."""
    weights = weights if weights is not None else [1] * len(scores)
    total = sum(o * w for o, w in zip(originals, weights))
    wanted = _required(total, fraction) - sum((o - int(k.sum())) * w for o, k, w in zip(originals, kept, weights))
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


def pwt(
    *,
    target: float,
    epochs: int,
    rate: float | None = None,
    initial: float = 0.0,
    every: int = 1,
    criterion: str = "l1",
    scope: str = "layer",
    include_linear: bool = False,
    seed: int = 0,
) -> FilterPruning:
    """PWT with the paper's schedule: ``initial`` growing by ``rate`` per epoch (default
    ``target / epochs``) up to ``target``, applied every ``every`` epochs (Mod-N)."""
    step = rate if rate is not None else (target - initial) / epochs

    def schedule(epochs_done: int) -> float:
        return pruned_fraction(epochs_done, target=target, rate=step, initial=initial, every=every)

    return FilterPruning(schedule, criterion=criterion, scope=scope, include_linear=include_linear, seed=seed)
