"""Tests for intrain.costs: Table I counts, probing of the pruning state, savings and latency.

Expected counts are worked out by hand in the comments and written as literal integers.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from intrain.costs import (
    MemoryAccess,
    closed_form_savings,
    exact_schedule_cost,
    format_cost_table,
    latency_model,
    layer_costs,
    schedule_fractions,
    training_cost,
    uniform_pruning_cost,
)
from intrain.errors import ConfigError
from intrain.masks import FILTER_MASK, WEIGHT_MASK


def _prune_filters(conv: nn.Module, pruned: list[int], bn: nn.BatchNorm2d | None = None) -> None:
    """The package's PWT convention: zero the filter (and BN affine) and clear filter_mask."""
    mask = torch.ones(conv.weight.shape[0], dtype=torch.bool)
    mask[pruned] = False
    with torch.no_grad():
        conv.weight[~mask] = 0
        if conv.bias is not None:
            conv.bias[~mask] = 0
        if bn is not None:
            bn.weight[~mask] = 0
            bn.bias[~mask] = 0
    conv.register_buffer(FILTER_MASK, mask)


def _tiny_net() -> nn.Sequential:
    # conv1: 3 -> 4, 3x3, pad 1 on 5x5 -> 4 x 5 x 5; conv2: 4 -> 2, 3x3, stride 2 -> 2 x 2 x 2
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 2, 3, stride=2),
    )


def _pruned_tiny_net() -> nn.Sequential:
    net = _tiny_net()
    _prune_filters(net[0], [1])  # conv1: 1 of 4 filters pruned -> Pc = 0.25, conv2 Pp = 0.25
    _prune_filters(net[2], [1])  # conv2: 1 of 2 filters pruned -> Pc = 0.5
    return net


@pytest.fixture(scope="module")
def vgg16() -> nn.Sequential:
    torch.manual_seed(0)
    return _vgg16_bn()


def _vgg16_bn(num_classes: int = 10) -> nn.Sequential:
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers: list[nn.Module] = []
    channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(True)]
            channels = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, num_classes))


# ---------------------------------------------------------------------------------------------
# Hand-computed conv counts
# ---------------------------------------------------------------------------------------------


def test_dense_tiny_net_by_hand():
    rows = layer_costs(_tiny_net(), (3, 5, 5))
    assert [r.name for r in rows] == ["0", "2"]
    c1, c2 = rows
    # conv1: 9 * 3 * 4 = 108 weights, 25 output positions -> 2700 MACs; no BP (network input)
    assert (c1.fp_macs, c1.bp_macs, c1.wu_macs) == (2700, 0, 2700)
    # reads x (3*25 = 75) and W (108), writes y (4*25 = 100)
    assert c1.fp_mem == MemoryAccess(75, 108, 100, 0)
    assert c1.bp_mem == MemoryAccess(0, 0, 0, 0)
    assert c1.wu_mem == MemoryAccess(175, 0, 0, 108)
    # conv2: 9 * 4 * 2 = 72 weights, (5 - 3) // 2 + 1 = 2 -> 4 positions -> 288 MACs
    assert (c2.fp_macs, c2.bp_macs, c2.wu_macs) == (288, 288, 288)
    assert c2.fp_mem == MemoryAccess(100, 72, 8, 0)
    assert c2.bp_mem == MemoryAccess(8, 72, 100, 0)  # reads dy, W; writes dx
    assert c2.wu_mem == MemoryAccess(108, 0, 0, 72)  # reads x and dy; writes dW
    assert (c1.pp, c1.pc, c2.pp, c2.pc) == (0, 0, 0, 0)


def test_pruned_tiny_net_by_hand():
    c1, c2 = layer_costs(_pruned_tiny_net(), (3, 5, 5))
    assert (c1.pp, c1.pc) == (0.0, 0.25)
    assert (c2.pp, c2.pc) == (0.25, 0.5)
    # conv1: 9 * 3 * 3 kept = 81 weights * 25 = 2025 MACs
    assert (c1.fp_macs, c1.bp_macs, c1.wu_macs) == (2025, 0, 2025)
    assert c1.fp_mem == MemoryAccess(75, 81, 75, 0)
    assert c1.wu_mem == MemoryAccess(150, 0, 0, 81)
    # conv2: 9 * 3 live inputs * 1 kept = 27 weights * 4 = 108 MACs
    assert (c2.fp_macs, c2.bp_macs, c2.wu_macs) == (108, 108, 108)
    assert c2.fp_mem == MemoryAccess(75, 27, 4, 0)
    assert c2.bp_mem == MemoryAccess(4, 27, 75, 0)
    assert c2.wu_mem == MemoryAccess(79, 0, 0, 27)
    assert c1.train_macs + c2.train_macs == 4374
    assert c1.train_mem + c2.train_mem == 231 + 231 + 106 * 3


