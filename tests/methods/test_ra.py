"""RA (redundancy-aware training): Eq. 1, hysteresis, straight-through recovery, Algorithms 1-2, scratch."""

import json
import math

import pytest
import torch
import yaml
from torch import nn
from torch.nn.utils import prune as torch_prune

from intrain.cli import main
from intrain.errors import ConfigError
from intrain.methods import ra, scratch
from intrain.masks import WEIGHT_MASK
from intrain.methods.ra import (
    RedundancyAwareTraining,
    partition_by_sensitivity,
    partition_by_type,
    probe_sensitivity,
)
from intrain.methods.ra_eq1 import MaskUpdate, eq1_pruned_fraction, thresholds, update_masks

# |K| = [0.1, 0.2, 0.3, 0.4, 1.0]: mu = 0.4, population sigma = sqrt(0.1)
LAYER = torch.tensor([0.1, -0.2, 0.3, -0.4, 1.0])


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 8), nn.ReLU(), nn.Linear(8, 3))


# ---------------------------------------------------------------------- Eq. 1
def test_thresholds_are_eq1_on_the_magnitudes_of_each_layer():
    other = torch.tensor([[-0.1, 0.2], [0.3, -0.4]])  # |K|: mu 0.25, sigma sqrt(0.0125)
    lower, upper = thresholds([LAYER.abs(), other.abs()], range_=0.0, epsilon=0.2)
    sigma = math.sqrt(0.1)
    assert lower[0].item() == pytest.approx(0.4 - 0.2 * sigma) and upper[0].item() == pytest.approx(0.4 + 0.2 * sigma)
    assert lower[0].item() == pytest.approx(0.336754, abs=1e-6) and upper[0].item() == pytest.approx(0.463246, abs=1e-6)
    lower, upper = thresholds([LAYER.abs(), other.abs()], range_=1.0, epsilon=0.5)
    assert lower[1].item() == pytest.approx(0.25 + 0.5 * math.sqrt(0.0125))
    assert upper[1].item() == pytest.approx(0.25 + 1.5 * math.sqrt(0.0125))


def test_thresholds_are_clamped_at_zero_and_match_torch_std():
    lower, upper = thresholds([LAYER.abs()], range_=-5.0, epsilon=0.1)
    assert lower.item() == 0.0 and upper.item() == 0.0
    w = torch.randn(50, 20)
    lower, _ = thresholds([w.abs()], range_=2.0, epsilon=0.1)
    a = w.abs()
    assert lower.item() == pytest.approx((a.mean() + 1.9 * a.std(correction=0)).item(), rel=1e-5)


def test_hysteresis_band_keeps_the_previous_state_either_way():
    # l = 0.3368, u = 0.4632: 0.1, 0.2, 0.3 below l; 0.4 inside [l, u]; 1.0 above u
    kept = torch.ones(5)
    update_masks([LAYER], [kept], range_=0.0, epsilon=0.2)
    assert kept.tolist() == [0, 0, 0, 1, 1]
    pruned = torch.zeros(5)
    update_masks([LAYER], [pruned], range_=0.0, epsilon=0.2)
    assert pruned.tolist() == [0, 0, 0, 0, 1]


# ---------------------------------------------------------------------- recovery
def linear_layer():
    layer = nn.Linear(5, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(LAYER.abs().unsqueeze(0))
    return layer


def test_pruned_weight_gets_gradient_and_returns_once_above_u():
    layer = linear_layer()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    method = ra(range_=0.0, epsilon=0.2, partition="none")
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0]])
    with method.attached(layer, optimizer):
        method.on_step_end()  # prunes 0.1, 0.2, 0.3
        assert layer.weight_mask.tolist() == [[0, 0, 0, 1, 1]]
        assert layer(x).item() == 0.0  # the forward pass uses W * T
        optimizer.zero_grad()
        (-layer(x)).sum().backward()
        assert layer.weight.grad[0, 0].item() == -1.0  # straight-through: the pruned weight learns
        optimizer.step()  # 0.1 -> 0.6; |K| = [.6,.2,.3,.4,1]: u = 0.5 + 0.2 sqrt(0.08) = 0.557
        method.on_step_end()
        assert layer.weight_mask[0, 0].item() == 1
        assert layer(x).item() == pytest.approx(0.6)


def test_unlike_torch_prune_which_zeroes_pruned_gradients():
    ours, theirs = linear_layer(), linear_layer()
    mask = torch.tensor([[False, True, True, True, True]])
    method = ra(range_=0.0, epsilon=0.2, partition="none")
    torch_prune.custom_from_mask(theirs, "weight", mask)
    x = torch.ones(1, 5)
    with method.attached(ours):
        ours.weight_mask.copy_(mask)
        ours(x).sum().backward()
        assert ours(x).item() == pytest.approx(theirs(x).item())  # same forward, W * T
    theirs(x).sum().backward()
    assert ours.weight.grad[0, 0].item() == 1.0
    assert theirs.weight_orig.grad[0, 0].item() == 0.0


def test_masks_live_in_the_state_dict_and_detach_restores_the_plain_forward():
    net = small_net()
    method = ra(range_=0.5, epsilon=0.1, partition="none")
    x = torch.randn(2, 1, 8, 8)
    with method.attached(net):
        method.on_step_end()
        masked = net(x)
        state = {k: v.clone() for k, v in net.state_dict().items()}
    assert f"0.{WEIGHT_MASK}" in state and "0.weight" in state and (state[f"0.{WEIGHT_MASK}"] == 0).any()
    fresh = small_net()
    fresh_method = ra(range_=0.5, epsilon=0.1, partition="none")
    with fresh_method.attached(fresh):
        fresh.load_state_dict(state)
        assert torch.equal(fresh(x), masked)
    assert not torch.equal(fresh(x), masked)  # detached: dense weights again


