"""Network Slimming (methods/slim.py): the penalty's gradient, the channels |γ| chooses, exact
compaction, the event the loops call before each optimizer step, and one tiny CLI run."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from torch import nn

from intrain.cli import main
from intrain.compaction import compact
from intrain.compactor import Compactor
from intrain.config import TrainConfig
from intrain.errors import ConfigError
from intrain.masks import FILTER_MASK
from intrain.methods import PruningMethod, slim

GAMMA0 = [0.01, -0.02, 0.5, 0.03]  # conv 0's BatchNorm scales
GAMMA1 = [0.2, -0.9, 0.05, 0.6, 0.07, 0.4]  # conv 3's


def tiny_net(dtype: torch.dtype = torch.float32) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)).to(dtype)
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor(GAMMA0))
        net[4].weight.copy_(torch.tensor(GAMMA1))
        for conv in (net[0], net[3]):  # filter L1 norms in the opposite order: only |γ| may decide
            conv.weight.mul_(torch.arange(conv.out_channels, 0, -1, dtype=dtype).view(-1, 1, 1, 1) * 10)
    return net


def pruned(module: nn.Module) -> list[int]:
    mask = getattr(module, FILTER_MASK)
    return [i for i in range(len(mask)) if not mask[i]]


def backward(net: nn.Module, dtype: torch.dtype = torch.float32, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.randn(8, 1, 8, 8, generator=generator, dtype=dtype), torch.randint(0, 3, (8,), generator=generator)
    nn.functional.cross_entropy(net(x), y).backward()


def test_the_penalty_adds_lambda_sign_gamma_to_every_batchnorm_scale_gradient_and_nothing_else():
    net = tiny_net()
    with torch.no_grad():
        net[1].weight[2] = 0.0  # γ = 0: its subgradient is 0
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    method = slim(target=0.5, epochs=2, slim_lambda=1e-2).attach(net, optimizer)
    backward(net)
    before = {name: p.grad.clone() for name, p in net.named_parameters()}
    method.on_before_optimizer_step()
    signs = {"1.weight": torch.tensor([1.0, -1.0, 0.0, 1.0]), "4.weight": torch.tensor([1.0, -1, 1, 1, 1, 1])}
    for name, p in net.named_parameters():
        expected = before[name] + 1e-2 * signs[name] if name in signs else before[name]
        assert torch.equal(p.grad, expected), name
    assert torch.equal(net[1].weight.grad[2], before["1.weight"][2])
    optimizer.zero_grad(set_to_none=True)
    method.on_before_optimizer_step()  # no backward: no gradient to add to
    assert net[1].weight.grad is None


def test_channels_are_chosen_by_gamma_magnitude_globally_or_per_layer():
    x = torch.zeros(1, 1, 8, 8)
    net = tiny_net()
    method = slim(target=0.5, epochs=2).attach(net, torch.optim.SGD(net.parameters(), lr=0.1), example_inputs=x)
    assert method.scope == "global" and method.prune_to(0.5) == 5
    # the 5 lowest |γ| of all 10: 0.01, 0.02, 0.03 (conv 0 keeps its 0.5), then 0.05 and 0.07 of conv 3
    assert pruned(net[0]) == [0, 1, 3] and pruned(net[3]) == [2, 4]
    assert net[1].weight.detach().abs().tolist()[2] == 0.5 and not net[0].weight[[0, 1, 3]].any()
    net = tiny_net()
    method = slim(target=0.5, epochs=2, scope="layer").attach(net, torch.optim.SGD(net.parameters(), lr=0.1),
                                                                  example_inputs=x)
    assert method.prune_to(0.5) == 5
    assert pruned(net[0]) == [0, 1] and pruned(net[3]) == [0, 2, 4]  # |γ| 0.2, 0.05, 0.07: the -0.9 stays


def test_slimming_prunes_after_the_last_epoch_and_compaction_keeps_the_outputs_in_float64():
    net = tiny_net(torch.float64)
    x = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    method = slim(target=0.5, epochs=2, slim_lambda=1e-2).attach(net, optimizer, example_inputs=x[:1])
    events = []
    for epoch in range(2):
        method.on_epoch_begin(epoch)
        for seed in range(3):
            optimizer.zero_grad()
            backward(net, torch.float64, seed)
            method.on_before_optimizer_step()
            optimizer.step()
            method.on_step_end()
        events.append(method.on_epoch_end(epoch))
    assert events[0] is None and events[1].filters_pruned == 5 and method.pruned_filter_fraction() == 0.5
    net.eval()
    before = net(x)
    compact(net, optimizer, example_inputs=x[:1])
    method.reattach(optimizer)
    assert net[0].weight.shape[0] + net[3].weight.shape[0] == 5 and net[1].weight.shape[0] == net[0].weight.shape[0]
    torch.testing.assert_close(net(x), before, rtol=1e-12, atol=1e-12)
    net.train()  # the compacted scales are penalised too
    method.on_epoch_begin(2)
    optimizer.zero_grad()
    backward(net, torch.float64)
    grad = net[4].weight.grad.clone()
    method.on_before_optimizer_step()
    assert torch.equal(net[4].weight.grad, grad + 1e-2 * net[4].weight.detach().sign())


def test_the_recommended_recipe_prunes_during_training_to_the_target():
    net = tiny_net()
    x = torch.zeros(1, 1, 8, 8)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    method = slim(target=0.5, epochs=2, recipe="recommended", steps_per_epoch=6).attach(net, optimizer,
                                                                                         example_inputs=x)
    compactor = Compactor(net, optimizer, method)
    fractions = []
    for epoch in range(2):
        method.on_epoch_begin(epoch)
        for seed in range(6):
            optimizer.zero_grad()
            backward(net, seed=seed)
            method.on_before_optimizer_step()
            optimizer.step()
            compactor.on_step_end()
        compactor.on_epoch_end(epoch)
        fractions.append(method.pruned_filter_fraction())
    # cubic to 50% after 1.2 epochs, a prune every 6 steps: 0.5 - 0.5 * (1 - 1 / 1.2) ** 3 = 49.8% after the
    # first epoch's 6 steps, i.e. 5 of the 10 filters (a fraction is rounded up to whole filters)
    assert fractions == [0.5, 0.5] and compactor.compactions >= 1
    assert net[0].weight.shape[0] + net[3].weight.shape[0] == 5


def test_a_conv_without_batchnorm_is_refused_in_one_line(tmp_path, capsys):
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(),
                        nn.Flatten(), nn.Linear(6 * 4 * 4, 3))
    method = slim(target=0.5, epochs=2)
    with pytest.raises(ConfigError, match=r"^slim: layer '3' has no BatchNorm \(with scales\) after it"):
        method.attach(net)
    assert method.model is None  # nothing left attached
    assert main(["train", "--method", "slim", "--model", "lenet5", "--dataset", "demo", "--subset", "100",
                 "--epochs", "1", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "layer 'conv1' has no BatchNorm" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_slim_settings():
    config = TrainConfig.of(method="slim", epochs=4)
    c = config.method_config
    assert (c.target, c.slim_lambda, c.recipe, c.scope) == (0.5, 1e-4, "paper", "global")
    assert config.compacts and config.last_prune_epoch == 4
    assert TrainConfig.of(method="slim", recipe="recommended", epochs=10).last_prune_epoch == 6
    with pytest.raises(ConfigError, match=r"slim_lambda: must be a finite number >= 0, got -1"):
        TrainConfig.of(method="slim", slim_lambda=-1)
    with pytest.raises(ConfigError, match=r"recipe: unknown value 'cubic'; choose one of: paper, recommended"):
        TrainConfig.of(method="slim", recipe="cubic")
    with pytest.raises(ConfigError, match=r"slim_lambda: not used by method pwt \(used by: slim\)"):
        TrainConfig.of(method="pwt", slim_lambda=1e-4)
    with pytest.raises(ConfigError, match=r"steps_per_epoch: slim's recipe recommended prunes every 6"):
        slim(target=0.5, epochs=2, recipe="recommended")
    with pytest.raises(ConfigError, match=r"scope: unknown value 'paper'"):
        slim(target=0.5, epochs=2, scope="paper")


class Recorder(PruningMethod):
    """Records the events and whether the gradients were there when it was asked before the step."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def on_before_optimizer_step(self) -> None:
        super().on_before_optimizer_step()
        self.calls.append("before" if all(p.grad is not None for p in self.model.parameters()) else "no grad")

    def on_step_end(self):
        self.calls.append("end")
        return super().on_step_end()


