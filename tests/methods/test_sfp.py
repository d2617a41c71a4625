"""Soft Filter Pruning (methods/sfp.py): golden behaviour on a tiny conv net, and end to end."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from torch import nn

from intrain.cli import main
from intrain.compaction import compact
from intrain.config import TrainConfig
from intrain.errors import ConfigError
from intrain.masks import FILTER_MASK
from intrain.methods.sfp import SoftFilterPruning, filter_l2, sfp


def tiny_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
    with torch.no_grad():  # filter i of each conv scaled by (i + 1): the L2 order is the index order
        for conv in (net[0], net[3]):
            conv.weight.copy_(torch.randn_like(conv.weight).sign()
                              * torch.arange(1, conv.out_channels + 1).view(-1, 1, 1, 1))
            conv.bias.fill_(0.5)
        net[1].weight.fill_(1.0)
        net[1].bias.fill_(1.0)  # positive: a zeroed conv1 filter stays alive behind the ReLU
    return net


def zero_rows(weight: torch.Tensor) -> list[int]:
    return [i for i in range(weight.shape[0]) if not weight[i].any()]


def step(net: nn.Module, optimizer: torch.optim.Optimizer, method: SoftFilterPruning) -> None:
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
    optimizer.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    optimizer.step()
    method.on_step_end()


def test_the_lowest_l2_filters_are_zeroed_softly_and_can_come_back():
    net = tiny_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    method = sfp(target=0.5, epochs=3).attach(net, optimizer)
    step(net, optimizer, method)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    event = method.on_epoch_end(0)
    assert event is not None and event.details == {"soft": True} and event.filters_pruned == 2 + 3
    assert zero_rows(net[0].weight) == [0, 1] and zero_rows(net[3].weight) == [0, 1, 2]  # lowest L2 first
    # only the kernels: a zero bias, γ and β would leave the filter no gradient behind the ReLU
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items() if not k.endswith(("0.weight", "3.weight")))
    assert all(getattr(m, FILTER_MASK).all() for m in (net[0], net[3]))  # soft: nothing masked
    assert method.pruned_filter_fraction() == pytest.approx(5 / 10)
    # a zeroed filter keeps its gradient and grows back at the next step
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
    optimizer.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    assert all(net[3].weight.grad[i].abs().sum() > 0 for i in range(3))
    assert all(net[0].weight.grad[i].abs().sum() > 0 for i in range(2))  # through the BatchNorm
    optimizer.step()
    method.on_step_end()
    assert zero_rows(net[0].weight) == zero_rows(net[3].weight) == [] and method.pruned_filter_fraction() == 0.0
    # the set is chosen again: a zeroed filter that outgrew the others stays, another one goes
    with torch.no_grad():
        net[0].weight[0].mul_(1000)
    method.zero_lowest(1)
    assert 0 not in zero_rows(net[0].weight) and len(zero_rows(net[0].weight)) == 2


def test_after_the_last_epoch_the_zero_filters_are_masked_and_compaction_keeps_the_outputs():
    net = tiny_net()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    method = sfp(target=0.5, epochs=2).attach(net, optimizer)
    for epoch in range(2):
        step(net, optimizer, method)
        event = method.on_epoch_end(epoch)
    assert event.details == {"soft": False}
    expected = {0: [0, 1], 3: [0, 1, 2]}
    for index, pruned in expected.items():
        mask = getattr(net[index], FILTER_MASK)
        assert [i for i in range(len(mask)) if not mask[i]] == pruned
        assert zero_rows(net[index].weight) == pruned
        assert all(optimizer.state[net[index].weight]["exp_avg"][i].eq(0).all() for i in pruned)  # for good
    net.eval()
    x = torch.randn(5, 1, 8, 8)
    before = net(x)
    compact(net, optimizer, example_inputs=x[:1])
    assert net[0].weight.shape == (2, 1, 3, 3) and net[1].weight.shape == (2,)
    assert net[3].weight.shape == (3, 2, 3, 3) and net[7].weight.shape == (3, 3)
    torch.testing.assert_close(net(x), before)


def test_l2_scores_and_bad_settings():
    weight = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    assert filter_l2(weight).tolist() == [5.0, 1.0]
    with pytest.raises(ConfigError, match="target: must be a fraction"):
        sfp(target=1.0, epochs=3)
    with pytest.raises(ConfigError, match="every: must be at least 1"):
        TrainConfig.of(method="sfp", every=0)
    with pytest.raises(ConfigError, match=r"prune_epoch: not used by method sfp \(used by: prt\)"):
        TrainConfig.of(method="sfp", prune_epoch=2)
    config = TrainConfig.of(method="sfp", target=0.4, epochs=4)
    assert config.compacts and config.spec.cost_mode == "full" and config.last_prune_epoch == 4


def test_sfp_end_to_end_on_the_demo_data(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--method", "sfp", "--target", "0.4", "--model", "lenet5", "--dataset", "demo",
                 "--subset", "300", "--batch-size", "50", "--epochs", "3", "--out", str(run), "--quiet"]) == 0
    assert "test accuracy: final" in capsys.readouterr().out
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["method"] == "sfp" and config["target"] == 0.4 and config["compact"] is True
    assert TrainConfig.load(run / "config.yaml").method_config.target == 0.4  # readable by --config
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [round(r["pruned_filter_fraction"], 2) for r in history] == [0.4] * 3  # 8/20 and 20/50 zero
    assert len({r["train_macs"] for r in history}) == 1  # full size until the end
    summary = json.loads((run / "summary.json").read_text())
    assert summary["cost_mode"] == "full" and summary["target"] == 0.4
    conv = [layer for layer in summary["layers"] if layer["kind"] == "conv"]
    assert [(r["filters"], r["filters_pruned"]) for r in conv] == [(20, 8), (50, 20)]
    state = torch.load(run / "model.pt", weights_only=True)["model"]
    assert state["conv1.weight"].shape[0] == 12 and state["conv2.weight"].shape[0] == 30  # compacted
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    assert "SFP 40%" in (tmp_path / "report" / "report.md").read_text()
    assert main(["export", str(run), "--no-latency"]) == 0
    assert (run / "model_compact.pt").is_file()


def test_every_beyond_the_epochs_is_refused_like_pwts(tmp_path):
    from intrain.cli import main
    from intrain.config import TrainConfig
    from intrain.errors import ConfigError
    from intrain.methods import sfp

    with pytest.raises(ConfigError, match="every: zeroing every 5 epochs never happens in 1 epochs"):
        TrainConfig.of(dataset="demo", method="sfp", every=5, epochs=1)
    with pytest.raises(ConfigError, match="every: zeroing every 3 epochs never happens in 2 epochs"):
        sfp(target=0.3, epochs=2, every=3)
    assert TrainConfig.of(dataset="demo", method="sfp", every=2, epochs=2).method_config.every == 2
    assert main(["train", "--dataset", "demo", "--method", "sfp", "--every", "5", "--epochs", "1",
                 "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()
