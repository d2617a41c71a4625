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
    header = next(line for line in runs_table.splitlines() if line.startswith("| run |"))
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


def _rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows by their first cell (header rows included), cells stripped."""
    return {cells[0]: cells for cells in ([c.strip() for c in line.split("|")[1:-1]]
                                          for line in text.splitlines() if line.startswith("| "))}


def test_no_dense_run_leaves_delta_blank_with_a_note(runs):
    text = runs_markdown([load_run(runs[1])])
    rows = _rows(text)
    column = rows["run"].index("Δ vs dense")
    assert rows["pwt"][column] == "" and "no dense run of the same protocol" in text


def test_cli_report(runs, tmp_path, capsys):
    assert main(["report", *map(str, runs[:2]), "--out", str(tmp_path / "cli")]) == 0
    assert "report.md" in capsys.readouterr().out
    assert (tmp_path / "cli" / "accuracy.png").exists()
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2


def _seeded(root: Path, name: str, seed: int, accuracy: list[float], *, method: str = "pwt", epochs: int | None = None,
            subset: int | None = 300, **config) -> Path:
    n = len(accuracy)
    return write_run(root, name, method=method, fractions=[0.0] * n if method == "dense" else [0.4] * n,
                     accuracy=accuracy, config={"seed": seed, "dataset": "demo", "model": "lenet5", "subset": subset,
                                                "epochs": epochs or n, "width": 1.0, "out": f"runs/{name}",
                                                "target": 0.4, **config})


def test_runs_that_differ_only_by_seed_share_a_row_with_mean_and_std(tmp_path):
    root = tmp_path / "runs"
    dirs = [_seeded(root, "dense-s0", 0, [0.8, 0.90], method="dense"),
            _seeded(root, "dense-s1", 1, [0.8, 0.94], method="dense"),
            _seeded(root, "pwt-s0", 0, [0.7, 0.86]), _seeded(root, "pwt-s1", 1, [0.7, 0.88]),
            _seeded(root, "pwt-s2", 2, [0.7, 0.90]),
            _seeded(root, "pwt-other", 0, [0.7, 0.5], criterion="random")]  # another experiment
    text = runs_markdown([load_run(d) for d in dirs])
    rows = _rows(text)
    header = rows["run"]
    pwt = rows["pwt-s0 … pwt-s2 (3 seeds)"]
    assert pwt[header.index("seeds")] == "3"
    assert pwt[header.index("final acc")] == "88.0 ± 2.0%"  # mean 0.88, sample std 0.02
    assert pwt[header.index("Δ vs dense")] == "-4.00 pt"  # 88% against the dense mean 92%
    assert rows["dense-s0 … dense-s1 (2 seeds)"][header.index("final acc")] == "92.0 ± 2.8%"  # std 0.04/sqrt(2)
    assert rows["pwt-other"][header.index("seeds")] == "1" and rows["pwt-other"][header.index("final acc")] == "50.0%"
    assert "mean ± sample standard deviation" in text


def test_delta_only_against_a_dense_run_of_the_same_protocol(tmp_path):
    root = tmp_path / "runs"
    dirs = [_seeded(root, "dense", 0, [0.9, 0.95], method="dense"),
            _seeded(root, "pwt", 0, [0.8, 0.90]),
            _seeded(root, "pwt-longer", 0, [0.8, 0.85, 0.9]),  # 3 epochs: another protocol
            _seeded(root, "pwt-full", 0, [0.8, 0.91], subset=None)]  # all examples: another protocol
    text = runs_markdown([load_run(d) for d in dirs])
    rows = _rows(text)
    column = rows["run"].index("Δ vs dense")
    assert rows["pwt"][column] == "-5.00 pt"
    assert rows["pwt-longer"][column] == "" and rows["pwt-full"][column] == ""
    assert text.count("Protocol: ") == 3 and "3 protocols" in text
    assert "Protocol: demo, 300 training examples, 2 epochs, lenet5 width 1." in text


def test_the_same_run_twice_is_refused(runs, tmp_path, capsys):
    with pytest.raises(ConfigError, match="given twice"):
        report_from_dirs([runs[0], runs[1], runs[0].parent / ".." / "runs" / "dense"], tmp_path / "out")
    assert main(["report", str(runs[0]), str(runs[0]), "--out", str(tmp_path / "cli")]) == 2
    assert "given twice" in capsys.readouterr().err and not (tmp_path / "cli").exists()


@pytest.mark.parametrize("values, expected", [
    ([999_983_000], ["1.00G"]), ([431_080], ["431k"]), ([6.6e9, 5e8], ["6.60G", "0.50G"]), ([12.0], ["12.0"]),
    ([999.6], ["1.00k"]), ([0.0], ["0.00"]),
])
def test_engineering_units_are_consistent_within_a_column(values, expected):
    from intrain.reporting.report import _eng, unit_for

    unit = unit_for(values)
    assert [_eng(v, unit) for v in values] == expected


def test_accuracy_figure_draws_a_band_for_seeds(tmp_path, monkeypatch):
    from intrain.reporting import figures

    calls = []
    real = figures.plt.Axes.fill_between
    monkeypatch.setattr(figures.plt.Axes, "fill_between", lambda self, *a, **k: calls.append(a) or real(self, *a, **k))
    histories = [[{"epoch": 1, "test_accuracy": 0.5}, {"epoch": 2, "test_accuracy": a}] for a in (0.6, 0.8)]
    figures.accuracy_groups_figure([("pwt", histories), ("dense", histories[:1])], tmp_path / "a.png")
    (epochs, low, high), = calls  # one band: the group of two seeds, none for the single run
    assert list(epochs) == [1, 2] and low[0] == high[0] == 50.0
    std = (0.02 ** 0.5) * 100  # sample std of 60% and 80%: 14.1 points
    assert low[1] == pytest.approx(70 - std) and high[1] == pytest.approx(70 + std)


def test_seeds_started_by_different_versions_share_a_row(tmp_path):
    """A config.yaml written before recipes and method settings (every method's keys, defaults left
    unset, lr_step_epochs written though the schedule is constant) and one written now are seeds of
    one experiment; a real difference (the paper's schedule against the recommended one) is not."""
    root = tmp_path / "runs"
    common = {"method": "pwt", "criterion": "l1", "target": 0.8, "lr_schedule": "constant", "optimizer": "adam"}
    old = _seeded(root, "pwt-s0", 0, [0.7, 0.86], **common, schedule="cubic", reach=0.6, prune_every_steps=6,
                  rate=None, compact=None, lr=None, lr_step_epochs=30, range=2.0, epsilon=0.1, masks_from=None)
    new = _seeded(root, "pwt-s1", 1, [0.7, 0.88], **common, recipe="paper", schedule="cubic", reach=0.6,
                  prune_every_steps=6, compact=True, lr=0.001, lr_step_epochs=6)
    paper = _seeded(root, "pwt-paper-s0", 0, [0.7, 0.70], **common, recipe="paper")
    rows = _rows(runs_markdown([load_run(d) for d in (old, new, paper)]))
    assert rows["pwt-s0 … pwt-s1 (2 seeds)"][rows["run"].index("seeds")] == "2"
    assert rows["pwt-paper-s0"][rows["run"].index("seeds")] == "1"


def test_a_crowded_accuracy_figure_gives_every_line_its_own_look_and_its_legend_goes_beside_it(tmp_path, monkeypatch):
    """Twelve runs: matplotlib's default cycle would repeat two colours; the legend would cover the lines."""
    from intrain.reporting import figures

    drawn = {}
    real = figures._save
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.setdefault("fig", fig) and real(fig, path))
    history = [{"epoch": 1, "test_accuracy": 0.5}, {"epoch": 2, "test_accuracy": 0.6}]
    groups = [(f"run-{i}", [history]) for i in range(11)] + [("pwt-s0 … pwt-s2 (3 seeds)", [history] * 3)]
    figures.accuracy_groups_figure(groups, tmp_path / "a.png")
    ax = drawn["fig"].axes[0]
    looks = {(line.get_color(), line.get_linestyle()) for line in ax.get_lines()}
    assert len(ax.get_lines()) == 12 and len(looks) == 12
    legend = ax.get_legend()
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1  # right of the axes
    assert [t.get_text() for t in legend.get_texts()][-1] == "pwt-s0 … pwt-s2 (3 seeds): mean ± std"
    few = [(f"run-{i}", [history]) for i in range(2)]
    drawn.clear()
    figures.accuracy_groups_figure(few, tmp_path / "b.png")
    ax = drawn["fig"].axes[0]
    assert ax.get_legend().get_bbox_to_anchor().x0 < ax.get_window_extent().x1  # a short legend stays inside


