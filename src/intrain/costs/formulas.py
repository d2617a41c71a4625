"""The paper's formulas: PWT's schedule, its savings over prune-then-retrain, and the latency model.

Closed form versus exact count
------------------------------
The paper's savings formula (:func:`closed_form_savings`) assumes that an epoch trained with a
pruned fraction ``p`` costs ``(1 - p)`` of a dense epoch. With the linear schedule of
Algorithm 1 epoch ``e`` (0-based) runs with ``p_e = e * P / N`` pruned, so::

    PWT = sum_{e=0}^{N-1} (1 - p_e)        PRT = N + m (1 - P)        S = 1 - PWT / PRT

which for N = 80, P = 0.8, m = 10 gives 48.4 vs 82 epoch-equivalents, S = 41 %.

The per-layer count (:mod:`intrain.costs.counting`) is not linear in ``p``. When every conv layer
has ``p`` of its filters pruned, an interior conv loses ``p`` of its input channels *and* ``p`` of
its filters, so its MACs and weight traffic scale by ``(1-Pp)(1-Pc) = (1-p)^2 <= (1-p)``, while its
activation traffic scales by ``(1-p)``. Only the first conv (``Pp = 0``) and the first linear layer
after the convs (``Pc = 0``) scale by ``(1-p)``; the remaining linear layers are not pruned at all
and cost the same at every ``p``. So the exact per-epoch cost is *below* the closed form when the
interior convs dominate (VGG-16, ResNets: both PWT and PRT get cheaper than the closed form says)
and can be *above* it for a network dominated by unpruned linear layers. Whether the *savings
ratio* PWT/PRT grows or shrinks is not fixed either, because both numerator and denominator
change. :func:`exact_schedule_cost` computes it from the layer shapes instead of assuming a sign.

Latency
-------
:func:`latency_model` is Section V's wall-clock model, ``T_PWT = E B t_batch + E t_prune`` against
``T_PRT = (E + m) B t_batch``; :func:`intrain.costs.accounting.measured_latency` fills it with a
run's measured times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from intrain.costs.counting import uniform_rows
from intrain.costs.probe import as_model, probe
from intrain.costs.results import LatencyEstimate, SavingsEstimate
from intrain.errors import ConfigError
from intrain.schedules import PruneSchedule


def schedule_fractions(
    epochs: int,
    target: float,
    *,
    every: int = 1,
    initial: float = 0.0,
    rate: float | None = None,
    schedule: PruneSchedule | None = None,
) -> list[float]:
    """Pruned fraction *during* each epoch of PWT's schedule (Algorithm 1).

    Epoch ``e`` (0-based) runs at :meth:`intrain.schedules.PruneSchedule.after_epoch` ``(e)``: the
    fraction reached by the epoch-end events before it (``schedule``, or the paper's linear one
    built from ``rate``, default ``target / epochs``, ``initial`` and ``every``). With the defaults
    ``p_e = e * target / epochs``: the first epoch is dense and the target is reached after the last
    one. This is the convention that reproduces the paper's 41 % (N = 80, P = 0.8:
    ``sum_e (1 - p_e) = 80 - 0.01 * 3160 = 48.4``; the 1-based ``sum_{e=1}^{80} (1 - 0.01 e) = 47.6``
    would not).
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
    if schedule is None:
        schedule = PruneSchedule.from_rate(target=target, rate=rate, initial=initial, every=every)
    return [schedule.after_epoch(e) for e in range(epochs)]


def check_retrain(retrain_epochs: int) -> None:
    """Refuse a negative number of PRT retraining epochs (m)."""
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
    check_retrain(retrain_epochs)
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
    cost (``metric`` ``"macs"`` or ``"mem"``) from
    :func:`~intrain.costs.counting.uniform_pruning_cost`; PRT is ``N + m C(P) / C(0)``. ``model``
    may be a module or a zero-argument factory.
    """
    check_retrain(retrain_epochs)
    if metric not in ("macs", "mem"):
        raise ConfigError(f"metric must be 'macs' or 'mem', got {metric!r}")
    if not fractions_per_epoch:
        raise ConfigError("fractions_per_epoch is empty")
    calls = probe(as_model(model), input_shape, 1)

    def cost(p: float) -> float:
        rows = uniform_rows(calls, p, prune_linear)
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
    check_retrain(retrain_epochs)
    if epochs < 0 or batches_per_epoch < 0 or t_batch < 0 or t_prune < 0:
        raise ConfigError("epochs, batches_per_epoch, t_batch and t_prune must be >= 0")
    return LatencyEstimate(
        pwt=epochs * batches_per_epoch * t_batch + epochs * t_prune,
        prt=(epochs + retrain_epochs) * batches_per_epoch * t_batch,
    )