def test_compacted_model_matches_masked_model():
    # Physically removing the pruned channels must give the same structured counts.
    masked = layer_costs(_pruned_tiny_net(), (3, 5, 5))
    compact = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 1, 3, stride=2))
    rows = layer_costs(compact, (3, 5, 5))
    for a, b in zip(masked, rows):
        assert (a.fp_macs, a.bp_macs, a.wu_macs) == (b.fp_macs, b.bp_macs, b.wu_macs)
        assert (a.fp_mem, a.bp_mem, a.wu_mem) == (b.fp_mem, b.bp_mem, b.wu_mem)
    assert all(r.pp == 0 and r.pc == 0 for r in rows)


def test_pc_from_zero_filters_without_filter_mask():
    net = _tiny_net()
    with torch.no_grad():
        net[0].weight[[0, 3]] = 0
        net[0].bias[[0, 3]] = 0
    c1, c2 = layer_costs(net, (3, 5, 5))
    assert c1.pc == 0.5 and c2.pp == 0.5
    assert c1.fp_macs == 9 * 3 * 2 * 25 == 1350
    assert c2.fp_macs == 9 * 2 * 2 * 4 == 144


def test_dead_relu_channel_is_not_counted_as_pruned():
    # A live filter whose ReLU output is zero for every input is not a pruned filter.
    net = _tiny_net()
    with torch.no_grad():
        net[0].bias[2] = -1e4
    c1, c2 = layer_costs(net, (3, 5, 5))
    assert c2.pp == 0.0 and c2.fp_macs == 288


def test_pruning_survives_batchnorm_pool_and_residual_add():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(4)
            self.pool = nn.MaxPool2d(2)
            self.conv3 = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            a = torch.relu(self.bn1(self.conv1(x)))
            b = torch.relu(self.bn2(self.conv2(a)))
            return self.conv3(self.pool(a + b))

    torch.manual_seed(0)
    net = Block()
    _prune_filters(net.conv1, [0, 1], net.bn1)
    _prune_filters(net.conv2, [1, 2], net.bn2)
    rows = {r.name: r for r in layer_costs(net, (3, 4, 4))}
    assert rows["conv2"].pp == 0.5
    # a + b is zero only in channel 1 (pruned in both branches)
    assert rows["conv3"].pp == 0.25
    assert rows["conv3"].fp_macs == 3 * 2 * 4  # 3 live inputs x 2 filters x 2x2 positions


# ---------------------------------------------------------------------------------------------
# Linear layers, counted modules, modes
# ---------------------------------------------------------------------------------------------


def test_linear_counts_by_hand():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    _prune_filters(net[0], [0, 5])
    l1, l2 = layer_costs(net, (8,))
    assert (l1.kind, l1.pp, l1.pc) == ("linear", 0.0, pytest.approx(1 / 3))
    # 8 inputs x 4 kept outputs = 32 MACs; no BP for the first layer
    assert (l1.fp_macs, l1.bp_macs, l1.wu_macs) == (32, 0, 32)
    assert l1.fp_mem == MemoryAccess(8, 32, 4, 0)
    # 4 live inputs x 3 outputs = 12
    assert l2.pp == pytest.approx(1 / 3)
    assert (l2.fp_macs, l2.bp_macs, l2.wu_macs) == (12, 12, 12)
    assert l2.fp_mem == MemoryAccess(4, 12, 3, 0)
    assert l2.bp_mem == MemoryAccess(3, 12, 4, 0)
    assert l2.wu_mem == MemoryAccess(7, 0, 0, 12)


