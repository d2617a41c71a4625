"""Physical compaction: remove pruned filters from the network while it trains.

PWT zeroes a pruned filter (:mod:`intrain.masks`), so a masked network still does all of its
multiply-accumulates. :func:`compact` removes those filters for good: the conv's (or hidden
linear's) output channels, the following BatchNorm's channels and the next layers' input channels
(conv, or linear after a flatten), with Torch-Pruning's dependency graph so that channels tied
together (residual additions, concatenations) are removed consistently. A coupled channel is
removed only when **every** member of its group has it pruned; otherwise it stays, masked.

The optimizer continues as if nothing had happened: each per-parameter state tensor shaped like its
parameter (Adam's ``exp_avg`` / ``exp_avg_sq``, SGD's ``momentum_buffer``, ...) is sliced to the
kept entries, scalars (``step``) are kept, and the parameter groups point at the new parameters, so
the learning-rate scheduler and the next steps go on unchanged.

How the kept entries are found: before pruning, every parameter's values are swapped for their own
flat positions (float64, exact up to 2**53). Torch-Pruning slices those like any weight, so each new
parameter holds the positions it kept, whatever dims were pruned (flatten-expanded linear inputs
included). The real values, the optimizer state and the ``filter_mask`` buffers are then gathered
with those positions.

Before anything changes, compaction makes sure that every layer reading a removed channel reads zeros
there (:func:`check_removed_channels_are_zero`): proven from the weights where only zero-preserving,
channel-local operations lie in between, else by one forward pass. The channel structure itself (the dependency
graph, the coupled groups) is :mod:`intrain.channels`'s.

:func:`shrink_to_state_dict` gives a freshly built dense model the shapes of a compacted
``state_dict`` (resuming a compacted run, loading an exported compact model).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import nn

from .channels import NORMS, channel_mixing, coupled_groups_in_graph, dependency_graph, out_channels_fn
from .errors import CheckpointError, ConfigError
from .masks import FILTER_MASK, is_depthwise



@dataclass
class CompactionResult:
    """What one :func:`compact` call removed.

    ``graph`` is the Torch-Pruning dependency graph the compaction traced, which the pruning kept up
    to date: it describes the compacted model, so an attached method re-reads its channel structure
    from it (``method.reattach(optimizer, graph=result.graph)``) instead of tracing again.
    """

    removed: dict[str, int] = field(default_factory=dict)  # filters removed per masked layer
    params_before: int = 0
    params_after: int = 0
    seconds: float = 0.0
    graph: Any = field(default=None, repr=False, compare=False)

    @property
    def filters_removed(self) -> int:
        return sum(self.removed.values())

    def as_dict(self) -> dict[str, Any]:
        return {"filters_removed": self.filters_removed, "params_before": self.params_before,
                "params_after": self.params_after, "seconds": self.seconds}


# ---------------------------------------------------------------------- compaction
def masked_layers(model: nn.Module) -> list[str]:
    """Names of the modules that carry a ``filter_mask`` buffer, in definition order."""
    return [n for n, m in model.named_modules() if isinstance(getattr(m, FILTER_MASK, None), torch.Tensor)]


def removable_channels(model: nn.Module, groups: Sequence[Sequence[str]]) -> list[tuple[str, list[int]]]:
    """For each coupled group, the channels pruned in every member: ``(first member, indices)``."""
    modules = dict(model.named_modules())
    plan = []
    for members in groups:
        masks = [getattr(modules[n], FILTER_MASK) for n in members]
        if len({m.numel() for m in masks}) != 1:
            continue  # not index-aligned: leave the group as it is
        pruned = torch.stack([~m for m in masks]).all(dim=0)
        if bool(pruned.all()):
            pruned[0] = False  # never empty a layer: one all-zero channel stays
        indices = pruned.nonzero().flatten().tolist()
        if indices:
            plan.append((members[0], indices))
    return plan


# Operations that map a zero channel to a zero channel, whatever else they are given (autograd names).
_ZERO_PRESERVING = frozenset({
    "ReluBackward0", "LeakyReluBackward0", "GeluBackward0", "SiluBackward0", "HardswishBackward0", "TanhBackward0",
    "EluBackward0", "NativeDropoutBackward0", "CloneBackward0",
})
# Poolings, by the spatial dims they pool: channel-local only on a batched input of 2 + those dims
# (on a 3-D tensor a 2-D pooling takes dim 1, the channels, for a spatial dim).
_POOLINGS = {
    "MaxPool2DWithIndicesBackward0": 2, "MaxPool3DWithIndicesBackward0": 3,
    "AvgPool2DBackward0": 2, "AvgPool3DBackward0": 3, "AdaptiveAvgPool2DBackward0": 2, "AdaptiveAvgPool3DBackward0": 3,
    "AdaptiveMaxPool2DBackward0": 2, "AdaptiveMaxPool3DBackward0": 3,
}
_RESHAPES = frozenset({"ViewBackward0", "ReshapeAliasBackward0", "UnsafeViewBackward0"})


def _all_zero(tensor: torch.Tensor | None, indices: Sequence[int]) -> bool:
    if tensor is None:
        return True
    return not bool(tensor.detach().index_select(0, torch.tensor(indices, device=tensor.device)).any())


def _saved_sizes(grad_fn: Any, attribute: str) -> tuple[int, ...] | None:
    try:
        value = getattr(grad_fn, attribute)
    except (AttributeError, RuntimeError):  # not saved, or freed
        return None
    return tuple(value.shape) if isinstance(value, torch.Tensor) else tuple(int(v) for v in value)


def _channel_local(grad_fn: Any) -> bool:
    """A pooling that keeps channels apart: its input has the batch and channel dims before the ones it pools."""
    sizes = _saved_sizes(grad_fn, "_saved_self")
    return sizes is not None and len(sizes) == _POOLINGS[grad_fn.name()] + 2


def _flattens_into(grad_fn: Any, channels: int, readers: Sequence[nn.Module]) -> bool:
    """A reshape whose every reader is a linear layer taking one sample's whole feature block
    (``in_features`` = ``channels`` times the input's spatial sizes): a flatten, which keeps each
    channel's values together where Torch-Pruning maps them. Any other reshape can move values across
    channels. ``channels``: the group's width now (the traced sizes predate earlier compactions)."""
    sizes = _saved_sizes(grad_fn, "_saved_self_sym_sizes")
    return (sizes is not None and len(sizes) >= 2 and bool(readers)
            and all(isinstance(r, nn.Linear) and r.in_features == channels * math.prod(sizes[2:]) for r in readers))


def _zero_by_construction(graph, item, channels: int, readers: Sequence[nn.Module]) -> bool:
    """Whether the group member ``item`` (not a reader) passes a zero on its pruned channels, for any
    input: a conv or linear whose pruned filters and biases are zero; a BatchNorm whose γ and β are zero
    there; an activation from :data:`_ZERO_PRESERVING`; a pooling over the spatial dims of a batched
    input; a flatten of ``channels`` into the group's linear ``readers``; or an operation that reads only parameters
    (the transpose of a linear's weight). Anything else (an addition, a concatenation, a sigmoid, a
    transpose of the features, another reshape) is left to the forward check.

    Autograd shows the operations: one hidden from it (an in-place change through ``.data``) is as
    invisible here as it is to Torch-Pruning's dependency graph."""
    import torch_pruning as tp

    node, module = item.dep.target, item.dep.target.module
    indices = [int(i) for i in item.idxs]
    if not graph.is_out_channel_pruning_fn(item.dep.handler):
        return False
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
        return _all_zero(module.weight, indices) and _all_zero(module.bias, indices)
    if isinstance(module, NORMS):
        return module.affine and _all_zero(module.weight, indices) and _all_zero(module.bias, indices)
    name = node.grad_fn.name() if node.grad_fn is not None else None
    if isinstance(module, tp.ops._ReshapeOp):
        return name in _RESHAPES and _flattens_into(node.grad_fn, channels, readers)
    if isinstance(module, tp.ops._ElementWiseOp):
        if not node.inputs:
            return True
        return name in _ZERO_PRESERVING or (name in _POOLINGS and _channel_local(node.grad_fn))
    return False


@dataclass(frozen=True)
class _Read:
    """A conv or linear ``consumer`` that would stop reading ``channels`` of ``layer``; ``proven``: it
    reads zeros there for any input (every member between them passes zeros by construction)."""

    layer: str
    consumer: nn.Module
    channels: list[int]
    proven: bool


def _pruning_groups(model: nn.Module, graph, plan: Sequence[tuple[str, list[int]]]) -> list[tuple[str, Any]]:
    """Torch-Pruning's group of each ``(layer, indices)`` of ``plan``, looked up as the model is now."""
    modules = dict(model.named_modules())
    return [(name, graph.get_pruning_group(modules[name], out_channels_fn(graph, modules[name]), idxs=indices))
            for name, indices in plan]


def _groups_independent(groups: Sequence[tuple[str, Any]]) -> bool:
    """Whether pruning one of ``groups`` leaves the others' channel indices as they are: no
    concatenation, split, slice or custom operation, whose index maps depend on other layers' widths,
    lies in any of them (then each group is looked up again just before it is pruned)."""
    import torch_pruning as tp

    shifting = (tp.ops._ConcatOp, tp.ops._SplitOp, tp.ops._SliceOp, tp.ops._UnbindOp, tp.ops._ExpandOp,
                tp.ops._CustomizedOp)
    return not any(isinstance(item.dep.target.module, shifting) for _, group in groups for item in group.items)


def _removed_reads(graph, groups: Sequence[tuple[str, Any]]) -> list[_Read]:
    """What each conv or linear would stop reading, and whether it provably reads zeros there."""
    reads = []
    for name, group in groups:
        group_reads, others = [], []
        for item in group.items:
            target = item.dep.target.module
            if (graph.is_in_channel_pruning_fn(item.dep.handler) and not graph.is_out_channel_pruning_fn(item.dep.handler)
                    and channel_mixing(target)):
                group_reads.append((target, [int(i) for i in item.idxs]))
            else:
                others.append(item)
        readers = [target for target, _ in group_reads]
        root = group.items[0].dep.target.module  # the pruned layer
        width = root.weight.shape[0] if isinstance(root, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) else -1
        proven = all(_zero_by_construction(graph, item, width, readers) for item in others)
        reads.extend(_Read(name, target, channels, proven) for target, channels in group_reads)
    return reads


@torch.no_grad()
def check_removed_channels_are_zero(model: nn.Module, graph, groups: Sequence[tuple[str, Any]],
                                    example_inputs: torch.Tensor) -> None:
    """Refuse a compaction that would change the model's outputs.

    ``groups``: each pruned layer's name and Torch-Pruning group (of the channels to remove).
    Removing a channel is exact when every conv or linear layer that reads it reads zeros there.
    Where every operation between the pruned layer and its readers passes zeros by construction (the
    layer's pruned filters and biases are zero, so are its BatchNorm's γ and β there, and between them
    only activations that map 0 to 0, poolings over a batched input's spatial dims and a flatten into
    the next linear layer: a VGG, a plain CNN) that holds for any input and nothing runs. Otherwise one eval-mode forward pass of two seeded random examples (global
    RNG untouched, BatchNorm statistics unchanged; two, as a channel without spatial extent read after
    a ReLU is zero for about half of all examples) checks those readers; a non-zero read (an operation
    mapping zero to non-zero between the pruned layer and its reader, e.g. a sigmoid or an added
    constant, or a channel shuffle whose index mapping Torch-Pruning gets wrong) raises a
    :class:`~intrain.errors.ConfigError` before anything is changed.
    """
    reads = [read for read in _removed_reads(graph, groups) if not read.proven]
    if not reads:
        return
    names = {m: n for n, m in model.named_modules()}
    found: list[str] = []

    def check(read: _Read):
        def hook(module: nn.Module, inputs) -> None:
            x = inputs[0]
            index = torch.tensor(read.channels, device=x.device)
            seen = x.index_select(x.dim() - 1 if isinstance(module, nn.Linear) else 1, index)
            if bool((seen != 0).any()) and not found:
                found.append(f"'{names[read.consumer]}' reads pruned channels of '{read.layer}' that are not zero")
        return hook

    handles = [read.consumer.register_forward_pre_hook(check(read)) for read in reads]
    flags = [(m, m.training) for m in model.modules()]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((2, *example_inputs.shape[1:]), generator=generator).to(example_inputs)
    try:
        model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
        for module, flag in flags:
            module.training = flag
    if found:
        raise ConfigError(f"compaction would change the model's outputs: {found[0]} (an operation between them maps "
                          "zero to non-zero, e.g. a sigmoid or an added constant, or moves channels in a way "
                          "Torch-Pruning does not follow, e.g. a channel shuffle); train without compaction "
                          "(compact: false) or change that operation")


@torch.no_grad()
def _encode_positions(model: nn.Module) -> dict[tuple[nn.Module, str], tuple[nn.Parameter, torch.Tensor]]:
    """Swap each parameter's values for its flat positions (float64); return the originals."""
    originals = {}
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue  # a shared parameter: encoded once
            seen.add(id(param))
            originals[(module, name)] = (param, param.data)
            param.grad = None  # gradients are not carried over (the next step recomputes them)
            param.data = torch.arange(param.numel(), dtype=torch.float64, device=param.device).view(param.shape)
    return originals


@torch.no_grad()
def _decode_positions(originals) -> dict[nn.Parameter, tuple[nn.Parameter, torch.Tensor]]:
    """Give every parameter its real values back; return ``{old: (new, kept flat positions)}`` for
    those Torch-Pruning replaced."""
    replaced = {}
    for (module, name), (old, values) in originals.items():
        current = module._parameters[name]
        if current is old:
            old.data = values
            continue
        positions = current.detach().reshape(-1).long()
        new = nn.Parameter(values.reshape(-1).index_select(0, positions).view(current.shape),  # a new tensor
                           requires_grad=old.requires_grad)
        setattr(module, name, new)
        replaced[old] = (new, positions)
    return replaced


def _slice_state_value(value: Any, old: nn.Parameter, new: nn.Parameter, positions: torch.Tensor) -> Any:
    if torch.is_tensor(value) and value.shape == old.shape:
        return value.reshape(-1).index_select(0, positions.to(value.device)).view(new.shape)  # a new tensor
    return value


def remap_optimizer(optimizer: torch.optim.Optimizer, replaced: Mapping[nn.Parameter, tuple[nn.Parameter, torch.Tensor]]) -> None:
    """Point ``optimizer`` at the new parameters and slice their per-parameter state to the kept entries."""
    for group in optimizer.param_groups:
        group["params"] = [replaced[p][0] if p in replaced else p for p in group["params"]]
    for old, (new, positions) in replaced.items():
        state = optimizer.state.pop(old, None)
        if state is not None:
            optimizer.state[new] = {k: _slice_state_value(v, old, new, positions) for k, v in state.items()}


def _refresh_masks(model: nn.Module, originals, replaced) -> dict[str, int]:
    """Gather each ``filter_mask`` with the kept output positions of its layer's weight; return the
    number of filters removed per layer."""
    removed = {}
    for name, module in model.named_modules():
        mask = getattr(module, FILTER_MASK, None)
        if not isinstance(mask, torch.Tensor) or (module, "weight") not in originals:
            continue
        old = originals[(module, "weight")][0]
        if old not in replaced:
            continue
        new, positions = replaced[old]
        per_filter = math.prod(old.shape[1:])
        kept = positions.view(new.shape).reshape(new.shape[0], -1)[:, 0] // per_filter
        if kept.numel() != mask.numel():
            setattr(module, FILTER_MASK, mask[kept.to(mask.device)].clone())
            removed[name] = mask.numel() - kept.numel()
    return removed


def _parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def compact(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    example_inputs: torch.Tensor,
    groups: Sequence[Sequence[str]] | None = None,
    graph: Any = None,
) -> CompactionResult:
    """Remove every pruned filter of ``model`` physically, in place, and carry the optimizer over.

    Args:
        model: a model whose pruned layers carry ``filter_mask`` buffers (False = pruned, zeroed).
        optimizer: its optimizer; per-parameter state is sliced, parameter lists re-pointed.
        example_inputs: a batch the model accepts (shape only matters), for the dependency graph.
        groups: coupled groups of masked layer names (default: read from the dependency graph).
        graph: the model's dependency graph as it is now, when the caller holds one: the graph an
            earlier compaction of this model returned (its pruning kept it up to date, and only a
            compaction changes the model's shapes). Default: traced here.

    The dependency graph is traced once (or handed over) and serves the coupled groups, the pruning
    and the returned :attr:`CompactionResult.graph`. Train/eval flags are kept. The model's outputs are unchanged
    (pruned channels are exactly zero).

    Compaction knows no pruning method: a method attached to ``model`` still holds the replaced
    parameters, so re-attach it afterwards with the compaction's graph (one trace in all)::

        result = compact(model, optimizer, example_inputs=x)
        method.reattach(optimizer, graph=result.graph)

    :meth:`intrain.engine.trainer.Trainer.prune` does exactly this after every pruning event.
    """
    start = time.perf_counter()
    if graph is None:
        graph = dependency_graph(model, example_inputs)
    result = CompactionResult(params_before=_parameter_count(model), graph=graph)
    if groups is None:
        groups = coupled_groups_in_graph(graph, model, masked_layers(model))
    plan = removable_channels(model, groups)
    if plan:
        modules = dict(model.named_modules())
        pruning = _pruning_groups(model, graph, plan)
        check_removed_channels_are_zero(model, graph, pruning, example_inputs)
        reuse = _groups_independent(pruning)
        originals = _encode_positions(model)
        try:
            for (name, indices), (_, group) in zip(plan, pruning):
                if not reuse:
                    group = graph.get_pruning_group(modules[name], out_channels_fn(graph, modules[name]), idxs=indices)
                group.prune(record_history=False)
        finally:
            replaced = _decode_positions(originals)
        result.removed = _refresh_masks(model, originals, replaced)
        if optimizer is not None:
            remap_optimizer(optimizer, replaced)
    result.params_after = _parameter_count(model)
    result.seconds = time.perf_counter() - start
    return result


# ---------------------------------------------------------------------- loading compacted weights
_SIZE_ATTRIBUTES = {
    nn.Conv2d: (("out_channels", "weight", 0), ("in_channels", "weight", 1)),
    nn.Conv1d: (("out_channels", "weight", 0), ("in_channels", "weight", 1)),
    nn.Linear: (("out_features", "weight", 0), ("in_features", "weight", 1)),
}


def _iter_tensors(module: nn.Module) -> Iterator[tuple[str, torch.Tensor, bool]]:
    for name, p in module._parameters.items():
        if p is not None:
            yield name, p, True
    for name, b in module._buffers.items():
        if b is not None:
            yield name, b, False


@torch.no_grad()
def shrink_to_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Reshape a freshly built (dense) ``model`` in place so that ``state_dict`` — saved from a
    compacted model of the same architecture — loads into it with ``load_state_dict``.

    Every parameter or buffer whose saved shape differs is replaced by an uninitialised tensor of
    the saved shape (values come from ``load_state_dict`` afterwards), and the size attributes of
    conv, linear and BatchNorm layers are updated. ``filter_mask`` buffers are resized with their
    weight (all kept). Keys the model lacks are ignored. Returns ``model``.
    """
    for prefix, module in model.named_modules():
        changed = False
        for name, tensor, is_param in list(_iter_tensors(module)):
            saved = state_dict.get(f"{prefix}.{name}" if prefix else name)
            if saved is None or tuple(saved.shape) == tuple(tensor.shape):
                continue
            if saved.dim() != tensor.dim():
                raise CheckpointError(f"saved weights do not fit the model: {prefix}.{name} has shape "
                                      f"{tuple(saved.shape)}, the model {tuple(tensor.shape)}")
            fresh = torch.empty(saved.shape, dtype=tensor.dtype, device=tensor.device)
            if is_param:
                setattr(module, name, nn.Parameter(fresh, requires_grad=tensor.requires_grad))
            else:
                module._buffers[name] = fresh
            changed = True
        if changed:
            _update_size_attributes(module)
    return model


def _update_size_attributes(module: nn.Module) -> None:
    if is_depthwise(module):  # stays depthwise: one group per channel
        module.groups = module.in_channels = module.out_channels = module.weight.shape[0]
    for kind, attributes in _SIZE_ATTRIBUTES.items():
        if isinstance(module, kind):
            for attribute, tensor_name, dim in attributes:
                size = getattr(module, tensor_name).shape[dim]
                setattr(module, attribute, size * (getattr(module, "groups", 1) if dim == 1 else 1))
    if isinstance(module, NORMS):
        source = module.weight if module.weight is not None else module.running_mean
        module.num_features = source.shape[0]
    mask = getattr(module, FILTER_MASK, None)
    weight = getattr(module, "weight", None)
    if isinstance(mask, torch.Tensor) and weight is not None and mask.numel() != weight.shape[0]:
        module._buffers[FILTER_MASK] = torch.ones(weight.shape[0], dtype=torch.bool, device=mask.device)
