"""Result types of the cost model: memory accesses, per-layer and per-epoch costs, savings, latency.

All counts are per example unless a type says otherwise; memory is counted in tensor elements
(multiply by the element size for bytes). See :mod:`intrain.costs.counting` for how they are filled.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


class _TrainingTotals:
    """Training = forward (FP) + backward to the input (BP) + weight update (WU), for rows and sums."""

    @property
    def train_macs(self) -> float:
        return self.fp_macs + self.bp_macs + self.wu_macs

    @property
    def train_mem(self) -> float:
        return self.fp_mem.total + self.bp_mem.total + self.wu_mem.total


@dataclass(frozen=True)
class LayerCost(_TrainingTotals):
    """Per-example (batch size 1) cost of one conv/linear layer call. See :mod:`intrain.costs.counting`."""

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


@dataclass(frozen=True)
class CostSummary(_TrainingTotals):
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

