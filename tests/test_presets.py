"""Reproduction presets are valid configurations, and the runner wires them into a report (no training)."""

import json
import re
from pathlib import Path

import pytest

from intrain.cli import main
from intrain.config import TrainConfig
from intrain.errors import ConfigError
from intrain.presets import PRESETS, SCALES, get_preset
from intrain.reporting.reproduce import finished, resolve_run, run_preset


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_is_valid(name, scale):
    preset = get_preset(name, scale)
    assert preset.name == name and preset.scale == scale and preset.title and preset.notes
    labels = [r.label for r in preset.runs]
    assert len(labels) == len(set(labels)) >= 3
    for i, run in enumerate(preset.runs):
        assert isinstance(run.config, TrainConfig) and run.config.out is None
        TrainConfig.from_dict(run.config.to_dict())  # survives the YAML round trip's validation
        masks_from = getattr(run.config.method_config, "masks_from", None)
        if masks_from:
            assert masks_from.startswith("@") and masks_from[1:] in labels[:i]
    assert preset.runs[0].config.method == "dense"
    if scale == "cpu":
        assert "CPU scale" in preset.notes[0]
        allowed = {"folder"} if name in IMAGENET_PRESETS else {"mnist", "fashion-mnist"}
        assert {r.config.dataset for r in preset.runs} <= allowed


def test_paper_settings():
    fig1 = get_preset("pwt-fig1", "paper")
    base = fig1.runs[0].config
    assert (base.model, base.dataset, base.epochs, base.optimizer, base.width) == ("vgg16", "cifar10", 80, "adam", 1.0)
    assert [r.config.method_config.prune_epoch for r in fig1.runs if r.config.method == "prt"] == [40, 55, 70]
    fig5 = {(r.config.method_config.criterion, r.config.method_config.target) for r in get_preset("pwt-fig5", "paper").runs if r.config.method == "pwt"}
    assert fig5 == {("l1", 0.8), ("mean-activation", 0.8), ("random", 0.8), ("random", 0.4)}
    fig3 = [r.config.method_config.target for r in get_preset("pwt-fig3", "paper").runs if r.config.method == "pwt"]
    assert min(fig3) == 0.72 and max(fig3) == 0.92
    assert [r.config.method_config.every for r in get_preset("pwt-fig4", "paper").runs[1:]] == [1, 2, 3, 4]
    table4 = [r.config.method_config.delta for r in get_preset("ra-table4", "paper").runs if r.config.method == "ra"]
    assert table4 == [float("inf"), 0.5, 0.4, 0.3]
    table2 = get_preset("ra-table2", "paper").runs
    assert [r.config.method for r in table2] == ["dense", "ra", "scratch", "scratch"]
    assert [r.config.method_config.scratch_init for r in table2[2:]] == ["fresh", "same"]


def test_ra_table4_paper_schedule_extends_at_10k_and_20k_and_drops_the_rate_at_32k_and_48k():
    from intrain.engine.build import LrSchedule

    runs = get_preset("ra-table4", "paper").runs
    config = runs[1].config
    iterations_per_epoch = 391  # ceil(50,000 / 128)
    assert config.epochs * iterations_per_epoch == 64_124 and config.lr == 0.1 and config.momentum == 0.9
    assert config.weight_decay == 1e-4 and all(r.config.method_config.extending_interval == 10_000 for r in runs[1:])
    schedule = LrSchedule(config, iterations_per_epoch)
    factors = [schedule(i) for i in (0, 31_999, 32_000, 47_999, 48_000, 64_123)]
    assert factors == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


IMAGENET_PRESETS = ("pwt-fig7", "ra-alexnet")


