"""The Compactor: compaction that follows the prunes, in the Trainer and in an own loop."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from intrain.compactor import Compactor
from intrain.config import TrainConfig
from intrain.engine.build import build
from intrain.engine.trainer import Trainer, TrainerOptions, weighted_cost
from intrain.errors import ConfigError
from intrain.methods import pwt


def tiny_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3),
                         nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def own_loop(compacting: bool, dtype=torch.float64):
    """An own loop over 2 epochs of 4 steps, pruning every step (cubic to 50% within epoch 0)."""
    torch.manual_seed(0)
    model = tiny_net().to(dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x_all = torch.randn(32, 1, 6, 6, dtype=dtype, generator=torch.Generator().manual_seed(1))
    y_all = torch.randint(0, 3, (32,), generator=torch.Generator().manual_seed(2))
    method = pwt(target=0.5, epochs=2, schedule="cubic", reach=0.5, prune_every_steps=1, steps_per_epoch=4)
    method.attach(model, optimizer, example_inputs=x_all[:1])
    wraps = []
    compactor = Compactor(model, optimizer, method, wrap=lambda m: wraps.append(m) or m, enabled=compacting)
    sizes = []
    for epoch in range(2):
        method.on_epoch_begin(epoch)
        for step in range(4):
            x, y = x_all[8 * step:8 * step + 8], y_all[8 * step:8 * step + 8]
            loss = F.cross_entropy(compactor.wrapped(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            compactor.on_step_end()  # the one line: instead of method.on_step_end()
            sizes.append(parameters(model))
        compactor.on_epoch_end(epoch)
    return model, compactor, sizes, wraps, x_all


def test_an_own_loop_compacts_with_one_call_per_step_and_each_compaction_keeps_the_outputs():
    """Each compaction gives the outputs of the masked network it replaced (train and eval mode). The
    runs themselves then differ: the L1 score of a filter is its mean |w|, over fewer inputs once the
    pruned channels it read are removed (as with compaction at epoch ends only)."""
    checked = []
    compact = Compactor.compact

    def checking(self):
        masked = copy.deepcopy(self.model)
        result = compact(self)
        x = torch.randn(8, 1, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
        for train in (True, False):
            with torch.no_grad():
                torch.testing.assert_close(self.model.train(train)(x), masked.train(train)(x), rtol=1e-9, atol=1e-10)
        self.model.train()
        checked.append(result.filters_removed)
        return result

    Compactor.compact = checking
    try:
        model, compactor, sizes, wraps, x = own_loop(compacting=True)
    finally:
        Compactor.compact = compact
    _, _, masked_sizes, _, _ = own_loop(compacting=False)
    assert sizes[:2] == [318, 219] and sizes[2:] == [219] * 6  # smaller at each step's prune (3, then 4 of 8)
    assert masked_sizes == [parameters(tiny_net())] * 8
    assert checked == [6, 2, 0]  # steps 1 and 2, then the epoch's end (nothing left to remove)
    assert compactor.compactions == 2 and len(wraps) == 1 + 2  # re-wrapped after each compaction
    assert model[0].weight.shape[0] == 4 and model[3].weight.shape[0] == 4


def test_min_share_waits_until_enough_is_removable():
    model = tiny_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    method = pwt(target=0.5, epochs=1, recipe="paper", scope="layer").attach(model, optimizer, example_inputs=torch.zeros(1, 1, 6, 6))
    method.prune_to(0.125)  # 1 of each conv's 8 filters
    assert Compactor(model, optimizer, method).removable() == (2, 16)
    assert not Compactor(model, optimizer, method, min_share=0.2).due()  # 2/16 < 0.2
    assert Compactor(model, optimizer, method, min_share=0.1).due()
    with pytest.raises(ConfigError, match="min_share"):
        Compactor(model, optimizer, method, min_share=1.5)


def test_a_model_without_filter_masks_is_left_alone():
    """Weight pruning (RA) or dense training under a compacting loop (the Lightning callback's default):
    nothing to remove, and no example batch needed."""
    model = tiny_net()
    result = Compactor(model, None, pwt(target=0.5, epochs=1, recipe="paper", scope="layer")).compact()
    assert result.filters_removed == 0 and result.params_before == result.params_after == parameters(model)


def test_weighted_cost_weighs_each_state_by_the_steps_it_trained():
    assert weighted_cost([(0, {"train_macs": 8.0})], 10) == {"train_macs": 8.0}
    assert weighted_cost([(0, {"train_macs": 8.0}), (4, {"train_macs": 3.0})], 10) == {"train_macs": 5.0}
    assert weighted_cost([], 10) == {}


def step_trainer(min_share: float, compact: bool = True) -> Trainer:
    from intrain.engine.run import cost_meter

    config = TrainConfig.of(model="vgg16", width=0.0625, dataset="demo", subset=64, epochs=2, batch_size=8,
                            method="pwt", target=0.5, prune_every_steps=2, reach=0.5, seed=1, device="cpu")
    parts = build(config)
    return Trainer(parts.model, parts.optimizer, parts.train_loader, parts.train_loader,
                   options=TrainerOptions(epochs=2, progress=False, quiet=True, recalibrate_bn_batches=2,
                                          compact=compact, compact_min_share=min_share),
                   method=parts.method, scheduler=parts.scheduler, epoch_cost=cost_meter(config, parts))


def test_the_trainer_compacts_during_the_epoch_and_counts_the_macs_it_computed():
    """With step pruning the network shrinks during epoch 1; its train_macs weigh each size by its
    steps, below the epoch-start count that a compaction at the epoch's end only would record."""
    during, at_end = step_trainer(0.0), step_trainer(1.0)
    sizes = []
    step_end = during.compactor.on_step_end
    during.compactor.on_step_end = lambda: (step_end(), sizes.append(parameters(during.model)))[0]
    during.fit()
    at_end.fit()
    first = sizes[:len(during.train_loader)]
    assert first[0] > first[-1] and len(set(first)) > 2  # several compactions within epoch 1
    assert at_end.compactor.compactions == 1 and during.compactor.compactions > 2
    assert during.history[0]["train_macs"] < 0.9 * at_end.history[0]["train_macs"]
    assert during.history[1]["train_macs"] == pytest.approx(at_end.history[1]["train_macs"])  # same final size
    assert during.history[0]["prune_seconds"] > 0
    assert during.history[0]["pruned_filter_fraction"] == at_end.history[0]["pruned_filter_fraction"]
    torch.testing.assert_close(during.history[0]["train_loss"], at_end.history[0]["train_loss"], rtol=1e-3, atol=0)