# ---------------------------------------------------------------------- Algorithm 1 and partitions
def test_strategy1_groups_consecutive_layers_of_a_type():
    assert partition_by_type(["c1", "c2", "f1", "f2"], ["conv", "conv", "linear", "linear"]) == [["c1", "c2"], ["f1", "f2"]]


SENSITIVITY = [1.0, 1.2, 2.0, 2.1, 1.0, 5.0]


@pytest.mark.parametrize("factor, expected", [
    (math.inf, [[0, 1, 2, 3, 4, 5]]),
    (2.0, [[0, 1, 2, 3, 4], [5]]),
    (0.6, [[0, 1], [2, 3, 4], [5]]),
    (0.5, [[0, 1], [2, 3], [4], [5]]),
    (0.1, [[0], [1], [2, 3], [4], [5]]),
])
def test_algorithm2_on_a_hand_made_sensitivity_list(factor, expected):
    assert partition_by_sensitivity(SENSITIVITY, factor) == expected


def test_classes_are_extended_at_the_exact_iterations():
    net = small_net()
    method = ra(range_=0.0, epsilon=0.0, partition="type", extending_interval=3)
    with method.attached(net):
        assert method.classes == [["0", "2"], ["5", "7"]]
        assert [method.active_classes(i) for i in range(8)] == [1, 1, 1, 2, 2, 2, 2, 2]
        for _ in range(3):  # iterations 0, 1, 2: the conv class only
            method.on_step_end()
            assert not net[0].weight_mask.all() and net[5].weight_mask.all() and net[7].weight_mask.all()
        method.on_step_end()  # iteration 3: the linear class joins
        assert not net[5].weight_mask.all() and not net[7].weight_mask.all()
        assert method.summary_extras()["ra"]["class_start_iterations"] == [0, 3]


def test_first_class_at_leaves_the_initial_weights_unpruned_until_then_and_shifts_every_class():
    net = small_net()
    method = ra(range_=0.0, epsilon=0.0, partition="type", extending_interval=3, first_class_at=2)
    with method.attached(net):
        assert [method.active_classes(i) for i in range(7)] == [0, 0, 1, 1, 1, 2, 2]
        for _ in range(2):  # iterations 0, 1: nothing pruned yet
            method.on_step_end()
            assert all(net[i].weight_mask.all() for i in (0, 2, 5, 7))
        method.on_step_end()  # iteration 2: the conv class starts
        assert not net[0].weight_mask.all() and net[5].weight_mask.all()
        assert method.summary_extras()["ra"]["class_start_iterations"] == [2, 5]
    default = ra(classes=[["0"], ["2", "5"], ["7"]], total_iterations=100, first_class_at=10)
    with default.attached(small_net()):  # the rest of the run shared among the classes
        assert default.class_start_iterations() == [10, 40, 70]
    with pytest.raises(ConfigError, match="first_class_at: must be at least 0"):
        ra(first_class_at=-1)
    with pytest.raises(ConfigError, match="first_class_at: 100 is not before the run's end"):
        ra(total_iterations=100, first_class_at=100)


def test_default_interval_is_total_iterations_over_classes_and_explicit_classes_are_checked():
    method = ra(classes=[["0"], ["2", "5"], ["7"]], total_iterations=100)
    with method.attached(small_net()):
        assert method.extending_interval == 33 and method.class_start_iterations() == [0, 33, 66]
    with pytest.raises(ConfigError, match="'fc9' is not a conv or linear layer"):
        ra(classes=[["0"], ["fc9"]], total_iterations=10).attach(small_net())


def test_probe_partitions_by_sensitivity_and_leaves_the_model_untouched():
    net = small_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(1)
    batches = [(torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))) for _ in range(5)]
    result = probe_sensitivity(net, lambda m: torch.optim.SGD(m.parameters(), lr=0.1), batches, 4,
                               range_=1.0, epsilon=0.1, factor=math.inf)
    assert result.iterations == 4 and result.layers == ["0", "2", "5", "7"]
    assert result.classes == [["0", "2", "5", "7"]]
    assert all(0 < s < 1 for s in result.sparsity)
    assert result.sensitivity == pytest.approx([1 / s for s in result.sparsity])
    assert net.state_dict().keys() == before.keys()  # no mask buffers, same weights
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    by_delta = probe_sensitivity(net, lambda m: torch.optim.SGD(m.parameters(), lr=0.1), batches, 4,
                                 range_=1.0, epsilon=0.1, factor=0.0)
    assert len(by_delta.classes) >= 2  # any difference opens a class at factor 0


def test_method_state_round_trips():
    net = small_net()
    method = ra(range_=1.0, partition="type", total_iterations=10)
    with method.attached(net):
        for _ in range(4):
            method.on_step_end()
        state = method.state_dict()
    assert state["iteration"] == 4 and state["classes"] == [["0", "2"], ["5", "7"]] and state["extending_interval"] == 5
    restored = RedundancyAwareTraining(partition="none")
    with restored.attached(small_net()):
        restored.load_state_dict(json.loads(json.dumps(state)))
        assert restored.classes == [["0", "2"], ["5", "7"]] and restored.active_classes(restored.iteration) == 1


