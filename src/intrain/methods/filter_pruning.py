"""What every filter-pruning method shares (PWT, PRT, SFP): :class:`FilterPruning`, which scores
filters, prunes the lowest ones to a schedule's fraction, masks them and follows compaction.

The score is an :class:`~intrain.importance.Importance` (``criterion``: its name, or the object);
the ``scope`` is ``global`` (one ranking across layers, PWT's Algorithm 1 loop over all conv layers)
or ``layer`` (every layer pruned to the fraction on its own, the default). No layer is ever emptied:
each keeps at least one filter. The normalised L1 score (mean |w|) is not comparable across layers
of a He-initialised network: a layer's weights scale as sqrt(2 / fan_in), so a global ranking prunes
the layers of large fan-in first. Measured on LeNet-5 (Fashion-MNIST, 80% target): a global L1
ranking put 49 of conv2's 50 filters at the bottom.

Models intrain did not define (torchvision's, timm's) work the same way. When it attaches (given
``example_inputs``; else on the first training forward pass) the method traces the model's channel
structure, once, with Torch-Pruning's dependency graph
(:func:`intrain.channels.channel_structure_in_graph`): layers tied by residual additions or
squeeze-and-excitation gates are ranked and pruned as one unit, and the depthwise convs and
BatchNorms that carry a layer's channels (:class:`~intrain.masks.Follower`) are zeroed and masked
with it. What compaction could not keep exact is refused there with a one-line
:class:`~intrain.errors.ConfigError`. The method keeps that graph
(:meth:`channel_graph`) and its groups (:meth:`channel_groups`) for the next compaction, which returns
the graph of the compacted model; re-attached with it (:meth:`FilterPruning.reattach` with ``graph``),
the method keeps its structure when no follower's channel map moved, so a training run traces its
model once, whatever the number of compactions.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .. import validation
from ..errors import IntrainError
from ..importance import Importance, MeanActivation, Random, check_criterion, importance
from ..masks import (Follower, PrunableLayer, ensure_mask, find_prunable_layers, follower_channels, is_depthwise,
                     masked_gradients, prune_filters, sync_followers)
from .base import PruneEvent, PruningMethod
from .registry import MethodConfig
from .selection import (global_choice, layer_choice, layer_then_filter_choice, one_per_layer_choice,
                        rounded_choice)

Schedule = Callable[[int], float]  # epochs done -> required pruned fraction
Progress = Callable[[float], float]  # epochs of training done (fractional) -> required pruned fraction


class FilterPruning(PruningMethod):
    """Structured filter pruning driven by a schedule of pruned fractions."""

    name = "pwt"

    def __init__(
        self,
        schedule: Schedule,
        *,
        criterion: str | Importance = "l1",
        scope: str = "layer",
        include_linear: bool = False,
        seed: int = 0,
        every_steps: tuple[int, int, Progress] | None = None,
        round_to: int = 1,
    ) -> None:
        super().__init__()
        filter_pruning_arguments(criterion, scope, include_linear, seed, scopes=validation.PWT_SCOPES)
        validation.whole("round_to", round_to)
        validation.at_least("round_to", round_to, 1)
        self.round_to = round_to  # pruned units keep a multiple of this many filters (methods/round_to.py)
        self.schedule = schedule
        # (K, steps per epoch, progress schedule): prune every K optimizer steps, not only at epoch ends
        self.every_steps = every_steps
        self._epoch_pruned, self._epoch_seconds = 0, 0.0  # this epoch's step-time prunes
        self.importance = importance(criterion, seed)  # what scores the filters
        self.criterion = self.importance.name
        self.scope = scope
        self.include_linear = include_linear
        self.seed = seed
        self.layers: list[PrunableLayer] = []
        self._original: dict[str, int] = {}
        # layers whose filters are tied by residual additions, pruned together (names), and the
        # modules that carry their channels: traced once per attach (see _install)
        self.groups: list[list[str]] | None = None
        self.followers: list[Follower] = []
        self._structure = None  # the ChannelStructure read at the last attach
        self._graph: Any = None  # the dependency graph it was read from (channel_graph)
        self._traced = False
        self._handed_graph = None  # a dependency graph given to reattach(), for its _install only
        self._gradient_masked: set[torch.nn.Module] = set()  # modules whose parameters have gradient hooks

    # ------------------------------------------------------------------ lifecycle
    def _install(self, stack: ExitStack) -> None:
        self.layers = find_prunable_layers(self.model, include_linear=self.include_linear)
        if not self.layers:
            raise ValueError("the model has no prunable layers (Conv2d, or Linear with include_linear)")
        for layer in self.layers:
            ensure_mask(layer)
            self._original.setdefault(layer.name, layer.num_filters)
        self._gradient_masked = set()
        self._mask_gradients(self.layers)
        self.followers, self._traced = [], False
        if self._handed_graph is not None or self.example_inputs is not None:
            self._trace_structure(self._handed_graph)  # once per attach: from the graph handed over, or traced now
        else:  # no example inputs given: trace on the first training forward pass
            # a closure, not a bound method: deepcopy(model) copies hooks' functions by reference
            handle = self.model.register_forward_pre_hook(lambda module, inputs: self._on_forward(inputs))
            stack.callback(handle.remove)
        stack.enter_context(self.importance.recording(self))

    def _on_forward(self, inputs: tuple) -> None:
        """From a forward pre-hook (attached without example inputs): keep one zero example shaped
        like the model's input, and trace the channel structure with it on the first training-mode
        pass (before its backward)."""
        from ..channels import tracing

        if tracing(self.model):
            return  # a dependency-graph trace's own forward pass
        if self.example_inputs is None and inputs and torch.is_tensor(inputs[0]) and inputs[0].dim() > 0:
            x = inputs[0]
            self.example_inputs = torch.zeros((1, *x.shape[1:]), dtype=x.dtype, device=x.device)
        if (self.example_inputs is not None and not self._traced and self.model.training
                and not torch.is_inference_mode_enabled()):
            self._trace_structure()

    def detach(self) -> None:
        super().detach()
        if self._handed_graph is None:  # a re-attach keeps the structure it may reuse and replaces the graph
            self._graph = self._structure = None

    def __getstate__(self) -> dict[str, Any]:
        """A copy (``copy.deepcopy``) holds no dependency graph: the graph refers to the original model."""
        return {**vars(self), "_graph": None}

    def reattach(self, optimizer: torch.optim.Optimizer | None = None, *, graph: Any = None) -> None:
        """Reinstall the hooks after the model's parameters were replaced; the channel structure is read
        from ``graph`` (the model's dependency graph after the change, e.g. a compaction's) when given,
        else traced again as by :meth:`attach`. ``graph`` must describe the model after a compaction
        (:attr:`~intrain.compaction.CompactionResult.graph`): a compaction removes channels, not
        connections, so a structure without followers (whose channel maps move) is kept as read at the
        last attach. After any other change of the model, re-attach without ``graph``."""
        self._handed_graph = graph
        try:
            super().reattach(optimizer)
        finally:
            self._handed_graph = None

    def _trace_structure(self, graph: Any = None) -> None:
        """Find the coupled groups and the followers, in ``graph`` or a fresh trace of the model; zero
        and mask the followers of pruned filters."""
        from ..channels import channel_structure_in_graph, dependency_graph

        structure = None
        if graph is None:
            graph = dependency_graph(self.model, self.example_inputs)
        elif self._structure is not None and not self._structure.followers:
            structure = self._structure  # handed over by reattach after a compaction: nothing moved
        if structure is None:
            names = {module: name for name, module in self.model.named_modules()}
            structure = channel_structure_in_graph(graph, self.model, [layer.name for layer in self.layers],
                                                   {layer.name: names.get(layer.norm) for layer in self.layers})
        self._structure, self._graph = structure, graph
        self._traced = True
        self.groups = [list(g) for g in structure.groups]
        self.followers = build_followers(self.model, self.layers, structure.followers)
        sync_followers(self.followers, self.optimizer)
        self._mask_gradients(self.followers)

    def _mask_gradients(self, layers: list[PrunableLayer] | list[Follower]) -> None:
        """Gradient masks (:func:`~intrain.masks.masked_gradients`, until detach) on the parameters of
        those of ``layers`` that have a pruned filter and none yet. A layer with every filter kept gets
        none: it needs none, and right after a compaction that is every layer, whose steps then cost
        what a plain module's do (``benchmarks/step_overhead.py``). Called wherever masks change."""
        fresh = [layer for layer in layers if layer.module not in self._gradient_masked and not bool(layer.mask.all())]
        if fresh:
            self._stack.enter_context(masked_gradients(fresh))
            self._gradient_masked.update(layer.module for layer in fresh)

    def channel_groups(self) -> list[list[str]] | None:
        return None if self.groups is None else [list(g) for g in self.groups]

    def channel_graph(self) -> Any:
        return self._graph

    def coupled_layers(self) -> list[list[int]]:
        """Indices into :attr:`layers` of the groups whose filters are tied index for index (residual
        additions, squeeze-and-excitation gates: a channel can only be removed when every member has it
        pruned), traced with Torch-Pruning's dependency graph on the first forward pass; singletons
        until then."""
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
        self.importance.on_epoch_begin(epoch)

    def on_step_end(self) -> PruneEvent | None:
        """With ``every_steps``, prune every K steps to the schedule's fraction at this iteration; the
        event, when filters were pruned, is for a loop that compacts during the epoch
        (:class:`~intrain.compactor.Compactor`): the epoch's event reports these prunes again."""
        super().on_step_end()
        if self.every_steps is None:
            return None
        k, steps_per_epoch, progress = self.every_steps
        if self.iteration % k:
            return None
        pruned, seconds = self._prune_if_behind(progress(self.iteration / steps_per_epoch), self.iteration)
        self._epoch_pruned += pruned
        self._epoch_seconds += seconds
        if not pruned:
            return None
        return PruneEvent((self.iteration - 1) // steps_per_epoch, self.pruned_filter_fraction(), pruned, seconds)

    def on_epoch_end(self, epoch: int) -> PruneEvent | None:
        """Prune to the schedule's fraction after ``epoch + 1`` epochs; with ``every_steps``, also
        report the prunes made during the epoch as one event (so a loop compacts once per epoch)."""
        self._require_model()
        if self.every_steps is None:
            pruned, seconds = self._prune_if_behind(self.schedule(epoch + 1), epoch)
        else:
            pruned, seconds = self._prune_if_behind(self.every_steps[2](epoch + 1), self.iteration)
            pruned, seconds = pruned + self._epoch_pruned, seconds + self._epoch_seconds
            self._epoch_pruned, self._epoch_seconds = 0, 0.0
        if not pruned:
            return None
        return PruneEvent(epoch, self.pruned_filter_fraction(), pruned, seconds)

    def _prune_if_behind(self, required: float, tick: int) -> tuple[int, float]:
        """Prune up to ``required`` if below it: (filters pruned, seconds)."""
        if required <= self.pruned_filter_fraction() + 1e-12:
            return 0, 0.0
        start = time.perf_counter()
        pruned = self.prune_to(required, tick)
        return pruned, time.perf_counter() - start

    # ------------------------------------------------------------------ pruning
    @property
    def activations(self):
        """The mean activations recorded this epoch (criterion mean-activation; else None)."""
        return self.importance.activations if isinstance(self.importance, MeanActivation) else None

    def scores(self, epoch: int) -> list[torch.Tensor]:
        """One score per filter and layer (lower = pruned first), by :attr:`importance`."""
        return self.importance.scores(self, epoch)

    def prune_to(self, fraction: float, epoch: int = 0) -> int:
        """Prune lowest-scored filters until at least ``fraction`` of all filters are pruned.

        Coupled layers (:meth:`coupled_layers`) are ranked as one unit: a channel's score is the mean
        of its members' scores, and pruning it prunes that filter in every member.
        """
        if not self._traced:
            if self.example_inputs is not None:
                self._trace_structure()
            elif any(is_depthwise(m) for m in self.model.modules()):
                raise IntrainError("PWT traces a model's depthwise convolutions on its first forward pass: run one "
                                   "(a training step) before pruning")
        scores = [s.detach().float().cpu() for s in self.scores(epoch)]
        kept = [layer.mask.cpu() for layer in self.layers]
        groups = self.coupled_layers()
        unit_scores = [torch.stack([scores[i] for i in g]).mean(dim=0) for g in groups]
        unit_kept = [torch.stack([kept[i] for i in g]).any(dim=0) for g in groups]
        originals = [self._original[self.layers[g[0]].name] for g in groups]
        chosen = self._choice(unit_scores, unit_kept, originals, fraction, [len(g) for g in groups], epoch)
        if self.round_to > 1:
            chosen = rounded_choice(chosen, unit_scores, unit_kept, originals, [len(g) for g in groups], fraction,
                                    self.round_to)
        pruned = 0
        for group, idx in zip(groups, chosen):
            for i in group:
                fresh = idx[kept[i][idx]] if idx.numel() else idx
                prune_filters(self.layers[i], fresh, self.optimizer)
                pruned += int(fresh.numel())
        sync_followers(self.followers, self.optimizer)
        self._mask_gradients(self.layers)
        self._mask_gradients(self.followers)
        return pruned

    def _choice(self, scores: list[torch.Tensor], kept: list[torch.Tensor], originals: list[int], fraction: float,
                weights: list[int], epoch: int) -> list[torch.Tensor]:
        """Per unit, the indices to prune: by ``scope`` (``paper``: the criterion's algorithm in the
        paper, Algorithm 1 for l1, 2 for mean-activation, 3 for random)."""
        if self.scope == "layer" or (self.scope == "paper" and isinstance(self.importance, MeanActivation)):
            choose = layer_choice if self.scope == "layer" else one_per_layer_choice
            return [choose(s, k, o, fraction) for s, k, o in zip(scores, kept, originals)]
        if self.scope == "paper" and isinstance(self.importance, Random):
            return layer_then_filter_choice(kept, originals, fraction, weights, self.importance.generator(epoch))
        return global_choice(scores, kept, originals, fraction, weights)

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
        state.update(self.importance.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._original.update({str(k): int(v) for k, v in state.get("original", {}).items()})
        self.importance.load_state_dict(state)
        if self.model is not None:  # masks loaded into the model: its followers' channels follow them
            sync_followers(self.followers, self.optimizer)
            self._mask_gradients(self.layers)
            self._mask_gradients(self.followers)


def filter_pruning_arguments(criterion: Any, scope: Any, include_linear: Any, seed: Any,
                             scopes: tuple[str, ...] = validation.SCOPES) -> None:
    """The settings every filter-pruning method shares, checked as ``intrain train`` checks them
    (``criterion``: a name or an :class:`~intrain.importance.Importance`)."""
    check_criterion(criterion)
    validation.choice("scope", scope, scopes)
    validation.flag("include_linear", include_linear)
    validation.seed(seed)


def build_followers(model: torch.nn.Module, layers: list[PrunableLayer], maps) -> list[Follower]:
    """:class:`~intrain.masks.Follower` objects (all channels kept) from the traced
    :class:`~intrain.channels.FollowerMap` entries, one per follower module."""
    modules = dict(model.named_modules())
    by_name = {layer.name: layer for layer in layers}
    followers: dict[str, Follower] = {}
    for entry in maps:
        module = modules[entry.module]
        if entry.module not in followers:
            mask = torch.ones(follower_channels(module), dtype=torch.bool, device=module.weight.device
                              if getattr(module, "weight", None) is not None else None)
            followers[entry.module] = Follower(entry.module, module, [], mask)
        followers[entry.module].sources.append(
            (by_name[entry.layer], torch.tensor(entry.channels, dtype=torch.long), torch.tensor(entry.targets, dtype=torch.long)))
    return list(followers.values())


@dataclass(frozen=True)
class FilterSettings(MethodConfig):
    """What every filter-pruning method of this module (pwt, prt) shares."""

    criterion: str = field(default="l1", metadata={"help": "filter score: l1, mean-activation, random or group-l1 (mean |w| over the channel's "
                "filter, BatchNorm and every layer reading it)"})
    scope: str | None = field(default=None, metadata={
        "help": "layer (each layer pruned to the fraction) or global (one ranking over the network: the paper's "
                "Algorithm 1 for l1); pwt also paper (each criterion as its algorithm in the paper: l1 global, "
                "mean-activation one filter per layer per epoch, random a layer then a filter). Default: layer; "
                "pwt: the recipe's (paper: paper, recommended: layer)"})
    include_linear: bool = field(default=False, metadata={"help": "also prune output neurons of hidden linear layers"})
    round_to: int = field(default=1, metadata={
        "help": "every pruned layer keeps a multiple of N filters (at least N; layers of at most N filters untouched)"})

    def validate(self) -> None:
        validation.choice("criterion", self.criterion, validation.CRITERIA)
        if self.scope is None:  # PWT: the recipe's (PWTConfig.default_scope); others rank per layer
            object.__setattr__(self, "scope", self.default_scope)
        if self.scope is not None:
            validation.choice("scope", self.scope, self.scopes)
        validation.whole("round_to", self.round_to)
        validation.at_least("round_to", self.round_to, 1)

    scopes = validation.SCOPES  # the scopes this method takes (a class attribute, not a setting)

    @property
    def default_scope(self) -> str | None:
        """The scope when not given (None: left unset, for a later default such as PWT's recipe)."""
        return "layer"


def filter_label(name: str, summary: dict, config: dict) -> str:
    """``PWT-l1 80%`` (reports): the method, its criterion and target."""
    target = summary.get("target", config.get("target"))
    criterion = summary.get("criterion") or config.get("criterion")
    return f"{name.upper()}-{criterion} {target:.0%}" if target is not None else name.upper()
