"""Filter importance as objects: what a filter-pruning method ranks its filters by.

An :class:`Importance` gives one score per output filter of each of a method's prunable layers (lower
= pruned first) from the method it serves (:class:`~intrain.methods.filter_pruning.FilterPruning`:
its ``layers``, ``followers``, :meth:`coupled_layers` and :meth:`channel_graph`), and may install
hooks while the method is attached (:meth:`Importance.recording`) and keep state in checkpoints.
PWT, PRT and SFP take one as ``criterion=``, or a name (:func:`importance`, the command line's
``--criterion``); a user's own is a subclass with :meth:`Importance.scores`::

    class Taylor(Importance):
        name = "taylor"
        def scores(self, method, epoch):
            return [(layer.module.weight * layer.module.weight.grad).abs().flatten(1).mean(1)
                    for layer in method.layers]

    pwt(target=0.5, epochs=10, criterion=Taylor(), steps_per_epoch=len(loader))

- :class:`L1`: the PWT paper's normalised L1 norm (mean |w| of the filter), :func:`intrain.criteria.l1`.
- :class:`L2`: the filter's L2 norm (Soft Filter Pruning's).
- :class:`MeanActivation`: the mean post-ReLU activation over the training epoch (forward hooks).
- :class:`Random`: seeded uniform scores (pruning the lowest removes filters uniformly at random).
- :class:`GroupL1`: mean |w| over every parameter that goes with a channel: the filter, its bias and
  BatchNorm, the depthwise convs and BatchNorms that carry it and the input slices of every conv and
  linear that reads it, across residual additions and concatenations (one score per coupled group).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Iterator

import torch

from . import criteria, validation
from .errors import IntrainError

if TYPE_CHECKING:
    from .methods.filter_pruning import FilterPruning


class Importance:
    """Scores a filter-pruning method's filters; subclasses define :meth:`scores`."""

    name = "custom"  # how reports and PWT's scope ``paper`` name it (the built-in criteria: their names)

    def scores(self, method: "FilterPruning", epoch: int) -> list[torch.Tensor]:
        """One 1-D tensor per layer of ``method.layers``, one score per filter (lower = pruned first);
        ``epoch`` is the tick the method prunes at (an epoch, or an iteration when pruning by steps)."""
        raise NotImplementedError

    def recording(self, method: "FilterPruning") -> AbstractContextManager:
        """Hooks the criterion needs while ``method`` is attached (entered at attach, left at detach)."""
        return nullcontext()

    def on_epoch_begin(self, epoch: int) -> None:
        """A training epoch begins."""

    def state_dict(self) -> dict[str, Any]:
        """Entries added to the method's checkpoint state (none by default)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Read back what :meth:`state_dict` added (``state`` is the method's whole state)."""


class L1(Importance):
    """The mean |w| of each filter (the PWT paper's normalised L1 norm)."""

    name = "l1"

    def scores(self, method: "FilterPruning", epoch: int) -> list[torch.Tensor]:
        return [criteria.l1(layer.module.weight) for layer in method.layers]


class L2(Importance):
    """The L2 norm of each filter (Soft Filter Pruning's criterion)."""

    name = "l2"

    def scores(self, method: "FilterPruning", epoch: int) -> list[torch.Tensor]:
        return [criteria.l2(layer.module.weight) for layer in method.layers]


