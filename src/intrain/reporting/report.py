"""``intrain report``: PNG figures and a ``report.md`` from one or more run directories.

What is read from a run directory (see :mod:`intrain.engine.run`): ``history.jsonl`` and
``summary.json`` (both required) and ``config.yaml`` (optional, for the method's settings).
Everything beyond the foundation keys is optional and read defensively, so reports of older runs
still work:

* history records: ``train_macs``, ``train_mem`` (training cost of the epoch, :mod:`intrain.costs`);
* summary: ``train_macs_total``, ``train_mem_total``, ``savings_vs_dense``, ``savings_vs_prt``,
  ``prt_reference`` and ``latency_model`` (see :func:`intrain.costs.run_cost_summary` and
  :func:`intrain.costs.measured_latency`);
* summary, RA runs: a probe as ``summary["probe"]`` or ``summary["ra"]["probe"]``, shaped
  ``{"layers": [name, ...], "sparsity": [float, ...], "sensitivity": [float, ...],
  "classes": [[name, ...], ...]}`` (one value per layer; classes list layer names, or indices into
  ``layers``, in pruning order) and ``summary["ra"]["sparsity_trace"]``, a list of
  ``{"iteration": int, "sparsity": float}``.

Runs are grouped by protocol (:func:`protocol_of`: dataset, subset, epochs, model, width; one
table each, Δ vs dense only within one) and, within a protocol, runs whose configurations differ
only by seed share a row and a band in the accuracy figure (:func:`seed_groups`).

Figures written to ``out``: ``accuracy.png``, ``params.png``, ``train_macs.png`` (when any run has
costs), ``layers.png``, ``probe-<run>.png`` per run with a probe, ``sparsity_trace.png`` when any
run has a trace.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from ..errors import ConfigError
from ..methods import registry
from . import figures
from ..model_stats import emptied_filters
from .tables import markdown_table

from ..rundir import RunDir, own_folder

REPORT = "report.md"


def is_report_file(name: str) -> bool:
    """Whether a report writes files of this name (report.md and PNG figures)."""
    return name == REPORT or name.endswith(".png")


@dataclass(frozen=True)
class RunRecord:
    """One run directory, read."""

    label: str
    path: Path
    summary: dict[str, Any]
    history: list[dict[str, Any]]
    config: dict[str, Any]


def load_run(path: str | Path, label: str | None = None) -> RunRecord:
    """Read a run directory; a missing or unreadable history or summary is a ``ConfigError``."""
    path, folder = Path(path), RunDir(path)
    try:
        summary = folder.read_summary()
        history = folder.read_history()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} is not a finished run directory: {Path(exc.filename).name} is missing") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable run files ({exc.__class__.__name__})") from None
    config: dict[str, Any] = {}
    if folder.config.exists():
        try:
            config = yaml.safe_load(folder.config.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            config = {}
    return RunRecord(label or path.name, path, summary, history, config)


def default_labels(paths: Sequence[str | Path]) -> list[str]:
    """Each run's folder name, or ``parent/name`` where two runs share a folder name."""
    names = [Path(p).resolve().name for p in paths]
    return [f"{Path(p).resolve().parent.name}/{n}" if names.count(n) > 1 else n for p, n in zip(paths, names)]


def report_from_dirs(dirs: Sequence[str | Path], out: str | Path, *, labels: Sequence[str] | None = None,
                     title: str = "intrain report", notes: Sequence[str] = (), overwrite: bool = False) -> Path:
    """Load ``dirs`` and write the report into ``out``; returns the path of ``report.md``. A run
    directory given twice is refused, and so is an ``out`` that a report did not make (a run folder,
    a folder of other files) unless ``overwrite``."""
    if not dirs:
        raise ConfigError("report: give at least one run directory")
    seen: dict[Path, str] = {}
    for d in dirs:
        resolved = Path(d).resolve()
        if resolved in seen:
            raise ConfigError(f"report: run directory {d} is given twice (as {seen[resolved]} too)")
        seen[resolved] = str(d)
    if not overwrite:
        own_folder(out, what="intrain report", owns=is_report_file, sign=REPORT)
    labels = list(labels) if labels is not None else default_labels(dirs)
    return write_report([load_run(d, label) for d, label in zip(dirs, labels)], out, title=title, notes=notes)


