"""The command line: one tiny end-to-end run that checks the run directory's contract, and bad input."""

import json
from pathlib import Path
import subprocess
import sys

import pytest
import yaml

from intrain.cli import build_parser, main
from intrain.errors import IntrainError

HISTORY_KEYS = {"epoch", "train_loss", "test_accuracy", "pruned_filter_fraction", "sparsity", "params",
                "epoch_seconds", "prune_seconds"}
SUMMARY_KEYS = {"method", "model", "dataset", "epochs", "final_test_accuracy", "best_test_accuracy",
                "pruned_filter_fraction", "sparsity", "params_dense", "params_final", "compression",
                "train_seconds", "layers"}


def test_train_writes_the_run_directory_contract(tmp_path, capsys):
    out = tmp_path / "run"
    config = tmp_path / "c.yaml"
    config.write_text("model: lenet5\ndataset: demo\nmethod: pwt\nrecipe: paper\ntarget: 0.5\nepochs: 5\n")
    code = main(["train", "--config", str(config), "--epochs", "2", "--subset", "300", "--batch-size", "50",
                 "--out", str(out), "--quiet"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()[-6:]  # the run says what it did
    assert lines[0].startswith("test accuracy: final ") and ", best " in lines[0]
    assert lines[1].startswith("parameters: 431,080 -> ") and "of filters pruned" in lines[1]
    assert lines[2].startswith("training MACs per epoch: ") and "dense ->" in lines[2]
    assert lines[3].startswith("training MACs of the run: ") and "% saved)" in lines[3]
    assert lines[4].startswith("wall-clock: ") and lines[5] == f"model: {out}/model.pt (compact/ONNX: intrain export {out})"
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


# ---------------------------------------------------------------------- one set of names
def test_every_config_key_is_a_flag_and_every_flag_a_key():
    from dataclasses import fields

    from intrain.cli import RUNTIME_KEYS
    from intrain.config import TrainConfig
    from intrain.methods import registry

    train = next(a for a in build_parser()._subparsers._group_actions if a.choices)._name_parser_map["train"]
    flag_keys = {action.dest for action in train._actions if action.option_strings and action.dest != "help"}
    keys = {f.name for f in fields(TrainConfig)} - {"method_config"} | set(registry.field_users())
    assert flag_keys - set(RUNTIME_KEYS) == keys
    for action in train._actions:  # the flag is the key with dashes
        if action.dest in keys and action.option_strings[0].startswith("--") and action.const is not False:
            assert action.option_strings[0] == "--" + action.dest.replace("_", "-")


def test_runtime_only_options_are_not_config_keys(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("dataset: demo\nquiet: true\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    assert "unknown key 'quiet'" in capsys.readouterr().err


def test_yaml_numbers_like_1e_3_and_duplicate_keys(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("dataset: demo\nlr: 1e-3\nweight_decay: 5E-4\nsubset: 100\nepochs: 1\nbatch_size: 50\n")
    out = tmp_path / "r"
    assert main(["train", "--config", str(config), "--out", str(out), "--quiet"]) == 0
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written["lr"] == 1e-3 and written["weight_decay"] == 5e-4
    config.write_text("dataset: demo\nepochs: 1\nlr: 0.1\nepochs: 3\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("key 'epochs' is given twice (line 4)") and "\n" not in err


def test_new_flags_reach_the_config(tmp_path):
    out = tmp_path / "r"
    assert main(["train", "--dataset", "demo", "--subset", "100", "--batch-size", "50", "--epochs", "3", "--quiet",
                 "--lr-schedule", "step", "--lr-step-epochs", "2", "--lr-gamma", "0.3",
                 "--bn-recalibration-batches", "0", "--out", str(out)]) == 0
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert (written["lr_step_epochs"], written["lr_gamma"], written["bn_recalibration_batches"]) == (2, 0.3, 0)
    assert main(["train", "--dataset", "demo", "--subset", "100", "--batch-size", "50", "--epochs", "1", "--quiet",
                 "--lr-schedule", "inv", "--inv-gamma", "0.01", "--inv-power", "0.5", "--out", str(tmp_path / "i")]) == 0
    written = yaml.safe_load((tmp_path / "i" / "config.yaml").read_text())
    assert (written["inv_gamma"], written["inv_power"]) == (0.01, 0.5)


def test_classes_flag_parses_into_the_config():
    from intrain.config import TrainConfig

    args = build_parser().parse_args(["train", "--method", "ra", "--classes", "conv1,conv2;fc1, fc2"])
    config = TrainConfig.from_dict({"method": "ra", "classes": args.classes})
    assert config.method_config.classes == (("conv1", "conv2"), ("fc1", "fc2"))
    with pytest.raises(IntrainError, match="expected classes like"):
        build_parser().parse_args(["train", "--classes", "conv1;;fc1"])


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--bogus-flag"], "(see 'intrain train --help')"),
    (["report", "x", "--out", "y", "--bogus"], "(see 'intrain report --help')"),
    (["cost", "--model", "vgg16", "--dataset", "cifar10", "--target", "1.0"], "target: must be a fraction in [0, 1)"),
    (["cost", "--model", "vgg16", "--dataset", "cifar10", "--target", "-0.2"], "target: must be a fraction in [0, 1)"),
    (["cost", "--model", "vgg16", "--dataset", "cifar10", "--epochs", "0"], "epochs: must be at least 1"),
    (["train", "--dataset", "demo", "--method", "ra", "--range", "-50"], "nothing would ever be pruned"),
    (["train", "--dataset", "demo", "--method", "pwt", "--target", "0.8", "--rate", "0.05", "--epochs", "10"],
     "reaches its target 0.8 after epoch 16, beyond the 10 epochs"),
    (["train", "--dataset", "demo", "--method", "pwt", "--every", "4", "--epochs", "3"], "never prunes in 3 epochs"),
    (["train", "--dataset", "demo", "--lr-schedule", "step", "--lr-step-epochs", "30", "--epochs", "10"],
     "never lowers the rate in 10 epochs"),
    (["train", "--dataset", "demo", "--resume", "x", "--overwrite"], "--overwrite"),
])
def test_meaningless_values_are_one_line_exit_2(argv, fragment, capsys, tmp_path):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err


def test_fashion_mnist_flag_with_mnist_files_is_refused(tmp_path, capsys):
    argv = ["train", "--dataset", "fashion-mnist", "--data-dir", "/work/shared/data/mnist", "--out", str(tmp_path / "r")]
    if not Path("/work/shared/data/mnist/train-labels-idx1-ubyte.gz").exists():
        pytest.skip("needs the MNIST files")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--dataset fashion-mnist" in err and "MNIST's train-images-idx3-ubyte" in err and "--dataset mnist" in err


def test_failed_reproduce_leaves_no_empty_folder(tmp_path, capsys):
    out = tmp_path / "repro"
    assert main(["reproduce", "ra-table2", "--out", str(out), "--data-dir", str(tmp_path / "nothing")]) == 2
    assert "not found" in capsys.readouterr().err and not out.exists()
