"""Training cost model: MACs and memory accesses of conv and linear layers (PWT paper, Section V).

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
padding and dilation are taken into account because the shapes are *measured*, see below; the
paper writes ``H_o = H_i / S``); ``Pp`` the pruned fraction of the layer's input channels (the
previous layer's pruned filters) and ``Pc`` the pruned fraction of its own filters. For a grouped
conv the fan-in of a filter is ``C_in / groups``. Write

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

Counting modes
--------------
``structured`` (default) counts the filter/channel structure above. ``nonzero`` is an idealised
count for sparse hardware that skips every zero weight: ``W`` is replaced by the number of
non-zero live weights (``weight != 0`` and, when present, ``weight_mask != 0``, in a kept filter
and a live input channel), so MACs = non-zero weights x output positions and the weight
reads/writes shrink accordingly. Activation traffic is the same as in ``structured`` mode and
zero-padding is ignored in both modes (as in the usual dense count).

How the pruning state is measured
---------------------------------
:func:`layer_costs` runs the model once on a random probe batch (eval mode, ``torch.no_grad``)
with forward hooks on every conv and linear layer, recording the input and output shapes and
which input channels (conv) or features (linear) are identically zero over the whole probe
batch. Under the package's PWT convention a pruned filter has its conv weight and bias and the
following BatchNorm's weight and bias set to zero, so its channel is exactly zero downstream,
through ReLU, pooling and residual additions (a residual sum is zero only where *all* its
branches are pruned, which is right: that channel need not be read).

During that pass the clipping activations (ReLU, ReLU6, hardtanh, threshold; as modules or
functions) act as the identity. Otherwise a *live* channel whose pre-activation is negative for
every probe example -- common in freshly initialised deep nets, whose eval-mode BatchNorm
outputs are dominated by the bias -- would be zero too and be miscounted as pruned (a plain
probe saw 40 % of VGG-16's deepest input channels "pruned" at initialisation). Without clipping,
a live channel of a random input is exactly zero with probability zero, while a pruned channel
stays exactly zero because it is zero *before* the activation. ``Pc`` comes from the
layer's ``filter_mask`` buffer (True = kept) when there is one, else from the filters whose
weights are all zero. Physically compacted models simply have smaller shapes. A second,
single-example pass with gradients enabled records which layer inputs require grad. The hooks
are removed and the modules' train/eval flags restored afterwards, even on error.

Caveat: zeros are detected after the preceding ops, so a pruning convention that does not make
the channel exactly zero before the activation (e.g. a non-zero BatchNorm beta) is not seen as
input pruning; ``Pc`` is still read from the producing layer's ``filter_mask``.

Per run
-------
The trainer calls an :class:`EpochCostMeter` once per epoch, before its first batch, so every epoch
is costed at its own pruning state (``train_macs`` / ``train_mem`` in ``history.jsonl``);
:func:`run_cost_summary` sums them and compares with dense training and with the paper's PRT, and
:func:`measured_latency` fills Section V's latency model with the run's measured times.
:func:`cost_report` is what ``intrain cost`` prints.

Closed form versus exact count
------------------------------
The paper's savings formula (:func:`closed_form_savings`) assumes that an epoch trained with a
pruned fraction ``p`` costs ``(1 - p)`` of a dense epoch. With the linear schedule of
Algorithm 1 epoch ``e`` (0-based) runs with ``p_e = e * P / N`` pruned, so::

    PWT = sum_{e=0}^{N-1} (1 - p_e)        PRT = N + m (1 - P)        S = 1 - PWT / PRT

which for N = 80, P = 0.8, m = 10 gives 48.4 vs 82 epoch-equivalents, S = 41 %.

The per-layer count is not linear in ``p``. When every conv layer has ``p`` of its filters
pruned, an interior conv loses ``p`` of its input channels *and* ``p`` of its filters, so its
MACs and weight traffic scale by ``(1-Pp)(1-Pc) = (1-p)^2 <= (1-p)``, while its activation
traffic scales by ``(1-p)``. Only the first conv (``Pp = 0``) and the first linear layer after the
convs (``Pc = 0``) scale by ``(1-p)``; the remaining linear layers are not pruned at all and cost
the same at every ``p``. So the exact per-epoch cost is *below* the closed form when the interior
convs dominate (VGG-16, ResNets: both PWT and PRT get cheaper than the closed form says) and can
be *above* it for a network dominated by unpruned linear layers. Whether the *savings ratio*
PWT/PRT grows or shrinks is not fixed either, because both numerator and denominator change.
:func:`exact_schedule_cost` computes it from the layer shapes instead of assuming a sign.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from intrain.errors import ConfigError

__all__ = [
    "MODES",
    "MemoryAccess",
    "LayerCost",
    "CostSummary",
    "SavingsEstimate",
    "LatencyEstimate",
    "layer_costs",
    "training_cost",
    "uniform_pruning_cost",
    "format_cost_table",
    "schedule_fractions",
    "closed_form_savings",
    "exact_schedule_cost",
    "latency_model",
    "EpochCostMeter",
    "default_retrain_epochs",
    "run_cost_summary",
    "measured_latency",
    "model_for_cost",
    "cost_report",
]

MODES = ("structured", "nonzero")
_COUNTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryAccess:
    """Element reads/writes of one phase (multiply by the element size for bytes).

    ``input_read`` is the activation-side operand(s) the phase reads (FP: ``x``; BP: ``dy``;
    WU: ``x`` and ``dy``), ``activation_write`` the activation-side result (FP: ``y``; BP:
    ``dx``), ``weight_write`` the weight gradient / updated weights (WU only).
    """

    input_read: float = 0
    weight_read: float = 0
    activation_write: float = 0
    weight_write: float = 0

    @property
    def total(self) -> float:
        return self.input_read + self.weight_read + self.activation_write + self.weight_write

    def __add__(self, other: MemoryAccess) -> MemoryAccess:
        if not isinstance(other, MemoryAccess):
            return NotImplemented
        return MemoryAccess(
            self.input_read + other.input_read,
            self.weight_read + other.weight_read,
            self.activation_write + other.activation_write,
            self.weight_write + other.weight_write,
        )

    def scaled(self, factor: float) -> MemoryAccess:
        return MemoryAccess(
            self.input_read * factor,
            self.weight_read * factor,
            self.activation_write * factor,
            self.weight_write * factor,
        )


@dataclass(frozen=True)
class LayerCost:
    """Per-example (batch size 1) cost of one conv/linear layer call. See the module docstring."""

    name: str
    kind: str  # "conv" | "linear"
    fp_macs: float
    bp_macs: float
    wu_macs: float
    fp_mem: MemoryAccess
    bp_mem: MemoryAccess
    wu_mem: MemoryAccess
    pp: float  # pruned fraction of the input channels / features
    pc: float  # pruned fraction of the layer's own filters / output features

    @property
    def train_macs(self) -> float:
        return self.fp_macs + self.bp_macs + self.wu_macs

    @property
    def train_mem(self) -> float:
        return self.fp_mem.total + self.bp_mem.total + self.wu_mem.total


@dataclass(frozen=True)
class CostSummary:
    """Totals over all layers for ``examples`` training examples (one epoch).

    ``layers`` keeps the per-example rows the totals were computed from.
    """

    examples: int
    fp_macs: float
    bp_macs: float
    wu_macs: float
    fp_mem: MemoryAccess
    bp_mem: MemoryAccess
    wu_mem: MemoryAccess
    layers: tuple[LayerCost, ...] = field(repr=False)

    @property
    def train_macs(self) -> float:
        return self.fp_macs + self.bp_macs + self.wu_macs

    @property
    def train_mem(self) -> float:
        return self.fp_mem.total + self.bp_mem.total + self.wu_mem.total


@dataclass(frozen=True)
class SavingsEstimate:
    """Training cost in dense-epoch equivalents (1.0 = one epoch of the unpruned network).

    ``dense`` is ``epochs`` of unpruned training, ``pwt`` pruning while training over the same
    epochs, ``prt`` the ``epochs`` dense epochs plus ``retrain_epochs`` at the target rate.
    """

    epochs: int
    retrain_epochs: int
    target: float
    pwt: float
    prt: float
    dense: float

    @property
    def savings_vs_prt(self) -> float:
        """The paper's S = 1 - PWT / PRT (0.41 for VGG-16, N=80, P=0.8, m=10)."""
        return 1.0 - self.pwt / self.prt

    @property
    def savings_vs_dense(self) -> float:
        return 1.0 - self.pwt / self.dense


