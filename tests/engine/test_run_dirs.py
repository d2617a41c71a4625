"""Run directories: never overwritten by accident, and a config.yaml that resumes anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from intrain.cli import main
from intrain.config import TrainConfig
from intrain.data.idx import write_idx
from intrain.engine import run as run_module
from intrain.engine.run import default_run_dir, resume, train
from intrain.errors import ConfigError, TrainingInterrupted
from interrupt import StopAfterFirstEpoch

TINY = ["--dataset", "demo", "--subset", "100", "--batch-size", "50", "--epochs", "1", "--quiet", "--device", "cpu"]


@pytest.mark.parametrize("marker", ["config.yaml", "checkpoint.pt", "summary.json"])
def test_out_holding_a_run_is_refused_naming_overwrite(tmp_path, capsys, marker):
    out = tmp_path / "run"
    out.mkdir()
    (out / marker).write_text("an interrupted pwt run")
    assert main(["train", *TINY, "--method", "dense", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--overwrite" in err and marker in err
    # --resume is offered only where there is a checkpoint to continue from
    assert (f"--resume {out}" in err) == (marker == "checkpoint.pt")
    assert (out / marker).read_text() == "an interrupted pwt run"  # untouched
    with pytest.raises(ConfigError, match="already holds a run"):
        train(TrainConfig.of(dataset="demo", out=str(out)))


def test_a_folder_without_checkpoint_is_not_resumable(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("method: dense\n")
    assert main(["train", "--resume", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no checkpoint.pt" in err and "--overwrite" in err


def test_a_late_setting_error_leaves_no_run_folder(tmp_path, capsys):
    """RA's layer names are known once the model is built: refused before the folder exists."""
    for flags in (["--classes", "conv1;fcX"], ["--layer-ranges", "conv9=2"]):
        out = tmp_path / "run"
        assert main(["train", *TINY, "--method", "ra", *flags, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "not a conv or linear layer" in err
        assert not out.exists()


def test_overwrite_replaces_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / "model_sparse.npz").write_text("stale ra output")
    for export in ("model_compact.pt", "model_compact.pt2", "model.onnx"):  # an earlier run's exports
        (out / export).write_text("stale export")
    assert main(["train", *TINY, "--method", "dense", "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "summary.json").read_text())["method"] == "dense"
    # nothing of the old run or its exports is left to be mistaken for this one
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.yaml", "history.csv", "history.jsonl",
                                                      "model.pt", "summary.json"]


def test_an_empty_or_unrelated_folder_is_fine(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["train", *TINY, "--out", str(out)]) == 0
    assert (out / "notes.txt").read_text() == "mine"


def test_default_run_dirs_stay_unique(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = TrainConfig.of(dataset="demo")
    first = default_run_dir(config)
    first.mkdir(parents=True)
    second = default_run_dir(config)
    assert second != first and second.name.startswith(first.name) and not second.exists()


def _write_mnist_like(folder: Path) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 100), ("t10k", 20)):
        write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{split}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 10)




def test_config_yaml_is_resolved_and_resumes_without_the_environment(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    _write_mnist_like(data)
    monkeypatch.setenv("INTRAIN_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)
    out = Path("runs") / "pwt"  # relative: resolved to an absolute folder
    monkeypatch.setattr(run_module, "StopSignals", StopAfterFirstEpoch)
    config = TrainConfig.of(dataset="mnist", method="pwt", recipe="paper", target=0.5, epochs=2, batch_size=50, device="auto",
                         out=str(out))
    with pytest.raises(TrainingInterrupted):
        train(config, quiet=False)
    assert "unknown checksum" in capsys.readouterr().err  # synthetic files: a note, not an error
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written["data_dir"] == str(data) and Path(written["data_dir"]).is_absolute()
    assert written["lr"] == 1e-3 and written["rate"] == 0.25 and written["compact"] is True
    assert written["lr_step_epochs"] is None and written["out"] == str(tmp_path / out)  # constant: unused
    assert written["device"] == "auto"  # what was asked; the device used is in summary.json
    assert TrainConfig.from_dict(written) == TrainConfig.from_dict(written).resolved()  # nothing left to resolve
    monkeypatch.undo()  # no INTRAIN_DATA_DIR, another working directory, real signal handling
    monkeypatch.chdir(data)
    summary = resume(tmp_path / out, quiet=True)
    assert summary["epochs"] == 2 and summary["device"] == "cpu"
    assert json.loads((tmp_path / out / "summary.json").read_text())["device"] == "cpu"


@pytest.mark.parametrize("schedule, expected", [
    (["--lr-schedule", "step", "--lr-step-epochs", "1", "--lr-gamma", "0.5"], [1e-3, 5e-4, 2.5e-4]),
    (["--lr-schedule", "cosine"], [1e-3, 0.75e-3, 0.25e-3]),  # 0.5 (1 + cos(pi e / 3)) at the epoch's first step
    (["--lr-schedule", "step"], [1e-3, 1e-4, 1e-5]),  # default: a step every third of the run
])
def test_history_lr_is_the_rate_of_the_epochs_first_step(tmp_path, schedule, expected):
    out = tmp_path / "run"
    argv = ["train", *TINY, "--epochs", "3", "--out", str(out), *schedule]
    assert main(argv) == 0
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in history] == pytest.approx(expected, rel=1e-12)


def test_a_batch_larger_than_the_data_is_a_note_and_history_csv_mirrors_the_jsonl(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [a for a in TINY if a != "--quiet"]
    assert main(["train", *_set_flag(argv, "--batch-size", "1000"), "--out", str(out)]) == 0
    assert "note: batch_size 1000 is larger than the 100 training examples" in capsys.readouterr().err
    rows = (out / "history.csv").read_text().splitlines()
    records = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert len(rows) == 1 + len(records) and rows[0].startswith("epoch,")
    assert f"{records[0]['test_accuracy']}" in rows[1].split(",")


def _set_flag(argv: list[str], flag: str, value: str) -> list[str]:
    i = argv.index(flag)
    return [*argv[:i], flag, value, *argv[i + 2:]]
