"""Figures drawn from run histories and summaries (matplotlib, Agg backend: no display needed).

Every function takes plain data (history records, summary dicts), writes one PNG and returns its
path. Line figures overlay runs against the epoch (the papers' Figs. 1-6); bar figures compare
layers across runs (RA Fig. 2a / Table 3) or show an RA probe (RA Fig. 2b).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import EngFormatter, MaxNLocator, PercentFormatter  # noqa: E402

Run = tuple[str, Sequence[dict[str, Any]]]  # (label, history records)
LayerRows = tuple[str, Sequence[dict[str, Any]]]  # (label, summary["layers"])


_STYLES = ("-", "--", ":", "-.")
CROWDED = 5  # more legend entries than this go beside the axes, not over the lines


def line_styles(count: int) -> list[dict[str, Any]]:
    """``count`` distinct looks for lines: the ten tab10 colours, then the same colours dashed, dotted,
    dash-dotted (matplotlib's default cycle repeats its colours after ten lines)."""
    colors = plt.get_cmap("tab10").colors
    return [{"color": colors[i % len(colors)], "linestyle": _STYLES[(i // len(colors)) % len(_STYLES)]}
            for i in range(count)]


def _legend(ax) -> None:
    """The legend over the axes when it is short, beside them (right) when it would cover the lines."""
    handles, _ = ax.get_legend_handles_labels()
    if len(handles) > CROWDED:
        ax.figure.set_size_inches(11.5, 4.5)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    elif handles:
        ax.legend(fontsize="small")


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_metric(runs: Sequence[Run], key: str, path: str | Path, *, ylabel: str, title: str,
                scale: float = 1.0, formatter=None, zero_based: bool = False) -> Path:
    """One line per run of ``record[key] * scale`` against the epoch (records lacking ``key`` are skipped).

    ``zero_based`` starts the y axis at 0, so that relative reductions read correctly.
    """
    fig, ax = plt.subplots(figsize=(7.2, 4.5), dpi=120)
    for (label, history), style in zip(runs, line_styles(len(runs))):
        points = [(r["epoch"], r[key] * scale) for r in history if r.get(key) is not None]
        if points:
            epochs, values = zip(*points)
            ax.plot(epochs, values, marker="o", markersize=3, label=label, **style)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if zero_based:
        ax.set_ylim(bottom=0)
    if formatter is not None:
        ax.yaxis.set_major_formatter(formatter)
    ax.grid(True, alpha=0.3)
    _legend(ax)
    return _save(fig, path)


def accuracy_figure(runs: Sequence[Run], path: str | Path) -> Path:
    """Test accuracy vs epoch, runs overlaid (PWT Figs. 1, 3, 4, 5, 6)."""
    return plot_metric(runs, "test_accuracy", path, ylabel="test accuracy (%)", title="Test accuracy", scale=100)


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    return mean, (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0


def seed_band(histories: Sequence[Sequence[dict[str, Any]]], key: str) -> list[tuple[int, float, float]]:
    """``(epoch, mean, std)`` of ``record[key]`` across runs, for the epochs every run has."""
    by_run = [{r["epoch"]: r[key] for r in h if r.get(key) is not None} for h in histories]
    epochs = sorted(set.intersection(*(set(d) for d in by_run))) if by_run else []
    return [(e, *mean_and_std([d[e] for d in by_run])) for e in epochs]


def mean_history(histories: Sequence[Sequence[dict[str, Any]]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """One history whose ``keys`` are the mean across ``histories`` at every epoch all of them have
    (an empty history, a run that recorded no epoch, is left out rather than emptying the mean)."""
    records = []
    by_run = [d for d in ({r["epoch"]: r for r in h} for h in histories) if d]
    for epoch in sorted(set.intersection(*(set(d) for d in by_run))) if by_run else []:
        record: dict[str, Any] = {"epoch": epoch}
        for key in keys:
            values = [d[epoch].get(key) for d in by_run]
            if all(v is not None for v in values):
                record[key] = sum(values) / len(values)
        records.append(record)
    return records


def mean_layers(tables: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per-layer rows (``summary["layers"]``) averaged across runs: every layer any run lists, in the
    order they first appear; pruned filters and sparsity are the mean over the runs that list it."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for table in tables:
        for row in table:
            rows.setdefault(row["name"], []).append(row)
    return [{**same[0], "filters_pruned": sum(r.get("filters_pruned", 0) for r in same) / len(same),
             "sparsity": sum(r.get("sparsity", 0.0) for r in same) / len(same)} for same in rows.values()]


def accuracy_groups_figure(groups: Sequence[tuple[str, Sequence[Sequence[dict[str, Any]]]]], path: str | Path) -> Path:
    """Test accuracy vs epoch; a group of runs that differ only by seed is drawn as its mean with a
    shaded band of mean ± standard deviation across seeds (a single run: its line)."""
    fig, ax = plt.subplots(figsize=(7.2, 4.5), dpi=120)
    for (label, histories), style in zip(groups, line_styles(len(groups))):
        band = seed_band(histories, "test_accuracy")
        if not band:
            continue
        epochs, means, stds = zip(*band)
        means, stds = [100 * m for m in means], [100 * s for s in stds]
        seeds = f"{len(histories)} seeds"
        name = label if len(histories) == 1 else (f"{label}: mean ± std" if seeds in label
                                                  else f"{label} (mean ± std, {seeds})")
        (line,) = ax.plot(epochs, means, marker="o", markersize=3, label=name, **style)
        if len(histories) > 1:
            ax.fill_between(epochs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                            color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Test accuracy")
    ax.grid(True, alpha=0.3)
    _legend(ax)
    return _save(fig, path)


def params_figure(runs: Sequence[Run], path: str | Path) -> Path:
    """Non-zero parameters vs epoch (PWT Fig. 2)."""
    return plot_metric(runs, "params", path, ylabel="non-zero parameters", title="Non-zero parameters at the end of each epoch",
                       formatter=EngFormatter(), zero_based=True)


def train_macs_figure(runs: Sequence[Run], path: str | Path) -> Path:
    """Training MACs (forward + backward + weight gradient) of each epoch at its pruning state."""
    return plot_metric(runs, "train_macs", path, ylabel="training MACs per epoch",
                       title="Training MACs of each epoch (FP + BP + WU) at its pruning state", formatter=EngFormatter(),
                       zero_based=True)


def _grouped_bars(ax, names: Sequence[str], series: Sequence[tuple[str, Sequence[float]]]) -> None:
    """Bars of every series side by side for each name on the x axis."""
    width = 0.8 / max(len(series), 1)
    for i, ((label, values), style) in enumerate(zip(series, line_styles(len(series)))):
        offsets = [x + (i - (len(series) - 1) / 2) * width for x in range(len(names))]
        hatch = {"-": None, "--": "//", ":": "..", "-.": "xx"}[style["linestyle"]]
        ax.bar(offsets, values, width=width, label=label, color=style["color"], hatch=hatch)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize="small")


def layers_figure(runs: Sequence[LayerRows], path: str | Path) -> Path:
    """Per layer: pruned filters (%) and, when any run has some, weight sparsity (%), one bar per run
    (RA Fig. 2a / Table 3).

    ``runs`` pairs a label with ``summary["layers"]`` (rows with ``name``, ``filters``,
    ``filters_pruned``, ``sparsity``). Layers are taken in the order of the first run that has them.
    Sparsity counts zeros among the weights a layer still has (a compacted layer has none).
    """
    names: list[str] = []
    for _, layers in runs:
        names += [row["name"] for row in layers if row["name"] not in names]
    panels = [("pruned filters", lambda r: r["filters_pruned"] / r["filters"] if r.get("filters") else 0.0)]
    if any(row.get("sparsity", 0.0) > 0 for _, layers in runs for row in layers):
        panels.append(("zero weights (sparsity)", lambda r: r.get("sparsity", 0.0)))
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(7.2, 0.55 * len(names) + 4), 3.6 * len(panels) + 0.6),
                             dpi=120, sharex=True, squeeze=False)
    for ax, (what, value) in zip(axes[:, 0], panels):
        series = []
        for label, layers in runs:
            by_name = {row["name"]: row for row in layers}
            series.append((label, [100 * value(by_name[n]) if n in by_name else 0.0 for n in names]))
        _grouped_bars(ax, names, series)
        ax.set_ylabel(f"{what} (%)")
        ax.set_ylim(0, 100)
        ax.yaxis.set_major_formatter(PercentFormatter())
        ax.grid(True, axis="y", alpha=0.3)
    axes[0, 0].set_title("Per-layer pruning at the end of training")
    axes[-1, 0].set_xlabel("layer")
    axes[0, 0].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def probe_figure(label: str, probe: dict[str, Any], path: str | Path) -> Path:
    """RA's probe (Fig. 2b): each layer's sparsity and sensitivity (1 / sparsity), coloured by class.

    ``probe`` has ``layers`` (names), ``sparsity`` and ``sensitivity`` (one value per layer) and
    ``classes`` (lists of layer names, in pruning order); class boundaries are drawn as lines.
    """
    layers = list(probe["layers"])
    class_of = class_index(layers, probe.get("classes") or [])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(7.2, 0.3 * len(layers) + 3), 6.5), dpi=120, sharex=True)
    x = range(len(layers))
    top.bar(x, [100 * s for s in probe["sparsity"]], color=[colors[c % len(colors)] for c in class_of])
    top.set_ylabel("sparsity after the probe (%)")
    top.yaxis.set_major_formatter(PercentFormatter())
    bottom.bar(x, probe["sensitivity"], color=[colors[c % len(colors)] for c in class_of])
    bottom.set_ylabel("sensitivity (1 / sparsity)")
    positive = [v for v in probe["sensitivity"] if v > 0]
    if positive and max(positive) / min(positive) > 20:  # a nearly unpruned layer: sensitivity explodes
        bottom.set_yscale("log")
    for ax in (top, bottom):
        for boundary in [i - 0.5 for i in range(1, len(layers)) if class_of[i] != class_of[i - 1]]:
            ax.axvline(boundary, color="black", linewidth=1)
        ax.grid(True, axis="y", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[c % len(colors)]) for c in sorted(set(class_of))]
    top.legend(handles, [f"class {c + 1}" if c >= 0 else "not pruned" for c in sorted(set(class_of))],
               fontsize="small", ncol=4)
    top.set_title(f"RA probe and partition: {label}")
    bottom.set_xticks(list(x))
    bottom.set_xticklabels(layers, rotation=90, fontsize="x-small")
    bottom.set_xlabel("layer")
    return _save(fig, path)


def class_index(layers: Sequence[str], classes: Sequence[Sequence[Any]]) -> list[int]:
    """The class number of each layer (-1 when in none); classes may list names or indices."""
    index = {}
    for c, members in enumerate(classes):
        for m in members:
            index[layers[m] if isinstance(m, int) and 0 <= m < len(layers) else m] = c
    return [index.get(name, -1) for name in layers]


def sparsity_trace_figure(runs: Sequence[tuple[str, Sequence[dict[str, Any]]]], path: str | Path) -> Path:
    """Weight sparsity vs training iteration (RA's ``sparsity_trace``: ``iteration``, ``sparsity``)."""
    fig, ax = plt.subplots(figsize=(7.2, 4.5), dpi=120)
    for label, trace in runs:
        ax.plot([p["iteration"] for p in trace], [100 * p["sparsity"] for p in trace], label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("zero weights (%)")
    ax.yaxis.set_major_formatter(PercentFormatter())
    ax.set_title("Weight sparsity during training")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)
