"""PWT (with compaction) and RA on CNNs intrain did not define: ResNet-18's downsample shortcuts,
MobileNetV2's depthwise inverted residuals, EfficientNet/MobileNetV3 blocks with squeeze-and-
excitation, Inception/DenseNet concatenations (hand-built in ``cnn_zoo``), torchvision's models when
installed; and what is refused, with a one-line ConfigError instead of a silently wrong model."""

import copy

import pytest
import torch
from torch import nn

from cnn_zoo import INPUT, ZOO, ConcatNet, GroupedNet, MobileNetV2Like, conv_bn
from intrain.compaction import compact, shrink_to_state_dict
from intrain.errors import ConfigError, IntrainError
from intrain.export import forward_macs
from intrain.masks import FILTER_MASK, WEIGHT_MASK, find_prunable_layers, prune_filters
from intrain.methods import pwt, ra
from test_compaction import assert_same_state, make_optimizer, max_diff, train_step

NAMES = list(ZOO)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: depthwise convs on one thread


def batches(count, batch=4, seed=1, dtype=torch.float32, shape=INPUT):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, *shape, generator=generator, dtype=dtype),
             torch.randint(0, 10, (batch,), generator=generator)) for _ in range(count)]


def without_dropout(model):
    """Dropout off (p = 0), so train-mode outputs of models of different widths compare."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model


def pruned_run(make, kind="adam", fraction=0.5, dtype=torch.float32, shape=INPUT):
    """A model trained 2 steps, pruned by PWT-L1 to ``fraction``, trained 1 more step (masked)."""
    torch.manual_seed(0)
    model = without_dropout(make()).to(dtype)
    optimizer = make_optimizer(kind, model.parameters())
    method = pwt(target=0.9, epochs=1, criterion="l1").attach(model, optimizer)
    data = batches(3, dtype=dtype, shape=shape)
    for x, y in data[:2]:
        train_step(model, optimizer, x, y)
    method.prune_to(fraction)
    train_step(model, optimizer, *data[2])
    return model, optimizer, method


def example(dtype=torch.float32, shape=INPUT):
    return torch.zeros(1, *shape, dtype=dtype)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_compacted_outputs_equal_the_masked_model_and_params_and_macs_drop(name, dtype, tolerance):
    model, optimizer, method = pruned_run(ZOO[name], dtype=dtype)
    masked = copy.deepcopy(model)
    dense_macs = forward_macs(ZOO[name]().to(dtype), INPUT)
    result = compact(model, optimizer, example_inputs=example(dtype))
    method.reattach(optimizer, graph=result.graph)
    assert result.filters_removed > 0 and result.params_after < 0.6 * result.params_before
    x = batches(1, seed=7, dtype=dtype)[0][0]
    assert max_diff(model, masked, x, train=False) <= tolerance
    assert max_diff(model, masked, x, train=True) <= tolerance
    assert forward_macs(model, INPUT) == forward_macs(masked, INPUT) < 0.6 * dense_macs
    assert all(bool(layer.mask.all()) for layer in method.layers)  # every pruned filter was removable


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet", "concat"])
@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_next_steps_give_the_masked_models_kept_weights(name, kind):
    """k steps after compaction == k masked steps (its own PWT hooks, followers included), then
    compacted: parameters and BatchNorm statistics, in float64."""
    model, optimizer, method = pruned_run(ZOO[name], kind, dtype=torch.float64)
    masked, masked_optimizer = copy.deepcopy((model, optimizer))
    twin = pwt(target=0.9, epochs=1).attach(masked, masked_optimizer)
    method.reattach(optimizer, graph=compact(model, optimizer, example_inputs=example(torch.float64)).graph)
    for x, y in batches(3, seed=11, dtype=torch.float64):
        train_step(model, optimizer, x, y)
        train_step(masked, masked_optimizer, x, y)
    assert twin.followers or name == "resnet18"
    compact(masked, None, example_inputs=example(torch.float64))
    assert_same_state(model, masked)


def test_a_depthwise_conv_and_its_batchnorm_follow_the_conv_that_feeds_them():
    model, optimizer, method = pruned_run(MobileNetV2Like, "adam")
    block = model.features[2].conv  # expand 1x1 (a prunable layer) -> depthwise 3x3 -> project 1x1
    expand = block[0][0]
    assert "features.2.conv.1.0" not in {layer.name for layer in method.layers}
    followers = {f.name: f for f in method.followers}
    for name in ("features.2.conv.1.0", "features.2.conv.1.1"):  # the depthwise conv and its BatchNorm
        (layer, channels, targets), = followers[name].sources
        assert layer.module is expand and torch.equal(channels, targets)
        assert torch.equal(followers[name].mask, expand.filter_mask) and not bool(expand.filter_mask.all())


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet", "concat"])
def test_follower_channels_stay_exactly_zero_through_adam_steps(name):
    """With weight decay, in train and eval mode. (ReLU6 passes no gradient at exactly 0, so the
    MobileNetV2 case would hold without the followers' gradient masks; SiLU does: EfficientNet.)"""
    model, optimizer, method = pruned_run(ZOO[name], "adam")
    assert method.followers and not any(bool(f.mask.all()) for f in method.followers)
    for x, y in batches(20, seed=3):
        train_step(model, optimizer, x, y)
    outputs = {}
    for f in method.followers:
        for p in f.params:
            assert torch.count_nonzero(p[~f.mask]) == 0 and torch.count_nonzero(p[f.mask]) > 0, f.name
        if isinstance(f.module, nn.BatchNorm2d):
            f.module.register_forward_hook(lambda m, i, o, name=f.name: outputs.update({name: o}))
    for train in (True, False):
        model.train(train)(batches(1, seed=5)[0][0])
        for f in method.followers:
            if f.name in outputs:
                y = outputs[f.name]
                assert torch.count_nonzero(y[:, ~f.mask]) == 0 and torch.count_nonzero(y[:, f.mask]) > 0, f.name


def test_pruning_only_the_producer_would_leave_the_depthwise_channel_alive_and_compaction_refuses():
    """What the followers guard against: the depthwise BatchNorm's β revives a channel whose producer
    filter is zero. Compaction's zero check then refuses to remove it rather than change the model."""
    torch.manual_seed(0)
    model = without_dropout(MobileNetV2Like())
    optimizer = make_optimizer("adam", model.parameters())
    layers = {layer.name: layer for layer in find_prunable_layers(model)}
    layer = layers["features.2.conv.0.0"]
    from intrain.masks import ensure_mask

    ensure_mask(layer)
    for x, y in batches(2):
        train_step(model, optimizer, x, y)
    prune_filters(layer, torch.tensor([0, 1]), optimizer)  # the producer only, no follower
    bn = model.features[2].conv[1][1]
    assert torch.count_nonzero(bn.bias[[0, 1]]) > 0
    with pytest.raises(ConfigError, match="reads pruned channels of 'features.2.conv.0.0' that are not zero"):
        compact(model, optimizer, example_inputs=example())
    assert model.features[2].conv[0][0].out_channels == 32  # refused before anything changed


def test_the_squeeze_excitation_gate_is_tied_to_the_features_it_scales():
    model, optimizer, method = pruned_run(ZOO["mobilenet_v3"])
    groups = [sorted(method.layers[i].name for i in g) for g in method.coupled_layers()]
    assert ["features.2.block.0.0", "features.2.block.2.fc2"] in groups  # expand conv and the SE expand conv
    assert ["features.2.block.2.fc1"] in groups  # the SE reduce conv: its own filters
    se = model.features[2].block[2]
    method.reattach(optimizer, graph=compact(model, optimizer, example_inputs=example()).graph)
    assert se.fc2.out_channels == model.features[2].block[0][0].out_channels == se.fc1.in_channels
    assert model.features[2].block[1][0].groups == se.fc2.out_channels  # the depthwise conv shrank too


def test_concatenation_followers_map_each_branch_to_its_offset():
    model, optimizer, method = pruned_run(ConcatNet)
    follower = next(f for f in method.followers if f.name == "norm1")  # BN on cat([branch1, branch2])
    spans = sorted((layer.name, targets.tolist()) for layer, _, targets in follower.sources)
    assert spans == [("branch1.0", [0, 1, 2, 3]), ("branch2.0", [4, 5, 6, 7, 8, 9])]
    want = torch.cat([model.branch1[0].filter_mask, model.branch2[0].filter_mask])
    assert torch.equal(follower.mask, want) and not bool(want.all())
    assert torch.count_nonzero(model.norm1.weight[~want]) == 0
    method.reattach(optimizer, graph=compact(model, optimizer, example_inputs=example()).graph)
    assert model.norm1.num_features == int(want.sum()) == model.conv1.in_channels


def test_shrink_to_state_dict_loads_a_compacted_depthwise_model():
    model, optimizer, method = pruned_run(MobileNetV2Like)
    method.reattach(optimizer, graph=compact(model, optimizer, example_inputs=example()).graph)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith(FILTER_MASK)}
    fresh = without_dropout(MobileNetV2Like())
    shrink_to_state_dict(fresh, state)
    fresh.load_state_dict(state)
    depthwise = fresh.features[2].conv[1][0]
    assert depthwise.groups == depthwise.in_channels == depthwise.out_channels < 32
    assert max_diff(fresh, model, batches(1, seed=3)[0][0], train=False) == 0.0


