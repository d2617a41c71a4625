import pytest
import torch
from torch import nn

from intrain.errors import ConfigError
from intrain.masks import ensure_mask, find_prunable_layers, masked_gradients, prune_filters


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3),
    )


def test_layers_are_paired_with_their_batchnorm_and_classifier_excluded():
    net = small_net()
    layers = find_prunable_layers(net)
    assert [l.name for l in layers] == ["0", "3"]
    assert layers[0].norm is net[1] and layers[1].norm is net[4]
    with_linear = find_prunable_layers(net, include_linear=True)
    assert [l.name for l in with_linear] == ["0", "3", "7"]
    assert with_linear[2].norm is net[8]


def test_grouped_convolutions_are_refused_and_depthwise_ones_are_not_prunable_layers():
    with pytest.raises(ConfigError, match=r"grouped convolution \(groups=2.*method ra"):
        find_prunable_layers(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)))
    with pytest.raises(ConfigError, match="grouped"):  # a depthwise conv with a channel multiplier
        find_prunable_layers(nn.Sequential(nn.Conv2d(4, 8, 3, groups=4)))
    net = nn.Sequential(nn.Conv2d(1, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, groups=4), nn.BatchNorm2d(4))
    layers = find_prunable_layers(net)
    assert [l.name for l in layers] == ["0"] and layers[0].norm is net[1]  # the depthwise conv follows "0"


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-2),
    lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-1),
    lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, weight_decay=1e-2),
])
def test_pruned_filters_stay_exactly_zero_through_many_steps(make_opt):
    net = small_net()
    opt = make_opt(net.parameters())
    layers = find_prunable_layers(net)
    x, y = torch.randn(8, 1, 4, 4), torch.randint(0, 3, (8,))
    # build up optimizer state first, so clearing it matters
    for _ in range(3):
        opt.zero_grad(); nn.functional.cross_entropy(net(x), y).backward(); opt.step()
    for layer in layers:
        ensure_mask(layer)
    prune_filters(layers[0], torch.tensor([1, 3]), opt)
    with masked_gradients(layers):
        for _ in range(50):
            opt.zero_grad(); nn.functional.cross_entropy(net(x), y).backward(); opt.step()
    for p in layers[0].params:
        assert torch.count_nonzero(p[[1, 3]]) == 0
        assert torch.count_nonzero(p[[0, 2]]) > 0
    assert layers[0].mask.tolist() == [True, False, True, False]
    # eval mode: the pruned channels are exactly zero after BatchNorm
    net.eval()
    out = net[1](net[0](x))
    assert torch.count_nonzero(out[:, [1, 3]]) == 0


def test_without_the_gradient_mask_adam_would_revive_a_pruned_filter():
    # the invariant above must be able to fail: this is what it guards against (a conv without
    # BatchNorm/ReLU after it, as in LeNet-5, passes gradient to its zeroed filter)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Flatten(), nn.Linear(3 * 4, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    layers = find_prunable_layers(net)
    ensure_mask(layers[0])
    prune_filters(layers[0], torch.tensor([1]), opt)
    x, y = torch.randn(8, 1, 4, 4), torch.randint(0, 2, (8,))

    def step():
        opt.zero_grad(); nn.functional.cross_entropy(net(x), y).backward(); opt.step()

    with masked_gradients(layers):
        step()
    assert torch.count_nonzero(layers[0].module.weight[1]) == 0
    step()  # no gradient mask
    assert torch.count_nonzero(layers[0].module.weight[1]) > 0


def test_mask_is_a_buffer_in_the_state_dict():
    net = small_net()
    layer = find_prunable_layers(net)[0]
    ensure_mask(layer)
    prune_filters(layer, torch.tensor([2]), None)
    state = net.state_dict()
    assert state["0.filter_mask"].tolist() == [True, True, False, True]