def write_report(runs: Sequence[RunRecord], out: str | Path, *, title: str = "intrain report",
                 notes: Sequence[str] = ()) -> Path:
    """Figures and ``report.md`` for ``runs`` in ``out`` (created if needed)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = draw_figures(runs, out)
    sections = [f"# {title}", *[f"> {note}" for note in notes],
                "## Runs", runs_markdown(runs), _cost_note(runs),
                "## Figures", *[f"### {caption}\n\n![{caption}]({path.name})" for caption, path in written],
                "## Per-layer pruning", layers_markdown(runs)]
    latency = latency_markdown(runs)
    if latency:
        sections += ["## Latency model (PWT paper, Section V)", _LATENCY_NOTE, latency]
    probes = probes_markdown(runs)
    if probes:
        sections += ["## RA probe and partition", probes]
    path = out / REPORT
    path.write_text("\n\n".join(s for s in sections if s) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------


def probe_of(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The RA probe of a summary (``probe`` or ``ra.probe``) if it has the documented shape."""
    probe = summary.get("probe") or (summary.get("ra") or {}).get("probe")
    if not isinstance(probe, dict):
        return None
    layers = probe.get("layers") or []
    if not layers or any(len(probe.get(k) or []) != len(layers) for k in ("sparsity", "sensitivity")):
        return None
    return probe


def trace_of(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """RA's sparsity trace (``ra.sparsity_trace``), keeping only well-formed points."""
    trace = (summary.get("ra") or {}).get("sparsity_trace") or []
    return [p for p in trace if isinstance(p, dict) and "iteration" in p and "sparsity" in p]


def draw_figures(runs: Sequence[RunRecord], out: Path) -> list[tuple[str, Path]]:
    """All figures the runs support, as ``(caption, path)``. In the accuracy figure, runs that differ
    only by seed (:func:`seed_groups`) are one mean line with a band of mean ± standard deviation."""
    grouped = seed_groups(runs)
    groups = [(g.label, [r.history for r in g.runs]) for g in grouped]
    banded = any(len(h) > 1 for _, h in groups)
    mean = " (runs that differ only by seed: their mean)" if banded else ""
    histories = [(label, figures.mean_history(h, ("params", "train_macs"))) for label, h in groups]
    written = [
        ("Test accuracy vs epoch" + (" (runs that differ only by seed: mean ± std across seeds)" if banded else ""),
         figures.accuracy_groups_figure(groups, out / "accuracy.png")),
        ("Non-zero parameters vs epoch" + mean, figures.params_figure(histories, out / "params.png")),
    ]
    if any("train_macs" in rec for r in runs for rec in r.history):
        written.append(("Training MACs of each epoch at its pruning state" + mean,
                        figures.train_macs_figure(histories, out / "train_macs.png")))
    layered = [(g.label, figures.mean_layers(tables)) for g in grouped
               if (tables := [r.summary["layers"] for r in g.runs if r.summary.get("layers")])]
    if layered:
        written.append(("Per-layer pruned filters and weight sparsity" + mean,
                        figures.layers_figure(layered, out / "layers.png")))
    for r in runs:
        probe = probe_of(r.summary)
        if probe is not None:
            name = f"probe-{_slug(r.label)}.png"
            written.append((f"RA probe: sensitivity and partition ({r.label})",
                            figures.probe_figure(r.label, probe, out / name)))
    traces = [(r.label, trace_of(r.summary)) for r in runs if trace_of(r.summary)]
    if traces:
        written.append(("Weight sparsity vs iteration",
                        figures.sparsity_trace_figure(traces, out / "sparsity_trace.png")))
    return written


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


def describe_method(summary: dict[str, Any], config: dict[str, Any]) -> str:
    """A short name for the method and its settings, e.g. ``PWT-l1 80% Mod2`` or ``PRT-l1 80% @E4``
    (the method's registry entry says; a method this version does not know goes by its name), then
    what departs from the paper when the run's summary lists it (``PWT-l1 80% + cubic schedule, ...``)."""
    method = summary.get("method") or config.get("method") or "?"
    spec = registry.find(method)
    text = spec.label(summary, config) if spec is not None else method
    return text + (" + " + ", ".join(summary["departures"]) if summary.get("departures") else "")


def is_baseline(method: str | None) -> bool:
    """Whether runs of ``method`` are the reference of the Δ column (dense)."""
    spec = registry.find(method)
    return spec is not None and spec.baseline


def prunes_while_training(method: str | None) -> bool:
    """Whether reports compare runs of ``method`` with prune-then-retrain (unknown methods: yes)."""
    spec = registry.find(method)
    return spec is None or spec.prunes_while_training


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:+.2f} pt" if signed else f"{100 * x:.1f}%"


_UNITS = (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0))