def test_seeds_of_one_experiment_are_one_mean_line_and_one_mean_bar_in_the_cost_and_layer_figures():
    from intrain.reporting.figures import mean_history, mean_layers

    a = [{"epoch": 1, "params": 10, "train_macs": 4.0}, {"epoch": 2, "params": 6, "train_macs": 2.0}]
    b = [{"epoch": 1, "params": 20, "train_macs": 6.0}]  # stopped after one epoch
    assert mean_history([a, b], ("params", "train_macs", "absent")) == [{"epoch": 1, "params": 15.0, "train_macs": 5.0}]
    rows = [[{"name": "c1", "filters": 8, "filters_pruned": 2, "sparsity": 0.0},
             {"name": "c2", "filters": 4, "filters_pruned": 1, "sparsity": 0.5}],
            [{"name": "c1", "filters": 8, "filters_pruned": 4, "sparsity": 0.0}]]
    assert mean_layers(rows) == [{"name": "c1", "filters": 8, "filters_pruned": 3.0, "sparsity": 0.0},
                                 {"name": "c2", "filters": 4, "filters_pruned": 1.0, "sparsity": 0.5}]
    assert mean_history([a, b, []], ("params",)) == [{"epoch": 1, "params": 15.0}]  # a run with no epoch
    assert [r["name"] for r in mean_layers(rows[::-1])] == ["c1", "c2"]  # a layer only a later run lists
    assert mean_layers(rows[::-1])[1]["filters_pruned"] == 1.0