# ---------------------------------------------------------------------- scratch
def test_scratch_keeps_the_masks_fixed_and_pruned_weights_zero(tmp_path):
    source = small_net()
    with ra(range_=1.0, partition="none").attached(source) as method:
        method.on_step_end()
        torch.save({"model": source.state_dict()}, tmp_path / "model.pt")
    masks = {name: getattr(source, name).weight_mask.clone() for name in ("0", "2", "5", "7")}
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    with scratch(tmp_path).attached(net, optimizer) as method:
        for _ in range(3):
            optimizer.zero_grad()
            net(torch.randn(4, 1, 8, 8)).pow(2).sum().backward()
            optimizer.step()
            method.on_step_end()
        for name, mask in masks.items():
            layer = getattr(net, name)
            assert torch.equal(layer.weight_mask, mask)
            assert (layer.weight[mask == 0] == 0).all() and (layer.weight[mask == 1] != 0).all()
        assert method.summary_extras()["scratch"]["layers"]["0"] == pytest.approx(1 - mask_fraction(masks["0"]))


def mask_fraction(mask):
    return mask.float().mean().item()


def test_scratch_refuses_a_run_without_masks_or_of_another_model(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        scratch(tmp_path)
    torch.save({"model": small_net().state_dict()}, tmp_path / "model.pt")
    with pytest.raises(ConfigError, match=f"no '{WEIGHT_MASK}' buffers"):
        scratch(tmp_path)
    torch.save({"model": {f"0.{WEIGHT_MASK}": torch.ones(2, 2, dtype=torch.bool)}}, tmp_path / "model.pt")
    with pytest.raises(ConfigError, match="does not match"):
        scratch(tmp_path).attach(small_net())


# ---------------------------------------------------------------------- command line
def run_cli(tmp_path, name, *extra):
    out = tmp_path / name
    code = main(["train", "--model", "lenet5", "--dataset", "demo", "--subset", "300", "--epochs", "2",
                 "--batch-size", "50", "--optimizer", "sgd", "--out", str(out), "--quiet", *extra])
    assert code == 0
    return out, json.loads((out / "summary.json").read_text())


def test_cli_ra_then_scratch_write_the_summary_fields(tmp_path):
    out, summary = run_cli(tmp_path, "ra", "--method", "ra", "--range", "1.5", "--epsilon", "0.1")
    block = summary["ra"]
    assert block["classes"] == [["conv1", "conv2"], ["fc1", "fc2"]] and block["class_start_iterations"] == [0, 6]
    assert summary["sparsity"] == pytest.approx(block["weight_sparsity"]) and summary["sparsity"] > 0.5
    assert summary["compression"] == pytest.approx(431_080 / summary["params_final"])
    total = sum(layer["weights"] for layer in summary["layers"])
    zeros = sum(layer["weights"] * layer["sparsity"] for layer in summary["layers"])
    assert zeros / total == pytest.approx(summary["sparsity"])
    assert [p["iteration"] for p in block["sparsity_trace"]][-1] == 12 and summary["prune_seconds"] > 0
    assert summary["sparse_file"]["bytes"] == (out / "model_sparse.npz").stat().st_size
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert history[-1]["sparsity"] == pytest.approx(summary["sparsity"]) and history[-1]["prune_seconds"] > 0

    _, baseline = run_cli(tmp_path, "scratch", "--method", "scratch", "--masks-from", str(out))
    assert baseline["sparsity"] == pytest.approx(summary["sparsity"])
    assert [r["sparsity"] for r in baseline["layers"]] == pytest.approx([r["sparsity"] for r in summary["layers"]])


def test_cli_ra_sensitivity_partition_reports_the_probe(tmp_path):
    _, summary = run_cli(tmp_path, "probe", "--method", "ra", "--partition", "sensitivity", "--delta", "inf")
    probe = summary["ra"]["probe"]
    assert probe["iterations"] == 1 and probe["layers"] == ["conv1", "conv2", "fc1", "fc2"]
    assert len(probe["sensitivity"]) == 4 and summary["ra"]["classes"] == [["conv1", "conv2", "fc1", "fc2"]]


@pytest.mark.parametrize("changes, fragment", [
    (dict(method="ra", partition="sensitivity", probe_fraction=0.0), "probe_fraction"),
    (dict(method="ra", compact=True), "compact"),
    (dict(method="scratch"), "masks_from"),
    (dict(method="ra", epsilon=-0.1), "epsilon"),
    (dict(method="ra", moments="abs"), "moments"),
    (dict(method="ra", moments_over="pruned"), "moments_over"),
    (dict(method="ra", reinit="xavier"), "reinit"),
    (dict(init="uniform"), "init"),
    (dict(init="gaussian", init_std=0.0), "init_std"),
    (dict(method="scratch", masks_from="r", scratch_init="old"), "scratch_init"),
    (dict(method="scratch", masks_from="r", scratch_init="same", init_seed=3), "init_seed"),
    (dict(lr_schedule="step", lr_milestones=(48_000, 32_000)), "lr_milestones"),
])
def test_ra_config_errors_are_one_line(changes, fragment):
    from intrain.config import TrainConfig

    with pytest.raises(ConfigError, match=fragment) as info:
        TrainConfig.of(**changes)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------- moments options (issue #12)
def test_signed_moments_are_those_of_k_itself():
    # K = [0.1, -0.2, 0.3, -0.4, 1.0]: mean 0.16, E[k^2] 0.26, sigma = sqrt(0.2344) = 0.48415

    sigma = math.sqrt(0.26 - 0.16 ** 2)
    lower, upper = thresholds([LAYER.abs()], range_=0.0, epsilon=0.2, sums=[LAYER.sum()])
    assert lower.item() == pytest.approx(0.16 - 0.2 * sigma) and upper.item() == pytest.approx(0.16 + 0.2 * sigma)
    # l = 0.0632, u = 0.2568: nothing below l; 0.1 and 0.2 in the band keep their state
    for start, expected in (([1.0] * 5, [1, 1, 1, 1, 1]), ([0.0] * 5, [0, 0, 1, 1, 1])):
        mask = torch.tensor(start)
        step = MaskUpdate.allocate([LAYER], [mask])
        step.signed = True
        step(0.0, 0.2)
        assert mask.tolist() == expected


def test_kept_moments_ignore_the_pruned_weights():
    # kept |K| = [0.4, 1.0]: mu 0.7, sigma 0.3 -> l = 0.64, u = 0.76: 0.4 is pruned (over all: in the band)

    for kept, expected in ((False, [0, 0, 0, 1, 1]), (True, [0, 0, 0, 0, 1])):
        mask = torch.tensor([0.0, 0, 0, 1, 1])
        step = MaskUpdate.allocate([LAYER], [mask])
        step.kept = kept
        step(0.0, 0.2)
        assert mask.tolist() == expected


def test_method_options_are_checked_and_reported():
    with pytest.raises(ConfigError, match="moments: unknown value 'abs'"):
        ra(moments="abs")
    with pytest.raises(ConfigError, match="reinit"):
        ra(reinit="xavier")
    method = ra(range_=0.5, partition="none", moments="signed", moments_over="kept")
    with method.attached(small_net()):
        block = method.summary_extras()["ra"]
    assert block["moments"] == "signed" and block["moments_over"] == "kept" and block["reinitialised"] == []


# ---------------------------------------------------------------------- never silently dead (issue #12)
def uniform_net():
    """PyTorch's default (Kaiming-uniform) initialisation, as a user's own model has it."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def he_conv_uniform_linear():
    from intrain.methods.ra import reinit_he_normal

    net = uniform_net()
    reinit_he_normal(net[0])
    return net


def test_eq1_fraction_is_everything_on_uniform_weights_and_the_gaussian_tail_on_normal_ones():

    assert eq1_pruned_fraction(uniform_net()[0].weight, 2.0, 0.1) == 1.0
    assert eq1_pruned_fraction(uniform_net()[3].weight, 2.0, 0.1) == 1.0
    # |K| of a uniform on [0, b]: l = (0.5 + 0.9 / sqrt(12)) b = 0.76 b at range 1
    torch.manual_seed(0)
    assert eq1_pruned_fraction(torch.rand(100_000) * 2 - 1, 1.0, 0.1) == pytest.approx(0.7598, abs=3e-3)
    # half-normal: mu 0.7979, sigma 0.6028 -> l = 1.9433 at range 2: P(|z| < l) = 0.948; 0.989 at range 3
    gaussian = torch.randn(1_000_000)
    assert eq1_pruned_fraction(gaussian, 2.0, 0.1) == pytest.approx(0.948, abs=2e-3)
    assert eq1_pruned_fraction(gaussian, 3.0, 0.1) == pytest.approx(0.989, abs=1e-3)


def test_a_default_initialised_conv_is_refused_as_it_starts_pruning():
    net = uniform_net()
    method = ra(range_=2.0, epsilon=0.1, partition="none")
    with method.attached(net):
        with pytest.raises(ConfigError) as info:
            method.on_step_end()
    message = str(info.value)
    assert "'0'" in message and "100.0%" in message and "reinit" in message and "\n" not in message
    assert net[0].weight_mask.all()  # refused before any mask changed


def test_a_default_initialised_linear_is_refused_when_its_class_starts():
    net = he_conv_uniform_linear()
    method = ra(range_=2.0, epsilon=0.1, partition="type", extending_interval=2)
    with method.attached(net):
        method.on_step_end()
        method.on_step_end()  # the conv class prunes, the linear class waits
        assert not net[0].weight_mask.all() and net[3].weight_mask.all()
        with pytest.raises(ConfigError, match=r"prune 100.0% of layer '3'"):
            method.on_step_end()  # iteration 2: the linear class starts


def test_reinit_option_makes_only_the_uniform_layers_he_normal():
    net = he_conv_uniform_linear()
    conv = net[0].weight.detach().clone()
    method = ra(range_=2.0, epsilon=0.1, partition="none", reinit="he-normal")
    with method.attached(net):
        assert method.reinitialised == ["3"] and torch.equal(net[0].weight, conv)
        assert net[3].weight.std().item() == pytest.approx(math.sqrt(2 / 144), rel=0.15)
        method.on_step_end()
        assert 0.85 < 1 - net[3].weight_mask.mean().item() < 0.99
        assert method.summary_extras()["ra"]["reinitialised"] == ["3"]


def test_a_layer_pruned_whole_during_training_stops_the_run():
    from intrain.errors import DeadLayerError

    net = small_net()
    method = ra(range_=0.5, partition="none", record_every=1000)
    with method.attached(net):
        method.on_step_end()
        method.check_alive()  # alive: no error
        net[5].weight_mask.zero_()
        with pytest.raises(DeadLayerError, match=r"every weight of layer '5' is pruned at iteration 1") as info:
            method.on_epoch_end(0)
    assert info.value.exit_code == 3


def test_kept_moments_ratchet_up_to_a_dead_layer_and_the_trace_check_catches_it():
    """μ, σ of the kept weights, recomputed every step, rise as the layer thins out, until nothing is left:
    the run stops at the next trace point instead of training a dead network."""
    from intrain.errors import DeadLayerError

    net = small_net()
    method = ra(range_=2.0, epsilon=0.1, partition="none", moments_over="kept", record_every=1, reinit="he-normal")
    with method.attached(net):
        with pytest.raises(DeadLayerError, match="every weight of layer"):
            for _ in range(20):
                method.on_step_end()
        assert method.iteration < 20


def cli_error(capsys, *args):
    code = main(["train", "--model", "lenet5", "--dataset", "demo", "--subset", "300", "--epochs", "1",
                 "--batch-size", "50", "--optimizer", "sgd", "--quiet", *args])
    err = capsys.readouterr().err.strip()
    return code, err


def test_cli_refuses_default_initialised_layers_in_one_line_and_reinit_fixes_it(tmp_path, capsys):
    code, err = cli_error(capsys, "--method", "ra", "--init", "pytorch", "--out", str(tmp_path / "a"))
    assert code == 2 and err.count("\n") == 0
    assert "layer 'conv1'" in err and "100.0%" in err and "--reinit he-normal" in err
    _, summary = run_cli(tmp_path, "b", "--method", "ra", "--init", "pytorch", "--reinit", "he-normal")
    assert summary["ra"]["reinitialised"] == ["conv1", "conv2", "fc1", "fc2"] and summary["sparsity"] < 0.99


def test_caffe_xavier_and_small_gaussian_inits():
    from intrain.config import TrainConfig
    from intrain.engine.build import build

    common = dict(model="lenet5", dataset="demo", subset=100, epochs=1)
    xavier = build(TrainConfig.of(**common, init="xavier")).model
    bound = math.sqrt(3 / 500)  # conv2: 20 x 5 x 5 inputs
    assert xavier.conv2.weight.abs().max().item() <= bound and xavier.conv2.weight.abs().max().item() > 0.95 * bound
    assert eq1_pruned_fraction(xavier.conv2.weight, 2.0, 0.1) == 1.0
    gaussian = build(TrainConfig.of(**common, init="gaussian", init_std=0.01)).model
    assert gaussian.fc1.weight.std().item() == pytest.approx(0.01, rel=0.01) and not gaussian.fc1.bias.any()
    lecun = build(TrainConfig.of(**common, init="lecun-normal")).model
    he = build(TrainConfig.of(**common)).model
    assert lecun.fc1.weight.std().item() == pytest.approx(800 ** -0.5, rel=0.01) and not lecun.fc1.bias.any()
    assert he.fc1.weight.std().item() == pytest.approx((2 / 800) ** 0.5, rel=0.01)
    # Eq. 1 is scale-free: the Gaussian tail it prunes at the start is He-normal's
    assert eq1_pruned_fraction(lecun.conv2.weight, 2.0, 0.1) == pytest.approx(
        eq1_pruned_fraction(he.conv2.weight, 2.0, 0.1), abs=0.01)


def test_cli_stops_on_a_dead_layer_with_one_line(tmp_path, capsys):
    code, err = cli_error(capsys, "--method", "ra", "--moments-over", "kept", "--out", str(tmp_path / "a"))
    assert code == 3 and err.count("\n") == 0 and "every weight of layer" in err


# ---------------------------------------------------------------------- scratch from a fresh init (issue #12)
def test_scratch_trains_the_masks_from_a_fresh_initialisation_by_default(tmp_path):
    from intrain.config import TrainConfig
    from intrain.engine.build import build

    ra_dir, ra_summary = run_cli(tmp_path, "ra", "--method", "ra", "--range", "1.5", "--seed", "3")
    common = dict(model="lenet5", dataset="demo", subset=300, epochs=1, batch_size=50, optimizer="sgd")
    ra_init = build(TrainConfig.of(**common, method="ra", seed=3)).model.state_dict()
    fresh = TrainConfig.of(**common, method="scratch", masks_from=str(ra_dir), seed=3)
    fresh_init = build(fresh).model.state_dict()
    same_init = build(fresh.replace(scratch_init="same")).model.state_dict()
    seed4 = build(TrainConfig.of(**common, method="dense", seed=4)).model.state_dict()
    for key in ("conv1.weight", "fc1.weight"):
        assert torch.equal(same_init[key], ra_init[key])  # the RA run's own initial weights
        assert not torch.equal(fresh_init[key], ra_init[key])
        assert torch.equal(fresh_init[key], seed4[key])  # RA seed + 1
    _, summary = run_cli(tmp_path, "scratch", "--method", "scratch", "--masks-from", str(ra_dir), "--seed", "3")
    assert summary["scratch"]["init"] == "fresh" and summary["scratch"]["init_seed"] == 4
    assert summary["scratch"]["ra_seed"] == 3 and summary["sparsity"] == pytest.approx(ra_summary["sparsity"])
    _, same = run_cli(tmp_path, "same", "--method", "scratch", "--masks-from", str(ra_dir), "--seed", "3",
                      "--scratch-init", "same")
    assert same["scratch"]["init"] == "same" and same["scratch"]["init_seed"] == 3
    with pytest.raises(ConfigError, match="init_seed: 3 is the ra run's own seed"):
        build(fresh.replace(init_seed=3))
    with pytest.raises(ConfigError, match="init_seed: not used by method ra \\(used by: scratch\\)"):
        TrainConfig.of(method="ra", init_seed=5)
    with pytest.raises(ConfigError, match="init_seed: only used with scratch_init fresh"):
        fresh.replace(scratch_init="same", init_seed=5)


def test_thresholds_fixed_at_class_start_do_not_follow_the_weights():
    layer = linear_layer()  # |K| = [0.1, 0.2, 0.3, 0.4, 1.0]: l = 0.3368, u = 0.4632 at range 0, eps 0.2
    method = ra(range_=0.0, epsilon=0.2, partition="none", moments_at="start")
    with method.attached(layer):
        method.on_step_end()
        assert layer.weight_mask.tolist() == [[0, 0, 0, 1, 1]]
        with torch.no_grad():
            layer.weight.mul_(10)  # per-step moments would scale with the weights: same masks
        method.on_step_end()
        assert layer.weight_mask.tolist() == [[1, 1, 1, 1, 1]]  # 1, 2, 3 > u = 0.4632 fixed
        bounds = method.summary_extras()["ra"]["fixed_thresholds"]
        assert bounds["lower"] == pytest.approx([0.4 - 0.2 * math.sqrt(0.1)])
        state = method.state_dict()
    assert state["bounds"][1] == pytest.approx([0.4 + 0.2 * math.sqrt(0.1)])
    per_step = linear_layer()
    with ra(range_=0.0, epsilon=0.2, partition="none").attached(per_step) as method:
        method.on_step_end()
        with torch.no_grad():
            per_step.weight.mul_(10)
        method.on_step_end()
        assert per_step.weight_mask.tolist() == [[0, 0, 0, 1, 1]]


def test_fixed_thresholds_of_a_later_class_come_from_its_weights_when_it_starts():
    net = small_net()
    method = ra(range_=0.5, partition="type", extending_interval=2, moments_at="start")
    with method.attached(net):
        method.on_step_end()
        first = method.summary_extras()["ra"]["fixed_thresholds"]["lower"]
        assert first[0] > 0 and first[2:] == [0.0, 0.0]
        with torch.no_grad():
            net[5].weight.mul_(3)
        method.on_step_end()
        method.on_step_end()  # the linear class starts: its thresholds from its weights now
        second = method.summary_extras()["ra"]["fixed_thresholds"]["lower"]
    assert second[:2] == first[:2]
    expected, _ = thresholds([net[5].weight.abs(), net[7].weight.abs()], 0.5, 0.1)
    assert second[2:] == pytest.approx(expected.tolist())


def test_a_small_gaussian_layer_past_the_limit_is_refused_without_blaming_its_init():
    from intrain.models import create_model

    torch.manual_seed(0)
    model = create_model("lenet5")  # He-normal; conv1 has 500 weights, Eq. 1 at range 3 leaves 3 of them
    method = ra(range_=3.0, epsilon=0.1, partition="type", total_iterations=10)
    with method.attached(model):
        with pytest.raises(ConfigError, match=r"prune 99.4% of layer 'conv1'") as info:
            method.on_step_end()
    message = str(info.value)
    assert "uniform initialisation, e.g." not in message and "\n" not in message
    assert message.index("lower --range") < message.index("--reinit he-normal")  # the range is the likely fix


# ---------------------------------------------------------------------- Dynamic Network Surgery's rules (issue #12)
def test_relative_hysteresis_is_dns_band_around_one_threshold():
    # |K| = [0.1, 0.2, 0.3, 0.4, 1.0]: t = mu + 0 sigma = 0.4; DNS: l = 0.9 t = 0.36, u = 1.1 t = 0.44
    lower, upper = thresholds([LAYER.abs()], range_=0.0, epsilon=0.1, relative=True)
    assert lower.item() == pytest.approx(0.36) and upper.item() == pytest.approx(0.44)
    lower, upper = thresholds([LAYER.abs()], range_=1.0, epsilon=0.1, relative=True)
    t = 0.4 + math.sqrt(0.1)
    assert lower.item() == pytest.approx(0.9 * t) and upper.item() == pytest.approx(1.1 * t)
    lower, upper = thresholds([LAYER.abs()], range_=-5.0, epsilon=0.1, relative=True)
    assert lower.item() == 0.0 and upper.item() == 0.0  # t = max(mu + range sigma, 0)
    step = MaskUpdate.allocate([LAYER], [torch.ones(5)])
    step.relative = True
    assert step.first(1).relative  # stages keep the rule
    step(0.0, 0.1)
    assert step.masks[0].tolist() == [0, 0, 0, 1, 1]  # 0.4 inside [0.36, 0.44]: kept as it was
    assert eq1_pruned_fraction(LAYER, 0.0, 0.1, hysteresis="relative") == pytest.approx(0.6)


def test_update_probability_decays_as_dns_and_its_draws_are_a_function_of_the_iteration():
    from intrain.methods.ra_eq1 import draws_update, update_probability

    assert update_probability(0, 1e-4, 1.0) == 1.0
    assert update_probability(10_000, 1e-4, 1.0) == pytest.approx(0.5)
    assert update_probability(30_000, 1e-4, 2.0) == pytest.approx(1 / 16)
    assert update_probability(123, 0.0, 1.0) == 1.0
    assert all(draws_update(i, 0.0, 1.0) for i in range(100))
    draws = [draws_update(i, 1e-3, 1.0) for i in range(20_000)]
    expected = sum(update_probability(i, 1e-3, 1.0) for i in range(20_000)) / 20_000
    assert abs(sum(draws) / 20_000 - expected) < 0.02  # uniform draws below the probability
    assert draws == [draws_update(i, 1e-3, 1.0) for i in range(20_000)]  # no hidden state: resumes alike
    assert draws[0]


def test_a_skipped_update_leaves_the_masks_as_they_were():
    layer = linear_layer()
    method = ra(range_=0.0, epsilon=0.2, partition="none", update_gamma=1e6)  # p ~ 1e-6 after iteration 0
    with method.attached(layer):
        method.on_step_end()  # iteration 0: p = 1
        assert layer.weight_mask.tolist() == [[0, 0, 0, 1, 1]]
        with torch.no_grad():
            layer.weight.mul_(-1).add_(2)  # |K| = [1.9, 2.2, 1.7, 2.4, 1.0]: an update would change the masks
        for _ in range(20):
            method.on_step_end()
        assert layer.weight_mask.tolist() == [[0, 0, 0, 1, 1]]
    always = linear_layer()
    with ra(range_=0.0, epsilon=0.2, partition="none").attached(always) as method:
        method.on_step_end()
        with torch.no_grad():
            always.weight.mul_(-1).add_(2)
        method.on_step_end()
        assert always.weight_mask.tolist() != [[0, 0, 0, 1, 1]]


@pytest.mark.parametrize("changes, fragment", [
    (dict(hysteresis="dns"), "hysteresis"),
    (dict(hysteresis="relative", epsilon=1.0), "epsilon"),
    (dict(update_gamma=-1e-4), "update_gamma"),
    (dict(update_power=math.inf), "update_power"),
    (dict(update_gamma="0.1"), "update_gamma"),
])
def test_dns_options_are_checked_through_the_api_and_the_config(changes, fragment):
    from intrain.config import TrainConfig

    with pytest.raises(ConfigError, match=fragment):
        ra(**changes)
    with pytest.raises(ConfigError, match=fragment) as info:
        TrainConfig.of(method="ra", **changes)
    assert "\n" not in str(info.value)


def test_cli_runs_ra_with_dns_rules_and_refuses_them_for_another_method(tmp_path, capsys):
    out = tmp_path / "dns"
    code = main(["train", "--dataset", "demo", "--subset", "64", "--epochs", "1", "--batch-size", "32", "--method",
                 "ra", "--hysteresis", "relative", "--update-gamma", "1e-4", "--moments-at", "start", "--out",
                 str(out), "--quiet"])
    assert code == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert (config["hysteresis"], config["update_gamma"], config["update_power"]) == ("relative", 1e-4, 1.0)
    code = main(["train", "--dataset", "demo", "--method", "pwt", "--update-gamma", "1e-4", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "update_gamma" in capsys.readouterr().err


# ---------------------------------------------------------------------- per-layer ranges
def test_a_range_per_layer_gives_each_layer_the_thresholds_of_its_own_range():
    other = torch.tensor([[-0.1, 0.2], [0.3, -0.4]])
    both = thresholds([LAYER.abs(), other.abs()], range_=(0.0, 1.0), epsilon=0.2)
    first = thresholds([LAYER.abs()], range_=0.0, epsilon=0.2)
    second = thresholds([other.abs()], range_=1.0, epsilon=0.2)
    assert both[0].tolist() == [first[0].item(), second[0].item()]
    assert both[1].tolist() == [first[1].item(), second[1].item()]
    assert both[0][0].item() == pytest.approx(0.336754, abs=1e-6)  # the golden value above
    lower, upper = thresholds([LAYER.abs(), other.abs()], range_=(0.0, 1.0), epsilon=0.1, relative=True)
    assert (lower[0].item(), upper[0].item()) == pytest.approx((0.36, 0.44))  # DNS's band of t = 0.4


@pytest.mark.parametrize("relative", [False, True])
def test_layer_ranges_prune_each_layer_as_ra_at_its_range_does(relative):
    """RA with ``layer_ranges={first conv: 1}`` prunes that layer as RA-1 does and the others as RA-2."""
    hysteresis = "relative" if relative else "sigma"
    masks = {}
    for label, kwargs in (("mixed", dict(range_=2.0, layer_ranges={"0": 1.0})), ("one", dict(range_=1.0)),
                          ("two", dict(range_=2.0))):
        model = small_net()
        for module in model:
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)  # Gaussian: Eq. 1 keeps its tail
        method = ra(partition="none", hysteresis=hysteresis, epsilon=0.1, **kwargs).attach(model)
        method.on_step_end()
        masks[label] = {name: m.weight_mask.clone() for name, m in model.named_modules() if hasattr(m, WEIGHT_MASK)}
        if label == "mixed":
            assert method.range_of("0") == 1.0 and method.range_of("2") == 2.0
            assert method.summary_extras()["ra"]["layer_ranges"] == {"0": 1.0}
    assert torch.equal(masks["mixed"]["0"], masks["one"]["0"]) and not torch.equal(masks["one"]["0"], masks["two"]["0"])
    for name in ("2", "5", "7"):
        assert torch.equal(masks["mixed"][name], masks["two"][name])


@pytest.mark.parametrize("value, fragment", [
    ({"fc9": 1.0}, "'fc9' is not a conv or linear layer"),
    ({"0": "1"}, "expected a layer name and a number"),
    ({"0": -5.0}, "layer_ranges: layer '0': range: -5.0"),
    ("0=x", "expected pairs like"),
])
def test_layer_ranges_are_checked_in_one_line(value, fragment):
    with pytest.raises(ConfigError, match=fragment) as info:
        ra(partition="none", layer_ranges=value).attach(small_net())
    assert "\n" not in str(info.value)


def test_cli_takes_layer_ranges_as_a_flag_and_yaml_as_a_mapping(tmp_path, capsys):
    from intrain.config import TrainConfig

    out = tmp_path / "ranges"
    code = main(["train", "--model", "lenet5", "--dataset", "demo", "--subset", "64", "--epochs", "1", "--batch-size",
                 "32", "--method", "ra", "--layer-ranges", "conv1=1,fc2=1.5", "--out", str(out), "--quiet"])
    assert code == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["layer_ranges"] == [["conv1", 1.0], ["fc2", 1.5]]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ra"]["layer_ranges"] == {"conv1": 1.0, "fc2": 1.5}
    assert TrainConfig.of(method="ra", layer_ranges={"conv1": 1}).method_config.layer_ranges == (("conv1", 1.0),)
    code = main(["train", "--model", "lenet5", "--dataset", "demo", "--method", "ra", "--layer-ranges", "conv9=1",
                 "--epochs", "1", "--out", str(tmp_path / "bad"), "--quiet"])
    assert code == 2 and "conv9" in capsys.readouterr().err


def test_a_layer_given_the_global_range_gets_bit_for_bit_the_thresholds_of_the_global_range():
    """Per-layer factors are rounded as the scalar ones are: (1.8, 0.1) is a pair where float32(1.8) - 0.1
    and float32(1.8 - 0.1) differ."""
    torch.manual_seed(0)
    weights = [torch.randn(30, 20), torch.randn(8, 3, 3, 3)]
    step = MaskUpdate.allocate(weights, [torch.ones_like(w) for w in weights])
    expected = step.lower_and_upper(1.8, 0.1)
    step.ranges = (1.8, 1.8)
    assert all(torch.equal(a, b) for a, b in zip(step.lower_and_upper(1.8, 0.1), expected))
    step.relative = True
    relative = step.lower_and_upper(1.8, 0.1)
    step.ranges = None
    assert all(torch.equal(a, b) for a, b in zip(step.lower_and_upper(1.8, 0.1), relative))


def test_frozen_masks_stop_changing_at_their_fraction_of_the_run():
    layer = linear_layer()
    method = ra(range_=0.0, epsilon=0.2, partition="none", total_iterations=10, freeze_masks_at=0.3)
    assert method.freeze_iteration == 3
    with method.attached(layer):
        for _ in range(3):  # iterations 0-2 update
            method.on_step_end()
        assert layer.weight_mask.tolist() == [[0, 0, 0, 1, 1]]
        with torch.no_grad():
            layer.weight.mul_(-1).add_(2)  # an update would now change the masks (as in the test above)
        for _ in range(7):  # iterations 3-9: frozen
            method.on_step_end()
        assert layer.weight_mask.tolist() == [[0, 0, 0, 1, 1]]
        assert method.summary_extras()["ra"]["freeze_iteration"] == 3
    assert [ra(total_iterations=10, freeze_masks_at=0.3).masks_updating(i) for i in (2, 3)] == [True, False]
    assert ra().masks_updating(10**9)


@pytest.mark.parametrize("value", [0, 1.5, -0.1, math.nan, "0.8"])
def test_freeze_masks_at_is_a_fraction_of_the_run(value):
    from intrain.config import TrainConfig

    with pytest.raises(ConfigError, match="freeze_masks_at"):
        ra(total_iterations=10, freeze_masks_at=value)
    with pytest.raises(ConfigError, match="freeze_masks_at"):
        TrainConfig.of(method="ra", freeze_masks_at=value)
    with pytest.raises(ConfigError, match="total_iterations"):
        ra(freeze_masks_at=0.5)


def test_cli_freezes_the_masks_and_records_where(tmp_path):
    out = tmp_path / "frozen"
    code = main(["train", "--dataset", "demo", "--subset", "64", "--epochs", "2", "--batch-size", "32", "--method",
                 "ra", "--freeze-masks-at", "0.5", "--out", str(out), "--quiet"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ra"]["freeze_masks_at"] == 0.5 and summary["ra"]["freeze_iteration"] == 2


@pytest.mark.parametrize("moments_at", ["start", "step"])
def test_ramp_grows_the_thresholds_linearly_from_zero(moments_at):
    """|w| = 0.1, 0.2, 0.3, 0.4, 1: μ = 0.4, DNS band at range 0: l = 0.36. Over a ramp of 4
    iterations l is 0.09, 0.18, 0.27, then 0.36: one more weight goes at each step."""
    layer = linear_layer()
    method = ra(range_=0.0, epsilon=0.1, partition="none", hysteresis="relative", moments_at=moments_at,
                ramp_iterations=4)
    masks = []
    with method.attached(layer):
        for _ in range(5):
            method.on_step_end()
            masks.append(layer.weight_mask.flatten().tolist())
        assert method.summary_extras()["ra"]["ramp_iterations"] == 4
    assert masks == [[1, 1, 1, 1, 1], [0, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 1, 1], [0, 0, 0, 1, 1]]
    at_once = linear_layer()
    with ra(range_=0.0, epsilon=0.1, partition="none", hysteresis="relative", moments_at=moments_at).attached(at_once) as m:
        m.on_step_end()
    assert at_once.weight_mask.flatten().tolist() == [0, 0, 0, 1, 1]


def test_each_class_ramps_from_its_own_start():
    model = small_net()
    method = ra(partition="type", extending_interval=10, ramp_iterations=4)
    with method.attached(model):
        assert [method.ramp_factor(i, 0) for i in (0, 2, 3, 50)] == [0.25, 0.75, 1.0, 1.0]
        conv_layers = len(method.classes[0])
        scale = method._ramp_scale(10, 2)  # the second class's first iteration, the first class ramped
        assert scale.tolist() == [1.0] * conv_layers + [0.25] * len(method.classes[1])
        assert method._ramp_scale(13, 2) is None
    assert ra(partition="none").ramp_factor(0, 0) == 1.0


@pytest.mark.parametrize("value", [0, 1.5, -3, "4"])
def test_ramp_iterations_is_a_positive_whole_number(value):
    from intrain.config import TrainConfig

    with pytest.raises(ConfigError, match="ramp_iterations"):
        ra(ramp_iterations=value)
    with pytest.raises(ConfigError, match="ramp_iterations"):
        TrainConfig.of(method="ra", ramp_iterations=value)


def test_cli_ramps_and_records_the_ramp(tmp_path):
    out = tmp_path / "ramped"
    code = main(["train", "--dataset", "demo", "--subset", "64", "--epochs", "2", "--batch-size", "32", "--method",
                 "ra", "--ramp-iterations", "3", "--out", str(out), "--quiet"])
    assert code == 0
    assert json.loads((out / "summary.json").read_text())["ra"]["ramp_iterations"] == 3
    assert main(["train", "--dataset", "demo", "--method", "ra", "--ramp-iterations", "0", "--out", str(out)]) != 0
