"""benchmarks/_common.train_or_resume: a benchmark's run is read when finished, continued from its
checkpoint when interrupted (ending where an uninterrupted run ends), and trained afresh otherwise."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from intrain.config import TrainConfig
from intrain.engine import run as run_module
from intrain.errors import TrainingInterrupted
from interrupt import StopAfterFirstEpoch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _common import finished, train_or_resume  # noqa: E402


def tiny(out: Path, **changes) -> TrainConfig:
    return TrainConfig.of(model="lenet5", width=0.5, dataset="demo", subset=60, batch_size=20, epochs=2, seed=3,
                          device="cpu", out=str(out), **changes)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.pt", map_location="cpu", weights_only=False)["model"]


def test_an_interrupted_run_is_continued_and_ends_where_an_uninterrupted_one_does(tmp_path, monkeypatch):
    config = tiny(tmp_path / "interrupted")
    with monkeypatch.context() as patch:
        patch.setattr(run_module, "StopSignals", StopAfterFirstEpoch)
        with pytest.raises(TrainingInterrupted):
            train_or_resume(config)
    assert (tmp_path / "interrupted" / "checkpoint.pt").exists() and finished(config) is None
    epoch_one = (tmp_path / "interrupted" / "history.jsonl").read_text()

    resumed = train_or_resume(config)
    straight = train_or_resume(tiny(tmp_path / "straight"))
    assert resumed["final_test_accuracy"] == straight["final_test_accuracy"]
    history = [json.loads(line) for line in (tmp_path / "interrupted" / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    # continued, not retrained: epoch 1's line (its timings included) is the interrupted run's own
    assert (tmp_path / "interrupted" / "history.jsonl").read_text().startswith(epoch_one)
    ours, theirs = weights(tmp_path / "interrupted"), weights(tmp_path / "straight")
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_a_finished_run_is_read_and_a_different_configuration_is_trained_afresh(tmp_path):
    config = tiny(tmp_path / "run")
    first = train_or_resume(config)
    summary = tmp_path / "run" / "summary.json"
    stamp = summary.stat().st_mtime_ns
    again = train_or_resume(config)  # read, not retrained
    assert again["final_test_accuracy"] == first["final_test_accuracy"] and summary.stat().st_mtime_ns == stamp

    other = config.replace(seed=4)  # the same directory, another configuration: trained afresh over it
    train_or_resume(other)
    assert summary.stat().st_mtime_ns != stamp
    assert finished(config) is None and finished(other) is not None
