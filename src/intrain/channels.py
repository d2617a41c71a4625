"""How a model's channels are tied: Torch-Pruning's dependency graph, traced once per attach.

:func:`dependency_graph` traces a model (its modules marked as being traced, :func:`tracing`, so that
a method's forward hooks can tell the trace from training); :func:`channel_structure_in_graph` reads
from the graph which layers' filters are tied index for index (residual additions, gates) and which
depthwise convs and BatchNorms follow a layer's channels, and refuses what compaction could not keep
exact. Filter-pruning methods read their structure here; :mod:`intrain.compaction` prunes with the
same graph.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import torch
from torch import nn

from .errors import ConfigError
from .masks import is_depthwise

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


# ---------------------------------------------------------------------- dependency graph
def dependency_graph(model: nn.Module, example_inputs: torch.Tensor):
    """Torch-Pruning's dependency graph of ``model``, traced on ``example_inputs``.

    Tracing runs the model in eval mode; every module's train/eval flag is restored afterwards
    (BatchNorm running statistics are not touched in eval mode). A model Torch-Pruning cannot trace
    (a channel shuffle, say) raises a one-line :class:`~intrain.errors.ConfigError`.
    """
    import torch_pruning as tp

    flags = [(m, m.training) for m in model.modules()]
    try:
        with torch.enable_grad(), _marked_as_tracing(model):
            return tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs, verbose=False)
    except Exception as exc:  # one line, naming Torch-Pruning's error, instead of its traceback
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ConfigError(f"Torch-Pruning could not trace the model's channel structure ({type(exc).__name__}: "
                          f"{reason}); filter pruning and compaction need it (channel shuffles are not supported); "
                          "weight pruning (method ra) does not") from exc
    finally:
        for module, flag in flags:
            module.training = flag


_TRACING = "_intrain_tracing"  # the attribute that marks the modules of a model being traced


def tracing(module: nn.Module) -> bool:
    """Whether ``module`` belongs to a model that :func:`dependency_graph` is tracing: the forward pass
    a forward hook sees then is the trace's, not training."""
    return bool(vars(module).get(_TRACING, False))


@contextmanager
def _marked_as_tracing(model: nn.Module) -> Iterator[None]:
    """Mark every module of ``model`` as being traced (:func:`tracing`) for the block, unmark after."""
    marked = [module for module in model.modules() if not tracing(module)]
    for module in marked:
        vars(module)[_TRACING] = True
    try:
        yield
    finally:
        for module in marked:
            vars(module).pop(_TRACING, None)


def out_channels_fn(graph, module: nn.Module):
    return graph.get_pruner_of_module(module).prune_out_channels


@dataclass(frozen=True)
class FollowerMap:
    """Channels ``targets`` of the module ``module`` (a depthwise conv or a BatchNorm that is no
    layer's own) carry the filters ``channels`` of the prunable layer ``layer``."""

    module: str
    layer: str
    channels: tuple[int, ...]
    targets: tuple[int, ...]


@dataclass(frozen=True)
class ChannelStructure:
    """How the output channels of a model's prunable layers are tied (:func:`channel_structure_in_graph`)."""

    groups: tuple[tuple[str, ...], ...]  # layers whose filters are tied index for index
    followers: tuple[FollowerMap, ...]


def channel_mixing(module: nn.Module) -> bool:
    """A layer whose every output reads every input channel (of its group): conv or linear."""
    return isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) and not is_depthwise(module)