def _mantissa(value: float) -> str:
    """Three significant digits, trailing zeros kept (``1.00``, ``33.7``, ``431``)."""
    digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
    return f"{value:.{digits}f}"


def unit_for(values: Sequence[float | None]) -> tuple[str, float]:
    """The SI prefix for a column: the largest whose value for the column's largest magnitude
    reads at least 1 once rounded (999,983,000 is ``1.00G``, never ``1e+03M``)."""
    largest = max((abs(v) for v in values if v is not None), default=0.0)
    for unit, scale in _UNITS:
        if float(_mantissa(largest / scale)) >= 1:
            return unit, scale
    return "", 1.0


def _eng(x: float | None, unit: tuple[str, float] | None = None) -> str:
    """``x`` with an SI prefix (``unit`` from :func:`unit_for`, or its own)."""
    if x is None:
        return "–"
    name, scale = unit or unit_for([x])
    return f"{_mantissa(x / scale)}{name}"


def _pair(block: Any) -> str:
    """``"macs / mem"`` savings from a ``{"macs": x, "mem": y}`` block."""
    if not isinstance(block, dict):
        return "–"
    return f"{_pct(block.get('macs'))} / {_pct(block.get('mem'))}"


# ---------------------------------------------------------------------------------------------
# groups: protocols and seeds
# ---------------------------------------------------------------------------------------------

PROTOCOL_KEYS = ("dataset", "subset", "epochs", "model", "width", "val_split")
NOT_THE_EXPERIMENT = ("seed", "out", "data_dir", "device", "masks_from")  # differ between seeds of one experiment


def protocol_of(run: RunRecord) -> tuple:
    """``(dataset, subset, epochs, model, width, val_split)``: runs compared in one table must share it."""
    c, s = run.config, run.summary
    return (c.get("dataset", s.get("dataset")), c.get("subset"), c.get("epochs", s.get("epochs")),
            c.get("model", s.get("model")), c.get("width", 1.0), c.get("val_split"))


def describe_protocol(protocol: tuple) -> str:
    dataset, subset, epochs, model, width, val_split = protocol
    examples = "all training examples" if subset is None else f"{subset} training examples"
    held = "" if val_split is None else f" ({val_split:g} held out for validation)"
    return f"{dataset}, {examples}{held}, {epochs} epochs, {model} width {width:g}"


