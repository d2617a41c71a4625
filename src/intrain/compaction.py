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
there: proven from the weights where only zero-preserving, channel-local operations lie in between,
else by one forward pass, whose outputs the compacted model must then give again
(:mod:`intrain.zero_reads`). The channel structure itself (the dependency graph, the coupled groups)
is :mod:`intrain.channels`'s.

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

from .channels import NORMS, coupled_groups_in_graph, dependency_graph, out_channels_fn
from .errors import CheckpointError
from .masks import FILTER_MASK, is_depthwise
from .zero_reads import check_outputs_unchanged, check_removed_channels_are_zero



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
        reference = check_removed_channels_are_zero(model, graph, pruning, example_inputs)
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
        if reference is not None:
            check_outputs_unchanged(model, reference)
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
