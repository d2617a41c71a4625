"""``intrain report`` on fixture run directories (fake history and summary files): every figure and table."""

import json
from pathlib import Path

import pytest
import yaml

from intrain.cli import main
from intrain.errors import ConfigError
from intrain.reporting.report import (default_labels, describe_method, load_run, probe_of, report_from_dirs,
                                      runs_markdown)

LAYERS = ["conv1", "conv2", "fc1", "fc2"]


def _layers(pruned: float, sparsity: float) -> list[dict]:
    filters = {"conv1": 20, "conv2": 50, "fc1": 500, "fc2": 10}
    return [{"name": n, "kind": "conv" if n.startswith("conv") else "linear", "filters": f,
             "filters_pruned": round(f * pruned) if n.startswith("conv") else 0, "weights": 100,
             "sparsity": sparsity if n.startswith("conv") else 0.0} for n, f in filters.items()]


def write_run(root: Path, name: str, *, method: str, fractions: list[float], accuracy: list[float],
              extra: dict | None = None, config: dict | None = None, costs: bool = True) -> Path:
    """A run directory as :mod:`intrain.engine.run` writes it, with made-up numbers."""
    run = root / name
    run.mkdir(parents=True)
    dense_macs, dense_mem = 6.6e9, 1.3e9
    history = []
    for e, (p, acc) in enumerate(zip(fractions, accuracy), 1):
        record = {"epoch": e, "train_loss": 1.0 / e, "train_accuracy": acc, "test_loss": 1.0 / e,
                  "test_accuracy": acc, "lr": 1e-3, "pruned_filter_fraction": p, "sparsity": p / 2,
                  "params": int(430_000 * (1 - p / 2)), "epoch_seconds": 2.0, "prune_seconds": 0.01,
                  "eval_seconds": 0.5}
        if costs:
            record.update(train_macs=dense_macs * (1 - p), train_mem=dense_mem * (1 - p))
        history.append(record)
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    n = len(history)
    summary = {"method": method, "model": "lenet5", "dataset": "demo", "epochs": n,
               "criterion": "l1" if method in ("pwt", "prt") else None,
               "target": 0.8 if method in ("pwt", "prt") else None,
               "final_test_accuracy": accuracy[-1], "best_test_accuracy": max(accuracy),
               "pruned_filter_fraction": fractions[-1], "sparsity": fractions[-1] / 2, "params_dense": 431_080,
               "params_final": history[-1]["params"], "compression": 431_080 / history[-1]["params"],
               "train_seconds": 2.5 * n, "prune_seconds": 0.01 * n, "layers": _layers(fractions[-1], fractions[-1] / 2)}
    if costs:
        total = sum(r["train_macs"] for r in history)
        summary.update(cost_mode="structured", train_macs_total=total, train_mem_total=total / 5,
                       dense_train_macs_total=dense_macs * n, dense_train_mem_total=dense_mem * n,
                       prt_reference={"retrain_epochs": 1, "train_macs_total": dense_macs * (n + 0.2),
                                      "train_mem_total": dense_mem * (n + 0.2)},
                       savings_vs_dense={"macs": 1 - total / (dense_macs * n), "mem": 0.3},
                       savings_vs_prt={"macs": 1 - total / (dense_macs * (n + 0.2)), "mem": 0.35},
                       latency_model={"epochs": n, "batches_per_epoch": 10, "retrain_epochs": 1, "t_batch": 0.2,
                                      "t_prune": 0.01, "model_pwt_seconds": 2.01 * n, "model_prt_seconds": 2.0 * (n + 1),
                                      "measured_seconds": 2.0 * n})
    summary.update(extra or {})
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "config.yaml").write_text(yaml.safe_dump({"method": method, **(config or {})}))
    return run


PROBE = {"iterations": 10, "seconds": 0.1, "layers": LAYERS, "sparsity": [0.3, 0.8, 0.95, 0.5],
         "sensitivity": [3.3, 1.25, 1.05, 2.0], "classes": [["conv1"], ["conv2", "fc1"], ["fc2"]]}


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    return [
        write_run(root, "dense", method="dense", fractions=[0, 0, 0, 0], accuracy=[0.8, 0.9, 0.92, 0.93]),
        write_run(root, "pwt", method="pwt", fractions=[0.2, 0.4, 0.6, 0.8], accuracy=[0.78, 0.88, 0.9, 0.91],
                  config={"every": 2}),
        write_run(root, "prt", method="prt", fractions=[0, 0, 0.8, 0.8], accuracy=[0.8, 0.9, 0.7, 0.85],
                  config={"prune_epoch": 2}),
        write_run(root, "ra", method="ra", fractions=[0, 0, 0, 0], accuracy=[0.8, 0.9, 0.91, 0.92],
                  config={"range": 2.0, "epsilon": 0.1, "partition": "sensitivity", "delta": 0.4},
                  extra={"ra": {"probe": PROBE, "sparsity_trace": [{"iteration": i * 10, "sparsity": i / 10}
                                                                    for i in range(8)]}}),
        write_run(root, "old", method="pwt", fractions=[0.4, 0.8], accuracy=[0.5, 0.6], costs=False),
    ]