@dataclass(frozen=True)
class LatencyEstimate:
    """Wall-clock estimates of Section V, in the unit of the inputs (usually seconds)."""

    pwt: float
    prt: float

    @property
    def saved(self) -> float:
        """T_PRT - T_PWT (positive when PWT is faster)."""
        return self.prt - self.pwt

    @property
    def speedup(self) -> float:
        return self.prt / self.pwt


# --------------------------------------------------------------------------------------------
# Probing the model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """What the probe saw of one call of a counted layer (per example)."""

    name: str
    module: nn.Module
    kind: str
    in_positions: int  # H_i W_i (conv) or leading positions (linear, usually 1)
    out_positions: int  # H_o W_o
    active_in: torch.Tensor  # bool [C_in]: input channel/feature not identically zero
    needs_input_grad: bool


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"input_shape must be a sequence of ints, got {input_shape!r}") from None
    if not shape or any(s <= 0 for s in shape):
        raise ConfigError(f"input_shape must be non-empty and positive, got {input_shape!r}")
    return shape


def _as_model(model: nn.Module | Callable[[], nn.Module]) -> nn.Module:
    if isinstance(model, nn.Module):
        return model
    if callable(model):
        built = model()
        if isinstance(built, nn.Module):
            return built
    raise ConfigError(f"expected an nn.Module or a factory returning one, got {model!r}")


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the probe; restores every module's own train/eval flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training


