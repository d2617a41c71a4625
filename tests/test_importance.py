"""Importance criteria as objects (intrain.importance): names, a user's own, and group-l1's golden scores."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from intrain.errors import ConfigError
from intrain.importance import L1, L2, GroupL1, Importance, MeanActivation, Random, importance
from intrain.methods import prt, pwt, sfp


def attach(method, net, shape):
    return method.attach(net, torch.optim.SGD(net.parameters(), lr=0.0), example_inputs=torch.zeros(shape))


def test_names_give_the_criteria_and_objects_pass_through():
    assert [type(importance(n)) for n in ("l1", "mean-activation", "group-l1")] == [L1, MeanActivation, GroupL1]
    assert importance("random", seed=7).seed == 7
    mine = L2()
    assert importance(mine) is mine
    with pytest.raises(ConfigError, match="criterion: unknown value 'l3'"):
        importance("l3")
    with pytest.raises(ConfigError, match="criterion: expected a string"):
        pwt(target=0.5, epochs=1, recipe="paper", criterion=3)
    assert type(sfp(target=0.5, epochs=2).importance) is L2  # SFP scores by L2, no override


class Reversed(Importance):
    """A user's criterion: the filter with the largest L1 is the least important."""

    name = "reversed"

    def scores(self, method, epoch):
        return [-L1().scores(method, epoch)[i] for i in range(len(method.layers))]


@pytest.mark.parametrize("make", [
    lambda c: pwt(target=0.25, epochs=1, recipe="paper", criterion=c, scope="layer"),
    lambda c: prt(target=0.25, prune_epoch=1, criterion=c),
])
def test_a_users_importance_decides_what_pwt_and_prt_prune(make):
    net = nn.Sequential(nn.Conv2d(1, 4, 1, bias=False), nn.ReLU(), nn.Conv2d(4, 2, 1), nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, 4.0, 2.0, 3.0]).view(4, 1, 1, 1))
    method = attach(make(Reversed()), net, (1, 1, 1, 1))
    method.on_epoch_end(0)
    method.detach()
    assert net[0].filter_mask.tolist() == [True, False, True, True]  # the largest |w| went
    assert method.criterion == "reversed"


def chain_net():
    """conv-bn-relu-conv-bn + linear on 2x2 images: conv 3's channel c is read by the linear's
    columns 4c..4c+3 (after the flatten)."""
    net = nn.Sequential(nn.Conv2d(1, 3, 1, bias=False), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 1, bias=False),
                        nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, -2.0, 3.0]).view(3, 1, 1, 1))
        net[1].weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
        net[1].bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        net[3].weight.copy_(torch.tensor([[1.0, 2.0, -3.0], [4.0, -5.0, 6.0]]).view(2, 3, 1, 1))
        net[4].weight.copy_(torch.tensor([1.0, 2.0]))
        net[4].bias.copy_(torch.tensor([0.0, -1.0]))
        net[6].weight.copy_(torch.arange(24.0).view(3, 8))
    return net


def test_group_l1_golden_scores_on_a_chain():
    """Conv 0's channel c: its weight, gamma, beta, and conv 3's input weights [:, c]: 5 weights.
    c=0: (1 + 0.5 + 0.1 + 1 + 4) / 5 = 1.32; c=1: (2 + 1 + 0.2 + 2 + 5) / 5 = 2.04;
    c=2: (3 + 2 + 0.3 + 3 + 6) / 5 = 2.86.
    Conv 3's channel c: its 3 weights, gamma, beta and the linear's 3 x 4 columns 4c..4c+3: 17 weights.
    c=0: (6 + 1 + 0 + sum(8r + j, r < 3, j < 4) = 114) / 17 = 121 / 17;
    c=1: (15 + 2 + 1 + sum(8r + j, r < 3, 4 <= j < 8) = 162) / 17 = 180 / 17."""
    net = chain_net()
    method = attach(pwt(target=0.5, epochs=1, recipe="paper", criterion="group-l1"), net, (1, 1, 2, 2))
    first, second = method.scores(0)
    assert torch.allclose(first, torch.tensor([1.32, 2.04, 2.86]))
    assert torch.allclose(second, torch.tensor([121 / 17, 180 / 17]))
    # plain l1 ranks conv 3's channels by their own weights only: 2 and 5
    assert torch.allclose(L1().scores(method, 0)[1], torch.tensor([2.0, 5.0]))


