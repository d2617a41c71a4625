"""Reproduction presets are valid configurations, and the runner wires them into a report (no training)."""

import json
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
        if run.config.masks_from:
            assert run.config.masks_from.startswith("@") and run.config.masks_from[1:] in labels[:i]
    assert preset.runs[0].config.method == "dense"
    if scale == "cpu":
        assert "CPU scale" in preset.notes[0]
        assert {r.config.dataset for r in preset.runs} <= {"mnist", "fashion-mnist"}


def test_paper_settings():
    fig1 = get_preset("pwt-fig1", "paper")
    base = fig1.runs[0].config
    assert (base.model, base.dataset, base.epochs, base.optimizer, base.width) == ("vgg16", "cifar10", 80, "adam", 1.0)
    assert [r.config.prune_epoch for r in fig1.runs if r.config.method == "prt"] == [40, 55, 70]
    fig5 = {(r.config.criterion, r.config.target) for r in get_preset("pwt-fig5", "paper").runs if r.config.method == "pwt"}
    assert fig5 == {("l1", 0.8), ("mean-activation", 0.8), ("random", 0.8), ("random", 0.4)}
    fig3 = [r.config.target for r in get_preset("pwt-fig3", "paper").runs if r.config.method == "pwt"]
    assert min(fig3) == 0.72 and max(fig3) == 0.92
    assert [r.config.every for r in get_preset("pwt-fig4", "paper").runs[1:]] == [1, 2, 3, 4]
    table4 = [r.config.delta for r in get_preset("ra-table4", "paper").runs if r.config.method == "ra"]
    assert table4 == [float("inf"), 0.5, 0.4, 0.3]
    table2 = get_preset("ra-table2", "paper").runs
    assert [r.config.method for r in table2] == ["dense", "ra", "scratch", "scratch"]
    assert [r.config.scratch_init for r in table2[2:]] == ["fresh", "same"]


def test_ra_table4_paper_schedule_extends_at_10k_and_20k_and_drops_the_rate_at_32k_and_48k():
    from intrain.engine.build import LrSchedule

    runs = get_preset("ra-table4", "paper").runs
    config = runs[1].config
    iterations_per_epoch = 391  # ceil(50,000 / 128)
    assert config.epochs * iterations_per_epoch == 64_124 and config.lr == 0.1 and config.momentum == 0.9
    assert config.weight_decay == 1e-4 and all(r.config.extending_interval == 10_000 for r in runs[1:])
    schedule = LrSchedule(config, iterations_per_epoch)
    factors = [schedule(i) for i in (0, 31_999, 32_000, 47_999, 48_000, 64_123)]
    assert factors == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_cpu_prt_epochs_are_distinct_and_inside_the_run():
    runs = get_preset("pwt-fig1", "cpu").runs
    epochs = [r.config.prune_epoch for r in runs if r.config.method == "prt"]
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
    assert scratch.masks_from == str(tmp_path / "ra-2-0.1") and scratch.out == str(tmp_path / "scratch")


def _fake_train(config: TrainConfig, quiet: bool = True) -> dict:
    """Writes a minimal finished run directory for ``config`` instead of training."""
    from intrain.config import write_yaml

    out = Path(config.out)
    out.mkdir(parents=True)
    write_yaml(config, out / "config.yaml")
    p = config.target if config.method != "dense" else 0.0
    (out / "history.jsonl").write_text(json.dumps({"epoch": 1, "test_accuracy": 0.5, "params": 10, "train_macs": 1e6 * (1 - p)}) + "\n")
    summary = {"method": config.method, "final_test_accuracy": 0.5, "best_test_accuracy": 0.5,
               "pruned_filter_fraction": p, "sparsity": p, "compression": 1.0, "train_seconds": 1.0,
               "target": config.target, "criterion": config.criterion, "layers": []}
    (out / "summary.json").write_text(json.dumps(summary))
    return summary


def test_run_preset_trains_each_run_once_and_writes_the_report(tmp_path):
    preset = get_preset("pwt-fig5", "cpu")
    calls = []

    def train(config, quiet=True):
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
