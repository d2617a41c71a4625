"""RA — redundancy-aware training (Dong et al., Section 3, Algorithms 1–2, Eq. 1).

**Threshold pruning with hysteresis (Section 3.1).** After every weight update, each conv and linear
layer under pruning gets two thresholds from its weights ``K`` (Eq. 1)::

    u = max(μ + σ (range + ε), 0)
    l = max(μ + σ (range − ε), 0)

and its binary mask ``T`` is updated: ``|w| < l`` → pruned, ``|w| > u`` → kept, ``l ≤ |w| ≤ u`` →
unchanged (hysteresis). ``μ`` and ``σ`` are the mean and the (population) standard deviation of the
weight *magnitudes* ``|K|`` of the dense weights, recomputed at every iteration. The paper writes
"of K"; for a zero-centred layer the mean of ``K`` itself is ≈ 0 and ``l`` would then not depend on
the weight scale the way the paper's Fig. 1 (``l = 0.1, u = 0.2`` on magnitudes) does, so we use
``|K|``, the reading of Dynamic Network Surgery whose scheme the paper adopts. Biases and BatchNorm
parameters are never pruned. Options, measured in ``benchmarks/ra_lenet5_seeds.py``:
``moments="signed"`` (μ, σ of ``K``), ``moments_over="kept"`` (of the kept weights only),
``moments_at="start"`` (thresholds computed once, when the layer's class starts pruning, then fixed,
as Dynamic Network Surgery's Caffe layer does at iteration 0), ``ramp_iterations`` (a class's
thresholds grow linearly from 0 to Eq. 1's over that many iterations once it starts: gradual pruning
instead of the paper's all at once).
Dynamic Network Surgery's other two rules are options too: ``hysteresis="relative"`` (its band
``(1 ∓ ε)·max(μ + range·σ, 0)``, DNS's 0.9/1.1 at ε = 0.1, where Eq. 1's is ``±ε·σ``) and
``update_gamma`` / ``update_power`` (the masks updated at iteration ``i`` with probability
``(1 + γ i)^−power``, DNS's LeNet-5 example γ = 1e-4, power 1; 0: every step, the paper).

**Never silently dead.** When a class starts pruning, a layer that Eq. 1 on its current weights
would prune 99% or more of raises :class:`~intrain.errors.ConfigError` naming the layer, the
fraction and the fix: a uniform initialisation (PyTorch's default, Caffe's ``xavier``) lies wholly
below ``l`` from range ≈ 1.8 up. ``reinit="he-normal"`` re-initialises such layers He-normal at
attach (:func:`reinit_he_normal`). A layer whose weights are all pruned during training stops the
run (:class:`~intrain.errors.DeadLayerError`, checked at every trace point and epoch end).

**Recovery (Dynamic Network Surgery).** The forward pass uses ``W ⊙ T``; the gradient with respect to
``W ⊙ T`` is applied to *all* of ``W`` (straight-through), so pruned weights keep learning and come
back once ``|w| > u``. ``torch.nn.utils.prune`` instead multiplies the gradient by ``T``: a pruned
weight would be frozen for good. ``W`` stays the layer's ``weight`` Parameter (same state_dict key,
same optimizer entry) and ``T`` is a 0/1 buffer ``weight_mask`` on the layer, so both are saved and
restored with the model (:mod:`intrain.masks.weights`, whose straight-through masked forward is
installed while the method is attached). Eq. 1 and the mask update are :mod:`intrain.methods.ra_eq1`.

**Stage-wise pruning (Section 3.2, Algorithm 1).** Layers are grouped into classes of consecutive
layers. At iteration ``i`` (0-based) the first ``min(m, i // extending_interval + 1)`` classes are
under pruning (the ``mod(i, extending_interval) = 0`` pops of Algorithm 1); the default interval is
``total_iterations // m``. Partitions: ``type`` (Strategy 1: runs of conv layers, then runs of
linear layers), ``none`` (one class: all layers at once), ``sensitivity`` (Strategy 2, Algorithm 2,
from a probe phase, see :func:`probe_sensitivity` and :func:`partition_by_sensitivity`), or
explicit ``classes`` of layer names (layers in no class are never pruned).
"""

from __future__ import annotations

