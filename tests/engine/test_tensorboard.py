"""``--log tensorboard``: every epoch's numbers as TensorBoard scalars in RUN_DIR/tensorboard."""

from __future__ import annotations

import json

import pytest

from intrain.cli import main
from intrain.engine.tensorboard import tag


def _scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {t: [(e.step, e.value) for e in events.Scalars(t)] for t in events.Tags()["scalars"]}


def test_tags_group_the_record_keys():
    assert tag("val_accuracy") == "accuracy/val_accuracy" and tag("train_macs") == "cost/train_macs"
    assert tag("lr") == "train/lr"


def test_a_run_logs_every_epoch_and_overwrite_removes_the_log(tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    args = ["train", "--dataset", "demo", "--subset", "200", "--val-split", "100", "--epochs", "2", "--method", "pwt",
            "--target", "0.5", "--device", "cpu", "--out", str(run), "--quiet"]
    assert main([*args, "--log", "tensorboard"]) == 0
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    scalars = _scalars(run / "tensorboard")
    for key in ("test_accuracy", "val_accuracy", "train_loss", "pruned_filter_fraction", "train_macs"):
        assert [step for step, _ in scalars[tag(key)]] == [1, 2]
        assert [value for _, value in scalars[tag(key)]] == pytest.approx([r[key] for r in history], rel=1e-6)
    assert "log: tensorboard" in (run / "config.yaml").read_text()
    assert main([*args, "--overwrite"]) == 0
    assert not (run / "tensorboard").exists()  # the old run's log went with it


def test_an_unknown_log_is_refused_in_one_line(tmp_path, capsys):
    assert main(["train", "--dataset", "demo", "--log", "wandb", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["intrain: error: log: unknown value 'wandb'; choose one of: none, tensorboard"]