def test_only_conv_and_linear_are_counted():
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(1, 6, 5), nn.Conv2d(6, 4, 3), nn.Flatten(), nn.Linear(144, 10))
    lenet_like = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 4, 3, padding=1),
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10), nn.Dropout(), nn.ReLU(),
    )
    # plain: conv1 on 12x12 -> 8x8 (25*6*64 = 9600), conv2 -> 6x6 (54*4*36 = 7776), fc 1440
    rows = layer_costs(plain, (1, 12, 12))
    assert [r.fp_macs for r in rows] == [9600, 7776, 1440]
    # BN/ReLU/pool/dropout add nothing: conv2 (pad 1) keeps 8x8 = 13824, pool -> 4x4 -> fc 640
    rows = layer_costs(lenet_like, (1, 12, 12))
    assert [(r.name, r.kind) for r in rows] == [("0", "conv"), ("3", "conv"), ("7", "linear")]
    assert [r.fp_macs for r in rows] == [9600, 13824, 640]


def test_structured_vs_nonzero_mode():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3)  # on 4x4 -> 2x2 output, 54 weights
    mask = torch.zeros(54)
    mask[torch.randperm(54)[:20]] = 1
    conv.register_buffer(WEIGHT_MASK, mask.reshape(3, 2, 3, 3))
    with torch.no_grad():
        conv.weight.mul_(conv.weight_mask)
    (s,) = layer_costs(conv, (2, 4, 4), mode="structured")
    (n,) = layer_costs(conv, (2, 4, 4), mode="nonzero")
    assert (s.fp_macs, s.wu_macs) == (216, 216)  # 54 x 4
    assert (n.fp_macs, n.wu_macs) == (80, 80)  # 20 non-zero x 4
    assert n.fp_mem == MemoryAccess(32, 20, 12, 0)
    assert s.fp_mem == MemoryAccess(32, 54, 12, 0)
    assert s.pc == n.pc == 0.0


def test_nonzero_mode_respects_weight_mask_without_zeroed_weights():
    conv = nn.Conv2d(1, 1, 2)  # 4 weights on 3x3 -> 2x2
    conv.register_buffer(WEIGHT_MASK, torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]]))
    (n,) = layer_costs(conv, (1, 3, 3), mode="nonzero")
    assert n.fp_macs == 4


def test_grouped_conv():
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=2)  # fan-in 2 per filter
    (r,) = layer_costs(conv, (4, 5, 5))
    assert r.fp_macs == 9 * 2 * 4 * 25 == 1800


# ---------------------------------------------------------------------------------------------
# Agreement with torch's FLOP counter (FLOPs = 2 x MACs)
# ---------------------------------------------------------------------------------------------


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("input_requires_grad", [False, True])
def test_dense_counts_match_flop_counter(input_requires_grad):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, stride=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(5 * 3 * 3, 7),
    )
    x = torch.randn(1, 3, 7, 7, requires_grad=input_requires_grad)
    out = []
    fwd = _flops(lambda: out.append(net(x)))
    bwd = _flops(lambda: out[0].sum().backward())
    rows = layer_costs(net, (3, 7, 7))
    fp = sum(r.fp_macs for r in rows)
    bp_wu = sum(r.bp_macs + r.wu_macs for r in rows)
    assert fwd == 2 * fp
    # The first layer's input gradient is excluded; autograd computes it only if asked to.
    first_bp = rows[0].fp_macs if input_requires_grad else 0
    assert bwd == 2 * (bp_wu + first_bp)


def test_vgg16_dense_training_macs(vgg16):
    rows = layer_costs(vgg16, (3, 32, 32))
    assert len(rows) == 14
    # 313.2M forward MACs for VGG-16 on 32x32; the first conv (1,769,472) has no BP.
    assert sum(r.fp_macs for r in rows) == 313_201_664
    assert sum(r.train_macs for r in rows) == 3 * 313_201_664 - 1_769_472


# ---------------------------------------------------------------------------------------------
# Epoch totals, uniform pruning, table
# ---------------------------------------------------------------------------------------------


def test_training_cost_scales_by_examples():
    net = _pruned_tiny_net()
    summary = training_cost(net, (3, 5, 5), examples=1000)
    assert summary.fp_macs == 1000 * (2025 + 108)
    assert summary.train_macs == 1000 * 4374
    assert summary.fp_mem.total == 1000 * (231 + 106)
    assert len(summary.layers) == 2


def test_uniform_pruning_cost_by_hand():
    c1, c2 = uniform_pruning_cost(_tiny_net(), (3, 5, 5), 0.5)
    assert (c1.pp, c1.pc, c2.pp, c2.pc) == (0.0, 0.5, 0.5, 0.5)
    assert c1.fp_macs == 9 * 3 * 2 * 25 == 1350
    assert c2.fp_macs == 9 * 2 * 1 * 4 == 72
    dense = uniform_pruning_cost(_tiny_net(), (3, 5, 5), 0.0)
    assert [r.fp_macs for r in dense] == [2700, 288]


