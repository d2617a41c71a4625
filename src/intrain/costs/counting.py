"""Counting a model's training cost layer by layer: Table I of the PWT paper (Section V).

The PWT paper (Section V, Table I) uses the number of multiply-accumulate operations (MACs) and
of memory reads/writes as a proxy for the energy of training. For every layer it counts three
phases of one training step:

* **FP** -- forward propagation, ``y = W * x``;
* **BP** -- back-propagation to the layer's *input*, ``dx = W^T * dy``;
* **WU** -- weight update, i.e. the weight-gradient computation ``dW = dy * x`` and the write of
  the new weights.

Only ``Conv1d/2d/3d`` and ``Linear`` layers are counted. BatchNorm, activations, pooling,
residual additions, the loss and the optimizer's element-wise update are ignored: they cost
O(activations) or O(parameters) operations, not O(activations x fan-in) MACs, exactly as in
Table I. Biases are ignored for the same reason.

Notation for one layer (one example, i.e. batch size 1)
--------------------------------------------------------
``C_in, C_out``  input channels and filters; ``k^2`` the kernel elements (``prod(kernel_size)``,
1 for a linear layer); ``H_i W_i`` and ``H_o W_o`` the input and output positions (stride,
padding and dilation are taken into account because the shapes are *measured*, see
:mod:`intrain.costs.probe`; the paper writes ``H_o = H_i / S``); ``Pp`` the pruned fraction of the
layer's input channels (the previous layer's pruned filters) and ``Pc`` the pruned fraction of its
own filters. For a grouped conv the fan-in of a filter is ``C_in / groups``. Write

* ``A_in  = C_in (1 - Pp) H_i W_i``            live input activations,
* ``A_out = C_out (1 - Pc) H_o W_o``           live output activations,
* ``W     = k^2 C_in/groups (1 - Pp) C_out (1 - Pc)``  live weights.

Then (the "structured" count)::

    FP MACs = W * H_o W_o = k^2 C_in (1-Pp) C_out (1-Pc) H_o W_o        (groups = 1)
    BP MACs = W * H_o W_o   every output-gradient element meets every weight of its filter
                            once, scattered to the input gradient (a transposed convolution)
    WU MACs = W * H_o W_o   every weight-gradient element is a sum over the H_o W_o positions

    phase  input read            weight read   activation write   weight write
    FP     A_in  (x)             W  (W)        A_out (y)          0
    BP     A_out (dy)            W  (W)        A_in  (dx)         0
    WU     A_in + A_out (x, dy)  0             0                  W (dW / new W)

Each phase therefore touches the same three tensors, once each. A pruned input channel is never
read (it is identically zero) and a pruned filter is neither read, computed nor written.

The first layer's BP is not counted: the gradient with respect to the network input is not
needed for training. More generally, BP is counted only for layers whose input depends on a
trainable parameter (it "requires grad" during the probe; this also handles a parameter-free
preprocessing stage before the first conv) and WU only for layers whose weight requires grad.
Autograd (and ``torch.utils.flop_counter.FlopCounterMode``) skip exactly the same work.

``Pp`` is measured by the probe (input channels identically zero); ``Pc`` comes from the layer's
``filter_mask`` buffer (True = kept) when there is one, else from the filters whose weights are
all zero.

Counting modes
--------------
``structured`` (default) counts the filter/channel structure above. ``nonzero`` is an idealised
count for sparse hardware that skips every zero weight: ``W`` is replaced by the number of
non-zero live weights (``weight != 0`` and, when present, ``weight_mask != 0``, in a kept filter
and a live input channel), so MACs = non-zero weights x output positions and the weight
reads/writes shrink accordingly. Activation traffic is the same as in ``structured`` mode and
zero-padding is ignored in both modes (as in the usual dense count).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from intrain.costs.probe import Call, probe
from intrain.costs.results import CostSummary, LayerCost, MemoryAccess
from intrain.errors import ConfigError
from intrain.masks import FILTER_MASK, weight_mask

MODES = ("structured", "nonzero")


def _kept_filters(module: nn.Module) -> torch.Tensor:
    """bool [C_out]: the ``filter_mask`` buffer if present, else filters with a non-zero weight."""
    weight = module.weight.detach()
    out = weight.shape[0]
    mask = getattr(module, FILTER_MASK, None)
    if mask is not None:
        if mask.numel() != out:
            raise ConfigError(
                f"{FILTER_MASK} has {mask.numel()} entries but the layer has {out} filters"
            )
        return mask.detach().reshape(out).bool().cpu()
    return _effective_nonzero(module).reshape(out, -1).any(dim=1).cpu()


def _effective_nonzero(module: nn.Module) -> torch.Tensor:
    """bool, weight-shaped: weight != 0 and (if there is one) weight_mask != 0."""
    nz = module.weight.detach().ne(0)
    wmask = weight_mask(module)
    if wmask is not None:
        nz = nz & wmask.detach().ne(0).reshape(nz.shape)
    return nz


def _live_pairs(module: nn.Module, kept: torch.Tensor, active_in: torch.Tensor) -> torch.Tensor:
    """bool [C_out, C_in/groups]: weight slices joining a kept filter to a live input channel."""
    out, fan_in = module.weight.shape[:2]
    groups = getattr(module, "groups", 1)
    per_group_out = out // groups
    grouped_in = active_in.reshape(groups, fan_in)
    group_of_filter = torch.arange(out) // per_group_out
    return kept[:, None] & grouped_in[group_of_filter]


def _cost(
    name: str,
    kind: str,
    *,
    weights: float,
    a_in: float,
    a_out: float,
    out_positions: int,
    needs_bp: bool,
    needs_wu: bool,
    pp: float,
    pc: float,
) -> LayerCost:
    """Table I for one layer from the live weights W and live activations A_in, A_out."""
    macs = weights * out_positions
    fp_mem = MemoryAccess(input_read=a_in, weight_read=weights, activation_write=a_out)
    bp_mem = MemoryAccess(input_read=a_out, weight_read=weights, activation_write=a_in)
    wu_mem = MemoryAccess(input_read=a_in + a_out, weight_write=weights)
    return LayerCost(
        name=name,
        kind=kind,
        fp_macs=macs,
        bp_macs=macs if needs_bp else 0,
        wu_macs=macs if needs_wu else 0,
        fp_mem=fp_mem,
        bp_mem=bp_mem if needs_bp else MemoryAccess(),
        wu_mem=wu_mem if needs_wu else MemoryAccess(),
        pp=pp,
        pc=pc,
    )


def layer_costs(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    mode: str = "structured",
    probe_batch: int = 4,
) -> list[LayerCost]:
    """Per-example costs of every conv/linear layer call for the model's current pruning state.

    ``input_shape`` is one example's shape without the batch dimension, e.g. ``(3, 32, 32)``.
    ``mode`` is ``"structured"`` (filters/channels) or ``"nonzero"`` (idealised sparse hardware).
    Rows are in execution order; a layer called twice gets a second row ``name[1]``.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown cost mode {mode!r}; choose one of {', '.join(MODES)}")
    rows = []
    for call in probe(model, input_shape, probe_batch):
        module = call.module
        kept = _kept_filters(module)
        active = call.active_in
        pairs = _live_pairs(module, kept, active)
        kernel = math.prod(module.weight.shape[2:])
        if mode == "structured":
            weights = int(pairs.sum()) * kernel
        else:
            extra = (1,) * (module.weight.dim() - 2)
            live = pairs.reshape(*pairs.shape, *extra).to(module.weight.device)
            weights = int((_effective_nonzero(module) & live).sum())
        rows.append(
            _cost(
                call.name,
                call.kind,
                weights=weights,
                a_in=int(active.sum()) * call.in_positions,
                a_out=int(kept.sum()) * call.out_positions,
                out_positions=call.out_positions,
                needs_bp=call.needs_input_grad,
                needs_wu=module.weight.requires_grad,
                pp=1.0 - float(active.float().mean()),
                pc=1.0 - float(kept.float().mean()),
            )
        )
    return rows