def channel_structure_in_graph(graph, model: nn.Module, names: Sequence[str],
                               norms: Mapping[str, str | None] | None = None) -> ChannelStructure:
    """Trace where the output channels of the layers ``names`` go, with Torch-Pruning's groups.

    - Layers whose channels are added (residual connections) or multiplied (a squeeze-and-excitation
      gate scales the features) are tied index for index: one group.
    - Depthwise convs and BatchNorms on a layer's channels (other than the layer's own BatchNorm,
      ``norms[name]``) are followers, with their channel map (concatenations shift it).

    Refused with a :class:`~intrain.errors.ConfigError` naming the module, because compaction could
    not keep the model's outputs: layers tied other than index for index (a concatenation added to
    another tensor); a module with per-channel parameters that is neither a conv, a linear, a
    BatchNorm nor depthwise (LayerNorm, GroupNorm, PReLU, a bare ``nn.Parameter``; grouped convs);
    channels that no conv or linear reads (they are the model's output); a layer's BatchNorm (paired
    by definition order) that does not normalise its channels.
    """
    modules = dict(model.named_modules())
    name_of = {m: n for n, m in modules.items()}
    roots = {modules[n]: n for n in names}
    norms = dict(norms or {})
    paired = {modules[b]: n for n, b in norms.items() if b is not None}
    groups: list[tuple[str, ...]] = []
    followers: list[FollowerMap] = []
    seen: set[str] = set()
    for name in names:
        module = modules[name]
        size = module.weight.shape[0]
        group = graph.get_pruning_group(module, out_channels_fn(graph, module), idxs=list(range(size)))
        members, consumers, own_norm, other_norms = [name], 0, norms.get(name) is None, []
        for item in group.items:
            dep, target = item.dep, item.dep.target.module
            channels, targets = tuple(int(i) for i in item.root_idxs), tuple(int(i) for i in item.idxs)
            identity = channels == targets == tuple(range(size))
            if graph.is_in_channel_pruning_fn(dep.handler) and not graph.is_out_channel_pruning_fn(dep.handler):
                if isinstance(target, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and target.groups > 1 and not is_depthwise(target):
                    raise ConfigError(f"'{name_of.get(target, target)}' is a grouped convolution reading the channels of "
                                      f"'{name}': filter pruning does not support grouped convolutions (use method ra)")
                consumers += channel_mixing(target)
                continue
            if target is module or target not in name_of and not isinstance(target, nn.Parameter):
                continue  # the layer itself, or one of Torch-Pruning's operators (add, cat, reshape, ...)
            label = name_of.get(target, "a bare nn.Parameter")
            if target in roots:
                if not identity or target.weight.shape[0] != size:
                    raise ConfigError(f"the filters of '{name}' and '{roots[target]}' are tied, but not index for "
                                      "index (a concatenation added to another tensor?): filter pruning supports "
                                      "tied layers of equal width only")
                if roots[target] not in members:
                    members.append(roots[target])
            elif target in paired:  # a layer's own BatchNorm
                if paired[target] == name:
                    own_norm = identity
                else:
                    other_norms.append((label, paired[target]))
            elif isinstance(target, NORMS) or is_depthwise(target):
                followers.append(FollowerMap(label, name, channels, targets))
            else:
                raise ConfigError(f"'{label}' ({type(target).__name__}) has parameters on the channels of '{name}': "
                                  "filter pruning supports convolutions, linear layers, BatchNorm and depthwise "
                                  "convolutions there (use method ra for this model)")
        for label, owner in other_norms:
            if owner not in members:
                raise ConfigError(f"'{label}' normalises channels of '{name}' but is paired with '{owner}' by definition "
                                  "order: define each BatchNorm right after its layer")
        if not own_norm:
            raise ConfigError(f"'{norms[name]}' follows '{name}' in definition order but does not normalise its "
                              "output: define each BatchNorm right after its layer")
        if consumers == 0:
            raise ConfigError(f"no convolution or linear layer reads the channels of '{name}' (they are the model's "
                              "output): filter pruning cannot remove them; end the model with nn.Linear")
        if name not in seen:
            seen.update(members)
            groups.append(tuple(members))
    return ChannelStructure(tuple(groups), tuple(followers))


def channel_readers(graph, model: nn.Module, groups: Sequence[Sequence[str]]) -> tuple[FollowerMap, ...]:
    """The convs and linears that read the filters of each group of layers (tied index for index: read
    from the first): one :class:`FollowerMap` per reader and group, whose ``targets`` are the reader's
    input channels (its weight's dimension 1; a linear after a flatten reads a channel at every spatial
    position) carrying the filters ``channels`` of the group's first layer."""
    modules = dict(model.named_modules())
    name_of = {m: n for n, m in modules.items()}
    readers = []
    for group in groups:
        module = modules[group[0]]
        found = graph.get_pruning_group(module, out_channels_fn(graph, module), idxs=list(range(module.weight.shape[0])))
        for item in found.items:
            dep, target = item.dep, item.dep.target.module
            if (graph.is_in_channel_pruning_fn(dep.handler) and not graph.is_out_channel_pruning_fn(dep.handler)
                    and channel_mixing(target) and target in name_of):
                readers.append(FollowerMap(name_of[target], group[0], tuple(int(i) for i in item.root_idxs),
                                           tuple(int(i) for i in item.idxs)))
    return tuple(readers)


def coupled_groups_in_graph(graph, model: nn.Module, names: Sequence[str]) -> list[list[str]]:
    """Partition the layers ``names`` into groups whose output channels are tied index for index
    (e.g. the convs feeding one chain of residual additions); uncoupled layers are singletons.
    Refuses what compaction could not keep exact (see :func:`channel_structure_in_graph`)."""
    return [list(g) for g in channel_structure_in_graph(graph, model, names).groups]