@contextmanager
def _hooks(model: nn.Module, hook: Callable) -> Iterator[None]:
    """Hooks ``hook(name, module, inputs, output)`` on every counted layer, removed afterwards."""
    handles = []
    try:
        for name, module in model.named_modules():
            if isinstance(module, _COUNTED):
                handles.append(
                    module.register_forward_hook(
                        lambda m, i, o, _n=name: hook(_n, m, i, o)
                    )
                )
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def _preserved_rng(device: torch.device) -> Iterator[None]:
    """Restores the global torch RNG state (CPU, and ``device``'s if CUDA) after the block.

    The probe draws its input from a private generator and runs in eval mode, so it should not
    consume global random numbers; this guarantees it (a model with stochastic eval-time ops
    would otherwise shift a training run's random stream).
    """
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state(cuda_state, device)


_CLIPPING = frozenset(
    {
        F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_,
        F.relu6, F.hardtanh, F.hardtanh_, F.threshold, F.threshold_,
    }
)


class _NoClipping(TorchFunctionMode):
    """Makes the clipping activations return their input, so only structural zeros survive."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _CLIPPING:
            return args[0]
        return func(*args, **(kwargs or {}))


def _probe(model: nn.Module, input_shape: Sequence[int], probe_batch: int) -> list[_Call]:
    shape = _check_input_shape(input_shape)
    if probe_batch < 1:
        raise ConfigError(f"probe_batch must be >= 1, got {probe_batch}")
    ref = next((p for p in model.parameters() if p.is_floating_point()), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None else torch.get_default_dtype()

    seen: list[tuple[str, nn.Module, tuple[int, ...], tuple[int, ...], torch.Tensor]] = []

    def record(name, module, inputs, output):
        x = inputs[0].detach()
        if isinstance(module, nn.Linear):
            active = x.reshape(-1, x.shape[-1]).ne(0).any(dim=0)
        else:
            active = x.transpose(0, 1).reshape(x.shape[1], -1).ne(0).any(dim=1)
        seen.append((name, module, tuple(x.shape), tuple(output.shape), active.cpu()))

    grads: list[bool] = []

    def record_grad(name, module, inputs, output):
        grads.append(bool(inputs[0].requires_grad))

    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn((probe_batch, *shape), generator=gen).to(device=device, dtype=dtype)
    with _eval_mode(model), _preserved_rng(device):
        with _hooks(model, record), torch.no_grad(), _NoClipping():
            model(x)
        with _hooks(model, record_grad), torch.enable_grad():
            model(x[:1])
    if len(grads) != len(seen):
        raise ConfigError("the model's forward pass is not deterministic in its layer calls")

    calls = []
    counts: dict[str, int] = {}
    for (name, module, in_shape, out_shape, active), needs_grad in zip(seen, grads):
        n = counts.get(name, 0)
        counts[name] = n + 1
        label = name if n == 0 else f"{name}[{n}]"
        if isinstance(module, nn.Linear):
            kind = "linear"
            in_pos = math.prod(in_shape[1:-1])
            out_pos = math.prod(out_shape[1:-1])
        else:
            kind = "conv"
            in_pos = math.prod(in_shape[2:])
            out_pos = math.prod(out_shape[2:])
        calls.append(_Call(label, module, kind, in_pos, out_pos, active, needs_grad))
    return calls


def _kept_filters(module: nn.Module) -> torch.Tensor:
    """bool [C_out]: the ``filter_mask`` buffer if present, else filters with a non-zero weight."""
    weight = module.weight.detach()
    out = weight.shape[0]
    mask = getattr(module, "filter_mask", None)
    if mask is not None:
        if mask.numel() != out:
            raise ConfigError(
                f"filter_mask has {mask.numel()} entries but the layer has {out} filters"
            )
        return mask.detach().reshape(out).bool().cpu()
    return _effective_nonzero(module).reshape(out, -1).any(dim=1).cpu()


def _effective_nonzero(module: nn.Module) -> torch.Tensor:
    """bool, weight-shaped: weight != 0 and (if there is one) weight_mask != 0."""
    nz = module.weight.detach().ne(0)
    wmask = getattr(module, "weight_mask", None)
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


# --------------------------------------------------------------------------------------------
# Public counting API
# --------------------------------------------------------------------------------------------


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
    for call in _probe(model, input_shape, probe_batch):
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


def _summarise(layers: Sequence[LayerCost], examples: int) -> CostSummary:
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
    return _summarise(layer_costs(model, input_shape, mode=mode, probe_batch=probe_batch), examples)


def _uniform_rows(calls: Sequence[_Call], p: float, prune_linear: bool) -> list[LayerCost]:
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
    calls = _probe(model, input_shape, probe_batch)
    return _uniform_rows(calls, p, prune_linear)


# --------------------------------------------------------------------------------------------
# Savings and latency
# --------------------------------------------------------------------------------------------


def schedule_fractions(
    epochs: int,
    target: float,
    *,
    every: int = 1,
    initial: float = 0.0,
    rate: float | None = None,
) -> list[float]:
    """Pruned fraction *during* each epoch of PWT's linear schedule (Algorithm 1).

    Same convention as :func:`intrain.schedules.pruned_fraction`: pruning events happen at the
    end of epochs ``every, 2 every, ...``; after ``k`` events the fraction is
    ``min(target, initial + k * every * rate)`` (0 before the first event), with
    ``rate = target / epochs`` by default. Epoch ``e`` (0-based) runs after ``e // every`` events,
    so with the defaults ``p_e = e * target / epochs``: the first epoch is dense and the target is
    reached after the last one. This is the convention that reproduces the paper's 41 %
    (N = 80, P = 0.8: ``sum_e (1 - p_e) = 80 - 0.01 * 3160 = 48.4``; the 1-based
    ``sum_{e=1}^{80} (1 - 0.01 e) = 47.6`` would not).
    """
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}")
    if every < 1:
        raise ConfigError(f"every must be >= 1, got {every}")
    if not 0.0 <= initial <= target <= 1.0:
        raise ConfigError(
            f"need 0 <= initial <= target <= 1, got initial={initial}, target={target}"
        )
    rate = target / epochs if rate is None else rate
    if rate < 0:
        raise ConfigError(f"rate must be >= 0, got {rate}")
    fractions = []
    for e in range(epochs):
        events = e // every
        fractions.append(0.0 if events == 0 else min(target, initial + events * every * rate))
    return fractions


def _check_retrain(retrain_epochs: int) -> None:
    if retrain_epochs < 0:
        raise ConfigError(f"retrain_epochs must be >= 0, got {retrain_epochs}")


def closed_form_savings(
    epochs: int,
    target: float,
    retrain_epochs: int,
    every: int = 1,
    initial: float = 0.0,
) -> SavingsEstimate:
    """The paper's closed form: an epoch at pruned fraction ``p`` costs ``1 - p`` dense epochs.

    ``PWT = sum_e (1 - p_e)`` over :func:`schedule_fractions` (``every`` and ``initial`` are
    passed on), ``PRT = N + m (1 - P)``,
    ``dense = N``. N = 80, P = 0.8, m = 10 gives PWT = 48.4, PRT = 82, S = 1 - 48.4/82 = 41 %.
    """
    _check_retrain(retrain_epochs)
    fractions = schedule_fractions(epochs, target, every=every, initial=initial)
    return SavingsEstimate(
        epochs=epochs,
        retrain_epochs=retrain_epochs,
        target=target,
        pwt=sum(1.0 - p for p in fractions),
        prt=epochs + retrain_epochs * (1.0 - target),
        dense=float(epochs),
    )


def exact_schedule_cost(
    model: nn.Module | Callable[[], nn.Module],
    input_shape: Sequence[int],
    fractions_per_epoch: Sequence[float],
    *,
    target: float,
    retrain_epochs: int,
    metric: str = "macs",
    prune_linear: bool = False,
) -> SavingsEstimate:
    """Like :func:`closed_form_savings` but with each epoch costed layer by layer.

    Epoch ``e`` costs ``C(p_e) / C(0)`` dense epochs, where ``C(p)`` is the per-example training
    cost (``metric`` ``"macs"`` or ``"mem"``) from :func:`uniform_pruning_cost`; PRT is
    ``N + m C(P) / C(0)``. ``model`` may be a module or a zero-argument factory.
    """
    _check_retrain(retrain_epochs)
    if metric not in ("macs", "mem"):
        raise ConfigError(f"metric must be 'macs' or 'mem', got {metric!r}")
    if not fractions_per_epoch:
        raise ConfigError("fractions_per_epoch is empty")
    calls = _probe(_as_model(model), input_shape, 1)

    def cost(p: float) -> float:
        rows = _uniform_rows(calls, p, prune_linear)
        return sum(r.train_macs if metric == "macs" else r.train_mem for r in rows)

    dense = cost(0.0)
    if dense <= 0:
        raise ConfigError("the model has no counted (conv/linear) work")
    epochs = len(fractions_per_epoch)
    return SavingsEstimate(
        epochs=epochs,
        retrain_epochs=retrain_epochs,
        target=target,
        pwt=sum(cost(p) for p in fractions_per_epoch) / dense,
        prt=epochs + retrain_epochs * cost(target) / dense,
        dense=float(epochs),
    )


def latency_model(
    epochs: int,
    batches_per_epoch: int,
    t_batch: float,
    t_prune: float,
    retrain_epochs: int,
) -> LatencyEstimate:
    """Section V latency: ``T_PWT = E B t_batch + E t_prune``, ``T_PRT = (E + m) B t_batch``.

    ``t_prune`` is the per-epoch cost of ranking filters (L1 norms). The model neglects the
    speed-up of training a pruned network, as the paper does.
    """
    _check_retrain(retrain_epochs)
    if epochs < 0 or batches_per_epoch < 0 or t_batch < 0 or t_prune < 0:
        raise ConfigError("epochs, batches_per_epoch, t_batch and t_prune must be >= 0")
    return LatencyEstimate(
        pwt=epochs * batches_per_epoch * t_batch + epochs * t_prune,
        prt=(epochs + retrain_epochs) * batches_per_epoch * t_batch,
    )


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def _human(x: float) -> str:
    """1234 -> '1.23K', 4.56e9 -> '4.56G'; small integers unchanged."""
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{unit}"
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def format_cost_table(layers: Sequence[LayerCost]) -> str:
    """Aligned text table: one row per layer and a total row (memory = element accesses)."""
    header = ("layer", "kind", "Pp", "Pc", "FP MACs", "BP MACs", "WU MACs", "train MACs",
              "FP mem", "BP mem", "WU mem", "train mem")
    rows = [
        (r.name, r.kind, f"{r.pp:.1%}", f"{r.pc:.1%}", _human(r.fp_macs), _human(r.bp_macs),
         _human(r.wu_macs), _human(r.train_macs), _human(r.fp_mem.total),
         _human(r.bp_mem.total), _human(r.wu_mem.total), _human(r.train_mem))
        for r in layers
    ]
    total = _summarise(layers, 1)
    rows.append(
        ("total", "", "", "", _human(total.fp_macs), _human(total.bp_macs),
         _human(total.wu_macs), _human(total.train_macs), _human(total.fp_mem.total),
         _human(total.bp_mem.total), _human(total.wu_mem.total), _human(total.train_mem))
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        left = cells[0].ljust(widths[0]) + "  " + cells[1].ljust(widths[1])
        return "  ".join([left, *(c.rjust(w) for c, w in zip(cells[2:], widths[2:]))]).rstrip()

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *(line(r) for r in rows[:-1]), rule, line(rows[-1])])


# --------------------------------------------------------------------------------------------
# Per-run accounting (what a training run records) and the ``intrain cost`` report
# --------------------------------------------------------------------------------------------


def default_retrain_epochs(epochs: int) -> int:
    """The PRT reference's retraining epochs when none is given: the paper's ratio, m = N / 8.

    (N = 80 epochs with m = 10 in the paper.)
    """
    return max(1, round(epochs / 8))


@dataclass(frozen=True)
class EpochCostMeter:
    """Costs one training epoch (``examples`` images) of a model in its current pruning state.

    A training loop calls it once per epoch, before the epoch's first batch: one probe forward of
    ``probe_batch`` random examples plus one with gradients (see :func:`layer_costs`). It leaves
    the model as it found it: eval mode during the probe and every module's train flag restored
    (BatchNorm running statistics untouched), no backward pass (no ``.grad`` written), the
    global RNG state restored. ``mode`` is ``"structured"`` for filter pruning and ``"nonzero"``
    for weight pruning (RA, scratch), whose cost is the idealised non-zero MAC count.
    """

    input_shape: tuple[int, ...]
    examples: int
    mode: str = "structured"
    probe_batch: int = 2

    def __call__(self, model: nn.Module) -> dict[str, float]:
        """``{"train_macs", "train_mem"}`` of one epoch at the model's current pruning state."""
        cost = training_cost(model, self.input_shape, self.examples, mode=self.mode,
                             probe_batch=self.probe_batch)
        return {"train_macs": cost.train_macs, "train_mem": cost.train_mem}

    def dense(self, model: nn.Module) -> dict[str, float]:
        """The same for the unpruned model of the same shapes (masks are ignored).

        Call it on the freshly built model: a physically compacted model has lost its dense shapes.
        """
        cost = _summarise(uniform_pruning_cost(model, self.input_shape, 0.0), self.examples)
        return {"train_macs": cost.train_macs, "train_mem": cost.train_mem}