def test_report_writes_every_figure_and_table(runs, tmp_path):
    out = tmp_path / "report"
    path = report_from_dirs(runs, out, title="Fixture report", notes=["CPU scale."])
    assert path == out / "report.md"
    for name in ("accuracy.png", "params.png", "train_macs.png", "layers.png", "probe-ra.png",
                 "sparsity_trace.png"):
        assert (out / name).stat().st_size > 10_000, name
        assert f"]({name})" in path.read_text()
    text = path.read_text()
    assert text.startswith("# Fixture report") and "> CPU scale." in text
    for heading in ("## Runs", "## Figures", "## Per-layer pruning", "## Latency model", "## RA probe"):
        assert heading in text
    runs_table = text.split("## Runs")[1].split("##")[0]
    header = runs_table.splitlines()[2]
    for column in ("final acc", "best acc", "Δ vs dense", "pruned filters", "sparsity", "compression",
                   "train MACs", "train mem", "wall-clock", "saved vs dense", "saved vs PRT m=1"):
        assert column in header
    rows = {line.split("|")[1].strip(): line for line in runs_table.splitlines() if line.startswith("| ")}
    assert "+0.00 pt" in rows["dense"] and "-2.00 pt" in rows["pwt"]  # 91% vs 93%
    assert "50.0% / 30.0%" in rows["pwt"]  # MACs: 1 - (0.8 + 0.6 + 0.4 + 0.2) / 4
    assert "PWT-l1 80% Mod2" in rows["pwt"] and "PRT-l1 80% @E2" in rows["prt"] and "RA-2.0-0.1 δ=0.4" in rows["ra"]
    assert rows["old"].count("–") >= 4  # a run without cost keys still gets a row
    assert "| conv2 |" in text and "40/50" in text  # per-layer table: pruned/filters
    assert "| fc1 | 95.0% | 1.05 | 2 |" in text  # probe table: layer, sparsity, sensitivity, class


def test_report_without_optional_keys(tmp_path):
    root = tmp_path / "runs"
    run = write_run(root, "only", method="pwt", fractions=[0.4, 0.8], accuracy=[0.5, 0.6], costs=False)
    out = tmp_path / "out"
    text = report_from_dirs([run], out).read_text()
    assert not (out / "train_macs.png").exists() and not list(out.glob("probe-*.png"))
    assert "Δ vs dense" in text and "Latency model" not in text and "RA probe" not in text


def test_probe_read_defensively():
    assert probe_of({"ra": {"probe": PROBE}}) is PROBE
    assert probe_of({"probe": PROBE}) is PROBE
    assert probe_of({"ra": {"probe": None}}) is None
    assert probe_of({"probe": {"layers": ["a", "b"], "sparsity": [0.1], "sensitivity": [1, 2]}}) is None
    assert probe_of({"probe": "junk"}) is None


def test_probe_classes_may_be_indices(tmp_path):
    probe = dict(PROBE, classes=[[0], [1, 2], [3]])
    run = write_run(tmp_path / "runs", "ra", method="ra", fractions=[0, 0], accuracy=[0.5, 0.6],
                    extra={"probe": probe})
    text = report_from_dirs([run], tmp_path / "out").read_text()
    assert "| conv2 | 80.0% | 1.25 | 2 |" in text


def test_load_run_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="summary.json is missing"):
        load_run(tmp_path / "empty")
    with pytest.raises(ConfigError, match="at least one"):
        report_from_dirs([], tmp_path / "out")


def test_default_labels_disambiguate_same_names(tmp_path):
    assert default_labels([tmp_path / "a" / "run", tmp_path / "b" / "run", tmp_path / "c"]) == ["a/run", "b/run", "c"]


def test_describe_method():
    assert describe_method({"method": "dense"}, {}) == "dense"
    assert describe_method({"method": "pwt", "criterion": "random", "target": 0.4}, {"every": 1}) == "PWT-random 40%"
    assert describe_method({"method": "scratch"}, {}) == "scratch"


def test_no_dense_run_leaves_delta_empty(runs):
    text = runs_markdown([load_run(runs[1])])
    assert text.splitlines()[2].split("|")[5].strip() == "–"


def test_cli_report(runs, tmp_path, capsys):
    assert main(["report", *map(str, runs[:2]), "--out", str(tmp_path / "cli")]) == 0
    assert "report.md" in capsys.readouterr().out
    assert (tmp_path / "cli" / "accuracy.png").exists()
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
