"""Physical compaction: same outputs as the masked model, same next optimizer steps, masks and
method re-attached, coupled ResNet channels pruned and removed together, shrink for loading."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from intrain.channels import coupled_groups_in_graph, dependency_graph
from intrain.compaction import compact, shrink_to_state_dict
from intrain.config import TrainConfig
from intrain.errors import ConfigError
from intrain.masks import FILTER_MASK, find_prunable_layers, masked_gradients, prune_filters
from intrain.methods import pwt
from intrain.models import create_model, model_entry

WIDTH = {"lenet5": 0.5, "vgg16": 0.25, "resnet20": 0.5}
MODELS = list(WIDTH)


def batches(name, count, batch=8, seed=1, dtype=torch.float32):
    size = model_entry(name).input_size
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 1, size, size, generator=generator, dtype=dtype),
             torch.randint(0, 10, (batch,), generator=generator)) for _ in range(count)]


def make_optimizer(kind, params):
    if kind == "adam":
        return torch.optim.Adam(params, lr=1e-3, weight_decay=1e-4)
    return torch.optim.SGD(params, lr=0.005, momentum=0.9, weight_decay=5e-4)


def train_step(model, optimizer, x, y):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()


def pruned_run(name, kind="adam", fraction=0.5, seed=0, dtype=torch.float32):
    """A model trained 2 steps, pruned by PWT-L1 to ``fraction``, trained 1 more step (masked)."""
    torch.manual_seed(seed)
    model = create_model(name, width=WIDTH[name]).to(dtype)
    optimizer = make_optimizer(kind, model.parameters())
    method = pwt(target=0.9, epochs=1, criterion="l1").attach(model, optimizer)
    data = batches(name, 3, dtype=dtype)
    for x, y in data[:2]:
        train_step(model, optimizer, x, y)
    method.prune_to(fraction)
    train_step(model, optimizer, *data[2])
    return model, optimizer, method


def masked_copy(model, optimizer):
    """An independent copy of a masked model and its optimizer, with its own gradient masks."""
    model2, optimizer2 = copy.deepcopy((model, optimizer))
    return model2, optimizer2, masked_gradients(find_prunable_layers(model2))


def max_diff(a, b, x, train):
    a, b = copy.deepcopy(a).train(train), copy.deepcopy(b).train(train)
    with torch.no_grad():
        return float((a(x) - b(x)).abs().max())


def example(name, dtype=torch.float32):
    return batches(name, 1, batch=1, dtype=dtype)[0][0]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_compacted_outputs_equal_the_masked_model_in_train_and_eval_mode(name, dtype, tolerance):
    """Equal up to rounding: float64 proves the algebra; float32 (the training dtype) only differs
    by summation order (fewer channels in a convolution or in a BatchNorm batch statistic)."""
    model, optimizer, method = pruned_run(name, dtype=dtype)
    masked = copy.deepcopy(model)
    before = sum(p.numel() for p in model.parameters())
    result = compact(model, optimizer, example_inputs=example(name, dtype))
    method.reattach(optimizer, graph=result.graph)
    assert result.filters_removed > 0 and result.params_after < before == result.params_before
    x = batches(name, 1, seed=7, dtype=dtype)[0][0]
    assert max_diff(model, masked, x, train=False) <= tolerance
    assert max_diff(model, masked, x, train=True) <= tolerance
    assert model.training  # the mode it was in


@pytest.mark.parametrize("kind", ["adam", "sgd"])
@pytest.mark.parametrize("name", MODELS)
def test_next_steps_give_the_masked_models_kept_weights(name, kind):
    """k steps after compaction == k masked steps, then compacted (parameters and BN statistics).

    In float64: in float32, Adam turns rounding noise on a gradient that is zero analytically (the
    last conv BatchNorm's shift, cancelled by the next BatchNorm) into steps of up to ``lr``.
    """
    model, optimizer, method = pruned_run(name, kind, dtype=torch.float64)
    masked, masked_optimizer, hooks = masked_copy(model, optimizer)
    method.reattach(optimizer, graph=compact(model, optimizer, example_inputs=example(name, torch.float64)).graph)
    data = batches(name, 3, seed=11, dtype=torch.float64)
    with hooks:
        for x, y in data:
            train_step(model, optimizer, x, y)
            train_step(masked, masked_optimizer, x, y)
    compact(masked, None, example_inputs=example(name, torch.float64))
    assert_same_state(model, masked)


def assert_same_state(model, other):
    """Same keys and shapes, floating tensors equal to 1e-9 (parameters, masks, BN statistics)."""
    got, want = model.state_dict(), other.state_dict()
    assert got.keys() == want.keys()
    for key in got:
        assert got[key].shape == want[key].shape, key
        if got[key].is_floating_point():
            torch.testing.assert_close(got[key], want[key], atol=1e-9, rtol=1e-9, msg=key)


def test_optimizer_state_is_sliced_and_the_scheduler_goes_on():
    model, optimizer, method = pruned_run("vgg16", "adam")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 0.5 ** i)
    optimizer.zero_grad(set_to_none=True)
    optimizer.step()  # no gradients: a no-op that keeps the scheduler's order check quiet
    scheduler.step()
    steps = {id(p): int(optimizer.state[p]["step"]) for p in model.parameters()}
    method.reattach(optimizer, graph=compact(model, optimizer, example_inputs=example("vgg16")).graph)
    params = list(model.parameters())
    assert [id(p) for p in optimizer.param_groups[0]["params"]] == [id(p) for p in params]
    assert set(map(id, optimizer.state)) == set(map(id, params))
    for p in params:
        state = optimizer.state[p]
        assert state["exp_avg"].shape == p.shape and state["exp_avg_sq"].shape == p.shape
        assert int(state["step"]) == 3
    assert len(steps) == len(params)
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.25)
    restored = torch.optim.Adam(model.parameters(), lr=1e-3)
    restored.load_state_dict(optimizer.state_dict())  # a checkpoint of the compacted optimizer loads


def test_masks_shrink_and_the_method_keeps_pruning_after_compaction():
    model, optimizer, method = pruned_run("lenet5", fraction=0.3)
    original = method.original_filters()
    fraction = method.pruned_filter_fraction()
    method.reattach(optimizer, graph=compact(model, optimizer, example_inputs=example("lenet5")).graph)
    for layer in method.layers:
        assert layer.mask.numel() == layer.num_filters and bool(layer.mask.all())
        assert layer.module.weight.shape[0] == layer.num_filters
    assert method.original_filters() == original
    assert method.pruned_filter_fraction() == pytest.approx(fraction)
    method.prune_to(0.6)  # prunes further on the compacted model, hooks on the new parameters
    assert method.pruned_filter_fraction() >= 0.6 - 1e-9
    x, y = batches("lenet5", 1)[0]
    train_step(model, optimizer, x, y)
    for layer in method.layers:
        assert torch.all(layer.module.weight[~layer.mask] == 0)  # the masked gradients still hold
    method.reattach(optimizer, graph=compact(model, optimizer, example_inputs=x[:1]).graph)
    assert method.pruned_filter_fraction() >= 0.6 - 1e-9
    assert all(bool(layer.mask.all()) for layer in method.layers)


def test_nothing_pruned_is_a_no_op():
    torch.manual_seed(0)
    model = create_model("lenet5", width=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    method = pwt(target=0.5, epochs=2).attach(model, optimizer)
    params = list(model.parameters())
    result = compact(model, optimizer, example_inputs=example("lenet5"))
    method.reattach(optimizer, graph=result.graph)
    assert result.removed == {} and [id(p) for p in model.parameters()] == [id(p) for p in params]


def test_resnet_coupled_groups_are_pruned_and_removed_together():
    model, optimizer, method = pruned_run("resnet20", fraction=0.4)
    groups = [g for g in method.coupled_layers() if len(g) > 1]
    names = [[method.layers[i].name for i in g] for g in groups]
    assert len(groups) == 3 and all(len(g) == 4 for g in groups)  # stem/stage convs + shortcut per stage
    assert {"conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2"} == set(names[0])
    assert "layer2.0.shortcut.0" in names[1]
    for g in groups:  # every member has the same channels pruned
        masks = [method.layers[i].mask for i in g]
        assert all(torch.equal(m, masks[0]) for m in masks)
    assert any(not bool(method.layers[g[0]].mask.all()) for g in groups)  # residual channels were pruned
    method.reattach(optimizer, graph=compact(model, optimizer, example_inputs=example("resnet20")).graph)
    assert all(bool(layer.mask.all()) for layer in method.layers)  # everything pruned was removable
    assert model.fc.in_features < create_model("resnet20", width=WIDTH["resnet20"]).fc.in_features


def test_partially_pruned_coupled_channel_stays_masked():
    torch.manual_seed(0)
    model = create_model("resnet20", width=0.25)
    names = [layer.name for layer in find_prunable_layers(model)]
    groups = coupled_groups_in_graph(dependency_graph(model, example("resnet20")), model, names)
    stage1 = next(g for g in groups if "conv1" in g)
    method = pwt(target=0.5, epochs=1).attach(model)
    layers = {layer.name: layer for layer in method.layers}
    from intrain.masks import prune_filters

    for member in stage1[:-1]:
        prune_filters(layers[member], torch.tensor([0, 1]), None)  # pruned in all members but one
    prune_filters(layers[stage1[-1]], torch.tensor([1]), None)
    masked = copy.deepcopy(model)
    method.reattach(None, graph=compact(model, None, example_inputs=example("resnet20")).graph)
    assert layers["conv1"].module.weight.shape[0] == 3 and method.layers[0].mask.tolist() == [False, True, True]
    x = batches("resnet20", 1)[0][0]
    assert max_diff(model, masked, x, train=False) <= 1e-5


@pytest.mark.parametrize("name", MODELS)
def test_shrink_to_state_dict_loads_a_compacted_model_into_a_fresh_one(name):
    model, optimizer, method = pruned_run(name)
    method.reattach(optimizer, graph=compact(model, optimizer, example_inputs=example(name)).graph)
    state = model.state_dict()
    fresh = create_model(name, width=WIDTH[name])
    shrink_to_state_dict(fresh, state)
    method2 = pwt(target=0.5, epochs=2).attach(fresh)  # masks registered at the compacted sizes
    fresh.load_state_dict(state)
    x = batches(name, 1, seed=3)[0][0]
    assert max_diff(fresh, model, x, train=False) == 0.0
    assert all(layer.mask.numel() == layer.num_filters for layer in method2.layers)
    fresh2 = create_model(name, width=WIDTH[name])
    shrink_to_state_dict(fresh2, {k: v for k, v in state.items() if not k.endswith(FILTER_MASK)})
    fresh2.load_state_dict({k: v for k, v in state.items() if not k.endswith(FILTER_MASK)})
    assert max_diff(fresh2, model, x, train=False) == 0.0


def test_compact_is_on_by_default_for_filter_pruning_only():
    assert TrainConfig.of(method="pwt").compacts and TrainConfig.of(method="prt", prune_epoch=1).compacts
    assert not TrainConfig.of(method="pwt", compact=False).compacts
    assert not TrainConfig.of(method="dense").compacts and not TrainConfig.of(method="ra").compacts
    with pytest.raises(ConfigError, match="compact"):
        TrainConfig.of(method="dense", compact=True)
    with pytest.raises(ConfigError, match="compact"):
        TrainConfig.of(method="pwt", compact="yes")


def test_training_run_compacts_after_each_pruning_epoch(tmp_path):
    from intrain.engine.run import train

    config = TrainConfig.of(model="lenet5", dataset="demo", subset=300, method="pwt", target=0.5, epochs=2,
                         batch_size=100, device="cpu", out=str(tmp_path / "run"))
    summary = train(config, quiet=True)
    assert summary["pruned_filter_fraction"] == pytest.approx(0.5, abs=0.02)
    state = torch.load(tmp_path / "run" / "model.pt")["model"]
    assert state["conv2.weight"].shape[0] < 50 and state["fc1.weight"].shape[1] < 800
    assert all(bool(v.all()) for k, v in state.items() if k.endswith(FILTER_MASK))
    conv2 = next(r for r in summary["layers"] if r["name"] == "conv2")
    assert conv2["filters"] == 50 and conv2["filters_pruned"] == 50 - state["conv2.weight"].shape[0]
    assert summary["params_final"] <= sum(v.numel() for k, v in state.items() if not k.endswith(FILTER_MASK))


def test_global_choice_counts_a_coupled_channel_as_all_its_filters():
    from intrain.methods.selection import global_choice

    scores = [torch.tensor([0.1, 0.2, 0.9]), torch.tensor([0.15, 0.5, 0.6])]
    kept = [torch.ones(3, dtype=torch.bool), torch.ones(3, dtype=torch.bool)]
    # unit 0 is a group of 3 layers (9 filters), unit 1 a single layer: 12 filters, 50% = 6
    chosen = global_choice(scores, kept, [3, 3], 0.5, weights=[3, 1])
    assert chosen[0].tolist() == [0, 1] and chosen[1].tolist() == [0]  # 3 + 1 + 3 >= 6


def count_traces(monkeypatch):
    """Counts Torch-Pruning dependency-graph traces from now on: ``calls[0]``."""
    import torch_pruning as tp

    calls, build = [0], tp.DependencyGraph.build_dependency

    def counted(self, *args, **kwargs):
        calls[0] += 1
        return build(self, *args, **kwargs)

    monkeypatch.setattr(tp.DependencyGraph, "build_dependency", counted)
    return calls


def test_a_compaction_traces_the_dependency_graph_once(monkeypatch):
    """One trace serves the coupled groups, the pruning and the re-attached method's structure."""
    model, optimizer, method = pruned_run("resnet20", fraction=0.4)
    traces = count_traces(monkeypatch)
    result = compact(model, optimizer, example_inputs=example("resnet20"))
    method.reattach(optimizer, graph=result.graph)
    assert traces[0] == 1 and result.filters_removed > 0
    assert len([g for g in method.coupled_layers() if len(g) > 1]) == 3  # read from the compaction's graph
    train_step(model, optimizer, *batches("resnet20", 1)[0])
    method.prune_to(0.6)
    assert traces[0] == 1  # neither the next step nor the next prune traces again


def test_reattaching_with_the_compactions_graph_equals_reattaching_with_a_fresh_trace(monkeypatch):
    """``compact`` needs no method: re-attaching it afterwards with the compaction's graph gives the
    same model, optimizer and method as re-attaching it with a fresh trace, with one trace instead of two."""
    model, optimizer, method = pruned_run("resnet20", kind="sgd", fraction=0.4, dtype=torch.float64)
    other, other_optimizer, other_method = pruned_run("resnet20", kind="sgd", fraction=0.4, dtype=torch.float64)
    masked = copy.deepcopy(model)
    traces = count_traces(monkeypatch)
    result = compact(model, optimizer, example_inputs=example("resnet20", torch.float64))
    assert traces[0] == 1 and result.filters_removed > 0 and result.graph is not None
    x = batches("resnet20", 1, seed=7, dtype=torch.float64)[0][0]
    assert max_diff(model, masked, x, train=False) <= 1e-10  # compacted without knowing the method
    method.reattach(optimizer, graph=result.graph)
    assert traces[0] == 1
    compact(other, other_optimizer, example_inputs=example("resnet20", torch.float64))
    other_method.reattach(other_optimizer)
    assert traces[0] == 3  # its compaction, and its method's own trace
    assert method.coupled_layers() == other_method.coupled_layers()
    for x, y in batches("resnet20", 2, seed=11, dtype=torch.float64):
        train_step(model, optimizer, x, y)
        train_step(other, other_optimizer, x, y)
    assert_same_state(model, other)


def test_a_later_compaction_reusing_the_previous_ones_graph_equals_one_that_traces_again(monkeypatch):
    """The graph a compaction returns describes the compacted model (its pruning kept it up to date):
    the next compaction may use it, and the method's coupled groups, instead of tracing and reading
    them again (the Trainer does), with the same result."""
    runs = [pruned_run("resnet20", kind="sgd", fraction=0.3, dtype=torch.float64) for _ in range(2)]
    traces = count_traces(monkeypatch)
    x = example("resnet20", torch.float64)
    for reuse, (model, optimizer, method) in zip((True, False), runs):
        result = compact(model, optimizer, example_inputs=x)
        method.reattach(optimizer, graph=result.graph)
        method.prune_to(0.6)
        later = compact(model, optimizer, example_inputs=x, graph=result.graph if reuse else None,
                        groups=method.channel_groups() if reuse else None)  # the Trainer hands both over
        assert later.filters_removed > 0
        method.reattach(optimizer, graph=later.graph)
    assert traces[0] == 1 + 2
    (reused, reused_optimizer, reused_method), (traced, traced_optimizer, traced_method) = runs
    assert reused_method.coupled_layers() == traced_method.coupled_layers()
    for x, y in batches("resnet20", 2, seed=5, dtype=torch.float64):
        train_step(reused, reused_optimizer, x, y)
        train_step(traced, traced_optimizer, x, y)
    assert_same_state(reused, traced)


def test_tracing_marks_only_the_traced_model_and_only_during_the_trace():
    from intrain.channels import dependency_graph, tracing

    model, bystander = create_model("lenet5", width=0.5), create_model("lenet5", width=0.5)
    seen = []
    model.conv2.register_forward_pre_hook(lambda module, inputs: seen.append((tracing(model), tracing(module),
                                                                              tracing(bystander))))
    dependency_graph(model, example("lenet5"))
    assert seen and set(seen) == {(True, True, False)}  # the trace's forward passes
    assert not tracing(model) and not any(tracing(m) for m in model.modules())
    model(example("lenet5"))
    assert seen[-1] == (False, False, False)


def count_forwards(model):
    """Counts forward passes of ``model`` from now on: ``calls[0]``."""
    calls = [0]
    model.register_forward_pre_hook(lambda module, inputs: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize("name", ["lenet5", "vgg16"])
def test_a_plain_cnn_is_proven_to_read_zeros_without_a_forward_pass(name):
    """Conv -> BatchNorm -> ReLU -> pool -> flatten -> linear: every operation between a pruned filter
    and its readers passes zeros by construction, so compaction runs no check forward (and stays exact)."""
    model, optimizer, method = pruned_run(name)
    masked, _, _ = masked_copy(model, optimizer)
    forwards = count_forwards(model)  # the method's graph is handed over: no trace either
    result = compact(model, optimizer, example_inputs=example(name), graph=method.channel_graph())
    assert result.filters_removed > 0 and forwards[0] == 0
    assert max_diff(model, masked, batches(name, 1, seed=5)[0][0], train=False) < 1e-4


def test_a_residual_model_is_still_checked_by_a_forward_pass():
    """An addition is not proven zero-preserving: the forward check runs (and passes), and one more
    pass after the compaction finds the outputs unchanged."""
    model, optimizer, method = pruned_run("resnet20", fraction=0.4)
    forwards = count_forwards(model)
    assert compact(model, optimizer, example_inputs=example("resnet20"), graph=method.channel_graph()).filters_removed > 0
    assert forwards[0] == 2


def test_a_pruned_channel_revived_by_its_batchnorm_is_refused():
    """Not proven (the BatchNorm's β is not zero on a pruned channel): the forward check finds the
    non-zero read and refuses before anything changes."""
    model, optimizer, method = pruned_run("vgg16")
    layer = method.layers[1]
    modules = dict(model.named_modules())
    names = list(modules)
    bn = modules[names[names.index(layer.name) + 1]]
    assert isinstance(bn, nn.BatchNorm2d)
    pruned = (~layer.module.filter_mask).nonzero().flatten()
    with torch.no_grad():
        bn.bias[pruned[0]] = 1.0
    forwards = count_forwards(model)
    with pytest.raises(ConfigError, match=f"reads pruned channels of '{layer.name}' that are not zero"):
        compact(model, optimizer, example_inputs=example("vgg16"), graph=method.channel_graph())
    assert forwards[0] == 1 and layer.module.out_channels == layer.module.filter_mask.numel()


class _Reshaped(nn.Module):
    """conv -> ReLU -> ``reshape(-1, C)`` -> linear: the reshape moves spatial positions into the batch
    and reads channels as features; not a flatten."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).reshape(-1, 4))


class _PooledAcrossChannels(nn.Module):
    """conv -> ReLU -> a 3-D pooling (stride 1, shape kept) -> flatten -> linear: a 3-D pooling takes
    the conv's 4-D output for one unbatched volume and pools over its dim 1, the channels."""

    def __init__(self, pool):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = pool
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(self.pool(F.relu(self.conv(x))).flatten(1))


def _pruned_model(model, x, filters=(1,)):
    """``model`` with the named filters of its first conv pruned by PWT's masks (zero weight and bias)."""
    torch.manual_seed(0)
    model.eval()
    method = pwt(target=0.9, epochs=1, criterion="l1").attach(model, torch.optim.SGD(model.parameters(), lr=0.1),
                                                              example_inputs=x[:1])
    prune_filters(method.layers[0], torch.tensor(list(filters)), None)
    return model, method


@pytest.mark.parametrize("make, x", [
    (lambda: _Reshaped(), torch.randn(2, 1, 3, 3)),
    (lambda: _PooledAcrossChannels(nn.MaxPool3d((3, 1, 1), stride=1, padding=(1, 0, 0))), torch.randn(2, 1, 6, 6)),
    (lambda: _PooledAcrossChannels(nn.AvgPool3d((3, 1, 1), stride=1, padding=(1, 0, 0))), torch.randn(2, 1, 6, 6)),
], ids=["reshape-not-a-flatten", "maxpool3d-on-4d", "avgpool3d-on-4d"])
def test_an_operation_that_moves_values_across_channels_is_never_proven(make, x):
    """Regression: these were once proven zero-preserving and compacted with changed outputs. Now the
    forward check runs: compaction refuses, or (where the zero channel happens to stay zero) stays exact."""
    model, method = _pruned_model(make(), x)
    before, graph = copy.deepcopy(model), method.channel_graph()
    forwards = count_forwards(model)
    try:
        compact(model, example_inputs=x, graph=graph)
    except ConfigError as exc:
        assert "that are not zero" in str(exc) and forwards[0] == 1
    else:
        assert forwards[0] == 2  # the check, and the comparison of outputs after
        assert max_diff(model, before, x, train=False) < 1e-6


class _Unbatched(nn.Module):
    """A conv on one unbatched image (C_in, H, W): its output (C, H, W) has no batch dim, and
    ``reshape(H, C * W)`` puts several channels in each row."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6, 3)

    def forward(self, x):
        y = F.relu(self.conv(x))
        return self.fc(y.reshape(y.shape[1], -1))


class _SplitView(nn.Module):
    """Two reshapes, each looking like a flatten: (N, C, H, W) -> (2N, C/2, H, W) -> (N, C H W)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 36, 3)

    def forward(self, x):
        y = F.relu(self.conv(x))
        n, c, h, w = y.shape
        return self.fc(y.view(2 * n, c // 2, h, w).reshape(n, -1))


class _AcrossChannels(nn.Module):
    """conv -> ReLU -> ``mid`` -> conv -> linear, where ``mid`` computes a statistic over the channels:
    every reader sees zeros on the pruned channel, yet removing it changes the other channels."""

    def __init__(self, mid):
        super().__init__()
        self.conv, self.mid = nn.Conv2d(1, 4, 3, padding=1), mid
        self.conv2, self.fc = nn.Conv2d(4, 2, 3, padding=1), nn.Linear(2 * 36, 3)

    def forward(self, x):
        return self.fc(F.relu(self.conv2(self.mid(F.relu(self.conv(x))))).flatten(1))


class _LayerNormReLU(nn.Module):
    def forward(self, y):
        return F.relu(F.layer_norm(y, y.shape[1:]))


class _ConvTransposeReader(nn.Module):
    """A transposed conv reads sigmoid(0) = 0.5 on the pruned channel."""

    def __init__(self):
        super().__init__()
        self.conv, self.conv2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 2, 3, padding=1)
        self.up, self.fc = nn.ConvTranspose2d(4, 2, 3, padding=1), nn.Linear(2 * 36, 3)

    def forward(self, x):
        y = self.conv(x)
        return self.fc(self.conv2(F.relu(y)).flatten(1)) + self.up(torch.sigmoid(y)).mean(dim=(1, 2, 3))[:, None]


@pytest.mark.parametrize("make, x, filters", [
    (_SplitView, torch.randn(2, 1, 6, 6), (1, 2)),
    (lambda: _AcrossChannels(_LayerNormReLU()), torch.randn(2, 1, 6, 6), (1,)),
    (lambda: _AcrossChannels(nn.LocalResponseNorm(3, alpha=3.0)), torch.randn(2, 1, 6, 6), (1,)),
    (_ConvTransposeReader, torch.randn(2, 1, 6, 6), (1,)),
], ids=["two-reshapes", "layer-norm-over-channels", "local-response-norm", "conv-transpose-reader"])
def test_a_compaction_that_would_change_the_outputs_stops_with_one_line(make, x, filters):
    """Regression: these were compacted with changed outputs or a broken model, and nothing said so.
    Now none is proven, and what the zero-read check cannot see, the comparison of the outputs before
    and after the compaction does: a one-line ConfigError."""
    torch.manual_seed(0)
    model, method = _pruned_model(make(), x[:1], filters)
    with pytest.raises(ConfigError, match="compaction (would change|changed) the model's outputs") as info:
        compact(model, example_inputs=x[:1], graph=method.channel_graph())
    assert "\n" not in str(info.value) and "compact: false" in str(info.value)


def test_a_reshape_of_an_unbatched_output_is_not_taken_for_a_flatten():
    """Regression: a conv on one unbatched image (no batch dim), its output reshaped to (H, C W) into a
    linear, was proven to read zeros and compacted with changed outputs. Not proven now: the check's
    forward pass runs (and, given a batch of two, fails loudly) and nothing is removed."""
    model, method = _pruned_model(_Unbatched(), torch.randn(1, 6, 6))
    forwards = count_forwards(model)
    with pytest.raises(RuntimeError):
        compact(model, example_inputs=torch.randn(1, 6, 6), graph=method.channel_graph())
    assert forwards[0] == 1 and model.conv.out_channels == 4


def test_a_flatten_after_an_earlier_compaction_is_still_proven():
    """The traced sizes predate the first compaction; the flatten is judged with the widths of now."""
    model, optimizer, method = pruned_run("vgg16", fraction=0.3)
    result = compact(model, optimizer, example_inputs=example("vgg16"), graph=method.channel_graph())
    method.reattach(optimizer, graph=result.graph)
    method.prune_to(0.6)
    masked, _, _ = masked_copy(model, optimizer)
    forwards = count_forwards(model)
    assert compact(model, optimizer, example_inputs=example("vgg16"), graph=result.graph).filters_removed > 0
    assert forwards[0] == 0
    assert max_diff(model, masked, batches("vgg16", 1, seed=5)[0][0], train=False) < 1e-4
