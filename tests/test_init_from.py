"""``--init-from``: a run starts from the user's weights, read safely; a misfit is one line, exit 2."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from intrain.cli import main
from intrain.config import TrainConfig
from intrain.engine.build import build
from intrain.errors import ConfigError
from intrain.models import create_model
from intrain.models.weights import read_state_dict

LENET = dict(model="lenet5", width=0.5, dataset="demo", subset=100, batch_size=50, epochs=1, device="cpu")


def trained_weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(123)
    return {k: v + 0.5 if v.is_floating_point() else v for k, v in create_model("lenet5", width=0.5).state_dict().items()}


@pytest.mark.parametrize("layout", ["plain", "intrain model.pt", "training checkpoint with DDP keys"])
def test_a_run_starts_from_the_weights_in_the_file(tmp_path, layout):
    weights = trained_weights()
    saved = {"plain": weights, "intrain model.pt": {"model": weights, "data": {"num_classes": 10}},
             "training checkpoint with DDP keys": {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in weights.items()}}}
    path = tmp_path / "w.pt"
    torch.save(saved[layout], path)
    parts = build(TrainConfig.of(**LENET, method="pwt", target=0.5, init_from=str(path)))
    state = parts.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights.items())


def test_without_init_from_the_weights_are_drawn_as_before():
    parts = build(TrainConfig.of(**LENET))
    assert not torch.equal(parts.model.state_dict()["conv1.weight"], trained_weights()["conv1.weight"])


@pytest.mark.parametrize("change, message", [
    (lambda w: w.update({"conv2.weight": torch.zeros(3, 3)}), r"conv2.weight has shape \(3, 3\) there and \(25, 10, 5, 5\)"),
    (lambda w: w.pop("fc1.bias"), "it has no fc1.bias, which the model needs"),
    (lambda w: w.update({"head.weight": torch.zeros(1)}), "it has head.weight, which the model does not"),
])
def test_a_misfit_names_the_first_key_in_one_line_and_exits_2(tmp_path, capsys, change, message):
    weights = trained_weights()
    change(weights)
    torch.save(weights, tmp_path / "w.pt")
    with pytest.raises(ConfigError, match=message):
        build(TrainConfig.of(**LENET, init_from=str(tmp_path / "w.pt")))
    code = main(["train", *[f"--{k.replace('_', '-')}={v}" for k, v in LENET.items()], "--init-from",
                 str(tmp_path / "w.pt"), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "init_from:" in err and "Traceback" not in err


def test_a_file_that_could_run_code_is_refused(tmp_path):
    torch.save({"model": argparse.Namespace(a=1)}, tmp_path / "evil.pt")
    with pytest.raises(ConfigError, match="could run code"):
        read_state_dict(tmp_path / "evil.pt")
    (tmp_path / "text.pt").write_text("not weights")
    with pytest.raises(ConfigError, match="not a torch"):
        read_state_dict(tmp_path / "text.pt")
    with pytest.raises(ConfigError, match="not found"):
        read_state_dict(tmp_path / "missing.pt")
    torch.save({"epoch": 1}, tmp_path / "none.pt")
    with pytest.raises(ConfigError, match="holds no state dict"):
        read_state_dict(tmp_path / "none.pt")


def test_pwt_from_a_dense_runs_model_pt_end_to_end(tmp_path):
    args = [f"--{k.replace('_', '-')}={v}" for k, v in LENET.items()]
    assert main(["train", *args, "--out", str(tmp_path / "dense"), "--quiet"]) == 0
    assert main(["train", *args, "--method", "pwt", "--target", "0.5", "--init-from",
                 str(tmp_path / "dense" / "model.pt"), "--out", str(tmp_path / "pwt"), "--quiet"]) == 0
    config = (tmp_path / "pwt" / "config.yaml").read_text()
    assert f"init_from: {tmp_path / 'dense' / 'model.pt'}" in config
    summary = json.loads((tmp_path / "pwt" / "summary.json").read_text())
    assert summary["pruned_filter_fraction"] == pytest.approx(0.5, abs=0.05)