def test_uniform_pruning_linear_layers():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4, 6), nn.Linear(6, 2))
    conv, fc1, fc2 = uniform_pruning_cost(net, (1, 3, 3), 0.25)
    assert (fc1.pp, fc1.pc, fc2.pp, fc2.pc) == (0.25, 0.0, 0.0, 0.0)
    assert fc1.fp_macs == 3 * 6 and fc2.fp_macs == 12
    fc1b = uniform_pruning_cost(net, (1, 3, 3), 0.25, prune_linear=True)[1]
    assert fc1b.fp_macs == 3 * 4.5


def test_probe_leaves_model_untouched():
    net = _pruned_tiny_net()
    net.train()
    net[0].eval()
    before = [p.clone() for p in net.parameters()]
    layer_costs(net, (3, 5, 5))
    assert net.training and not net[0].training and net[2].training
    assert all(not m._forward_hooks for m in net.modules())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_format_cost_table(vgg16):
    text = format_cost_table(layer_costs(vgg16, (3, 32, 32)))
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["layer", "kind"]
    assert len(lines) == 1 + 1 + 14 + 1 + 1
    assert lines[-1].startswith("total") and "937.84M" in lines[-1] and "313.20M" in lines[-1]
    assert len({len(line) for line in lines}) == 1  # right-aligned numeric columns


def test_bad_arguments():
    with pytest.raises(ConfigError):
        layer_costs(_tiny_net(), (3, 5, 5), mode="dense")
    with pytest.raises(ConfigError):
        layer_costs(_tiny_net(), (3, 0, 5))
    with pytest.raises(ConfigError):
        uniform_pruning_cost(_tiny_net(), (3, 5, 5), 1.5)
    with pytest.raises(ConfigError):
        closed_form_savings(0, 0.8, 10)
    with pytest.raises(ConfigError):
        closed_form_savings(80, 0.8, -1)


# ---------------------------------------------------------------------------------------------
# Savings formulas and latency
# ---------------------------------------------------------------------------------------------


def test_schedule_fractions():
    assert schedule_fractions(4, 0.8) == pytest.approx([0.0, 0.2, 0.4, 0.6])
    assert schedule_fractions(4, 0.8, every=2) == pytest.approx([0.0, 0.0, 0.4, 0.4])
    # 0 before the first pruning event, then initial + k * every * rate (rate = 0.6 / 3 = 0.2)
    assert schedule_fractions(3, 0.6, initial=0.3) == pytest.approx([0.0, 0.5, 0.6])


def test_schedule_fractions_golden_values():
    """Target 0.8 over 10 epochs (rate 0.08), by hand: epoch e runs at the fraction the events before
    it reached; Mod-3 events after epochs 1, 4, 7 and 10 (counted back from 10), 3 x 0.08 at a time;
    from initial 0.16 (5 epochs, rate 0.16) the first event prunes 0.32 (intrain's from_rate start)."""
    assert schedule_fractions(10, 0.8) == pytest.approx([0.0, 0.08, 0.16, 0.24, 0.32, 0.40, 0.48, 0.56, 0.64, 0.72])
    assert schedule_fractions(10, 0.8, every=3) == pytest.approx([0.0, 0.08, 0.08, 0.08, 0.32, 0.32, 0.32, 0.56,
                                                                    0.56, 0.56])
    assert schedule_fractions(10, 0.8, rate=0.1) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.8])
    assert schedule_fractions(5, 0.8, initial=0.16)[:3] == pytest.approx([0.0, 0.32, 0.48])


def test_closed_form_reproduces_paper():
    est = closed_form_savings(80, 0.8, 10)
    assert est.pwt == pytest.approx(48.4, abs=1e-9)  # sum_{e=0}^{79} (1 - 0.01 e)
    assert est.prt == pytest.approx(82.0)  # 80 + 10 * 0.2
    assert est.dense == 80
    assert est.savings_vs_prt == pytest.approx(0.41, abs=0.005)
    assert est.savings_vs_dense == pytest.approx(1 - 48.4 / 80)