def test_a_seed_without_per_layer_rows_leaves_its_group_in_the_layer_figure(tmp_path, monkeypatch):
    from intrain.reporting import figures

    root = tmp_path / "runs"
    dirs = [_seeded(root, "pwt-s0", 0, [0.7, 0.86]), _seeded(root, "pwt-s1", 1, [0.7, 0.88])]
    summary = json.loads((dirs[1] / "summary.json").read_text())
    del summary["layers"]  # e.g. written by an older version
    (dirs[1] / "summary.json").write_text(json.dumps(summary))
    drawn = []
    real = figures.layers_figure
    monkeypatch.setattr(figures, "layers_figure", lambda runs, path: drawn.append(runs) or real(runs, path))
    report_from_dirs(dirs, tmp_path / "report")
    (runs,), = drawn
    assert runs[1] == figures.mean_layers([json.loads((dirs[0] / "summary.json").read_text())["layers"]])


def test_report_refuses_a_folder_it_did_not_make(runs, tmp_path, capsys):
    """A run folder, or a folder of other files, is not overwritten with figures unless told."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    for out in (runs[0], mine):  # another run's folder; someone's files
        before = sorted(p.name for p in out.iterdir())
        assert main(["report", str(runs[1]), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "--overwrite" in err
        assert sorted(p.name for p in out.iterdir()) == before
    assert main(["report", str(runs[1]), "--out", str(mine), "--overwrite"]) == 0
    assert (mine / "report.md").exists() and (mine / "notes.txt").read_text() == "keep"
    # a folder a report made is the report's: written again without a word
    assert main(["report", str(runs[1]), "--out", str(mine)]) == 0
