"""``round_to``: pruned layers keep a multiple of N filters, the network's fraction still met."""

import pytest
import torch
from torch import nn

from intrain.config import TrainConfig
from intrain.errors import ConfigError
from intrain.methods import pwt
from intrain.methods.round_to import rounded_kept


def test_rounded_kept_golden():
    # 16 -> 8 and 24 -> 12 wanted, 6 too narrow; nearest multiples 8, 16, 6 prune 16 < 23 of 46 -> 24 gives 8 more
    assert rounded_kept([8, 12, 3], [16, 24, 6], [16, 24, 6], [1, 1, 1], 8, 23) == [8, 8, 6]
    assert rounded_kept([8, 12, 3], [16, 24, 6], [16, 24, 6], [1, 1, 1], 1, 23) == [8, 12, 3]  # no rounding
    assert rounded_kept([2, 30], [16, 32], [16, 32], [1, 1], 8, 8) == [8, 32]  # at least N
    assert rounded_kept([2, 30], [16, 32], [16, 32], [1, 1], 8, 16) == [8, 24]  # 8 more to meet 16
    assert rounded_kept([5, 20], [8, 24], [16, 32], [1, 1], 8, 0) == [8, 24]  # never more than kept now
    assert rounded_kept([9, 9], [16, 16], [16, 16], [3, 1], 4, 0) == [8, 8]  # 9/4 rounds to 2 -> 8


def ladder_net() -> nn.Module:
    """Convs of 16, 24 and 6 filters whose filter i has mean |w| growing with i (L1 prunes low i first)."""
    convs = [nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 24, 3, padding=1), nn.Conv2d(24, 6, 3, padding=1)]
    with torch.no_grad():
        for conv in convs:
            conv.weight.copy_(torch.arange(1, conv.out_channels + 1, dtype=torch.float32).view(-1, 1, 1, 1)
                              .expand_as(conv.weight))
    return nn.Sequential(convs[0], nn.ReLU(), convs[1], nn.ReLU(), convs[2], nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(6, 2))


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_every_pruned_layer_keeps_a_multiple_of_n_and_the_target_is_met(scope):
    model = ladder_net()
    method = pwt(target=0.5, epochs=1, round_to=8, scope=scope).attach(model, example_inputs=torch.zeros(1, 1, 4, 4))
    method.prune_to(0.5)
    kept = [int(layer.mask.sum()) for layer in method.layers]
    if scope == "layer":
        assert kept == [8, 8, 6]
        assert (~method.layers[1].mask).nonzero().flatten().tolist() == list(range(16))  # the 16 lowest
    assert all(k % 8 == 0 for k in kept[:2]) and kept[2] == 6  # 6 < 8: untouched
    assert method.pruned_filter_fraction() >= 0.5


def test_step_pruning_with_round_to_only_ever_removes_multiples():
    model = ladder_net()
    method = pwt(target=0.6, epochs=1, round_to=4).attach(model, example_inputs=torch.zeros(1, 1, 4, 4))
    history = []
    for fraction in (0.1, 0.2, 0.3, 0.45, 0.6):
        method.prune_to(fraction)
        history.append([int(layer.mask.sum()) for layer in method.layers])
        assert method.pruned_filter_fraction() >= fraction
    for before, after in zip(history, history[1:]):
        assert all(a <= b for a, b in zip(after, before))
    assert all(k % 4 == 0 for row in history for k in row[:2])


def test_round_to_is_a_flag_of_the_filter_pruning_methods():
    assert TrainConfig.of(method="pwt", round_to=8).method_config.round_to == 8
    with pytest.raises(ConfigError, match="round_to"):
        TrainConfig.of(method="pwt", round_to=0)
    with pytest.raises(ConfigError, match="round_to"):
        pwt(target=0.5, epochs=1, round_to=2.5)


def test_a_compacted_run_with_round_to_ends_with_multiples_of_n(tmp_path):
    from intrain.cli import main

    out = tmp_path / "run"
    assert main(["train", "--model", "lenet5", "--dataset", "demo", "--subset", "100", "--batch-size", "50",
                 "--epochs", "1", "--method", "pwt", "--target", "0.5", "--round-to", "8", "--device", "cpu",
                 "--out", str(out), "--quiet"]) == 0
    state = torch.load(out / "model.pt", weights_only=True)["model"]
    # LeNet-5's 20 and 50 filters: 10 and 25 wanted, rounded to 8 and 24 (38 of 70 pruned >= 35)
    assert state["conv1.weight"].shape[0] == 8 and state["conv2.weight"].shape[0] == 24