class Random(Importance):
    """Uniform scores drawn from a generator seeded by ``seed`` and the tick."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        validation.seed(seed)
        self.seed = seed

    def generator(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)

    def scores(self, method: "FilterPruning", epoch: int) -> list[torch.Tensor]:
        generator = self.generator(epoch)
        return [criteria.random_scores(layer.num_filters, generator) for layer in method.layers]


class MeanActivation(Importance):
    """Each filter's mean post-ReLU activation over the current training epoch
    (:class:`~intrain.criteria.ActivationMeans`, recorded while the method is attached)."""

    name = "mean-activation"

    def __init__(self) -> None:
        self.activations: criteria.ActivationMeans | None = None

    @contextmanager
    def recording(self, method: "FilterPruning") -> Iterator[None]:
        """Record on the method's layers; a re-attach keeps the epoch's sums where the widths still match."""
        previous = self.activations
        self.activations = criteria.ActivationMeans([layer.activation_site for layer in method.layers])
        if previous is not None and all(s.numel() in (0, layer.num_filters)
                                        for s, layer in zip(previous.sums, method.layers)):
            self.activations.load_state_dict(previous.state_dict())
        with self.activations.recording():
            yield

    def on_epoch_begin(self, epoch: int) -> None:
        if self.activations is not None:
            self.activations.reset()

    def scores(self, method: "FilterPruning", epoch: int) -> list[torch.Tensor]:
        means = self.activations.means() if self.activations is not None else []
        if not means or any(m.numel() == 0 for m in means):
            raise RuntimeError("mean-activation pruning needs a training epoch's forward passes first")
        return means

    def state_dict(self) -> dict[str, Any]:
        return {} if self.activations is None else {"activations": self.activations.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.activations is not None and "activations" in state:
            self.activations.load_state_dict(state["activations"])


class GroupL1(Importance):
    """Mean |w| over all the parameters that go with a channel, so that a channel whose removal takes
    large weights elsewhere (a wide reader, a residual partner) ranks above one that takes little.

    A channel's parameters are its filter in every layer of its coupled group (residual additions tie
    layers index for index), their biases and BatchNorm scales and shifts, the channels of the
    depthwise convs and BatchNorms that carry it, and the input slice of every conv and linear that
    reads it (a linear after a flatten: one column per spatial position), each counted once. The mean
    over that many weights makes channels of groups of different sizes comparable (as :class:`L1` is a
    mean). Readers are read from the method's dependency graph (:func:`intrain.channels.channel_readers`),
    again only when a layer's width changed (a compaction).
    """

    name = "group-l1"

    def __init__(self) -> None:
        self._readers: tuple[Any, tuple, tuple] | None = None  # (graph, layer shapes, channel readers)

    def __getstate__(self) -> dict[str, Any]:
        """A copy holds no dependency graph (it refers to the original model)."""
        return {**vars(self), "_readers": None}

    def scores(self, method: "FilterPruning", epoch: int) -> list[torch.Tensor]:
        layers = method.layers
        position = {layer.name: i for i, layer in enumerate(layers)}
        groups = method.coupled_layers()
        group_of = {i: g for g, members in enumerate(groups) for i in members}
        sums = [torch.zeros(layer.num_filters, device=layer.module.weight.device) for layer in layers]
        counts = [torch.zeros_like(s) for s in sums]
        for i, layer in enumerate(layers):
            for p in layer.params:
                _add_slices(sums[i], counts[i], p, 0, None)
        # (group, parameter) -> (parameter, dimension, [(channels, targets)]): a slice read by several
        # members of a coupled group (a BatchNorm after their sum) counts once
        slices: dict[tuple[int, int], tuple[torch.Tensor, int, list]] = {}
        for follower in method.followers:
            for layer, channels, targets in follower.sources:
                for p in follower.params:
                    entry = slices.setdefault((group_of[position[layer.name]], id(p)), (p, 0, []))
                    entry[2].append((channels, targets))
        modules = dict(method.model.named_modules())
        for reader in self._channel_readers(method):
            p = modules[reader.module].weight
            entry = slices.setdefault((group_of[position[reader.layer]], id(p)), (p, 1, []))
            entry[2].append((torch.tensor(reader.channels, dtype=torch.long),
                             torch.tensor(reader.targets, dtype=torch.long)))
        group_sums = [sum(sums[i] for i in members) for members in groups]
        group_counts = [sum(counts[i] for i in members) for members in groups]
        for (g, _), (p, dim, maps) in slices.items():
            pairs = torch.unique(torch.cat([torch.stack([c, t]) for c, t in maps], dim=1), dim=1)
            _add_slices(group_sums[g], group_counts[g], p, dim, pairs)
        result: list[torch.Tensor] = [torch.empty(0)] * len(layers)
        for members, total, count in zip(groups, group_sums, group_counts):
            for i in members:
                result[i] = total / count.clamp_min(1)
        return result

    def _channel_readers(self, method: "FilterPruning") -> tuple:
        from .channels import channel_readers

        graph = method.channel_graph()
        if graph is None:
            raise IntrainError("group-l1 reads the model's channel structure, traced on the first training forward "
                               "pass: run one (a training step), or attach with example_inputs, before pruning")
        shapes = tuple(tuple(layer.module.weight.shape) for layer in method.layers)
        if self._readers is None or self._readers[0] is not graph or self._readers[1] != shapes:
            groups = [[method.layers[i].name for i in members] for members in method.coupled_layers()]
            self._readers = (graph, shapes, channel_readers(graph, method.model, groups))
        return self._readers[2]


def _add_slices(sums: torch.Tensor, counts: torch.Tensor, p: torch.Tensor, dim: int,
                pairs: torch.Tensor | None) -> None:
    """Add to ``sums`` the sum of |p| over each slice of ``p`` along ``dim``, to ``counts`` its size:
    slice ``pairs[1, k]`` to channel ``pairs[0, k]`` (``None``: slice ``c`` to channel ``c``)."""
    magnitude = p.detach().abs().float().transpose(0, dim).reshape(p.shape[dim], -1)
    per_slice = magnitude.sum(dim=1).to(sums.device)
    size = float(magnitude.shape[1])
    if pairs is None:
        sums += per_slice
        counts += size
        return
    pairs = pairs.to(sums.device)
    sums.index_add_(0, pairs[0], per_slice[pairs[1]])
    counts.index_add_(0, pairs[0], torch.full((pairs.shape[1],), size, device=sums.device))


NAMES = {"l1": L1, "mean-activation": MeanActivation, "random": Random, "group-l1": GroupL1}


def check_criterion(criterion: Any) -> None:
    """A criterion's name (:data:`intrain.validation.CRITERIA`) or an :class:`Importance`; else a
    one-line :class:`~intrain.errors.ConfigError` as ``intrain train`` words it."""
    if not isinstance(criterion, Importance):
        validation.choice("criterion", criterion, validation.CRITERIA)


def importance(criterion: str | Importance, seed: int = 0) -> Importance:
    """The :class:`Importance` named ``criterion`` (``random`` seeded by ``seed``), or ``criterion``
    itself when it is one."""
    check_criterion(criterion)
    if isinstance(criterion, Importance):
        return criterion
    return Random(seed) if criterion == "random" else NAMES[criterion]()


def settings_name(criterion: str | Importance) -> str:
    """The criterion name a method's settings record: the name given, or an object's own where it is a
    built-in criterion's (e.g. ``mean-activation``, which PWT's scope ``paper`` runs as Algorithm 2);
    another object is treated as ``l1`` is."""
    check_criterion(criterion)
    if isinstance(criterion, str):
        return criterion
    return criterion.name if criterion.name in validation.CRITERIA else "l1"