class ResidualPair(nn.Module):
    """a -> bn -> relu = y; b(y) -> bn = z; relu(y + z) read by conv c: a and b are tied by the addition."""

    def __init__(self):
        super().__init__()
        self.a, self.bn_a = nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2)
        self.b, self.bn_b = nn.Conv2d(2, 2, 1, bias=False), nn.BatchNorm2d(2)
        self.c = nn.Conv2d(2, 1, 1, bias=False)
        self.fc = nn.Linear(1, 2)

    def forward(self, x):
        y = torch.relu(self.bn_a(self.a(x)))
        s = torch.relu(y + self.bn_b(self.b(y)))
        return self.fc(self.c(s).mean(dim=(2, 3)))


def test_group_l1_scores_a_residual_pair_as_one_group():
    """Channel c of the pair: a's weight, bn_a's gamma and beta, b's row c, bn_b's gamma and beta, b's
    column c (b reads y) and c's column c: 10 weights (gammas 1, betas 0).
    c=0: (1 + 1 + (1 + 2) + 1 + (1 + 3) + 5) / 10 = 1.5; c=1: (2 + 1 + (3 + 4) + 1 + (2 + 4) + 6) / 10 = 2.3."""
    net = ResidualPair()
    with torch.no_grad():
        net.a.weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))
        net.b.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(2, 2, 1, 1))
        net.c.weight.copy_(torch.tensor([5.0, 6.0]).view(1, 2, 1, 1))
    method = attach(pwt(target=0.5, epochs=1, recipe="paper", criterion="group-l1"), net, (1, 1, 2, 2))
    assert method.coupled_layers() == [[0, 1], [2]]
    a, b, _ = method.scores(0)
    assert torch.allclose(a, torch.tensor([1.5, 2.3])) and torch.equal(a, b)


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 2, 1, bias=False), nn.Conv2d(1, 1, 1, bias=False)
        self.c = nn.Conv2d(3, 1, 1, bias=False)
        self.fc = nn.Linear(1, 2)

    def forward(self, x):
        return self.fc(self.c(torch.cat([self.a(x), self.b(x)], dim=1)).mean(dim=(2, 3)))


def test_group_l1_follows_a_concatenation_to_the_readers_input_channels():
    """b's channel 0 is c's input channel 2: (|b| + |c[:, 2]|) / 2 = (7 + 30) / 2; a's: (1 + 10) / 2, (2 + 20) / 2."""
    net = Concat()
    with torch.no_grad():
        net.a.weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))
        net.b.weight.fill_(7.0)
        net.c.weight.copy_(torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1))
    method = attach(pwt(target=0.5, epochs=1, recipe="paper", criterion="group-l1"), net, (1, 1, 2, 2))
    a, b, _ = method.scores(0)
    assert a.tolist() == [5.5, 11.0] and b.tolist() == [18.5]


def test_group_l1_without_the_channel_structure_says_what_to_do():
    from intrain.errors import IntrainError

    net = chain_net()
    method = pwt(target=0.5, epochs=1, recipe="paper", criterion="group-l1").attach(net)
    with pytest.raises(IntrainError, match="group-l1 reads the model's channel structure"):
        method.scores(0)


def test_random_objects_keep_the_seeded_draws_of_the_name():
    net = nn.Sequential(nn.Conv2d(1, 6, 1), nn.ReLU(), nn.Conv2d(6, 2, 1), nn.Flatten(), nn.Linear(2, 2))
    by_name = attach(pwt(target=0.5, epochs=1, recipe="paper", criterion="random", seed=3), net, (1, 1, 1, 1))
    named = by_name.scores(4)
    by_name.detach()
    by_object = attach(pwt(target=0.5, epochs=1, recipe="paper", criterion=Random(3)), net, (1, 1, 1, 1))
    assert all(torch.equal(x, y) for x, y in zip(named, by_object.scores(4)))


def test_cli_trains_a_residual_network_with_group_l1(tmp_path, capsys):
    """Pruned every 6 steps and compacted after each prune: the readers are read again from each
    compaction's graph."""
    from intrain.cli import main

    run = tmp_path / "run"
    assert main(["train", "--method", "pwt", "--criterion", "group-l1", "--target", "0.5", "--model", "resnet20",
                 "--width", "0.25", "--dataset", "demo", "--subset", "96", "--batch-size", "16", "--epochs", "2",
                 "--out", str(run), "--quiet"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["criterion"] == "group-l1"
    assert summary["pruned_filter_fraction"] == pytest.approx(0.5, abs=0.05)
