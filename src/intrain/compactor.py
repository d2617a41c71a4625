"""Compaction that follows the prunes: one component for every training loop.

A pruning method masks filters; only removing them makes training cheaper. :class:`Compactor` owns
the whole step, in one place, for intrain's :class:`~intrain.engine.trainer.Trainer`, the Lightning
callback (:mod:`intrain.integrations.lightning`) and an own loop:

1. the method prunes (``on_step_end`` with step-granular pruning, ``on_epoch_end``);
2. compact (:func:`intrain.compaction.compact`): the pruned filters are removed physically, in place
   (the model's modules get new, smaller parameters); the optimizer's parameter groups point at them
   and its per-parameter state is sliced;
3. re-attach: the method's hooks move to the new parameters, with the compaction's dependency graph
   (no new trace);
4. re-wrap: what the step calls (DistributedDataParallel, the memory format) is rebuilt over the new
   parameters (:attr:`Compactor.wrapped`).

When: at every epoch-end event, and during the epoch after a step's prune once the filters it could
remove reach ``min_share`` of the filters the masked layers still hold (``0``: after every prune).
Measured in benchmarks/README.md ("In-epoch compaction"). An own loop calls the compactor where it
called the method::

    method.attach(model, optimizer, example_inputs=x[:1])
    compactor = Compactor(model, optimizer, method)
    for epoch in range(epochs):
        method.on_epoch_begin(epoch)
        for x, y in loader:
            loss = F.cross_entropy(compactor.wrapped(x), y); ...; loss.backward()
            method.on_before_optimizer_step()  # as without a compactor
            optimizer.step()
            compactor.on_step_end()          # instead of method.on_step_end()
        compactor.on_epoch_end(epoch)        # instead of method.on_epoch_end(epoch)
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
from torch import nn

from .compaction import CompactionResult, compact, masked_layers, removable_channels
from .errors import ConfigError
from .methods.base import PruneEvent, PruningMethod

DEFAULT_MIN_SHARE = 0.0  # compact after every prune: measured in benchmarks/README.md, "In-epoch compaction"


def _unwrapped(model: nn.Module) -> nn.Module:
    return model


class Compactor:
    """Removes ``method``'s pruned filters from ``model`` as training goes (see the module docstring).

    ``wrap`` builds what the training step calls from the model (default: the model itself): now, and
    again after every compaction; :attr:`wrapped` holds it. ``enabled=False`` drives the method alone
    (masked training). ``example_inputs``: a batch the model accepts, for the compaction's trace when
    the method holds no graph (default: the method's own example inputs).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, method: PruningMethod, *,
                 example_inputs: torch.Tensor | None = None, wrap: Callable[[nn.Module], nn.Module] | None = None,
                 min_share: float = DEFAULT_MIN_SHARE, enabled: bool = True) -> None:
        if not 0.0 <= min_share <= 1.0:
            raise ConfigError(f"min_share: a share of the filters in [0, 1], got {min_share}")
        self.model, self.optimizer, self.method = model, optimizer, method
        self.example_inputs = example_inputs
        self.wrap = wrap if wrap is not None else _unwrapped
        self.wrapped = self.wrap(model)
        self.min_share = min_share
        self.enabled = enabled
        self.compactions = 0  # compactions that removed filters, since construction
        self._epoch = _Totals()  # this epoch's compactions, reported with its prune event

    # ------------------------------------------------------------------ events
    def on_step_end(self) -> CompactionResult | None:
        """``method.on_step_end()``; after a prune, compact when enough is removable. Returns the
        compaction made, if any."""
        event = self.method.on_step_end()
        if event is None or not self.enabled or not self.due():
            return None
        return self.compact()

    def on_epoch_end(self, epoch: int) -> PruneEvent | None:
        """``method.on_epoch_end(epoch)``; after a prune, compact whatever is removable. The event's
        ``seconds`` then include the epoch's compactions and ``details["compaction"]`` sums them."""
        event = self.method.on_epoch_end(epoch)
        if event is not None and self.enabled:
            self.compact()
            totals, self._epoch = self._epoch, _Totals()
            event.seconds += totals.seconds
            event.details["compaction"] = totals.as_dict()
        return event

    # ------------------------------------------------------------------ the step itself
    def removable(self) -> tuple[int, int]:
        """(filters a compaction would remove now, filters the masked layers hold)."""
        groups = self.method.channel_groups()
        layers = masked_layers(self.model)
        if groups is None:
            groups = [[name] for name in layers]
        members = {group[0]: len(group) for group in groups if group}
        removable = sum(len(indices) * members[first] for first, indices in removable_channels(self.model, groups))
        modules = dict(self.model.named_modules())
        return removable, sum(modules[name].filter_mask.numel() for name in layers)

    def due(self) -> bool:
        """Whether the removable filters reach ``min_share`` of the filters held (and are not none)."""
        removable, held = self.removable()
        return removable > 0 and removable >= self.min_share * held

    def compact(self) -> CompactionResult:
        """Compact now: remove, remap the optimizer, re-attach the method, re-wrap (steps 2-4)."""
        start = time.perf_counter()
        if not masked_layers(self.model):  # no filter masks (weight pruning, dense): nothing to remove
            params = sum(p.numel() for p in self.model.parameters())
            return CompactionResult(params_before=params, params_after=params)
        example = self.example_inputs if self.example_inputs is not None else self.method.example_inputs
        if example is None:
            raise ConfigError("compaction traces the model with an example batch: give example_inputs, or run a "
                              "training step first (the method keeps one from the first forward pass)")
        result = compact(self.model, self.optimizer, example_inputs=example,
                         graph=self.method.channel_graph(), groups=self.method.channel_groups())
        if result.filters_removed:
            self.method.reattach(self.optimizer, graph=result.graph)
            self.wrapped = self.wrap(self.model)
            self.compactions += 1
        result.seconds = time.perf_counter() - start
        self._epoch.add(result)
        return result


class _Totals:
    """What an epoch's compactions removed, and their time."""

    def __init__(self) -> None:
        self.filters_removed, self.compactions, self.seconds = 0, 0, 0.0
        self.params_before: int | None = None
        self.params_after: int | None = None

    def add(self, result: CompactionResult) -> None:
        if self.params_before is None:
            self.params_before = result.params_before
        self.params_after = result.params_after
        self.filters_removed += result.filters_removed
        self.compactions += 1 if result.filters_removed else 0
        self.seconds += result.seconds

    def as_dict(self) -> dict[str, Any]:
        return {"filters_removed": self.filters_removed, "compactions": self.compactions,
                "params_before": self.params_before, "params_after": self.params_after, "seconds": self.seconds}
