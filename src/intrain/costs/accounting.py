"""Run accounting: what a training run records of its cost, and its summary against the baselines.

The trainer calls an :class:`EpochCostMeter` once per epoch, before its first batch, so every epoch
is costed at its own pruning state (``train_macs`` / ``train_mem`` in ``history.jsonl``);
:func:`run_cost_summary` sums them and compares with dense training and with the paper's PRT, and
:func:`measured_latency` fills Section V's latency model (:func:`intrain.costs.formulas.latency_model`)
with the run's measured times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from intrain.costs.counting import summarise, training_cost, uniform_pruning_cost
from intrain.costs.formulas import check_retrain, latency_model


def default_retrain_epochs(epochs: int) -> int:
    """The PRT reference's retraining epochs when none is given: the paper's ratio, m = N / 8.

    (N = 80 epochs with m = 10 in the paper.)
    """
    return max(1, round(epochs / 8))


@dataclass(frozen=True)
class EpochCostMeter:
    """Costs one training epoch (``examples`` images) of a model in its current pruning state.

    A training loop calls it once per epoch, before the epoch's first batch: one probe forward of
    ``probe_batch`` random examples plus one with gradients (see
    :func:`~intrain.costs.counting.layer_costs`). It leaves
    the model as it found it: eval mode during the probe and every module's train flag restored
    (BatchNorm running statistics untouched), no backward pass (no ``.grad`` written), the
    global RNG state restored. ``mode`` is ``"structured"`` for filter pruning, ``"nonzero"``
    for weight pruning (RA, scratch), whose cost is the idealised non-zero MAC count, and ``"full"``
    for a model that trains at full size whatever it zeroes (soft filter pruning): every filter of
    the model's current shapes is counted, masks and zeros ignored.
    """

    input_shape: tuple[int, ...]
    examples: int
    mode: str = "structured"
    probe_batch: int = 2

    def __call__(self, model: nn.Module) -> dict[str, float]:
        """``{"train_macs", "train_mem"}`` of one epoch at the model's current pruning state."""
        if self.mode == "full":
            return self.dense(model)
        cost = training_cost(model, self.input_shape, self.examples, mode=self.mode,
                             probe_batch=self.probe_batch)
        return {"train_macs": cost.train_macs, "train_mem": cost.train_mem}

    def dense(self, model: nn.Module) -> dict[str, float]:
        """The same for the unpruned model of the same shapes (masks and zeros are ignored).

        Call it on the freshly built model: a physically compacted model has lost its dense shapes.
        """
        cost = summarise(uniform_pruning_cost(model, self.input_shape, 0.0), self.examples)
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
    check_retrain(m)
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
