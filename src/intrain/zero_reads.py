"""Whether removing pruned channels leaves a model's outputs as they are: the check compaction runs
before (and, where it needed a forward pass, after) it removes anything.

Removing a channel is exact when every conv or linear layer that reads it reads zeros there, and no
operation computes anything across channels on the way. :func:`check_removed_channels_are_zero`
proves that from the weights where only zero-preserving, channel-local operations lie between a
pruned layer and its readers (:func:`_zero_by_construction`), and else checks the readers in one
forward pass; :func:`check_outputs_unchanged` then compares the outputs of that pass with the
compacted model's, which catches statistics over channels (LayerNorm or GroupNorm over channels, a
channel mean, a local response normalisation) and index maps Torch-Pruning gets wrong.

The operations are read from autograd, as Torch-Pruning reads them: a change made out of its sight
(in place through ``.data``, under ``no_grad``) is seen by neither.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from .channels import NORMS, channel_mixing
from .errors import ConfigError

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


def _channel_local(grad_fn: Any, root: nn.Module) -> bool:
    """A pooling that keeps channels apart: its input is batched as the pruned layer ``root`` makes its
    output (as many dims as its weight), the batch and channel dims before the ones it pools."""
    sizes = _saved_sizes(grad_fn, "_saved_self")
    return (sizes is not None and isinstance(root, (nn.Conv1d, nn.Conv2d, nn.Conv3d))
            and len(sizes) == _POOLINGS[grad_fn.name()] + 2 == root.weight.dim())


def _flattens_into(grad_fn: Any, root: nn.Module, readers: Sequence[nn.Module]) -> bool:
    """A reshape of the pruned layer's output, batched as the layer makes it (as many dims as its
    weight), whose every reader is a linear layer taking one dim-0 slice whole (``in_features`` = the
    layer's width now times the spatial sizes): a flatten, which keeps each channel's values together
    where Torch-Pruning maps them. Any other reshape can move values across channels. (The traced
    sizes predate earlier compactions, hence the width of now.)"""
    sizes = _saved_sizes(grad_fn, "_saved_self_sym_sizes")
    if sizes is None or not isinstance(root, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
        return False
    width = root.weight.shape[0]
    return (len(sizes) == root.weight.dim() and bool(readers)
            and all(isinstance(r, nn.Linear) and r.in_features == width * math.prod(sizes[2:]) for r in readers))


def _zero_by_construction(graph, item, root: nn.Module, readers: Sequence[nn.Module]) -> bool:
    """Whether the group member ``item`` (not a reader) passes a zero on its pruned channels, for any
    input: a conv or linear whose pruned filters and biases are zero; a BatchNorm whose γ and β are zero
    there; an activation from :data:`_ZERO_PRESERVING`; a pooling over the spatial dims of a batched
    input; a flatten of the pruned layer ``root``'s output into the group's linear ``readers``; or an operation that reads only parameters
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
        return name in _RESHAPES and _flattens_into(node.grad_fn, root, readers)
    if isinstance(module, tp.ops._ElementWiseOp):
        if not node.inputs:
            return True
        return name in _ZERO_PRESERVING or (name in _POOLINGS and _channel_local(node.grad_fn, root))
    return False


@dataclass(frozen=True)
class _Read:
    """A conv or linear ``consumer`` that would stop reading ``channels`` of ``layer``; ``proven``: it
    reads zeros there for any input (every member between them passes zeros by construction)."""

    layer: str
    consumer: nn.Module
    channels: list[int]
    proven: bool


def _removed_reads(graph, groups: Sequence[tuple[str, Any]]) -> list[_Read]:
    """What each conv or linear would stop reading, and whether it provably reads zeros there (one
    reshape at most: two can split and regroup channels, each looking like a flatten)."""
    import torch_pruning as tp

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
        reshapes = sum(isinstance(item.dep.target.module, tp.ops._ReshapeOp) for item in others)
        proven = reshapes <= 1 and all(_zero_by_construction(graph, item, root, readers) for item in others)
        reads.extend(_Read(name, target, channels, proven) for target, channels in group_reads)
    return reads


def _tensors(output: Any) -> list[torch.Tensor]:
    return [t for t in torch.utils._pytree.tree_leaves(output) if isinstance(t, torch.Tensor)]


@torch.no_grad()
def _eval_forward(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The model's output tensors on ``x`` in eval mode; every module's train/eval flag kept."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        return _tensors(model.eval()(x))
    finally:
        for module, flag in flags:
            module.training = flag


@dataclass
class _Reference:
    """The check's forward pass: its two random examples and the model's outputs on them."""

    x: torch.Tensor
    outputs: list[torch.Tensor]


@torch.no_grad()
def check_removed_channels_are_zero(model: nn.Module, graph, groups: Sequence[tuple[str, Any]],
                                    example_inputs: torch.Tensor) -> _Reference | None:
    """Refuse a compaction that would change the model's outputs.

    ``groups``: each pruned layer's name and Torch-Pruning group (of the channels to remove).
    Removing a channel is exact when every conv or linear layer that reads it reads zeros there.
    Where every operation between the pruned layer and its readers passes zeros by construction (the
    layer's pruned filters and biases are zero, so are its BatchNorm's γ and β there, and between them
    only activations that map 0 to 0, poolings over a batched input's spatial dims and a flatten into
    the next linear layer: a VGG, a plain CNN) that holds for any input and nothing runs (returns
    None). Otherwise one eval-mode forward pass of two seeded random examples (global RNG untouched,
    BatchNorm statistics unchanged; two, as a channel without spatial extent read after a ReLU is zero
    for about half of all examples) checks those readers; a non-zero read (an operation mapping zero
    to non-zero between the pruned layer and its reader, e.g. a sigmoid or an added constant, or a
    channel shuffle whose index mapping Torch-Pruning gets wrong) raises a
    :class:`~intrain.errors.ConfigError` before anything is changed. Returns that pass's examples and
    outputs, for :func:`check_outputs_unchanged` after the compaction.
    """
    reads = [read for read in _removed_reads(graph, groups) if not read.proven]
    if not reads:
        return None
    names = {m: n for n, m in model.named_modules()}
    found: list[str] = []

    def check(read: _Read):
        def hook(module: nn.Module, inputs) -> None:
            x = inputs[0]
            dim = x.dim() - 1 if isinstance(module, nn.Linear) else 1
            if found:
                return
            if max(read.channels) >= x.shape[dim]:  # Torch-Pruning's index map is wrong for this model
                found.append(f"'{names[read.consumer]}' would lose inputs it does not have (Torch-Pruning maps "
                             f"the pruned channels of '{read.layer}' to features {max(read.channels)} and up of {x.shape[dim]})")
                return
            seen = x.index_select(dim, torch.tensor(read.channels, device=x.device))
            if bool((seen != 0).any()):
                found.append(f"'{names[read.consumer]}' reads pruned channels of '{read.layer}' that are not zero")
        return hook

    handles = [read.consumer.register_forward_pre_hook(check(read)) for read in reads]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((2, *example_inputs.shape[1:]), generator=generator).to(example_inputs)
    try:
        outputs = _eval_forward(model, x)
    finally:
        for handle in handles:
            handle.remove()
    if found:
        raise ConfigError(f"compaction would change the model's outputs: {found[0]} (an operation between them maps "
                          "zero to non-zero, e.g. a sigmoid or an added constant, or moves channels in a way "
                          "Torch-Pruning does not follow, e.g. a channel shuffle); train without compaction "
                          "(compact: false) or change that operation")
    return _Reference(x, [t.detach().clone() for t in outputs])


_CHANGED = ("compaction changed the model's outputs{what}: an operation between the pruned layers and their readers "
            "mixes channels (a LayerNorm or GroupNorm over channels, a mean over channels, a local response "
            "normalisation, a transposed conv reading them) or Torch-Pruning mapped them wrongly; train without "
            "compaction (compact: false)")


def check_outputs_unchanged(model: nn.Module, reference: _Reference) -> None:
    """After a compaction that was checked by a forward pass: the compacted model gives the outputs the
    masked one gave on the same examples (to 1000 ulps of their scale), or a
    :class:`~intrain.errors.ConfigError` stops the run. Readers that see zeros are not enough where an
    operation computes statistics across channels: removing a zero channel changes the others."""
    try:
        outputs = _eval_forward(model, reference.x)
    except RuntimeError as exc:  # e.g. Torch-Pruning left a layer unpruned: shapes no longer match
        raise ConfigError(_CHANGED.format(what=f" (the compacted model fails: {str(exc).splitlines()[0]})")) from None
    if len(outputs) != len(reference.outputs):
        raise ConfigError(_CHANGED.format(what=" (another number of outputs)"))
    for before, after in zip(reference.outputs, outputs):
        if not before.is_floating_point():
            continue
        scale = max(1.0, float(before.abs().max())) if before.numel() else 1.0
        tolerance = 1000 * torch.finfo(before.dtype).eps * scale
        if before.shape != after.shape or float((before - after).abs().max()) > tolerance:
            difference = float((before - after).abs().max()) if before.shape == after.shape else float("nan")
            raise ConfigError(_CHANGED.format(what=f" (by up to {difference:.3g} on two random examples)"))