def test_pruning_a_depthwise_model_before_any_forward_pass_fails_clearly():
    method = pwt(target=0.5, epochs=1).attach(MobileNetV2Like())
    with pytest.raises(IntrainError, match="first forward pass"):
        method.prune_to(0.5)


# ---------------------------------------------------------------------- refused
class Sum(nn.Module):
    """A concatenation added to another tensor: channels tied, but not index for index."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = conv_bn(3, 4), conv_bn(3, 4), conv_bn(3, 8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        y = torch.cat([self.a(x), self.b(x)], 1) + self.c(x)
        return self.fc(y.mean((2, 3)))


class Gated(nn.Module):
    """A sigmoid between a conv and its reader: a pruned (zero) channel reads 0.5."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(self.b(torch.sigmoid(self.a(x))).mean((2, 3)))


class Shuffled(nn.Module):
    """ShuffleNet's channel shuffle: Torch-Pruning maps its channels as if unshuffled."""

    def __init__(self):
        super().__init__()
        self.a, self.b = conv_bn(3, 8), conv_bn(8, 8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        y = self.a(x)
        n, c, h, w = y.shape
        y = y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.fc(self.b(y).mean((2, 3)))


def fully_convolutional():
    return nn.Sequential(conv_bn(3, 8), nn.Conv2d(8, 10, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def group_normalised():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.GroupNorm(2, 8), nn.ReLU(), nn.Conv2d(8, 8, 3),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


@pytest.mark.parametrize("make, message", [
    (Sum, "'a.0' and 'c.0' are tied, but not index for index"),
    (fully_convolutional, "no convolution or linear layer reads the channels of '1'"),
    (group_normalised, r"'1' \(GroupNorm\) has parameters on the channels of '0'"),
])
def test_structures_compaction_cannot_keep_exact_are_refused_on_the_first_step(make, message):
    model = make()
    optimizer = make_optimizer("sgd", model.parameters())
    pwt(target=0.5, epochs=1).attach(model, optimizer)
    x, y = batches(1)[0]
    with pytest.raises(ConfigError, match=message):
        train_step(model, optimizer, x, y)


def test_grouped_convolutions_are_refused_when_attaching():
    with pytest.raises(ConfigError, match=r"'body.1.0' is a grouped convolution \(groups=2"):
        pwt(target=0.5, epochs=1).attach(GroupedNet())


@pytest.mark.parametrize("make, reader", [(Gated, "b"), (Shuffled, "b.0")])
def test_a_channel_that_reads_non_zero_once_pruned_is_not_compacted(make, reader):
    model, optimizer, method = pruned_run(make)
    layer = find_prunable_layers(model)[0]
    assert not bool(layer.module.filter_mask.all())
    masked = copy.deepcopy(model)
    with pytest.raises(ConfigError, match=f"'{reader}' reads pruned channels of '{layer.name}' that are not zero"):
        compact(model, optimizer, example_inputs=example())
    assert max_diff(model, masked, batches(1)[0][0], train=False) == 0.0  # untouched


# ---------------------------------------------------------------------- RA
@pytest.mark.parametrize("name", NAMES + ["grouped"])
def test_ra_prunes_weights_of_any_cnn_and_computes_with_the_masked_weights(name):
    torch.manual_seed(0)
    model = without_dropout(GroupedNet() if name == "grouped" else ZOO[name]())
    optimizer = make_optimizer("sgd", model.parameters())
    method = ra(range_=0.0, epsilon=0.1, partition="none").attach(model, optimizer)
    for x, y in batches(3):
        train_step(model, optimizer, x, y)
        method.on_step_end()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(0 < float((m.weight_mask == 0).float().mean()) < 1 for m in convs)  # depthwise/grouped too
    x = batches(1, seed=9)[0][0]
    plain = copy.deepcopy(model)
    method.detach()
    with torch.no_grad():
        for module in plain.modules():
            if hasattr(module, WEIGHT_MASK):
                module.weight.mul_(module.weight_mask)
    assert max_diff(plain, model, x, train=False) > 0  # detached: the dense weights again
    method.attach(model, optimizer)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), plain.eval()(x), atol=1e-6)


# ---------------------------------------------------------------------- torchvision, when installed
TORCHVISION = {
    "resnet18": {}, "mobilenet_v2": {"width_mult": 0.25}, "mobilenet_v3_small": {"width_mult": 0.5},
    "efficientnet_b0": {}, "googlenet": {"aux_logits": False, "init_weights": False},
}


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_torchvision_models_prune_and_compact_exactly(name):
    models = pytest.importorskip("torchvision.models")
    shape = (3, 32, 32)
    model, optimizer, method = pruned_run(lambda: getattr(models, name)(weights=None, num_classes=10,
                                                                        **TORCHVISION[name]), shape=shape)
    masked = copy.deepcopy(model)
    result = compact(model, optimizer, example_inputs=example(shape=shape))
    method.reattach(optimizer, graph=result.graph)
    assert result.params_after < 0.6 * result.params_before
    x = batches(1, batch=2, seed=7, shape=shape)[0][0]
    assert max_diff(model, masked, x, train=False) <= 1e-4
    assert forward_macs(model, shape) == forward_macs(masked, shape)
    assert all(bool(layer.mask.all()) for layer in method.layers)


@pytest.mark.parametrize("name, message", [
    ("resnext50_32x4d", "grouped convolution"), ("shufflenet_v2_x0_5", "could not trace"),
    ("convnext_tiny", r"\(LayerNorm2d\) has parameters"), ("squeezenet1_1", "the model's output"),
])
def test_torchvision_models_pwt_cannot_compact_exactly_are_refused_in_one_line(name, message):
    models = pytest.importorskip("torchvision.models")
    model = getattr(models, name)(weights=None, num_classes=10)
    optimizer = make_optimizer("sgd", model.parameters())
    x, y = batches(1, batch=2, shape=(3, 64, 64))[0]
    with pytest.raises(ConfigError, match=message) as error:
        pwt(target=0.5, epochs=1).attach(model, optimizer)
        train_step(model, optimizer, x, y)
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------------- timm, when installed
TIMM = ("resnet18", "mobilenetv3_small_050", "efficientnet_b0")


@pytest.mark.parametrize("name", TIMM)
def test_timm_models_prune_and_compact_exactly(name):
    """In float64: at 32x32 input these nets end at 1x1 feature maps, where train-mode BatchNorm over
    a batch of 4 divides by tiny variances and float32 rounding would dominate the comparison."""
    timm = pytest.importorskip("timm")
    shape, dtype = (3, 32, 32), torch.float64
    model, optimizer, method = pruned_run(lambda: timm.create_model(name, pretrained=False, num_classes=10),
                                          dtype=dtype, shape=shape)
    masked = copy.deepcopy(model)
    result = compact(model, optimizer, example_inputs=example(dtype, shape=shape))
    method.reattach(optimizer, graph=result.graph)
    assert result.params_after < 0.6 * result.params_before
    x = batches(1, seed=7, dtype=dtype, shape=shape)[0][0]
    assert max_diff(model, masked, x, train=False) <= 1e-10
    assert max_diff(model, masked, x, train=True) <= 1e-10
    assert all(bool(layer.mask.all()) for layer in method.layers)


@pytest.mark.parametrize("name", NAMES)
def test_the_graph_a_compaction_returns_gives_the_structure_of_a_fresh_trace(name):
    """Torch-Pruning keeps the graph up to date as it prunes (concatenation offsets, depthwise and
    BatchNorm followers), so the method can read its structure from it instead of tracing again."""
    from intrain.channels import channel_structure_in_graph, dependency_graph

    model, optimizer, method = pruned_run(ZOO[name])
    result = compact(model, optimizer, example_inputs=example())
    assert result.filters_removed > 0
    names = {module: name for name, module in model.named_modules()}
    layers, norms = [layer.name for layer in method.layers], {layer.name: names.get(layer.norm) for layer in method.layers}
    reused = channel_structure_in_graph(result.graph, model, layers, norms)
    assert reused == channel_structure_in_graph(dependency_graph(model, example()), model, layers, norms)
    assert reused.followers or name == "resnet18"