def test_exact_schedule_on_conv_chain_by_hand():
    # conv1 (3 -> 4) cost ~ (1 - p), conv2 (4 -> 2) ~ (1 - p)^2 in MACs.
    # At p = 0.5: conv1 train MACs 2 * 1350 = 2700, conv2 3 * 72 = 216 -> 2916
    # Dense: 2 * 2700 + 3 * 288 = 6264.
    est = exact_schedule_cost(_tiny_net, (3, 5, 5), [0.0, 0.5], target=0.5, retrain_epochs=2)
    assert est.pwt == pytest.approx(1 + 2916 / 6264)
    assert est.prt == pytest.approx(2 + 2 * 2916 / 6264)
    dense = exact_schedule_cost(_tiny_net(), (3, 5, 5), [0.0] * 5, target=0.0, retrain_epochs=0)
    assert dense.pwt == pytest.approx(5) and dense.savings_vs_prt == pytest.approx(0)


def test_exact_vs_closed_form_vgg16(vgg16):
    fractions = schedule_fractions(80, 0.8)
    exact = exact_schedule_cost(vgg16, (3, 32, 32), fractions, target=0.8, retrain_epochs=10)
    closed = closed_form_savings(80, 0.8, 10)
    # Interior convs scale by (1 - p)^2 < (1 - p): the exact count is cheaper on both sides.
    assert exact.pwt < closed.pwt and exact.prt < closed.prt
    assert exact.pwt == pytest.approx(33.60, abs=0.01)
    assert exact.prt == pytest.approx(80.41, abs=0.01)
    mem = exact_schedule_cost(
        vgg16, (3, 32, 32), fractions, target=0.8, retrain_epochs=10, metric="mem"
    )
    assert mem.pwt < closed.pwt


def test_exact_can_exceed_closed_form_when_unpruned_linear_layers_dominate():
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), nn.Linear(2, 100), nn.Linear(100, 100))
    exact = exact_schedule_cost(net, (1, 1, 1), [0.5], target=0.5, retrain_epochs=0)
    assert exact.pwt > 0.5


def test_latency_model():
    # ImageNet: 7680 s per epoch, 10 retraining epochs -> PRT about 21 h longer (paper).
    est = latency_model(epochs=90, batches_per_epoch=5005, t_batch=7680 / 5005, t_prune=3.3,
                        retrain_epochs=10)
    assert est.pwt == pytest.approx(90 * 7680 + 90 * 3.3)
    assert est.prt == pytest.approx(100 * 7680)
    assert est.saved / 3600 == pytest.approx(21.25, abs=0.1)
    assert est.speedup > 1


# ---------------------------------------------------------------------------------------------
# Per-run accounting, the cost command
# ---------------------------------------------------------------------------------------------

from intrain.costs import (  # noqa: E402
    EpochCostMeter,
    measured_latency,
    model_for_cost,
    run_cost_summary,
)


def test_epoch_cost_meter_leaves_training_undisturbed():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
                        nn.Linear(4 * 9, 2))
    net.train()
    net(torch.randn(8, 3, 5, 5))  # some running statistics
    state = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    meter = EpochCostMeter((3, 5, 5), examples=100)
    cost = meter(net)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())  # BN stats, weights
    assert all(p.grad is None for p in net.parameters())
    assert net.training and all(m.training for m in net.modules())
    assert cost == {"train_macs": training_cost(net, (3, 5, 5), 100).train_macs,
                    "train_mem": training_cost(net, (3, 5, 5), 100).train_mem}


def test_epoch_cost_meter_dense_ignores_masks():
    meter = EpochCostMeter((3, 5, 5), examples=10)
    assert meter(_pruned_tiny_net())["train_macs"] == 10 * 4374
    assert meter.dense(_pruned_tiny_net())["train_macs"] == 10 * 6264  # 2 * 2700 + 3 * 288


def test_run_cost_summary_by_hand():
    history = [{"train_macs": 100.0, "train_mem": 10.0}, {"train_macs": 60.0, "train_mem": 8.0},
               {"train_macs": 40.0, "train_mem": 6.0}]
    dense = {"train_macs": 100.0, "train_mem": 10.0}
    final = {"train_macs": 20.0, "train_mem": 5.0}
    s = run_cost_summary(history, dense, final, retrain_epochs=2)
    assert (s["train_macs_total"], s["train_mem_total"]) == (200.0, 24.0)
    assert (s["dense_train_macs_total"], s["dense_train_mem_total"]) == (300.0, 30.0)
    assert s["prt_reference"] == {"retrain_epochs": 2, "train_macs_total": 340.0, "train_mem_total": 40.0}
    assert s["savings_vs_dense"] == pytest.approx({"macs": 1 / 3, "mem": 0.2})
    assert s["savings_vs_prt"] == pytest.approx({"macs": 1 - 200 / 340, "mem": 0.4})
    assert run_cost_summary(history * 8, dense, final)["prt_reference"]["retrain_epochs"] == 3  # N / 8