def _saving(cost: float, reference: float) -> float | None:
    return 1.0 - cost / reference if reference > 0 else None


def run_cost_summary(
    history: Sequence[dict],
    dense_epoch: dict[str, float],
    final_epoch: dict[str, float],
    *,
    retrain_epochs: int | None = None,
    mode: str = "structured",
) -> dict:
    """Training-cost block of ``summary.json`` from the epochs' ``train_macs`` / ``train_mem``.

    * ``train_macs_total`` / ``train_mem_total``: the sum over the recorded epochs;
    * ``dense_train_*_total``: the same number of epochs of the unpruned network;
    * ``prt_reference``: the paper's prune-then-retrain baseline, N dense epochs followed by
      ``retrain_epochs`` (m; default :func:`default_retrain_epochs`) at this run's final state;
    * ``savings_vs_dense`` / ``savings_vs_prt``: ``1 - run / reference`` for ``macs`` and ``mem``.
    """
    epochs = [r for r in history if "train_macs" in r]
    n = len(history)
    m = default_retrain_epochs(n) if retrain_epochs is None else retrain_epochs
    _check_retrain(m)
    totals = {k: float(sum(r[f"train_{k}"] for r in epochs)) for k in ("macs", "mem")}
    dense = {k: dense_epoch[f"train_{k}"] * n for k in ("macs", "mem")}
    prt = {k: dense[k] + m * final_epoch[f"train_{k}"] for k in ("macs", "mem")}
    return {
        "cost_mode": mode,
        "train_macs_total": totals["macs"],
        "train_mem_total": totals["mem"],
        "dense_train_macs_total": dense["macs"],
        "dense_train_mem_total": dense["mem"],
        "final_epoch_train_macs": final_epoch["train_macs"],
        "final_epoch_train_mem": final_epoch["train_mem"],
        "prt_reference": {"retrain_epochs": m, "train_macs_total": prt["macs"],
                          "train_mem_total": prt["mem"]},
        "savings_vs_dense": {k: _saving(totals[k], dense[k]) for k in ("macs", "mem")},
        "savings_vs_prt": {k: _saving(totals[k], prt[k]) for k in ("macs", "mem")},
    }


