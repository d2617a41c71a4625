"""Formatting: per-layer cost tables and the text ``intrain cost`` prints."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from intrain.errors import ConfigError

from intrain.costs.counting import summarise, uniform_pruning_cost
from intrain.costs.formulas import closed_form_savings, exact_schedule_cost, schedule_fractions
from intrain.costs.results import LayerCost, SavingsEstimate


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
    total = summarise(layers, 1)
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


def model_for_cost(model: str, dataset: str, width: float = 1.0) -> tuple[nn.Module, tuple[int, ...]]:
    """A freshly built registry model and its per-example input shape, with no data files.

    The shape comes from the dataset's static facts; a model with a fixed input size (VGG-16 and
    the ResNets take 32x32) gets the padded size, as the training pipeline pads.
    """
    from intrain.data.specs import dataset_spec
    from intrain.models import create_model, model_entry
    from intrain.models.registry import input_error, input_size_message

    spec = dataset_spec(dataset)
    entry = model_entry(model)
    net = create_model(model, num_classes=spec.num_classes, in_channels=spec.in_channels, width=width)
    size = entry.input_size or spec.image_size
    shape = (spec.in_channels, size, size)
    reason = input_error(net, shape)
    if reason is not None:
        raise ConfigError(input_size_message(model, dataset, shape, reason))
    return net, shape


def cost_report(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    target: float,
    epochs: int,
    retrain_epochs: int,
    every: int = 1,
) -> str:
    """The text ``intrain cost`` prints: per-layer tables (dense and at ``target``) and savings."""
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
