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
    callback = PruningCallback(pwt(target=0.5, epochs=2, recipe="paper", scope="layer"))
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