def measured_latency(
    history: Sequence[dict],
    batches_per_epoch: int,
    *,
    retrain_epochs: int | None = None,
) -> dict:
    """Section V's latency model filled with a run's measurements, beside the measured time.

    ``t_batch`` is the median over epochs of (training time / batches), i.e. ``epoch_seconds``
    less ``prune_seconds``; ``t_prune`` is the pruning time per epoch (total / epochs).
    ``model_pwt_seconds`` = E B t_batch + E t_prune is then compared with
    ``measured_seconds`` (the sum of ``epoch_seconds``: training and pruning, not evaluation),
    and ``model_prt_seconds`` = (E + m) B t_batch is what prune-then-retrain with m retraining
    epochs would take on the same machine.
    """
    epochs = len(history)
    m = default_retrain_epochs(epochs) if retrain_epochs is None else retrain_epochs
    if epochs == 0 or batches_per_epoch < 1:
        return {}
    per_batch = sorted(
        max(r["epoch_seconds"] - r.get("prune_seconds", 0.0), 0.0) / batches_per_epoch
        for r in history
    )
    t_batch = per_batch[len(per_batch) // 2] if len(per_batch) % 2 else (
        per_batch[len(per_batch) // 2 - 1] + per_batch[len(per_batch) // 2]) / 2
    prune_total = sum(r.get("prune_seconds", 0.0) for r in history)
    est = latency_model(epochs, batches_per_epoch, t_batch, prune_total / epochs, m)
    return {
        "epochs": epochs,
        "batches_per_epoch": batches_per_epoch,
        "retrain_epochs": m,
        "t_batch": t_batch,
        "t_prune": prune_total / epochs,
        "model_pwt_seconds": est.pwt,
        "model_prt_seconds": est.prt,
        "measured_seconds": sum(r["epoch_seconds"] for r in history),
    }


def model_for_cost(model: str, dataset: str, width: float = 1.0) -> tuple[nn.Module, tuple[int, ...]]:
    """A freshly built registry model and its per-example input shape, with no data files.

    The shape comes from the dataset's static facts; a model with a fixed input size (VGG-16 and
    the ResNets take 32x32) gets the padded size, as the training pipeline pads.
    """
    from intrain.data.specs import dataset_spec
    from intrain.models import create_model, model_entry

    spec = dataset_spec(dataset)
    entry = model_entry(model)
    net = create_model(model, num_classes=spec.num_classes, in_channels=spec.in_channels, width=width)
    size = entry.input_size or spec.image_size
    return net, (spec.in_channels, size, size)


def cost_report(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    target: float,
    epochs: int,
    retrain_epochs: int,
    every: int = 1,
) -> str:
    """The text ``intrain cost`` prints: per-layer tables (dense and at ``target``) and savings.
    ``target`` must be in [0, 1) as for ``intrain train`` (:class:`~intrain.errors.ConfigError`)."""
    from .validation import at_least, fraction

    fraction("target", target)
    for name, value, low in (("epochs", epochs, 1), ("retrain", retrain_epochs, 0), ("every", every, 1)):
        at_least(name, value, low)
    dense_rows = uniform_pruning_cost(model, input_shape, 0.0)
    pruned_rows = uniform_pruning_cost(model, input_shape, target)
    fractions = schedule_fractions(epochs, target, every=every)
    closed = closed_form_savings(epochs, target, retrain_epochs, every=every)
    exact = {
        metric: exact_schedule_cost(model, input_shape, fractions, target=target,
                                    retrain_epochs=retrain_epochs, metric=metric)
        for metric in ("macs", "mem")
    }
    shape = "x".join(str(s) for s in input_shape)
    lines = [
        f"per example, input {shape}; memory = element reads + writes",
        "",
        "dense:",
        format_cost_table(dense_rows),
        "",
        f"{target:.0%} of every conv layer's filters pruned (Pc = {target:.0%}; Pp = previous layer's Pc):",
        format_cost_table(pruned_rows),
        "",
        f"training cost in dense-epoch equivalents: N = {epochs} epochs, target P = {target:.0%}"
        + (f", pruning every {every} epochs" if every > 1 else "")
        + f"; PRT = N dense epochs + m = {retrain_epochs} retraining epochs at P",
        _savings_table([("(a) closed form", closed), ("(b) exact, MACs", exact["macs"]),
                        ("(b) exact, memory", exact["mem"])]),
        "",
        "(a) assumes an epoch at pruned fraction p costs (1 - p); (b) counts every layer, whose MACs",
        "scale by (1 - Pp)(1 - Pc), (1 - p)^2 for an interior conv, so it saves more for conv-heavy nets.",
    ]
    return "\n".join(lines)


def _savings_table(rows: Sequence[tuple[str, SavingsEstimate]]) -> str:
    header = ("", "PWT", "PRT", "dense", "saving vs PRT", "saving vs dense")
    cells = [header] + [
        (label, f"{e.pwt:.2f}", f"{e.prt:.2f}", f"{e.dense:.2f}", f"{e.savings_vs_prt:.1%}",
         f"{e.savings_vs_dense:.1%}")
        for label, e in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:]))]).rstrip()
        for r in cells
    )
