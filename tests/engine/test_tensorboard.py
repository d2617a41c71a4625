"""--log tensorboard: every epoch's numbers as TensorBoard scalars; a missing package is one line."""

import builtins
import json

import pytest

from intrain.cli import main

TINY = ["--model", "lenet5", "--dataset", "demo", "--subset", "100", "--batch-size", "50", "--device", "cpu",
        "--quiet"]


def test_tensorboard_scalars_are_the_history(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    assert main(["train", *TINY, "--method", "ra", "--epochs", "2", "--log", "tensorboard", "--out", str(run)]) == 0
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    for key in ("test_accuracy", "train_loss", "sparsity", "params"):
        scalars = events.Scalars(key)
        assert [s.step for s in scalars] == [1, 2]
        assert [s.value for s in scalars] == pytest.approx([r[key] for r in history], rel=1e-6)
    assert main(["train", *TINY, "--epochs", "1", "--log", "tensorboard", "--out", str(run), "--overwrite"]) == 0
    events = EventAccumulator(str(run / "tensorboard"))  # the replaced run's events are gone
    events.Reload()
    assert [s.step for s in events.Scalars("test_accuracy")] == [1]


def test_missing_tensorboard_and_unknown_loggers_are_one_line(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--log", "wandb", "--out", str(run)]) == 2
    assert "log: unknown value 'wandb'; choose one of: none, tensorboard" in capsys.readouterr().err
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith(("tensorboard", "torch.utils.tensorboard")):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    assert main(["train", *TINY, "--epochs", "1", "--log", "tensorboard", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'intrain[tensorboard]'" in err and not run.exists()


def test_a_resumed_run_appends_its_epochs(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from intrain.engine import run as run_module
    from interrupt import StopAfterFirstEpoch

    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(run_module, "StopSignals", StopAfterFirstEpoch)
        assert main(["train", *TINY, "--epochs", "2", "--log", "tensorboard", "--out", str(run)]) != 0
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [s.step for s in events.Scalars("test_accuracy")] == [1, 2]
