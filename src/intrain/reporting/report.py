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
from . import figures
from .tables import markdown_table

HISTORY, SUMMARY, CONFIG = "history.jsonl", "summary.json", "config.yaml"


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
    path = Path(path)
    try:
        summary = json.loads((path / SUMMARY).read_text(encoding="utf-8"))
        history = [json.loads(line) for line in (path / HISTORY).read_text(encoding="utf-8").splitlines()
                   if line.strip()]
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} is not a finished run directory: {Path(exc.filename).name} is missing") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable run files ({exc.__class__.__name__})") from None
    config: dict[str, Any] = {}
    if (path / CONFIG).exists():
        try:
            config = yaml.safe_load((path / CONFIG).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            config = {}
    return RunRecord(label or path.name, path, summary, history, config)


def default_labels(paths: Sequence[str | Path]) -> list[str]:
    """Each run's folder name, or ``parent/name`` where two runs share a folder name."""
    names = [Path(p).resolve().name for p in paths]
    return [f"{Path(p).resolve().parent.name}/{n}" if names.count(n) > 1 else n for p, n in zip(paths, names)]


def report_from_dirs(dirs: Sequence[str | Path], out: str | Path, *, labels: Sequence[str] | None = None,
                     title: str = "intrain report", notes: Sequence[str] = ()) -> Path:
    """Load ``dirs`` and write the report into ``out``; returns the path of ``report.md``."""
    if not dirs:
        raise ConfigError("report: give at least one run directory")
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
    path = out / "report.md"
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
    """All figures the runs support, as ``(caption, path)``."""
    histories = [(r.label, r.history) for r in runs]
    written = [
        ("Test accuracy vs epoch", figures.accuracy_figure(histories, out / "accuracy.png")),
        ("Non-zero parameters vs epoch", figures.params_figure(histories, out / "params.png")),
    ]
    if any("train_macs" in rec for r in runs for rec in r.history):
        written.append(("Training MACs of each epoch at its pruning state",
                        figures.train_macs_figure(histories, out / "train_macs.png")))
    layered = [(r.label, r.summary["layers"]) for r in runs if r.summary.get("layers")]
    if layered:
        written.append(("Per-layer pruned filters and weight sparsity",
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
    """A short name for the method and its settings, e.g. ``PWT-l1 80% Mod2`` or ``PRT-l1 80% @E4``."""
    method = summary.get("method") or config.get("method") or "?"
    target = summary.get("target", config.get("target"))
    criterion = summary.get("criterion") or config.get("criterion")
    if method in ("pwt", "prt"):
        text = f"{method.upper()}-{criterion} {target:.0%}" if target is not None else method.upper()
        if method == "pwt" and (config.get("every") or 1) > 1:
            text += f" Mod{config['every']}"
        if method == "prt" and config.get("prune_epoch"):
            text += f" @E{config['prune_epoch']}"
        return text
    if method == "ra":
        text = f"RA-{config.get('range', '?')}-{config.get('epsilon', '?')}"
        if config.get("partition") == "sensitivity":
            text += f" δ={config.get('delta')}"
        return text
    return method


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:+.2f} pt" if signed else f"{100 * x:.1f}%"


def _eng(x: float | None) -> str:
    if x is None:
        return "–"
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _pair(block: Any) -> str:
    """``"macs / mem"`` savings from a ``{"macs": x, "mem": y}`` block."""
    if not isinstance(block, dict):
        return "–"
    return f"{_pct(block.get('macs'))} / {_pct(block.get('mem'))}"


def dense_reference(runs: Sequence[RunRecord]) -> RunRecord | None:
    """The first dense run, the reference of the Δ column."""
    return next((r for r in runs if r.summary.get("method") == "dense"), None)


def runs_markdown(runs: Sequence[RunRecord]) -> str:
    """The table of runs: accuracy, pruning, training cost, wall-clock, savings."""
    dense = dense_reference(runs)
    m = next((r.summary["prt_reference"].get("retrain_epochs") for r in runs
              if isinstance(r.summary.get("prt_reference"), dict)), None)
    header = ["run", "method", "final acc", "best acc", "Δ vs dense", "pruned filters", "sparsity",
              "compression", "train MACs", "train mem", "wall-clock", "saved vs dense (MACs / mem)",
              f"saved vs PRT{f' m={m}' if m is not None else ''} (MACs / mem)"]
    rows = []
    for r in runs:
        s = r.summary
        delta = s["final_test_accuracy"] - dense.summary["final_test_accuracy"] if dense else None
        rows.append([
            r.label, describe_method(s, r.config), _pct(s.get("final_test_accuracy")),
            _pct(s.get("best_test_accuracy")), _pct(delta, signed=True), _pct(s.get("pruned_filter_fraction")),
            _pct(s.get("sparsity")), f"{s['compression']:.2f}x" if "compression" in s else "–",
            _eng(s.get("train_macs_total")), _eng(s.get("train_mem_total")),
            f"{s['train_seconds']:.0f} s" if "train_seconds" in s else "–",
            _pair(s.get("savings_vs_dense")),
            _pair(s.get("savings_vs_prt")) if s.get("method") not in ("dense", "prt") else "–",
        ])
    return markdown_table(header, rows)


def _cost_note(runs: Sequence[RunRecord]) -> str:
    if not any("train_macs_total" in r.summary for r in runs):
        return ""
    modes = sorted({r.summary.get("cost_mode", "structured") for r in runs if "train_macs_total" in r.summary})
    return ("Training MACs and memory accesses (element reads + writes) are counted layer by layer at "
            "each epoch's pruning state (forward, backward to the input, weight gradient; see "
            "`intrain cost`), summed over the run. *Saved vs PRT* compares with the paper's "
            "prune-then-retrain baseline: the same epochs dense, then m retraining epochs at the run's "
            "final pruning state (shown for the methods that prune during training). Count: " + ", ".join(
                "pruned filters and channels" if m == "structured" else "non-zero weights (idealised sparse hardware)"
                for m in modes) + ".")


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
            row.append("–" if layer is None else
                       f"{layer['filters_pruned']}/{layer['filters']} · {_pct(layer.get('sparsity'))}")
        rows.append(row)
    return ("Each cell: pruned filters / filters · zero weights.\n\n"
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