def test_measured_latency_by_hand():
    history = [{"epoch_seconds": s, "prune_seconds": 0.5} for s in (10.5, 12.5, 20.5)]
    lat = measured_latency(history, batches_per_epoch=10, retrain_epochs=1)
    assert lat["t_batch"] == pytest.approx(1.2)  # median of 1.0, 1.2, 2.0
    assert lat["t_prune"] == pytest.approx(0.5)
    assert lat["model_pwt_seconds"] == pytest.approx(3 * 10 * 1.2 + 3 * 0.5)
    assert lat["model_prt_seconds"] == pytest.approx(4 * 10 * 1.2)
    assert lat["measured_seconds"] == pytest.approx(43.5)
    assert measured_latency([], 10) == {}


def test_model_for_cost_uses_the_padded_input():
    _, shape = model_for_cost("vgg16", "mnist", 0.25)
    assert shape == (1, 32, 32)
    assert model_for_cost("lenet5", "fashion-mnist")[1] == (1, 28, 28)


def test_cost_command_prints_tables_and_the_papers_41_percent(capsys):
    from intrain.cli import main

    assert main(["cost", "--model", "vgg16", "--dataset", "cifar10", "--width", "0.25",
                 "--target", "0.8", "--epochs", "80", "--retrain", "10"]) == 0
    out = capsys.readouterr().out
    closed = next(line for line in out.splitlines() if line.startswith("(a) closed form"))
    assert closed.split()[3:6] == ["48.40", "82.00", "80.00"] and "41.0%" in closed
    assert "(b) exact, MACs" in out and "(b) exact, memory" in out
    assert out.count("total") == 2 and "features.0" in out
    assert main(["cost", "--model", "vgg16", "--dataset", "nope"]) == 2


def test_a_real_run_records_its_cost_and_it_drops_after_pruning(tmp_path):
    import json

    from intrain.cli import main

    out = tmp_path / "run"
    assert main(["train", "--model", "lenet5", "--dataset", "demo", "--subset", "200", "--epochs", "2",
                 "--method", "pwt", "--recipe", "paper", "--target", "0.5", "--out", str(out), "--quiet"]) == 0
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    first, second = history
    assert second["pruned_filter_fraction"] > 0 and 0 < second["train_macs"] < first["train_macs"]
    assert second["train_mem"] < first["train_mem"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_macs_total"] == first["train_macs"] + second["train_macs"]
    assert summary["dense_train_macs_total"] == 2 * first["train_macs"]  # the first epoch is dense
    assert 0 < summary["savings_vs_dense"]["macs"] < summary["savings_vs_prt"]["macs"]
    assert summary["final_epoch_train_macs"] < second["train_macs"]
    assert summary["latency_model"]["batches_per_epoch"] == 4 and summary["cost_mode"] == "structured"


def test_counting_cost_does_not_change_training():
    from intrain.config import TrainConfig
    from intrain.engine.build import build
    from intrain.engine.trainer import Trainer, TrainerOptions

    config = TrainConfig.of(model="vgg16", width=0.0625, dataset="demo", subset=96, epochs=2, batch_size=32,
                         method="pwt", criterion="mean-activation", target=0.5, seed=3, device="cpu")

    def fit(with_cost: bool) -> dict:
        parts = build(config)
        meter = EpochCostMeter((1, 32, 32), 96) if with_cost else None
        trainer = Trainer(parts.model, parts.optimizer, parts.train_loader, parts.train_loader,  # small eval
                          options=TrainerOptions(epochs=2, progress=False, quiet=True, recalibrate_bn_batches=2),
                          method=parts.method, scheduler=parts.scheduler, epoch_cost=meter)
        trainer.fit()
        assert ("train_macs" in trainer.history[0]) == with_cost
        return parts.model.state_dict()

    plain, counted = fit(False), fit(True)
    assert all(torch.equal(plain[k], counted[k]) for k in plain)  # weights, masks, BN statistics
