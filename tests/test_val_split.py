"""``val_split``: a stratified validation split held out of the training data, scored every epoch."""

from __future__ import annotations

import json

import pytest
import torch

from intrain.cli import main
from intrain.config import TrainConfig
from intrain.data.datasets import load_dataset, validation_indices, validation_size
from intrain.engine.build import build
from intrain.errors import ConfigError


def test_validation_size_from_a_count_or_a_fraction():
    assert validation_size(100, 1000) == 100
    assert validation_size(0.1, 1000) == 100
    assert validation_size(0.25, 10) == 2  # round(2.5) to even
    for bad in (1000, 0.0001):
        with pytest.raises(ConfigError, match="val_split: .* leaves no (training|validation) example"):
            validation_size(bad, 1000)


def test_validation_split_is_stratified_disjoint_and_covers_the_data():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    train, val = validation_indices(labels, 20)
    assert torch.bincount(labels[val]).tolist() == [12, 6, 2]  # the classes' shares of 20
    assert sorted(torch.cat([train, val]).tolist()) == list(range(100))
    assert not set(train.tolist()) & set(val.tolist())
    again_train, again_val = validation_indices(labels, 20)
    assert torch.equal(val, again_val) and torch.equal(train, again_train)


def test_the_split_does_not_depend_on_the_seed_and_subset_draws_from_the_rest():
    a = load_dataset("demo", val_split=100, seed=0)
    b = load_dataset("demo", val_split=100, seed=7, subset=200)
    full = load_dataset("demo")
    assert a.val_images.shape[0] == 100 and torch.equal(a.val_images, b.val_images)
    assert a.train_images.shape[0] == full.train_images.shape[0] - 100 and b.train_images.shape[0] == 200
    assert torch.equal(a.test_images, full.test_images)  # the test set is untouched
    # no validation image is among the training images (compared as whole images)
    rows = {bytes(img.flatten().tolist()) for img in a.train_images}
    assert sum(bytes(img.flatten().tolist()) in rows for img in a.val_images) <= 1  # MNIST holds a few duplicates
    assert load_dataset("demo").val_images is None


@pytest.mark.parametrize("bad", [0, -5, 1.5, float("nan"), float("inf")])
def test_a_bad_split_is_refused_in_one_line(bad):
    with pytest.raises(ConfigError, match="val_split: expected a number of examples"):
        TrainConfig.of(dataset="demo", val_split=bad)


def test_cli_refuses_a_split_as_large_as_the_data(tmp_path, capsys):
    assert main(["train", "--dataset", "demo", "--val-split", "1000000", "--epochs", "1",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["intrain: error: val_split: 1000000 of 6000 training examples leaves no training example; "
                   "use a count from 1 to 5999 or a fraction in (0, 1)"]
    assert not (tmp_path / "r").exists()


def test_build_makes_a_validation_loader_only_when_asked():
    assert build(TrainConfig.of(dataset="demo", device="cpu")).val_loader is None
    parts = build(TrainConfig.of(dataset="demo", device="cpu", val_split=0.1))
    assert parts.val_loader.num_examples == round(0.1 * (parts.train_loader.num_examples / 0.9))
    assert not parts.val_loader.train  # no augmentation, dataset order


def test_a_run_records_validation_accuracy_and_chooses_its_epoch_on_it(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "demo", "--subset", "600", "--val-split", "200", "--epochs", "3", "--method", "pwt",
                 "--target", "0.5", "--device", "cpu", "--out", str(run), "--quiet"]) == 0
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    summary = json.loads((run / "summary.json").read_text())
    assert all(0 <= r["val_accuracy"] <= 1 and r["val_loss"] > 0 for r in history)
    best = max(history, key=lambda r: r["val_accuracy"])
    assert summary["val_examples"] == 200
    assert summary["final_val_accuracy"] == history[-1]["val_accuracy"]
    assert summary["best_val_accuracy"] == best["val_accuracy"] and summary["best_val_epoch"] == best["epoch"]
    assert summary["test_accuracy_at_best_val"] == best["test_accuracy"]
    assert "val_split: 200" in (run / "config.yaml").read_text()
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| final val acc |" in text and "(200 held out for validation)" in text
    assert f"| {100 * summary['final_val_accuracy']:.1f}% |" in text


def test_a_folder_dataset_holds_its_split_out_of_train(image_folder, tmp_path):
    root = image_folder(tmp_path / "d", train=6, val=2, size=(20, 20))
    config = TrainConfig.of(dataset="folder", data_dir=str(root), model="resnet20", width=0.25,
                            val_split=3, batch_size=4, device="cpu")
    parts = build(config)
    assert parts.val_loader.num_examples == 3 and parts.train_loader.num_examples == 15
    assert parts.test_loader.num_examples == 6  # DIR/val stays the test split
    assert sorted(parts.val_loader.dataset.labels.tolist()) == [0, 1, 2]
