"""The training loop: BatchNorm re-estimation after every prune, and its helper's golden values."""

import copy

import pytest
import torch
from torch import nn

from intrain.config import TrainConfig
from intrain.engine.build import build
from intrain.engine.trainer import Trainer, TrainerOptions, recalibrate_batchnorm


def test_recalibrate_batchnorm_averages_the_first_batches_and_restores_mode_and_momentum():
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(6, 3, 4, 4, generator=generator) * (i + 1) + i, None) for i in range(4)]
    model = nn.Sequential(nn.BatchNorm2d(3, momentum=0.3)).eval()
    recalibrate_batchnorm(model, iter(batches), max_batches=3)
    norm = model[0]
    used = [x for x, _ in batches[:3]]  # the fourth is never read
    expected_mean = torch.stack([x.mean(dim=(0, 2, 3)) for x in used]).mean(0)
    expected_var = torch.stack([x.transpose(0, 1).reshape(3, -1).var(dim=1, unbiased=True) for x in used]).mean(0)
    torch.testing.assert_close(norm.running_mean, expected_mean)
    torch.testing.assert_close(norm.running_var, expected_var)
    assert int(norm.num_batches_tracked) == 3
    assert norm.momentum == 0.3 and not model.training


def small_trainer(method: str, epochs: int = 3) -> Trainer:
    config = TrainConfig.of(model="vgg16", width=0.0625, dataset="demo", subset=64, epochs=epochs, batch_size=32,
                         method=method, **({"criterion": "l1", "target": 0.5} if method == "pwt" else {}), seed=1,
                         device="cpu")
    parts = build(config)
    return Trainer(parts.model, parts.optimizer, parts.train_loader, parts.train_loader,
                   options=TrainerOptions(epochs=epochs, progress=False, quiet=True, recalibrate_bn_batches=2),
                   method=parts.method, scheduler=parts.scheduler)


def bn_statistics(model: nn.Module) -> list[torch.Tensor]:
    return [t.clone() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for t in (m.running_mean, m.running_var)]


@pytest.mark.parametrize("method, recalibrated", [("pwt", [True, True, True]), ("dense", [False, False, True])])
def test_batchnorm_statistics_are_re_estimated_after_every_prune_and_at_the_end(method, recalibrated):
    """After each pruning epoch (not only the last), the evaluated model's BN statistics are those of
    a fresh re-estimation on that epoch's batches; a dense run keeps its training running averages
    until the final model's are re-estimated after its last epoch."""
    trainer = small_trainer(method)
    checked = []

    def check(trainer, record):
        reference = copy.deepcopy(trainer.model)
        recalibrate_batchnorm(reference, trainer.train_loader.epoch(record["epoch"] - 1), 2)
        same = all(torch.equal(a, b) for a, b in zip(bn_statistics(trainer.model), bn_statistics(reference)))
        checked.append(same)

    trainer.callbacks.append(check)
    trainer.fit()
    assert checked == recalibrated
    if method == "pwt":
        assert [r["pruned_filter_fraction"] > 0 for r in trainer.history] == [True] * 3


def test_a_pruning_event_is_prune_compact_reattach_rewrap_and_leaves_a_plain_network(monkeypatch):
    """``Trainer.prune``: the Trainer attaches its method once, tracing the channel structure from its
    example inputs; every pruning event prunes, compacts (with the method's graph and groups: the
    attach's trace, then the graph each compaction kept up to date), re-attaches the method with the
    compaction's graph (no trace) and re-wraps. After it the compacted layers carry no forward or
    gradient hook and no mask multiplies anything: a step costs what a plain module's does."""
    import torch_pruning as tp

    traces, build_dependency = [0], tp.DependencyGraph.build_dependency

    def counted(self, *args, **kwargs):
        traces[0] += 1
        return build_dependency(self, *args, **kwargs)

    monkeypatch.setattr(tp.DependencyGraph, "build_dependency", counted)
    config = TrainConfig.of(model="vgg16", width=0.0625, dataset="demo", subset=64, epochs=2, batch_size=32,
                         method="pwt", recipe="paper", scope="layer", criterion="l1", target=0.5, seed=1, device="cpu")
    parts = build(config)
    convs = [m for m in parts.model.modules() if isinstance(m, nn.Conv2d)]
    widths = [c.out_channels for c in convs]
    wrapped = []
    trainer = Trainer(parts.model, parts.optimizer, parts.train_loader, parts.train_loader,
                      options=TrainerOptions(epochs=2, progress=False, quiet=True, recalibrate_bn_batches=1, compact=True),
                      method=parts.method, scheduler=parts.scheduler, wrap=lambda model: wrapped.append(model) or model)
    assert parts.method.model is parts.model and traces[0] == 1  # attached and traced once, before any step
    assert tuple(trainer.example_inputs.shape) == (1, *parts.train_loader.input_shape)
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in parts.model.modules())
    trainer.fit()
    assert [r["prune_seconds"] > 0 for r in trainer.history] == [True, True]
    assert traces[0] == 1 and len(wrapped) == 1 + 2  # the compactions reuse the attach's graph, then their own
    assert all(c.out_channels < w for c, w in zip(convs, widths))  # the same modules, compacted twice
    assert parts.method.model is parts.model and {id(p) for p in parts.method.layers[0].params} <= {
        id(p) for p in parts.model.parameters()}  # re-attached to the new parameters
    assert [id(p) for g in trainer.optimizer.param_groups for p in g["params"]] == [
        id(p) for p in parts.model.parameters()]
    assert not any(p._backward_hooks for p in parts.model.parameters())
    assert not any(m._forward_pre_hooks or m._forward_hooks or m._backward_hooks or "forward" in vars(m)
                   for m in parts.model.modules())
    assert all(bool(layer.mask.all()) for layer in parts.method.layers)
