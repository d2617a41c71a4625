"""The command line: one tiny end-to-end run that checks the run directory's contract, and bad input."""

import json
import subprocess
import sys

import pytest
import yaml

from intrain.cli import main

HISTORY_KEYS = {"epoch", "train_loss", "test_accuracy", "pruned_filter_fraction", "sparsity", "params",
                "epoch_seconds", "prune_seconds"}
SUMMARY_KEYS = {"method", "model", "dataset", "epochs", "final_test_accuracy", "best_test_accuracy",
                "pruned_filter_fraction", "sparsity", "params_dense", "params_final", "compression",
                "train_seconds", "layers"}


def test_train_writes_the_run_directory_contract(tmp_path, capsys):
    out = tmp_path / "run"
    config = tmp_path / "c.yaml"
    config.write_text("model: lenet5\ndataset: demo\nmethod: pwt\ntarget: 0.5\nepochs: 5\n")
    code = main(["train", "--config", str(config), "--epochs", "2", "--subset", "300", "--batch-size", "50",
                 "--out", str(out), "--quiet"])
    assert code == 0
    assert "final test accuracy" in capsys.readouterr().out
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["epochs"] == 2 and resolved["subset"] == 300 and resolved["target"] == 0.5
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1, 2]
    assert all(HISTORY_KEYS <= r.keys() for r in history)
    assert history[0]["pruned_filter_fraction"] == pytest.approx(0.25, abs=0.02)
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["pruned_filter_fraction"] == pytest.approx(0.5, abs=0.02)
    assert summary["params_dense"] == 431_080 and summary["params_final"] < 431_080
    assert summary["compression"] == pytest.approx(431_080 / summary["params_final"])
    conv_rows = [layer for layer in summary["layers"] if layer["kind"] == "conv"]
    assert [r["filters"] for r in conv_rows] == [20, 50]
    assert sum(r["filters_pruned"] for r in conv_rows) == 35
    assert (out / "model.pt").exists()


def test_train_prints_a_note_when_the_last_prune_leaves_no_learning_rate(tmp_path, capsys):
    code = main(["train", "--model", "lenet5", "--dataset", "demo", "--method", "pwt", "--target", "0.5",
                 "--epochs", "2", "--subset", "200", "--batch-size", "50", "--lr-schedule", "cosine",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 0
    assert err.count("intrain: note: pwt prunes for the last time after epoch 2 of 2") == 1


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--model", "googlenet", "--dataset", "demo"], "unknown model 'googlenet'"),
    (["train", "--dataset", "imagenet21k"], "unknown dataset"),
    (["train", "--dataset", "demo", "--criterion", "l7"], "criterion"),
    (["train", "--dataset", "demo", "--target", "1.5"], "target"),
    (["train", "--dataset", "demo", "--target", "abc"], "expected a number"),
    (["train", "--dataset", "demo", "--epochs", "-1"], "epochs"),
    (["train", "--config", "/nonexistent/c.yaml"], "not found"),
    (["train", "--dataset", "mnist", "--data-dir", "/nonexistent"], "not found"),
    (["train", "--bogus-flag"], "unrecognized arguments"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2(argv, fragment, capsys, tmp_path):
    code = main(argv + ["--out", str(tmp_path / "r")] if argv[0] == "train" and "--bogus-flag" not in argv else argv)
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "intrain", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("intrain ")
