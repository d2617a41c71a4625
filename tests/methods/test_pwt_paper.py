"""``recipe paper``: the PWT paper's Algorithms 1-3 as written, on tiny networks with golden values;
one default (recipe recommended) for the Python API and the command line; what departs from the
paper, named."""

import pytest
import torch
from torch import nn

from intrain.config import TrainConfig
from intrain.errors import ConfigError
from intrain.methods import pwt
from intrain.methods.pwt import PWTConfig
from intrain.methods.registry import RunContext
from test_pwt import drive


def conv_net():
    """Two conv layers, 4 + 6 filters."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))


def masks(net):
    return [net[0].filter_mask.tolist(), net[2].filter_mask.tolist()]


def test_algorithm1_starts_at_initial_and_adds_the_rate_after_each_epoch():
    """P% = initial at the first epoch end (Algorithm 1), then + rate: 0.1, 0.2, ..., 0.5 after epochs
    1-5 (rate (0.5 - 0.1) / 4); the recommended recipe's linear schedule keeps intrain's start
    (initial + rate at the first event)."""
    paper = PWTConfig(recipe="paper", target=0.5, initial=0.1).plan(5)
    assert [paper.after_epoch(e) for e in range(1, 6)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    given = PWTConfig(recipe="paper", target=0.5, initial=0.2, rate=0.1).plan(4)
    assert [given.after_epoch(e) for e in range(1, 5)] == pytest.approx([0.2, 0.3, 0.4, 0.5])
    default = PWTConfig(recipe="paper", target=0.8).plan(80)  # the paper's 1% per epoch, 80% after 80
    assert default.after_epoch(1) == pytest.approx(0.01) and default.after_epoch(80) == pytest.approx(0.8)
    kept = PWTConfig(recipe="recommended", target=0.5, initial=0.1, rate=0.1).plan(4)
    assert [kept.after_epoch(e) for e in range(1, 5)] == pytest.approx([0.2, 0.3, 0.4, 0.5])


def test_algorithm1_prunes_to_initial_at_the_first_epoch_end_on_a_network():
    net = conv_net()
    method = pwt(target=0.5, epochs=5, recipe="paper", initial=0.3)  # 3, 4, 4, 5, 5 of 10 filters
    fractions = []
    with method.attached(net, torch.optim.SGD(net.parameters(), lr=0.1)):
        for epoch in range(5):
            method.on_epoch_end(epoch)
            fractions.append(method.pruned_filter_fraction())
    assert fractions == pytest.approx([0.3, 0.4, 0.4, 0.5, 0.5])


def test_algorithm1_ranks_all_filters_of_the_network_at_once():
    """Filter L1s 0.4, 0.1, 0.3, 0.2 | 0.9 ... 0.45: 10% of 10 filters is one filter, the network's
    lowest (conv 0's filter 1); a per-layer ranking would take one from each layer."""
    net = conv_net()
    with torch.no_grad():
        for conv, values in ((net[0], [0.4, 0.1, 0.3, 0.2]), (net[2], [0.9, 0.8, 0.7, 0.6, 0.5, 0.45])):
            for o, v in enumerate(values):
                conv.weight[o] = v
    method = pwt(target=0.5, epochs=5, recipe="paper")
    with method.attached(net, torch.optim.SGD(net.parameters(), lr=0.1)):
        method.on_epoch_end(0)
        assert masks(net) == [[True, False, True, True], [True] * 6]
        method.on_epoch_end(1)
        assert masks(net) == [[True, False, True, False], [True] * 6]


def test_algorithm2_prunes_one_filter_per_layer_per_epoch_up_to_the_target():
    """4 + 6 filters, target 0.5: (1, 1), (2, 2), (2, 3) pruned after epochs 1-3, then nothing; each
    time the layer's lowest mean activation (1x1 convs on images of ones: conv 0's filter j has
    post-ReLU mean weight_j, the lowest first)."""
    net = nn.Sequential(nn.Conv2d(1, 4, 1, bias=False), nn.Conv2d(4, 6, 1, bias=False), nn.Flatten(),
                        nn.LazyLinear(2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([0.4, 0.1, 0.3, 0.2]).view(4, 1, 1, 1))
        net[1].weight.copy_(torch.tensor([6.0, 5, 4, 3, 2, 1]).view(6, 1, 1, 1).expand(6, 4, 1, 1) / 4)
    net(torch.zeros(1, 1, 2, 2))
    method = pwt(target=0.5, epochs=5, recipe="paper", criterion="mean-activation")
    counts = []
    with method.attached(net, torch.optim.SGD(net.parameters(), lr=0.0)):
        for epoch in range(5):
            method.on_epoch_begin(epoch)
            net(torch.ones(2, 1, 2, 2))
            method.on_epoch_end(epoch)
            counts.append((int((~net[0].filter_mask).sum()), int((~net[1].filter_mask).sum())))
            if epoch == 0:
                assert net[0].filter_mask.tolist() == [True, False, True, True]
                assert net[1].filter_mask.tolist() == [True] * 5 + [False]
    assert counts == [(1, 1), (2, 2), (2, 3), (2, 3), (2, 3)]


def test_algorithm2_has_no_schedule_to_set():
    with pytest.raises(ConfigError, match="^rate: mean-activation with scope paper .Algorithm 2."):
        PWTConfig(recipe="paper", criterion="mean-activation", rate=0.1)
    with pytest.raises(ConfigError, match="^prune_every_steps: "):
        TrainConfig.of(method="pwt", recipe="paper", criterion="mean-activation", prune_every_steps=4)
    PWTConfig(recipe="paper", criterion="mean-activation", scope="layer", rate=0.1)  # intrain's P% schedule


def test_algorithm3_draws_a_layer_then_a_filter():
    """Layers of 3 and 97 filters, 2 filters pruned: drawing a layer first takes one from the small
    layer in 3 of 4 runs (1 - 1/2^2); drawing among all filters would in 6 of 100. Seeds 0-19, fixed."""
    def small_layer_hit(seed):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(1, 3, 1), nn.Conv2d(3, 97, 1))
        method = pwt(target=0.02, epochs=1, recipe="paper", criterion="random", seed=seed)
        with method.attached(net):
            method.on_epoch_end(0)
        assert int((~net[0].filter_mask).sum()) + int((~net[1].filter_mask).sum()) == 2
        return not bool(net[0].filter_mask.all())

    hits = sum(small_layer_hit(seed) for seed in range(20))
    assert hits >= 10
    assert small_layer_hit(3) == small_layer_hit(3)


def test_algorithm3_never_empties_a_layer():
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Conv2d(2, 8, 1))
    method = pwt(target=0.85, epochs=1, recipe="paper", criterion="random")
    with method.attached(net):
        method.on_epoch_end(0)
    assert int(net[0].filter_mask.sum()) == 1 and int(net[1].filter_mask.sum()) == 1  # 8 of 10 pruned


