"""What a new user meets first: names suggested for typos, defaults in --help, and config.yaml recording
the values a run used."""

from __future__ import annotations

import pytest
import yaml

from intrain.cli import build_parser, main
from intrain.config import TrainConfig
from intrain.data import dataset_spec
from intrain.errors import ConfigError
from intrain.models import create_model


@pytest.mark.parametrize("make, name, suggestion", [
    (lambda n: create_model(n), "resnet2O", "resnet20"),
    (lambda n: create_model(n), "mobilenet", "mobilenetv2"),
    (dataset_spec, "fashion_mnist", "fashion-mnist"),
    (dataset_spec, "cifar-10", "cifar10"),
])
def test_a_typo_of_a_model_or_dataset_gets_a_suggestion(make, name, suggestion):
    with pytest.raises(ConfigError, match=f"did you mean '{suggestion}'"):
        make(name)


def test_cli_suggests_a_model_in_one_line(tmp_path, capsys):
    assert main(["train", "--model", "lenet", "--dataset", "demo", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'lenet5'" in err[0]


def test_train_help_shows_the_defaults():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    text = " ".join(train.format_help().split())
    for flag, default in (("--epochs EPOCHS training epochs", "(default 10)"), ("--batch-size BATCH_SIZE batch size",
                          "(default 64)"), ("--seed SEED random seed", "(default 0)")):
        assert f"{flag} {default}" in text
    assert "--no-compact keep pruned filters in place, masked" in text
    assert "the model's fixed input size, e.g. 32 for resnet20, else 224" in text


def test_config_records_the_image_size_a_folder_run_uses():
    def resolved(**values):
        return TrainConfig.of(dataset="folder", data_dir="x", **values).resolved()

    assert resolved(model="resnet20").image_size == 32
    assert resolved(model="lenet5").image_size == 28
    assert resolved(model="alexnet").image_size == 224  # any size: the default
    assert resolved(model="alexnet", image_size=64).image_size == 64
    assert TrainConfig.of(dataset="demo").resolved().image_size is None
    assert yaml.safe_load(yaml.safe_dump(resolved(model="resnet20").to_dict()))["image_size"] == 32


def test_a_flag_typo_gets_a_suggestion(tmp_path, capsys):
    assert main(["train", "--dataset", "demo", "--epohcs", "2", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["intrain: error: unrecognized arguments: --epohcs 2; did you mean '--epochs'? "
                   "(see 'intrain train --help')"]
    assert not (tmp_path / "r").exists()


def test_method_settings_show_their_defaults_in_help():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    text = " ".join(train.format_help().split())
    assert "[pwt] fraction of filters pruned at the end, in [0, 1) (default 0.5)" in text
    assert "(default l1) [pwt, prt]" in text
