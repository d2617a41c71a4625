"""SFP — Soft Filter Pruning (He et al., IJCAI 2018), and the example of a method declared in one file.

At the end of every ``every``-th epoch, in every prunable layer, the ``target`` fraction of filters
with the lowest L2 norm is zeroed *softly*: the filter's kernel is set to zero, with no mask, no
gradient masking and no optimizer state cleared, so it keeps training, can grow back and leave the
lowest-norm set, which is chosen afresh at every pruning epoch. As in the paper only the kernel is
zeroed: zeroing the bias and the following BatchNorm's γ and β too (as a hard prune does) would cut
the filter's gradient behind a ReLU (its output would be exactly 0, where ReLU's gradient is 0) and
it could never come back. After the last epoch the lowest-norm filters are pruned for good (weight,
bias, γ and β zeroed, masked, optimizer state cleared, as PWT prunes: :mod:`intrain.masks`), so
compaction and ``intrain export`` remove them. The model trains at full size until then: its
training cost is counted so (cost mode ``full``).

Filters are scored by :class:`~intrain.importance.L2`; layers tied by residual additions are scored
and zeroed as one unit (the mean of their members' L2 norms), as :class:`~intrain.methods.filter_pruning.FilterPruning`, whose channel tracing, masks and compaction
support this class reuses. Nothing beyond the weights needs saving to resume: which filters are zero
is in the model's state.

Adding a method to intrain takes one file like this one: a :class:`~intrain.methods.base.PruningMethod`
(events), a frozen config dataclass with a help text per field (its command-line flags and YAML
keys), and a :class:`~intrain.methods.registry.MethodSpec` registered at import, plus its import in
``intrain/methods/__init__.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .. import validation
from ..criteria import l2 as filter_l2  # the L2 norm of each filter (this module's public name for it)
from ..errors import ConfigError
from ..importance import L2
from ..masks import PrunableLayer
from .base import PruneEvent
from .filter_pruning import FilterPruning
from .registry import MethodConfig, MethodSpec, RunContext, register
from .selection import layer_choice


@torch.no_grad()
def zero_filters(layer: PrunableLayer, indices: torch.Tensor) -> None:
    """Zero the kernels of filters ``indices`` of ``layer``, nothing else: they keep their gradients
    and optimizer state, so they can grow back (see the module docstring)."""
    layer.module.weight[indices.to(layer.module.weight.device)] = 0


class SoftFilterPruning(FilterPruning):
    """Soft Filter Pruning: the lowest-L2 ``target`` fraction of each layer's filters zeroed at the end
    of every ``every``-th epoch, still trained; pruned for good after epoch ``epochs``."""

    name = "sfp"

    def __init__(self, *, target: float, epochs: int, every: int = 1, include_linear: bool = False,
                 seed: int = 0) -> None:
        sfp_arguments(target, epochs, every)
        super().__init__(lambda epochs_done: 0.0, criterion=L2(), scope="layer", include_linear=include_linear,
                         seed=seed)
        self.target, self.epochs, self.every = target, epochs, every

    def on_epoch_end(self, epoch: int) -> PruneEvent | None:
        """Zero the lowest-L2 filters (a pruning epoch), or prune them for good (the last epoch)."""
        self._require_model()
        last = epoch + 1 >= self.epochs
        if not last and (epoch + 1) % self.every:
            return None
        start = time.perf_counter()
        count = self.prune_to(self.target, epoch) if last else self.zero_lowest(epoch)
        return PruneEvent(epoch, self.pruned_filter_fraction(), count, time.perf_counter() - start,
                          {"soft": not last})

    def zero_lowest(self, epoch: int) -> int:
        """Zero, softly, the ``target`` fraction of lowest-L2 filters of every layer (coupled layers as
        one unit); returns how many filters were zeroed."""
        scores = [s.detach().float().cpu() for s in self.scores(epoch)]
        count = 0
        for group in self.coupled_layers():
            unit = torch.stack([scores[i] for i in group]).mean(dim=0)
            kept = torch.stack([self.layers[i].mask.cpu() for i in group]).any(dim=0)
            chosen = layer_choice(unit, kept, self._original[self.layers[group[0]].name], self.target)
            for i in group:
                zero_filters(self.layers[i], chosen)
                count += int(chosen.numel())
        return count

    def pruned_filter_fraction(self) -> float:
        """The fraction of filters that are zero now, softly or for good."""
        if not self.layers:
            return 0.0
        total = sum(self._original[layer.name] for layer in self.layers)
        alive = sum(int((layer.mask & layer.module.weight.detach().flatten(1).ne(0).any(dim=1)).sum())
                    for layer in self.layers)
        return 1.0 - alive / total


def sfp_arguments(target: float, epochs: int, every: int) -> None:
    """SFP's settings, checked as ``intrain train`` checks them."""
    sfp_settings(target, every)
    validation.whole("epochs", epochs)
    validation.at_least("epochs", epochs, 1)
    if every > epochs:  # only the last epoch's prune would happen: every does nothing
        raise ConfigError(f"every: zeroing every {every} epochs never happens in {epochs} epochs "
                          "(the filters are removed after the last); use at most the epochs")


def sfp_settings(target: float, every: int) -> None:
    """The settings that do not depend on the run."""
    validation.number("target", target)
    validation.fraction("target", target)
    validation.whole("every", every)
    validation.at_least("every", every, 1)


def sfp(*, target: float = 0.3, epochs: int, every: int = 1, include_linear: bool = False,
        seed: int = 0) -> SoftFilterPruning:
    """Soft Filter Pruning of ``target`` of every layer's filters over a run of ``epochs`` epochs."""
    return SoftFilterPruning(target=target, epochs=epochs, every=every, include_linear=include_linear, seed=seed)


# ---------------------------------------------------------------------- the registry's entry
@dataclass(frozen=True)
class SFPConfig(MethodConfig):
    target: float = field(default=0.3, metadata={"help": "fraction of each layer's filters zeroed (lowest L2), in [0, 1)"})
    every: int = field(default=1, metadata={"help": "zero the filters at the end of every N-th epoch"})

    def validate(self) -> None:
        sfp_settings(self.target, self.every)


def _build(c: SFPConfig, run: RunContext) -> SoftFilterPruning:
    return sfp(target=c.target, epochs=run.config.epochs, every=c.every, seed=run.config.seed)


def _label(summary: dict, config: dict) -> str:
    target, every = summary.get("target", config.get("target")), config.get("every") or 1
    text = f"SFP {target:.0%}" if target is not None else "SFP"
    return text + (f" every {every}" if every > 1 else "")


SPEC = register(MethodSpec(
    "sfp", SFPConfig, _build, "soft filter pruning (He et al.): the lowest-L2 filters zeroed each epoch, "
    "still trained; removed at the end", structured=True, cost_mode="full", label=_label,
    check=lambda c, run: sfp_arguments(c.target, run.epochs, c.every), last_prune_epoch=lambda c, run: run.epochs))