def test_imagenet_paper_settings():
    fig7 = get_preset("pwt-fig7", "paper")
    base = fig7.runs[0].config
    assert (base.model, base.dataset, base.image_size, base.epochs, base.optimizer, base.width) == (
        "vgg16-224", "folder", 224, 100, "adam", 1.0)
    assert [(r.config.method, r.config.method_config.target) for r in fig7.runs[1:]] == [("pwt", 0.7), ("prt", 0.7)]
    assert fig7.runs[2].config.method_config.prune_epoch == 70
    alexnet = get_preset("ra-alexnet", "paper")
    base = alexnet.runs[0].config
    assert (base.model, base.image_size, base.batch_size, base.optimizer, base.lr, base.weight_decay) == (
        "alexnet", 227, 256, "sgd", 0.01, 5e-4)
    assert [r.config.method for r in alexnet.runs] == ["dense", "ra", "scratch"]
    assert alexnet.runs[1].config.method_config.partition == "type"  # Strategy 1: conv layers, then fc layers


@pytest.mark.parametrize("name", IMAGENET_PRESETS)
def test_imagenet_presets_smoke_run_on_a_generated_folder(image_folder, tmp_path, name):
    """The paper-scale preset, cut to one epoch of two steps (6 images, batch 3) on a generated folder
    with narrower networks and smaller crops so that it takes seconds on a CPU: every run trains and
    the report is written."""
    root = image_folder(tmp_path / "images", train=2, val=1, size=(48, 40))
    preset = get_preset(name, "paper", data_dir=str(root))
    small = {"pwt-fig7": dict(width=0.0625, image_size=32), "ra-alexnet": dict(width=0.0625, image_size=67)}[name]
    runs = tuple(type(r)(r.label, r.config.replace(
        epochs=1, batch_size=3, workers=0, device="cpu", bn_recalibration_batches=1, **small,
        lr_schedule="constant",  # one epoch has no step for a step schedule to lower the rate at
        **({"prune_epoch": 1} if r.config.method == "prt" else {}))) for r in preset.runs)
    report = run_preset(type(preset)(preset.name, preset.scale, preset.title, runs, preset.notes),
                        tmp_path / "out", log=lambda line: None)
    assert report.is_file()
    for run in runs:
        history = [json.loads(line) for line in (tmp_path / "out" / run.label / "history.jsonl").read_text().splitlines()]
        assert len(history) == 1
        summary = json.loads((tmp_path / "out" / run.label / "summary.json").read_text())
        assert summary["model"] == preset.runs[0].config.model and summary["dataset"] == "folder"
        if run.config.method in ("pwt", "prt"):
            assert summary["pruned_filter_fraction"] == pytest.approx(0.7, abs=0.03)


def test_cpu_prt_epochs_are_distinct_and_inside_the_run():
    runs = get_preset("pwt-fig1", "cpu", seeds=(0,)).runs
    epochs = [r.config.method_config.prune_epoch for r in runs if r.config.method == "prt"]
    assert len(set(epochs)) == len(epochs) >= 2
    assert all(1 <= e < runs[0].config.epochs for e in epochs)


def test_unknown_names():
    with pytest.raises(ConfigError, match="unknown preset"):
        get_preset("fig9")
    with pytest.raises(ConfigError, match="scale"):
        get_preset("pwt-fig1", "gpu")
    assert main(["reproduce", "fig9"]) == 2


def test_data_dir_and_masks_from_resolution(tmp_path):
    preset = get_preset("ra-table2", "cpu", data_dir="/data")
    assert all(r.config.data_dir == "/data" for r in preset.runs)
    scratch = resolve_run(preset.runs[2], tmp_path)
    assert scratch.method_config.masks_from == str(tmp_path / "ra-2-0.1") and scratch.out == str(tmp_path / "scratch")


def _fake_train(config: TrainConfig, quiet: bool = True) -> dict:
    """Writes a minimal finished run directory for ``config`` instead of training."""
    from intrain.config import write_yaml

    out = Path(config.out)
    out.mkdir(parents=True)
    write_yaml(config.resolved(), out / "config.yaml")
    p = getattr(config.method_config, "target", 0.0)
    (out / "history.jsonl").write_text(json.dumps({"epoch": 1, "test_accuracy": 0.5, "params": 10, "train_macs": 1e6 * (1 - p)}) + "\n")
    summary = {"method": config.method, "final_test_accuracy": 0.5, "best_test_accuracy": 0.5,
               "pruned_filter_fraction": p, "sparsity": p, "compression": 1.0, "train_seconds": 1.0,
               "target": getattr(config.method_config, "target", None),
               "criterion": getattr(config.method_config, "criterion", None), "layers": []}
    (out / "summary.json").write_text(json.dumps(summary))
    return summary