class StubScaler:
    """fp16's gradient scaler as the Trainer drives it (no CUDA here): records the unscaling."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        return loss

    def unscale_(self, optimizer) -> None:
        self.calls.append("unscale")

    def step(self, optimizer) -> None:
        optimizer.step()

    def update(self) -> None:
        pass


@pytest.mark.parametrize("fp16", [False, True])
def test_the_trainer_calls_the_method_after_backward_and_before_each_optimizer_step(fp16):
    from intrain.engine.build import build
    from intrain.engine.trainer import Trainer, TrainerOptions

    config = TrainConfig.of(model="vgg16", width=0.0625, dataset="demo", subset=64, epochs=1, batch_size=32,
                            device="cpu")
    parts = build(config)
    method = Recorder()
    handle = parts.optimizer.register_step_pre_hook(lambda *args: method.calls.append("step"))
    trainer = Trainer(parts.model, parts.optimizer, parts.train_loader, parts.train_loader, method=method,
                      options=TrainerOptions(epochs=1, progress=False, quiet=True, recalibrate_bn_batches=0))
    if fp16:  # the gradients the method sees are unscaled
        trainer.scaler = StubScaler(method.calls)
    trainer.fit()
    handle.remove()
    unscale = ["unscale"] if fp16 else []
    assert method.calls == (unscale + ["before", "step", "end"]) * 2


def test_network_slimming_end_to_end_on_the_demo_data(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--method", "slim", "--target", "0.5", "--slim-lambda", "1e-3", "--model", "vgg16",
                 "--width", "0.0625", "--dataset", "demo", "--subset", "200", "--batch-size", "50", "--epochs", "2",
                 "--out", str(run), "--quiet"]) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["method"] == "slim" and config["slim_lambda"] == 1e-3 and config["recipe"] == "paper"
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [r["pruned_filter_fraction"] for r in history] == [0.0, 0.5]  # once, after the last epoch
    summary = json.loads((run / "summary.json").read_text())
    assert summary["pruned_filter_fraction"] == 0.5 and summary["departures"] == ["no fine-tuning after the prune"]
    conv = [layer for layer in summary["layers"] if layer["kind"] == "conv"]
    assert sum(r["filters_pruned"] for r in conv) == sum(r["filters"] for r in conv) // 2
    state = torch.load(run / "model.pt", weights_only=True)["model"]
    kept = sum(v.shape[0] for k, v in state.items() if k.endswith(".weight") and v.dim() == 4)
    assert kept == sum(r["filters"] for r in conv) // 2  # compacted
    label = TrainConfig.load(run / "config.yaml").spec.label
    assert label(summary, config) == "Slim 50%"
    assert label(summary, {**config, "recipe": "recommended"}) == "Slim 50% recommended"
