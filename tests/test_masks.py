import pytest
import torch
from torch import nn

from intrain.errors import ConfigError
from intrain.masks import (FILTER_MASK, WEIGHT_MASK, ensure_mask, ensure_weight_mask, find_prunable_layers, mask_sparsity,
                           masked_forward, masked_gradients, masked_weight, prune_filters)


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
    assert state[f"0.{FILTER_MASK}"].tolist() == [True, True, False, True]


# ---------------------------------------------------------------------- one name per buffer; weight masks
def test_buffer_names_and_state_dict_keys_are_those_saved_runs_hold():
    """Checkpoints and model.pt files written before masks/ was a package key their masks by these
    exact names: a model with filter masks (PWT) and one with weight masks (RA) keep them."""
    from intrain.methods import pwt, ra

    assert (FILTER_MASK, WEIGHT_MASK) == ("filter_mask", "weight_mask")  # golden: never rename
    filtered = small_net()
    with pwt(target=0.5, epochs=1).attached(filtered):
        filtered(torch.randn(2, 1, 4, 4))
    assert [k for k in filtered.state_dict() if "mask" in k] == ["0.filter_mask", "3.filter_mask"]
    weighted = small_net()
    with ra(range_=0.5, epsilon=0.1, partition="none").attached(weighted):
        pass
    assert [k for k in weighted.state_dict() if "mask" in k] == ["0.weight_mask", "3.weight_mask", "7.weight_mask",
                                                                  "10.weight_mask"]
    plain = {k for k in small_net().state_dict()}
    assert {k for k in weighted.state_dict() if "mask" not in k} == plain  # weight keys unchanged (no weight_orig)


def test_masked_forward_computes_with_w_times_t_and_passes_gradients_straight_through_or_not():
    """Golden values of the weight-mask forward (moved here from methods/ra.py unchanged)."""
    layer = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 3.0]]))
    mask = ensure_weight_mask(layer)
    assert mask.dtype == layer.weight.dtype and mask.tolist() == [[1.0, 1.0, 1.0]]
    mask.copy_(torch.tensor([[1.0, 0.0, 1.0]]))
    assert mask_sparsity(layer) == pytest.approx(1 / 3)
    x = torch.tensor([[1.0, 10.0, 100.0]])
    for straight_through, pruned_grad in ((True, 10.0), (False, 0.0)):
        layer.weight.grad = None
        with masked_forward([layer], straight_through=straight_through):
            out = layer(x)
            assert out.item() == 301.0  # 1*1 + 0*(-2)*10 + 3*100
            out.backward()
        assert layer.weight.grad.tolist() == [[1.0, pruned_grad, 100.0]]
        assert "forward" not in vars(layer) and layer(x).item() == 281.0  # the plain forward again
    assert torch.equal(masked_weight(layer), torch.tensor([[1.0, 0.0, 3.0]]))
    unmasked = nn.Linear(3, 1)
    assert masked_weight(unmasked) is unmasked.weight  # no mask: the weight itself