def test_the_api_and_the_command_line_share_one_default():
    """``pwt(target, epochs, steps_per_epoch)`` prunes as ``intrain train --method pwt`` does (recipe
    recommended: cubic, every 6 steps): the same masks after every step; without the batches per epoch
    it says so at its first prune (step 6)."""
    def fractions(method):
        net = conv_net()
        return drive(method, net, torch.optim.SGD(net.parameters(), lr=0.01))[0]

    config = TrainConfig.of(method="pwt", target=0.5, epochs=2).resolved()
    cli = config.spec.build(config.method_config, RunContext(config, iterations_per_epoch=10))
    api = fractions(pwt(target=0.5, epochs=2, steps_per_epoch=10))
    assert api == fractions(cli)
    assert api[4] == 0.0 and api[5] > 0.0  # the first prune after step 6, mid-epoch
    net = conv_net()
    with pwt(target=0.5, epochs=2).attached(net) as method:
        for _ in range(5):
            method.on_step_end()
        with pytest.raises(ConfigError, match="^steps_per_epoch: pwt prunes every 6 optimizer steps"):
            method.on_step_end()


@pytest.mark.parametrize("values, expected", [
    ({}, ["cubic schedule", "reach 0.6", "every 6 steps", "per-layer ranking"]),
    ({"recipe": "paper"}, []),
    ({"recipe": "paper", "criterion": "random"}, []),
    ({"recipe": "paper", "criterion": "mean-activation"}, []),
    ({"recipe": "paper", "scope": "global"}, []),
    ({"recipe": "paper", "scope": "layer", "criterion": "random"}, ["per-layer draws"]),
    ({"recipe": "paper", "scope": "global", "criterion": "mean-activation"},
     ["global ranking to the schedule (not one filter per layer per epoch)"]),
    ({"recipe": "paper", "reach": 0.5}, ["target at epoch 4 of 8"]),
    ({"recipe": "paper", "rate": 0.2}, ["target at epoch 3 of 8"]),
    ({"rate": 0.1, "initial": 0.2},
     ["target at epoch 4 of 8", "every 6 steps", "first prune at initial + rate", "per-layer ranking"]),
    ({"recipe": "paper", "rate": 0.1, "initial": 0.2}, ["target at epoch 5 of 8"]),
    ({"recipe": "paper", "rate": 0.1, "initial": 0.1, "target": 0.8}, []),
])
def test_departures_name_what_differs_from_the_paper(values, expected):
    config = TrainConfig.of(**{"method": "pwt", "epochs": 8, "target": 0.6, **values}).resolved()
    assert config.spec.departures(config.method_config, config) == expected


def test_a_resolved_paper_config_builds_the_same_schedule():
    """config.yaml holds the resolved settings (rate, initial, scope): a resume plans as the run did."""
    config = TrainConfig.of(method="pwt", recipe="paper", target=0.5, initial=0.1, epochs=5)
    resolved = config.resolved()
    assert resolved.method_config.rate == pytest.approx(0.1) and resolved.method_config.initial == 0.1
    assert resolved.method_config.scope == "paper"
    again = TrainConfig.of(**resolved.to_dict()).resolved()
    assert again.method_config == resolved.method_config
    assert [resolved.method_config.plan(5).after_epoch(e) for e in range(1, 6)] == pytest.approx(
        [0.1, 0.2, 0.3, 0.4, 0.5])