def summarise(layers: Sequence[LayerCost], examples: int) -> CostSummary:
    """Totals of the per-example ``layers`` for ``examples`` training examples."""
    if examples < 0:
        raise ConfigError(f"examples must be >= 0, got {examples}")
    zero = MemoryAccess()
    return CostSummary(
        examples=examples,
        fp_macs=sum(r.fp_macs for r in layers) * examples,
        bp_macs=sum(r.bp_macs for r in layers) * examples,
        wu_macs=sum(r.wu_macs for r in layers) * examples,
        fp_mem=sum((r.fp_mem for r in layers), zero).scaled(examples),
        bp_mem=sum((r.bp_mem for r in layers), zero).scaled(examples),
        wu_mem=sum((r.wu_mem for r in layers), zero).scaled(examples),
        layers=tuple(layers),
    )


def training_cost(
    model: nn.Module,
    input_shape: Sequence[int],
    examples: int,
    *,
    mode: str = "structured",
    probe_batch: int = 4,
) -> CostSummary:
    """Cost of one training epoch over ``examples`` images in the current pruning state.

    Per-example costs do not depend on the batch size (each example's FP/BP/WU work is the same;
    weight reads are counted per example, as in Table I).
    """
    return summarise(layer_costs(model, input_shape, mode=mode, probe_batch=probe_batch), examples)