import itertools
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .. import validation
from ..errors import ConfigError, DeadLayerError, IntrainError
from ..masks import ensure_weight_mask, masked_forward, weight_mask
from ..model_stats import prunable_weights
from .base import PruneEvent, PruningMethod
from .ra_eq1 import MaskUpdate, draws_update, eq1_pruned_fraction
from .ra_options import (DEAD_START, check_dns_options, check_freeze, checked_layer_ranges, dead_start_message,
                         parse_layer_ranges)
from .ra_partition import partition_by_sensitivity, sensitivity_from_sparsity  # noqa: F401 - part of RA's API
from .ra_partition import (ProbeResult, check_class_names, checked_classes, parse_classes, partition_by_type,
                           probe_partition)
from .registry import MethodConfig, MethodSpec, RunContext, register

PARTITIONS = ("type", "sensitivity", "none")
MOMENTS = ("magnitude", "signed")
MOMENTS_OVER = ("all", "kept")
MOMENTS_AT = ("step", "start")
HYSTERESES = ("sigma", "relative")
REINITS = ("none", "he-normal")


@torch.no_grad()
def reinit_he_normal(module: nn.Module) -> nn.Module:
    """Re-initialise a conv/linear layer He-normal, ``N(0, 2 / fan_in)`` (bias zero): the fix for a
    layer whose uniform initialisation Eq. 1 would prune whole (see :func:`eq1_pruned_fraction`)."""
    nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return module