@dataclass(frozen=True)
class RunGroup:
    """Runs of one experiment that differ only by seed (one run when it has no siblings)."""

    runs: tuple[RunRecord, ...]

    @property
    def label(self) -> str:
        if len(self.runs) == 1:
            return self.runs[0].label
        return f"{self.runs[0].label} … {self.runs[-1].label} ({len(self.runs)} seeds)"

    @property
    def protocol(self) -> tuple:
        return protocol_of(self.runs[0])

    @property
    def method(self) -> str | None:
        return self.runs[0].summary.get("method")

    def values(self, get) -> list[float]:
        """``get(summary)`` of every run, where it is a number."""
        return [v for v in (get(r.summary) for r in self.runs) if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _experiment(run: RunRecord) -> tuple:
    """What must be equal for two runs to be seeds of one experiment: the configuration without
    seed and paths. A run without a config.yaml or a seed in it is an experiment of its own."""
    if "seed" not in run.config:
        return ("run", str(run.path))
    config = {k: v for k, v in effective_config(run).items() if k not in NOT_THE_EXPERIMENT}
    return (protocol_of(run), run.summary.get("method"), json.dumps(config, sort_keys=True, default=str))


# settings that only matter under one learning-rate schedule (older versions wrote them all)
_SCHEDULE_ONLY = {"step": ("lr_step_epochs", "lr_gamma", "lr_milestones"), "inv": ("inv_gamma", "inv_power")}


def effective_config(run: RunRecord) -> dict:
    """The run's settings as intrain reads them now: a config.yaml of an older version (other
    methods' keys, defaults left unset, PWT before recipes) read as a resumed checkpoint would be,
    every default written out, and the settings of learning-rate schedules the run did not use left
    out. So seeds of one experiment started by different versions compare equal. The file as
    written when it cannot be read."""
    from ..engine.checkpoint import config_from_checkpoint
    from ..errors import IntrainError

    try:
        values = config_from_checkpoint({"config": run.config}, run.path).resolved().to_dict()
    except (IntrainError, TypeError, ValueError):
        return dict(run.config)
    for schedule, keys in _SCHEDULE_ONLY.items():
        if values.get("lr_schedule") != schedule:
            for key in keys:
                values.pop(key, None)
    return values


def seed_groups(runs: Sequence[RunRecord]) -> list[RunGroup]:
    """Runs grouped by :func:`_experiment`, in order of first appearance."""
    groups: dict[tuple, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(_experiment(run), []).append(run)
    return [RunGroup(tuple(g)) for g in groups.values()]


def dense_reference(groups: Sequence[RunGroup], protocol: tuple) -> RunGroup | None:
    """The first dense group of ``protocol``: the reference of the Δ column."""
    return next((g for g in groups if is_baseline(g.method) and g.protocol == protocol), None)


def _stat(values: Sequence[float], fmt, suffix: str = "") -> str:
    """``fmt(mean)`` with ``± fmt(std)`` across seeds when there are several values; "–" when none."""
    if not values:
        return "–"
    mean, std = figures.mean_and_std(values)
    return f"{fmt(mean)} ± {fmt(std)}{suffix}" if len(values) > 1 else f"{fmt(mean)}{suffix}"


def _pct_stat(values: Sequence[float]) -> str:
    return _stat(values, lambda x: f"{100 * x:.1f}", "%")


def _pair_stat(group: RunGroup, key: str) -> str:
    """``"macs / mem"`` savings (mean ± std) from the ``{"macs": x, "mem": y}`` blocks."""
    parts = [group.values(lambda s, m=m: (s.get(key) or {}).get(m) if isinstance(s.get(key), dict) else None)
             for m in ("macs", "mem")]
    if not any(parts):
        return "–"
    return f"{_pct_stat(parts[0])} / {_pct_stat(parts[1])}"


def runs_markdown(runs: Sequence[RunRecord]) -> str:
    """The tables of runs, one per protocol (:func:`protocol_of`): accuracy, pruning, training
    cost, wall-clock, savings. Runs that differ only by seed share a row: mean ± sample standard
    deviation, with the number of seeds. Δ vs dense is the difference of mean final accuracies from
    the dense run(s) of the same protocol, blank where there is none."""
    groups = seed_groups(runs)
    protocols = list(dict.fromkeys(g.protocol for g in groups))
    m = next((r.summary["prt_reference"].get("retrain_epochs") for r in runs
              if isinstance(r.summary.get("prt_reference"), dict)), None)
    validated = any("final_val_accuracy" in r.summary for r in runs)
    header = ["run", "method", "seeds", *["final val acc"] * validated, "final acc", "best acc", "Δ vs dense",
              "pruned filters", "sparsity",
              "compression", "train MACs", "train mem", "wall-clock", "saved vs dense (MACs / mem)",
              f"saved vs PRT{f' m={m}' if m is not None else ''} (MACs / mem)"]
    parts, blank = [], False
    for protocol in protocols:
        members = [g for g in groups if g.protocol == protocol]
        dense = dense_reference(groups, protocol)
        units = {key: unit_for([v for g in members for v in g.values(lambda s, k=key: s.get(k))])
                 for key in ("train_macs_total", "train_mem_total")}
        rows = []
        for g in members:
            final = g.values(lambda s: s.get("final_test_accuracy"))
            reference = dense.values(lambda s: s.get("final_test_accuracy")) if dense else []
            delta = _pct(sum(final) / len(final) - sum(reference) / len(reference), signed=True) \
                if final and reference else ""
            blank |= delta == ""
            rows.append([
                g.label, describe_method(g.runs[0].summary, g.runs[0].config), str(len(g.runs)),
                *[_pct_stat(g.values(lambda s: s.get("final_val_accuracy")))] * validated, _pct_stat(final), _pct_stat(g.values(lambda s: s.get("best_test_accuracy"))), delta,
                _pct_stat(g.values(lambda s: s.get("pruned_filter_fraction"))),
                _pct_stat(g.values(lambda s: s.get("sparsity"))),
                _stat(g.values(lambda s: s.get("compression")), lambda x: f"{x:.2f}", "x"),
                *[_stat(g.values(lambda s, k=key: s.get(k)), lambda x, u=units[key]: _mantissa(x / u[1]), units[key][0])
                  for key in ("train_macs_total", "train_mem_total")],
                _stat(g.values(lambda s: s.get("train_seconds")), lambda x: f"{x:.0f}", " s"),
                _pair_stat(g, "savings_vs_dense"),
                _pair_stat(g, "savings_vs_prt") if prunes_while_training(g.method) else "–",
            ])
        parts.append(f"Protocol: {describe_protocol(protocol)}.\n\n" + markdown_table(header, rows))
    notes = []
    if len(protocols) > 1:
        notes.append(f"These runs follow {len(protocols)} protocols (dataset, training subset, epochs, model, "
                     "width, validation split): one table each, and Δ vs dense compares only within a protocol.")
    if blank:
        notes.append("Δ vs dense is blank for runs with no dense run of the same protocol in this report.")
    if any(len(g.runs) > 1 for g in groups):
        notes.append("Runs that differ only by seed share a row: mean ± sample standard deviation across seeds; "
                     "Δ vs dense is the difference of the mean final accuracies.")
    return "\n\n".join(parts + notes)


def _cost_note(runs: Sequence[RunRecord]) -> str:
    if not any("train_macs_total" in r.summary for r in runs):
        return ""
    modes = sorted({r.summary.get("cost_mode", "structured") for r in runs if "train_macs_total" in r.summary})
    return ("Training MACs and memory accesses (element reads + writes) are counted layer by layer at "
            "each epoch's pruning state (forward, backward to the input, weight gradient; see "
            "`intrain cost`), summed over the run. *Saved vs PRT* compares with the paper's "
            "prune-then-retrain baseline: the same epochs dense, then m retraining epochs at the run's "
            "final pruning state (shown for the methods that prune during training). Count: " + ", ".join(
                COST_MODE_TEXT.get(m, m) for m in modes) + ".")


COST_MODE_TEXT = {"structured": "pruned filters and channels", "nonzero": "non-zero weights (idealised sparse hardware)",
                  "full": "every filter (soft-pruned runs train at full size)"}


def layers_markdown(runs: Sequence[RunRecord]) -> str:
    """Layers x runs: ``pruned/filters`` and weight sparsity of each layer at the end (RA Table 3)."""
    names: list[str] = []
    for r in runs:
        names += [row["name"] for row in r.summary.get("layers") or [] if row["name"] not in names]
    if not names:
        return ""
    rows = []
    for name in names:
        row = [name]
        for r in runs:
            layer = next((x for x in r.summary.get("layers") or [] if x["name"] == name), None)
            empty = 0 if layer is None else emptied_filters(layer)
            row.append("–" if layer is None else
                       f"{layer['filters_pruned']}/{layer['filters']} · {_pct(layer.get('sparsity'))}"
                       + (f" · {empty} empty" if empty > 0 else ""))
        rows.append(row)
    return ("Each cell: pruned filters / filters · zero weights (· filters the weight pruning left with no "
            "weight).\n\n"
            + markdown_table(["layer", *[r.label for r in runs]], rows))


_LATENCY_NOTE = ("T_PWT = E·B·t_batch + E·t_prune and T_PRT = (E + m)·B·t_batch, with t_batch (median per-batch "
                 "training time) and t_prune (pruning time per epoch) measured in the run; *measured* is the "
                 "run's training + pruning time (evaluation excluded).")


def latency_markdown(runs: Sequence[RunRecord]) -> str:
    """Section V's latency model, filled with each run's measured times, beside the measured time."""
    rows = []
    for r in runs:
        lat = r.summary.get("latency_model")
        if not isinstance(lat, dict) or not lat:
            continue
        rows.append([r.label, str(lat.get("epochs")), str(lat.get("batches_per_epoch")),
                     f"{1000 * lat['t_batch']:.1f} ms", f"{1000 * lat['t_prune']:.1f} ms",
                     f"{lat['model_pwt_seconds']:.1f} s", f"{lat['measured_seconds']:.1f} s",
                     str(lat.get("retrain_epochs")), f"{lat['model_prt_seconds']:.1f} s"])
    if not rows:
        return ""
    return markdown_table(["run", "E", "B", "t_batch", "t_prune", "model T_PWT", "measured", "m",
                           "model T_PRT"], rows)


def probes_markdown(runs: Sequence[RunRecord]) -> str:
    """Per RA run with a probe: layer, sparsity, sensitivity, class."""
    parts = []
    for r in runs:
        probe = probe_of(r.summary)
        if probe is None:
            continue
        classes = figures.class_index(probe["layers"], probe.get("classes") or [])
        rows = [[name, _pct(sp), f"{se:.3g}", str(c + 1) if c >= 0 else "–"]
                for name, sp, se, c in zip(probe["layers"], probe["sparsity"], probe["sensitivity"], classes)]
        parts.append(f"**{r.label}**\n\n" + markdown_table(["layer", "sparsity", "sensitivity", "class"], rows))
    return "\n\n".join(parts)
