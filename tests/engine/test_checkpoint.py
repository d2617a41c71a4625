"""Checkpoint files: atomic writes, safe (weights-only) loading, clear errors, RNG states, divergence
and signals."""

from __future__ import annotations

import os
import random
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from intrain.cli import main
from intrain.engine import checkpoint as ckpt
from intrain.engine.trainer import check_finite_weights
from intrain.errors import CheckpointError, DivergenceError, TrainingInterrupted
from intrain.masks import FILTER_MASK

SRC = Path(__file__).resolve().parents[2] / "src" / "intrain"
TINY = ["train", "--model", "lenet5", "--width", "0.25", "--dataset", "demo", "--subset", "100", "--batch-size", "20",
        "--epochs", "2", "--quiet"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished two-epoch run directory (with its checkpoint)."""
    run_dir = tmp_path_factory.mktemp("run") / "run"
    assert main([*TINY, "--method", "pwt", "--out", str(run_dir)]) == 0
    return run_dir


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    target.mkdir()
    for name in ("config.yaml", "history.jsonl", "checkpoint.pt"):
        (target / name).write_bytes((run_dir / name).read_bytes())
    return target


# ---------------------------------------------------------------------- contents and atomic writes
def test_checkpoint_holds_the_whole_state_and_loads_weights_only(finished_run):
    state = ckpt.load_checkpoint(finished_run / ckpt.CHECKPOINT)
    assert set(ckpt.REQUIRED_KEYS) <= state.keys()
    assert state["epoch"] == 2 and len(state["history"]) == 2 and state["config"]["method"] == "pwt"
    assert any(key.endswith(FILTER_MASK) for key in state["model"])
    assert state["optimizer"]["state"] and state["scheduler"]["last_epoch"] == 10
    assert {"python", "numpy", "torch"} <= state["rng"].keys()
    assert oct(os.stat(finished_run / ckpt.CHECKPOINT).st_mode & 0o777) == oct(0o666 & ~ckpt._umask())


def test_a_failed_write_never_touches_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    ckpt.save_checkpoint({"good": torch.arange(3)}, path)

    def crash_midway(obj, handle):
        handle.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", crash_midway)
    with pytest.raises(OSError):
        ckpt.save_checkpoint({"bad": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["good"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left behind


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.normal()  # a cached gaussian in numpy's state
    ckpt.save_checkpoint({"rng": ckpt.rng_state()}, tmp_path / "r.pt")
    expected = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.restore_rng_state(torch.load(tmp_path / "r.pt", weights_only=True)["rng"])
    again = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3))
    assert expected[:3] == again[:3] and torch.equal(expected[3], again[3])


# ---------------------------------------------------------------------- corrupt, truncated, foreign
@pytest.mark.parametrize("damage", ["truncated", "empty", "random bytes", "text", "foreign torch file",
                                    "wrong version", "missing keys"])
def test_damaged_checkpoint_is_one_line_naming_the_file(damage, finished_run, tmp_path, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    path = run_dir / ckpt.CHECKPOINT
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "text":
        path.write_text("not a checkpoint\n")
    elif damage == "foreign torch file":
        torch.save({"model": nn.Linear(2, 2).state_dict()}, path)
    else:
        state = torch.load(path, weights_only=True)
        if damage == "wrong version":
            state["version"] = 99
        else:
            del state["optimizer"], state["rng"]
        torch.save(state, path)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        ckpt.load_checkpoint(path)
    assert main(["train", "--resume", str(run_dir)]) == 2
    assert str(path) in one_error_line(capsys)


def test_missing_run_dir_or_checkpoint(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "not found" in one_error_line(capsys)
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "checkpoint.pt not found" in one_error_line(capsys)


def test_resume_takes_no_other_options_and_a_finished_run_is_finished(finished_run, capsys):
    assert main(["train", "--resume", str(finished_run), "--epochs", "5"]) == 2
    assert "drop --epochs" in one_error_line(capsys)
    assert main(["train", "--resume", str(finished_run), "--quiet"]) == 2
    assert "already finished" in one_error_line(capsys)


def test_resume_after_the_last_epoch_but_before_the_summary_writes_the_outputs(finished_run, tmp_path, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    assert (run_dir / "summary.json").exists() and (run_dir / "model.pt").exists()


# ---------------------------------------------------------------------- code-executing pickles
class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Open:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


class _Exec:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("payload", [_System, _Open, _Exec])
def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(payload, finished_run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    run_dir = copy_run(finished_run, tmp_path)
    state = torch.load(run_dir / ckpt.CHECKPOINT, weights_only=True)
    state["method"] = {"iteration": payload(marker)}  # hidden deep inside an otherwise valid checkpoint
    torch.save(state, run_dir / ckpt.CHECKPOINT)
    with pytest.raises(CheckpointError, match="refusing to load"):
        ckpt.load_checkpoint(run_dir / ckpt.CHECKPOINT)
    assert main(["train", "--resume", str(run_dir)]) == 2
    err = one_error_line(capsys)
    assert "refusing to load" in err and str(run_dir / ckpt.CHECKPOINT) in err and "could run code" in err
    assert not marker.exists()


def test_every_torch_load_in_the_package_is_weights_only():
    calls = []
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"torch\.load\(", text):
            end = text.find(")", match.end())
            calls.append((path.name, text[match.start(): end + 1]))
    assert calls, "expected at least the checkpoint loader"
    unsafe = [(name, call) for name, call in calls if "weights_only=True" not in call]
    assert not unsafe, unsafe


# ---------------------------------------------------------------------- divergence
def test_non_finite_weight_names_the_tensor_epoch_and_iteration():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    check_finite_weights(model, 0, 10)
    with torch.no_grad():
        model[1].bias[0] = float("inf")
    with pytest.raises(DivergenceError, match=r"1\.bias at the end of epoch 4, iteration 10"):
        check_finite_weights(model, 3, 10)


def test_absurd_learning_rate_stops_with_exit_3_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main([*TINY, "--method", "pwt", "--optimizer", "sgd", "--lr", "1e6", "--out", str(run_dir)])
    err = one_error_line(capsys)
    assert code == 3
    assert re.search(r"diverged: .* epoch 1, iteration \d+", err), err
    state = ckpt.load_checkpoint(run_dir / ckpt.CHECKPOINT)  # the last good one: before the first epoch
    assert state["epoch"] == 0
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert not (run_dir / "summary.json").exists()


# ---------------------------------------------------------------------- signals
def test_stop_signals_are_scoped_and_turn_a_signal_into_a_clean_stop(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    with ckpt.StopSignals(tmp_path / "checkpoint.pt") as signals:
        signals.check("during epoch 1, iteration 1", 0)  # nothing received: no-op
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.requested()
        with pytest.raises(TrainingInterrupted, match="stopped by SIGTERM during epoch 2, iteration 5") as info:
            signals.check("during epoch 2, iteration 5", 1)
        assert info.value.exit_code == 128 + signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):  # a second signal stops at once
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


# every key of TrainConfig as written (flat, every method's settings) before methods had their own configs
FLAT_BEFORE_THE_REGISTRY = {
    "model": "lenet5", "dataset": "mnist", "data_dir": None, "width": 1.0, "subset": None, "method": "dense",
    "criterion": "l1", "target": 0.5, "initial": 0.0, "rate": None, "every": 1, "recipe": "paper", "reach": None,
    "schedule": None, "prune_every_steps": None, "scope": "layer", "include_linear": False, "prune_epoch": None,
    "compact": None, "bn_recalibration_batches": 50, "range": 2.0, "epsilon": 0.1, "partition": "type", "delta": 0.4,
    "probe_fraction": 0.1, "extending_interval": None, "classes": None, "masks_from": None, "moments": "magnitude",
    "moments_over": "all", "moments_at": "step", "reinit": "none", "scratch_init": "fresh", "init_seed": None,
    "init": "he-normal", "init_std": 0.01, "epochs": 10, "batch_size": 64, "optimizer": "adam", "lr": None,
    "momentum": 0.9, "weight_decay": 0.0, "lr_schedule": "constant", "lr_step_epochs": None, "lr_gamma": 0.1,
    "lr_milestones": None, "inv_gamma": 0.0001, "inv_power": 0.75, "seed": 0, "device": "auto", "out": None,
    "image_size": None, "workers": 0, "amp": "off", "channels_last": False}


def test_a_pwt_checkpoint_written_before_recipes_resumes_with_the_papers_schedule(tmp_path):
    from intrain.engine.checkpoint import config_from_checkpoint

    old = {**FLAT_BEFORE_THE_REGISTRY, "method": "pwt", "target": 0.8, "epochs": 20}
    del old["recipe"], old["reach"], old["schedule"], old["prune_every_steps"]
    config = config_from_checkpoint({"config": old}, tmp_path)
    assert config.method_config.recipe == "paper" and config.method_config.schedule_settings["schedule"] == "linear"
    assert config.out == str(tmp_path)


@pytest.mark.parametrize("method", ["dense", "prt"])
def test_a_non_pwt_checkpoint_that_stored_the_old_schedule_default_resumes(tmp_path, method):
    """Between the schedule options and recipes every run stored ``schedule: linear`` (the default
    then); resuming such a dense or PRT run used to stop with 'schedule: only used by method pwt'."""
    from intrain.engine.checkpoint import config_from_checkpoint

    extra = {"prune_epoch": 10, "target": 0.8} if method == "prt" else {}
    old = {**FLAT_BEFORE_THE_REGISTRY, "method": method, "epochs": 20, "schedule": "linear", **extra}
    del old["recipe"]
    config = config_from_checkpoint({"config": old}, tmp_path)
    assert config.method == method and not hasattr(config.method_config, "schedule")
    assert config.method_config == config.spec.config(**{k: v for k, v in extra.items()})