# ---------------------------------------------------------------------- the method
class RedundancyAwareTraining(PruningMethod):
    """RA: per-iteration threshold pruning with hysteresis and recovery, stage-wise over classes."""

    name = "ra"

    def __init__(
        self,
        *,
        range_: float = 2.0,
        epsilon: float = 0.1,
        partition: str = "type",
        classes: Sequence[Sequence[str]] | None = None,
        extending_interval: int | None = None,
        total_iterations: int | None = None,
        record_every: int | None = None,
        probe: ProbeResult | None = None,
        moments: str = "magnitude",
        moments_over: str = "all",
        reinit: str = "none",
        moments_at: str = "step",
        hysteresis: str = "sigma",
        update_gamma: float = 0.0,
        update_power: float = 1.0,
        layer_ranges: Mapping[str, float] | None = None,
        freeze_masks_at: float | None = None,
        ramp_iterations: int | None = None,
        first_class_at: int = 0,
    ) -> None:
        super().__init__()
        validation.choice("partition", partition, PARTITIONS)
        validation.ra_thresholds(range_, epsilon)
        self.layer_ranges = checked_layer_ranges(layer_ranges, epsilon)
        for name, value in (("extending_interval", extending_interval), ("total_iterations", total_iterations),
                            ("record_every", record_every), ("ramp_iterations", ramp_iterations)):
            if value is not None:
                validation.whole(name, value)
                validation.at_least(name, value, 1)
        validation.whole("first_class_at", first_class_at)
        validation.at_least("first_class_at", first_class_at, 0)
        if total_iterations is not None and first_class_at >= total_iterations:
            raise ConfigError(f"first_class_at: {first_class_at} is not before the run's end ({total_iterations} "
                              "iterations): nothing would be pruned")
        self.first_class_at = int(first_class_at)
        if classes is not None:
            check_class_names(classes)
        if partition == "sensitivity" and classes is None and probe is None:
            raise ConfigError("partition: sensitivity needs the classes of a probe phase: pass "
                              "probe=probe_sensitivity(...) or explicit classes")
        for what, value, choices in (("partition", partition, PARTITIONS), ("moments", moments, MOMENTS),
                                     ("moments_over", moments_over, MOMENTS_OVER), ("reinit", reinit, REINITS),
                                     ("moments_at", moments_at, MOMENTS_AT), ("hysteresis", hysteresis, HYSTERESES)):
            if value not in choices:
                raise ConfigError(f"{what}: unknown value '{value}'; choose one of: {', '.join(choices)}")
        self.moments, self.moments_over, self.reinit = moments, moments_over, reinit
        self.moments_at = moments_at
        check_dns_options(hysteresis, epsilon, update_gamma, update_power)
        self.hysteresis, self.update_gamma, self.update_power = hysteresis, update_gamma, update_power
        check_freeze(freeze_masks_at)
        if freeze_masks_at is not None and total_iterations is None:
            raise ConfigError("freeze_masks_at: needs total_iterations (the fraction is of the run's iterations)")
        self.freeze_masks_at = freeze_masks_at
        self.freeze_iteration = (None if freeze_masks_at is None
                                 else round(freeze_masks_at * total_iterations))  # type: ignore[operator]
        self.ramp_iterations = ramp_iterations
        self._bounds: tuple[torch.Tensor, torch.Tensor] | None = None  # moments_at="start": (l, u) per layer
        self.reinitialised: list[str] = []
        self.range, self.epsilon, self.partition = range_, epsilon, partition
        self.classes: list[list[str]] | None = [list(c) for c in classes] if classes is not None else None
        if probe is not None:
            self.classes = probe.classes
        self.probe = probe
        self.requested_interval = extending_interval
        self.total_iterations = total_iterations
        self.extending_interval = 1
        self.record_every = record_every or max(1, (total_iterations or 10_000) // 100)
        self.trace: list[dict[str, Any]] = []  # sparsity over iterations
        self.prune_seconds = 0.0
        self._epoch_seconds = 0.0
        self._stages: list[MaskUpdate] = []
        self._modules: dict[str, nn.Module] = {}

    # ------------------------------------------------------------------ lifecycle
    def _install(self, stack: ExitStack) -> None:
        self._modules = dict(prunable_weights(self.model))
        if not self._modules:
            raise ConfigError("the model has no conv or linear layers to prune")
        checked_classes([list(self.layer_ranges)], list(self._modules), what="layer_ranges")
        self._configure()
        for name, module in self._modules.items():
            fresh = weight_mask(module) is None
            mask = ensure_weight_mask(module)
            if self.reinit == "he-normal" and (fresh or bool(mask.all())) and self._start_fraction(name) >= DEAD_START:
                reinit_he_normal(module)
                self.reinitialised.append(name)
        self._stages = self._make_stages()
        stack.enter_context(masked_forward(list(self._modules.values()), straight_through=True))

    def _configure(self) -> None:
        """The classes and the extending interval, from the settings (or a loaded state)."""
        self.classes = self._resolve_classes()
        self.extending_interval = self._resolve_interval()

    def _resolve_classes(self) -> list[list[str]]:
        names = list(self._modules)
        if self.classes is not None:
            return checked_classes(self.classes, names)
        if self.partition == "none":
            return [names]
        if self.partition == "type":
            kinds = ["conv" if isinstance(m, nn.Conv2d) else "linear" for m in self._modules.values()]
            return partition_by_type(names, kinds)
        raise IntrainError("partition 'sensitivity' needs the classes of a probe phase: pass "
                           "probe=probe_sensitivity(...) or explicit classes")

    def _resolve_interval(self) -> int:
        if self.requested_interval is not None:
            return self.requested_interval
        if len(self.classes) == 1:
            return max(1, self.total_iterations or 1)
        if self.total_iterations is None:
            raise IntrainError("RA with several classes needs extending_interval or total_iterations")
        return max(1, (self.total_iterations - self.first_class_at) // len(self.classes))

    def _make_stages(self) -> list[MaskUpdate]:
        """Stage ``k``: the pruning step of the first ``k + 1`` classes (layers in class order, so each
        stage is a prefix of the next; buffers allocated once)."""
        modules = [self._modules[name] for c in self.classes for name in c]
        step = MaskUpdate.allocate([m.weight for m in modules], [weight_mask(m) for m in modules])
        step.signed, step.kept = self.moments == "signed", self.moments_over == "kept"
        step.relative = self.hysteresis == "relative"
        if self.layer_ranges:
            step.ranges = tuple(self.range_of(name) for c in self.classes for name in c)
        ends = itertools.accumulate(len(c) for c in self.classes)
        return [step.first(end) for end in ends]

    # ------------------------------------------------------------------ Algorithm 1
    def active_classes(self, iteration: int) -> int:
        """Classes under pruning at 0-based ``iteration``: none before ``first_class_at`` (0 in the paper),
        then one more every ``extending_interval``."""
        if iteration < self.first_class_at:
            return 0
        return min(len(self.classes), (iteration - self.first_class_at) // self.extending_interval + 1)

    def on_step_end(self) -> None:
        """Prune the layers of the active classes after the weight update (Algorithm 1, lines 12–16)."""
        self._require_model()
        active = self.active_classes(self.iteration)
        starting = active > (self.active_classes(self.iteration - 1) if self.iteration else 0)
        if starting:
            self._check_starting_class(active - 1)
        start = time.perf_counter()
        if active and self.moments_at == "start" and (starting or self._bounds is None):
            self._fix_bounds(active)
        if (active and self.masks_updating(self.iteration)
                and draws_update(self.iteration, self.update_gamma, self.update_power)):
            self._stages[active - 1](self.range, self.epsilon, self._bounds if self.moments_at == "start" else None,
                                     self._ramp_scale(self.iteration, active))
        elapsed = time.perf_counter() - start
        self.prune_seconds += elapsed
        self._epoch_seconds += elapsed
        super().on_step_end()
        if self.iteration % self.record_every == 0:
            self.trace.append(self._trace_point())

    def ramp_factor(self, iteration: int, start: int) -> float:
        """The share of its Eq. 1 thresholds a class that started pruning at ``start`` uses after
        0-based ``iteration``: ``(iteration − start + 1) / ramp_iterations``, at most 1 (1 at once
        without a ramp, the paper)."""
        if self.ramp_iterations is None:
            return 1.0
        return min(1.0, (iteration - start + 1) / self.ramp_iterations)

    def _ramp_scale(self, iteration: int, active: int) -> torch.Tensor | None:
        """Per-layer threshold factors of the active classes, or None once every one is past its ramp."""
        if self.ramp_iterations is None:
            return None
        factors = [self.ramp_factor(iteration, start) for start in self.class_start_iterations()[:active]]
        if all(f == 1.0 for f in factors):
            return None
        per_layer = [f for f, c in zip(factors, self.classes) for _ in c]
        return torch.tensor(per_layer, dtype=torch.float32, device=self._stages[-1].counts.device)

    def masks_updating(self, iteration: int) -> bool:
        """Whether Eq. 1 updates the masks after 0-based ``iteration``: always, or until
        ``freeze_masks_at`` of the run (then the network trains on with its masks fixed)."""
        return self.freeze_iteration is None or iteration < self.freeze_iteration

    def _fix_bounds(self, active: int) -> None:
        """``moments_at="start"`` (Dynamic Network Surgery's rule): Eq. 1's ``(l, u)`` of each layer are
        computed from its weights once, when its class starts pruning, and kept from then on. Without
        saved bounds (a state from before this option) every active class gets them now."""
        lower, upper = self._stages[active - 1].lower_and_upper(self.range, self.epsilon)
        first = 0
        if self._bounds is None:
            total = len(self._stages[-1].weights)
            self._bounds = (lower.new_zeros(total), upper.new_zeros(total))
        else:
            first = sum(len(c) for c in self.classes[: active - 1])
        self._bounds[0][first: len(lower)] = lower[first:]
        self._bounds[1][first: len(upper)] = upper[first:]

    def range_of(self, name: str) -> float:
        """Eq. 1's range for layer ``name``: its entry in ``layer_ranges``, else ``range``."""
        return self.layer_ranges.get(name, self.range)

    def _range_flag(self, name: str) -> str:
        return "its --layer-ranges entry" if name in self.layer_ranges else "--range"

    def _start_fraction(self, name: str) -> float:
        return eq1_pruned_fraction(self._modules[name].weight, self.range_of(name), self.epsilon, moments=self.moments,
                                   hysteresis=self.hysteresis)

    def _check_starting_class(self, index: int) -> None:
        """Never silently dead (1): a layer of the class that starts pruning now, whose current weights
        Eq. 1 would prune 99% or more of, is refused with the fix."""
        for name in self.classes[index]:
            fraction = self._start_fraction(name)
            if fraction >= DEAD_START:
                raise ConfigError(dead_start_message(name, fraction, self.range_of(name), self.epsilon,
                                                      self._range_flag(name)))

    def check_alive(self, kept: dict[str, int] | None = None) -> None:
        """Never silently dead (2): a layer with all of its weights pruned stops the run."""
        for name, module in self._modules.items():
            count = kept[name] if kept is not None else int(weight_mask(module).count_nonzero())
            if count == 0:
                raise DeadLayerError(f"RA: every weight of layer '{name}' is pruned at iteration {self.iteration} "
                                     f"(range {self.range_of(name):g}): the network is dead; lower {self._range_flag(name)}")

    def on_epoch_begin(self, epoch: int) -> None:
        super().on_epoch_begin(epoch)
        self._epoch_seconds = 0.0

    def on_epoch_end(self, epoch: int) -> PruneEvent:
        """RA prunes at every step; the epoch's event carries the time those steps took."""
        self._require_model()
        self.check_alive()
        return PruneEvent(epoch, 0.0, 0, self._epoch_seconds, {"weight_sparsity": self.weight_sparsity()})

    # ------------------------------------------------------------------ reporting and state
    def weight_sparsity(self) -> float:
        """Pruned fraction of all conv/linear weights (by their masks)."""
        total = sum(m.weight.numel() for m in self._modules.values())
        kept = sum(int(weight_mask(m).count_nonzero()) for m in self._modules.values())
        return 1.0 - kept / total if total else 0.0

    def _trace_point(self) -> dict[str, Any]:
        kept = {name: int(weight_mask(m).count_nonzero()) for name, m in self._modules.items()}
        self.check_alive(kept)
        return {
            "iteration": self.iteration,
            "classes_active": self.active_classes(self.iteration - 1),
            "sparsity": self.weight_sparsity(),
            "layers": {name: 1.0 - kept[name] / m.weight.numel() for name, m in self._modules.items()},
        }

    def class_start_iterations(self) -> list[int]:
        return [self.first_class_at + k * self.extending_interval for k in range(len(self.classes or []))]

    def summary_extras(self) -> dict[str, Any]:
        """The ``ra`` block of summary.json: settings, partition, probe, sparsity over iterations."""
        return {"ra": {
            "range": self.range,
            "layer_ranges": dict(self.layer_ranges),
            "epsilon": self.epsilon,
            "partition": self.partition,
            "moments": self.moments,
            "moments_over": self.moments_over,
            "moments_at": self.moments_at,
            "freeze_masks_at": self.freeze_masks_at,
            "freeze_iteration": self.freeze_iteration,
            "ramp_iterations": self.ramp_iterations,
            "first_class_at": self.first_class_at,
            "fixed_thresholds": None if self._bounds is None else {
                "lower": self._bounds[0].tolist(), "upper": self._bounds[1].tolist()},
            "reinitialised": self.reinitialised,
            "classes": self.classes,
            "extending_interval": self.extending_interval,
            "class_start_iterations": self.class_start_iterations(),
            "weight_sparsity": self.weight_sparsity() if self._modules else None,
            "prune_seconds": self.prune_seconds,
            "probe": asdict(self.probe) if self.probe is not None else None,
            "sparsity_trace": self.trace,
        }}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(classes=self.classes, extending_interval=self.extending_interval, trace=list(self.trace),
                     prune_seconds=self.prune_seconds, probe=asdict(self.probe) if self.probe else None,
                     bounds=None if self._bounds is None else [b.tolist() for b in self._bounds])
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.trace = list(state.get("trace", []))
        if state.get("bounds") is not None:
            device = next(iter(self._modules.values())).weight.device if self._modules else None
            self._bounds = tuple(torch.tensor(b, dtype=torch.float32, device=device)  # type: ignore[assignment]
                                 for b in state["bounds"])
        self.prune_seconds = float(state.get("prune_seconds", 0.0))
        if state.get("probe"):
            self.probe = ProbeResult(**state["probe"])
        if state.get("classes") is not None:
            self.classes = [list(c) for c in state["classes"]]
            self.requested_interval = int(state["extending_interval"])
            if self.model is not None:  # the saved classes replace those resolved at attach: stages rebuilt
                self._configure()
                self._stages = self._make_stages()


ra = RedundancyAwareTraining  # RA-``range``-``ε`` in the paper's naming: ``ra(range_=2.0, epsilon=0.1)``


# ---------------------------------------------------------------------- the registry's entry
def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass(frozen=True)
class RAConfig(MethodConfig):
    range: float = field(default=2.0, metadata=_help("Eq. 1 threshold range"))
    epsilon: float = field(default=0.1, metadata=_help("Eq. 1 hysteresis half-width"))
    partition: str = field(default="type", metadata=_help("layer classes by type, sensitivity, or none"))
    delta: float = field(default=0.4, metadata=_help("sensitivity difference factor (inf gives one class)"))
    probe_fraction: float = field(default=0.1, metadata=_help("share of iterations of the probe phase"))
    extending_interval: int | None = field(default=None, metadata=_help("iterations between class extensions"))
    classes: tuple[tuple[str, ...], ...] | None = field(default=None, metadata=_help(
        "explicit layer classes in pruning order, e.g. 'conv1,conv2;fc1,fc2'", parse=parse_classes))
    moments: str = field(default="magnitude", metadata=_help("Eq. 1 mean/std of |K| (magnitude) or K (signed)"))
    moments_over: str = field(default="all", metadata=_help("Eq. 1 moments over all weights or the kept ones"))
    moments_at: str = field(default="step", metadata=_help(
        "Eq. 1 thresholds recomputed every step, or fixed when the class starts"))
    reinit: str = field(default="none", metadata=_help(
        "he-normal re-initialises, at attach, layers Eq. 1 would prune >= 99% of (default none)"))
    hysteresis: str = field(default="sigma", metadata=_help(
        "band around the threshold: sigma (Eq. 1: +-epsilon sigma) or relative (DNS: (1 -+ epsilon) t)"))
    update_gamma: float = field(default=0.0, metadata=_help(
        "masks updated with probability (1 + gamma i)^-power at iteration i (DNS: 1e-4; 0: every step)"))
    update_power: float = field(default=1.0, metadata=_help("the power of --update-gamma's probability (DNS: 1)"))
    layer_ranges: tuple[tuple[str, float], ...] | None = field(default=None, metadata=_help(
        "Eq. 1 range of the layers named, instead of --range, e.g. 'conv1=1.2,conv2=2' (a sensitivity probe "
        "uses --range)", parse=parse_layer_ranges))
    freeze_masks_at: float | None = field(default=None, metadata=_help(
        "fraction of the run after which the masks stop changing, e.g. 0.8 (default: never)"))
    ramp_iterations: int | None = field(default=None, metadata=_help(
        "iterations over which a class's thresholds grow linearly from 0 to Eq. 1's once it starts pruning "
        "(default: at once, the paper)"))
    first_class_at: int = field(default=0, metadata=_help(
        "iteration at which the first class starts pruning (default 0, the paper: from the initial weights)"))

    def validate(self) -> None:
        for name, choices in (("partition", PARTITIONS), ("moments", MOMENTS), ("moments_over", MOMENTS_OVER),
                              ("moments_at", MOMENTS_AT), ("reinit", REINITS), ("hysteresis", HYSTERESES)):
            validation.choice(name, getattr(self, name), choices)
        validation.ra_thresholds(self.range, self.epsilon)
        check_dns_options(self.hysteresis, self.epsilon, self.update_gamma, self.update_power)
        check_freeze(self.freeze_masks_at)
        if self.layer_ranges is not None:
            object.__setattr__(self, "layer_ranges", tuple(checked_layer_ranges(self.layer_ranges, self.epsilon).items()))
        if self.delta != self.delta or self.delta < 0:
            raise ConfigError(f"delta: must be non-negative (inf gives one class), got {self.delta}")
        if not 0 <= self.probe_fraction < 1:
            raise ConfigError(f"probe_fraction: must be in [0, 1), got {self.probe_fraction}")
        for name in ("extending_interval", "ramp_iterations"):
            if getattr(self, name) is not None:
                validation.whole(name, getattr(self, name))
                validation.at_least(name, getattr(self, name), 1)
        validation.whole("first_class_at", self.first_class_at)
        validation.at_least("first_class_at", self.first_class_at, 0)
        if self.classes is not None:
            check_class_names(self.classes)
            object.__setattr__(self, "classes", tuple(tuple(c) for c in self.classes))
        if self.needs_probe and self.probe_fraction == 0:
            raise ConfigError("probe_fraction: partition sensitivity needs a probe phase, got 0")

    @property
    def needs_probe(self) -> bool:
        """Strategy 2 without explicit classes partitions by a probe phase."""
        return self.partition == "sensitivity" and self.classes is None


def run_probe(c: RAConfig, run: RunContext) -> ProbeResult:
    """RA Strategy 2's probe phase: ``probe_fraction`` of the training iterations on a copy of the
    model with every layer under pruning (the model itself keeps its initial weights)."""
    iterations = max(1, round(c.probe_fraction * run.config.epochs * run.iterations_per_epoch))
    batches = itertools.chain.from_iterable(run.train_loader.epoch(e) for e in itertools.count())
    return probe_sensitivity(run.model, run.make_optimizer, batches, iterations, range_=c.range,
                             epsilon=c.epsilon, factor=c.delta)


def probe_sensitivity(model: nn.Module, make_optimizer, batches, iterations: int, *, range_: float, epsilon: float,
                      factor: float) -> ProbeResult:
    """Strategy 2's probe phase (:func:`~intrain.methods.ra_partition.probe_partition`) pruning with RA itself:
    ``range_`` and ``epsilon``, every layer in one class; ``factor`` is Algorithm 2's delta."""
    return probe_partition(model, make_optimizer, batches, iterations, factor=factor,
                     pruner=lambda: RedundancyAwareTraining(range_=range_, epsilon=epsilon, partition="none"))


def _build(c: RAConfig, run: RunContext) -> RedundancyAwareTraining:
    saved = (run.saved_state or {}).get("probe")
    probe = ProbeResult(**saved) if saved else (run_probe(c, run) if c.needs_probe else None)
    return ra(range_=c.range, epsilon=c.epsilon, partition=c.partition, classes=c.classes,
              extending_interval=c.extending_interval, total_iterations=run.config.epochs * run.iterations_per_epoch,
              probe=probe, moments=c.moments, moments_over=c.moments_over, reinit=c.reinit, moments_at=c.moments_at,
              hysteresis=c.hysteresis, update_gamma=c.update_gamma, update_power=c.update_power,
              layer_ranges=dict(c.layer_ranges or ()), freeze_masks_at=c.freeze_masks_at,
              ramp_iterations=c.ramp_iterations, first_class_at=c.first_class_at)


def _label(summary: dict, config: dict) -> str:
    text = f"RA-{config.get('range', '?')}-{config.get('epsilon', '?')}"
    if config.get("layer_ranges"):
        text += " (" + ", ".join(f"{name} {value}" for name, value in config["layer_ranges"]) + ")"
    return text + (f" δ={config.get('delta')}" if config.get("partition") == "sensitivity" else "")


def departures(c: RAConfig, run) -> list[str]:
    """What this configuration does that the RA paper does not (its Eq. 1 and Algorithm 1 with Caffe's
    LeNet solver, whose lr policy is inv), e.g. ``["DNS band", "per-layer ranges", "masks frozen at 0.8"]``;
    an initialisation other than intrain's default (the paper names none) is named too."""
    notes = [text for text, departs in (
        ("moments of signed weights", c.moments != "magnitude"),
        ("moments over kept weights", c.moments_over != "all"),
        ("thresholds fixed at class start", c.moments_at != "step"),
        (f"{c.reinit} re-initialisation", c.reinit != "none"),
        ("DNS band", c.hysteresis == "relative"),
        (f"DNS update probability (gamma {c.update_gamma:g}, power {c.update_power:g})", c.update_gamma > 0),
        ("per-layer ranges", bool(c.layer_ranges)),
        (f"masks frozen at {c.freeze_masks_at:g}" if c.freeze_masks_at else "", c.freeze_masks_at is not None),
        (f"thresholds ramped over {c.ramp_iterations} iterations", c.ramp_iterations is not None),
        (f"pruning from iteration {c.first_class_at}", c.first_class_at > 0),
        (f"{run.init} init", run.init != "he-normal"),
        (f"{run.lr_schedule} lr", run.lr_schedule != "inv"),
    ) if departs]
    return notes


SPEC = register(MethodSpec("ra", RAConfig, _build, "redundancy-aware training (Dong et al.): per-weight "
                           "threshold pruning with hysteresis", cost_mode="nonzero", sparse_weights=True, label=_label,
                           departures=departures))
