"""The Lightning callback drives the same method objects as intrain's own Trainer."""

import pytest
import torch
from torch import nn

lightning = pytest.importorskip("lightning")

from intrain.errors import ConfigError  # noqa: E402
from intrain.integrations.lightning import PruningCallback  # noqa: E402
from intrain.methods import pwt  # noqa: E402


class TinyModule(lightning.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(8, 2))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def test_callback_prunes_on_schedule_and_keeps_filters_zero(tmp_path):
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(32, 1, 6, 6), torch.randint(0, 2, (32,)))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    module = TinyModule()
    callback = PruningCallback(pwt(target=0.5, epochs=2, recipe="paper", scope="layer"), compact=False)  # masked: the filters stay, zero
    trainer = lightning.Trainer(max_epochs=2, callbacks=[callback], accelerator="cpu", logger=False,
                                enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, loader)
    assert [e.epoch for e in callback.events] == [0, 1]
    mask = module.net[0].filter_mask
    assert int((~mask).sum()) == 4
    assert torch.count_nonzero(module.net[0].weight[~mask]) == 0
    assert callback.method.iteration == 8  # 4 optimizer steps per epoch
    assert callback.method.model is None  # detached at fit end


def test_callback_validates_its_argument():
    with pytest.raises(ConfigError, match="pruning method"):
        PruningCallback("pwt")


class TwoConvModule(TinyModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                 nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(8, 2))


class ParameterCounts(lightning.Callback):
    """The module's parameter count after every step and every epoch end (after PruningCallback's)."""

    def __init__(self):
        self.steps, self.epochs = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps.append(sum(p.numel() for p in pl_module.parameters()))

    def on_train_epoch_end(self, trainer, pl_module):
        self.epochs.append(sum(p.numel() for p in pl_module.parameters()))


def fit(method, *, compact=True, epochs=2, root=None, ckpt_path=None, checkpoint=False, module=None,
        precision="32-true"):
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(32, 1, 6, 6), torch.randint(0, 2, (32,)))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    torch.manual_seed(1)
    module = module if module is not None else TwoConvModule()
    counts = ParameterCounts()
    callback = PruningCallback(method, compact=compact)
    trainer = lightning.Trainer(max_epochs=epochs, callbacks=[callback, counts], accelerator="cpu", logger=False,
                                enable_checkpointing=checkpoint, enable_progress_bar=False,
                                enable_model_summary=False, default_root_dir=root, precision=precision)
    trainer.fit(module, loader, ckpt_path=ckpt_path)
    return module, callback, counts, trainer


def outputs(module):
    module.eval()
    x = torch.randn(16, 1, 6, 6, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        return module(x.to(next(module.parameters()).dtype))


def test_callback_compacts_at_every_prune_and_gives_the_masked_networks_outputs(tmp_path):
    dense = sum(p.numel() for p in TwoConvModule().parameters())
    # float64: the two trainings differ only by the order of float sums, which Adam would amplify in float32
    compacted, callback, counts, _ = fit(pwt(target=0.5, epochs=2, recipe="paper", scope="layer"), root=tmp_path, precision="64-true")
    masked, _, masked_counts, _ = fit(pwt(target=0.5, epochs=2, recipe="paper", scope="layer"), compact=False, root=tmp_path, precision="64-true")
    assert [e.details["compaction"]["filters_removed"] for e in callback.events] == [4, 4]  # 2 + 2 per epoch
    assert dense > counts.epochs[0] > counts.epochs[1]  # smaller at each prune event
    assert masked_counts.epochs == [dense, dense]
    assert compacted.net[0].weight.shape[0] == 4 and compacted.net[3].weight.shape[0] == 4
    torch.testing.assert_close(outputs(compacted), outputs(masked), rtol=1e-9, atol=1e-10)


def test_callback_compacts_during_the_epoch_with_step_pruning(tmp_path):
    method = pwt(target=0.5, epochs=2, schedule="cubic", reach=0.5, prune_every_steps=1, steps_per_epoch=4)
    _, callback, counts, _ = fit(method, root=tmp_path)
    # dense 714 parameters; cubic to 50% over epoch 0: 3 of each conv's 8 filters after step 1, 4 after step 2
    assert counts.steps == [312, 214] + [214] * 6
    assert callback.compactor.compactions == 2 and [e.epoch for e in callback.events] == [0]


def test_a_compacted_lightning_checkpoint_resumes(tmp_path):
    full, _, _, _ = fit(pwt(target=0.5, epochs=2, recipe="paper", scope="layer"), root=tmp_path / "full")
    fit(pwt(target=0.5, epochs=2, recipe="paper", scope="layer"), epochs=1, root=tmp_path / "half", checkpoint=True)
    saved = next((tmp_path / "half").rglob("*.ckpt"))
    assert torch.load(saved, weights_only=True)["state_dict"]["net.0.weight"].shape[0] == 6  # compacted
    resumed, callback, counts, _ = fit(pwt(target=0.5, epochs=2, recipe="paper", scope="layer"), root=tmp_path / "half", ckpt_path=saved)
    assert callback.method.pruned_filter_fraction() == 0.5 and [e.epoch for e in callback.events] == [1]
    assert resumed.net[0].weight.shape == full.net[0].weight.shape
    torch.testing.assert_close(outputs(resumed), outputs(full), rtol=0, atol=0)


def test_callback_asks_the_method_after_backward_and_before_each_optimizer_step(tmp_path):
    """``on_before_optimizer_step`` (Network Slimming's penalty): the gradients there, the step not yet made."""
    from intrain.methods import PruningMethod

    class Recorder(PruningMethod):
        def __init__(self):
            super().__init__()
            self.calls, self.weight = [], None

        def on_before_optimizer_step(self):
            super().on_before_optimizer_step()
            self.calls.append("before" if all(p.grad is not None for p in self.model.parameters()) else "no grad")
            self.weight = self.model.net[0].weight.detach().clone()

        def on_step_end(self):
            self.calls.append("stepped" if not torch.equal(self.model.net[0].weight, self.weight) else "not stepped")
            return super().on_step_end()

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(16, 1, 6, 6), torch.randint(0, 2, (16,)))
    callback = PruningCallback(Recorder(), compact=False)
    trainer = lightning.Trainer(max_epochs=1, callbacks=[callback], accelerator="cpu", logger=False,
                                enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(TinyModule(), torch.utils.data.DataLoader(data, batch_size=8))
    assert callback.method.calls == ["before", "stepped"] * 2