def test_run_preset_trains_each_run_once_and_writes_the_report(tmp_path):
    preset = get_preset("pwt-fig5", "cpu", seeds=(0,))
    calls = []

    def train(config, quiet=True, overwrite=False):
        assert overwrite  # reproduce owns its run folders: an unfinished one is started afresh
        calls.append(config.out)
        return _fake_train(config, quiet)

    report = run_preset(preset, tmp_path, train=train, log=lambda _: None)
    assert len(calls) == len(preset.runs)
    text = report.read_text()
    assert "CPU scale" in text and "`intrain reproduce pwt-fig5 --scale cpu`" in text
    assert all(f"| {r.label} |" in text for r in preset.runs)
    assert finished(resolve_run(preset.runs[1], tmp_path))
    run_preset(preset, tmp_path, train=train, log=lambda _: None)  # everything reused
    assert len(calls) == len(preset.runs)


def test_cpu_pwt_presets_follow_the_protocol_with_three_seeds_and_the_papers_schedule():
    preset = get_preset("pwt-fig1", "cpu")
    assert preset.seeds == (0, 1, 2)
    labels = [r.label for r in preset.runs]
    assert labels[:2] == ["dense-s0", "pwt-l1-80-s0"] and "prt-14-s2" in labels and len(labels) == 15
    base = preset.runs[0].config
    assert (base.model, base.width, base.dataset, base.subset, base.epochs, base.batch_size) == \
        ("vgg16", 0.25, "fashion-mnist", None, 20, 128)
    assert {r.config.seed for r in preset.runs if r.label.endswith("-s2")} == {2}
    pwt = [r.config for r in preset.runs if r.config.method == "pwt"]
    assert all(c.method_config.recipe == "paper" and c.method_config.schedule_settings["schedule"] == "linear"
               for c in pwt)
    one = get_preset("ra-table2", "cpu", seeds=(3, 4))
    assert [r.label for r in one.runs][:3] == ["dense-s3", "ra-2-0.1-s3", "scratch-s3"]
    assert one.runs[2].config.method_config.masks_from == "@ra-2-0.1-s3"
    with pytest.raises(ConfigError, match="distinct seeds"):
        get_preset("pwt-fig1", "cpu", seeds=(1, 1))


def test_reproduce_help_names_every_preset(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "--help"])
    assert exit_.value.code == 0
    shown = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # argparse wraps inside names
    for name in PRESETS:
        assert name in shown


def _counting_train(config, quiet=True, overwrite=False):
    return _fake_train(config, quiet)


def test_reproduce_lines_count_the_runs_and_the_time(tmp_path):
    """Without a terminal each run gets its [i/N] lines, the elapsed time and what is left."""
    preset = get_preset("pwt-fig5", "cpu", seeds=(0,))
    lines: list[str] = []
    run_preset(preset, tmp_path, train=_counting_train, log=lines.append)
    total = len(preset.runs)
    for i, run in enumerate(preset.runs, 1):
        done = [line for line in lines if line.startswith(f"[{i}/{total}] {run.label}: final test accuracy")]
        assert len(done) == 1 and re.search(r"\(elapsed \d+:\d\d:\d\d", done[0])
    assert "left)" in lines[1] and "left" not in lines[-1]  # an estimate, until the last run
    lines.clear()
    run_preset(preset, tmp_path, train=_counting_train, log=lines.append)
    assert lines == [f"[{i}/{total}] {run.label}: already done, reused" for i, run in enumerate(preset.runs, 1)]


def test_reproduce_progress_bar_counts_the_runs(tmp_path, capsys):
    preset = get_preset("pwt-fig5", "cpu", seeds=(0,))
    lines: list[str] = []
    run_preset(preset, tmp_path, train=_counting_train, log=lines.append, progress=True)
    assert f"{len(preset.runs)}/{len(preset.runs)}" in capsys.readouterr().err  # the bar, on stderr
    assert sum(line.startswith("[") for line in lines) == 2 * len(preset.runs)  # the lines still come