def uniform_rows(calls: Sequence[Call], p: float, prune_linear: bool) -> list[LayerCost]:
    """Analytic rows with every conv's filters pruned by p, ignoring the model's masks.

    Pc = p for conv layers (and linear layers when ``prune_linear``), else 0. Pp = the Pc of the
    previous layer in execution order, and 0 for a layer fed by the network input.
    """
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"pruned fraction must be in [0, 1], got {p}")
    rows = []
    prev_pc = 0.0
    for call in calls:
        module = call.module
        pc = p if (call.kind == "conv" or prune_linear) else 0.0
        pp = prev_pc if call.needs_input_grad else 0.0
        c_in = call.active_in.numel()
        c_out = module.weight.shape[0]
        dense_weights = module.weight.numel()
        rows.append(
            _cost(
                call.name,
                call.kind,
                weights=dense_weights * (1 - pp) * (1 - pc),
                a_in=c_in * (1 - pp) * call.in_positions,
                a_out=c_out * (1 - pc) * call.out_positions,
                out_positions=call.out_positions,
                needs_bp=call.needs_input_grad,
                needs_wu=module.weight.requires_grad,
                pp=pp,
                pc=pc,
            )
        )
        prev_pc = pc
    return rows


def uniform_pruning_cost(
    model: nn.Module,
    input_shape: Sequence[int],
    p: float,
    *,
    prune_linear: bool = False,
    probe_batch: int = 1,
) -> list[LayerCost]:
    """Per-example costs as if a fraction ``p`` of every conv layer's filters were pruned.

    Computed analytically from the model's dense shapes (current masks are ignored), with
    ``Pc = p`` for convs, ``Pc = 0`` for linear layers unless ``prune_linear``, and ``Pp`` equal
    to the previous layer's ``Pc`` (so the first conv has ``Pp = 0`` and the first linear layer
    after the convs ``Pp = p``). Channel counts are fractional (``C (1 - p)``), like the paper's.

    This is the paper's idealisation. In a residual network a conv fed by a residual sum only
    skips the channels pruned in *every* summed branch, so when the blocks prune independently
    :func:`layer_costs` measures a smaller ``Pp`` (and a higher cost) than assumed here. For
    VGG-16 and LeNet-5 with ``p`` of every conv's filters pruned the two agree exactly.
    """
    calls = probe(model, input_shape, probe_batch)
    return uniform_rows(calls, p, prune_linear)
