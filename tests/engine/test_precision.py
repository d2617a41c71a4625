"""--amp bf16 and --channels-last on the CPU: the forward passes run in bfloat16 and channels-last
memory order, and pruning, compaction, resume and export stay as exact as in float32."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from intrain.cli import main
from intrain.compaction import compact
from intrain.config import TrainConfig
from intrain.engine.build import apply_memory_format, build
from intrain.engine.run import step_wrapper
from intrain.engine.trainer import Trainer, TrainerOptions
from intrain.export import export_run, load_compact
from intrain.methods import pwt
from intrain.models import create_model
from test_resume import killed_and_resumed_matches

CHANNELS_LAST = torch.channels_last


def test_bf16_channels_last_forward_passes_and_compaction_keep_the_layout(monkeypatch):
    config = TrainConfig.of(model="vgg16", width=0.125, dataset="demo", subset=64, method="pwt", target=0.5, epochs=2,
                         batch_size=32, amp="bf16", channels_last=True, device="cpu", bn_recalibration_batches=1)
    parts = build(config)
    seen = []
    conv = parts.model.features[3]  # the second conv: its input comes out of a BatchNorm and ReLU
    conv.register_forward_hook(lambda m, args, out: seen.append(
        (args[0].dtype, out.dtype, args[0].is_contiguous(memory_format=CHANNELS_LAST), torch.is_grad_enabled())))
    losses = []  # the logits' dtype at every loss the trainer computes, and whether it is a training step

    def cross_entropy(logits, y, **kwargs):
        losses.append((logits.dtype, torch.is_grad_enabled()))
        return F.cross_entropy(logits, y, **kwargs)

    monkeypatch.setattr("intrain.engine.trainer.F", SimpleNamespace(cross_entropy=cross_entropy))
    trainer = Trainer(parts.model, parts.optimizer, parts.train_loader, parts.test_loader,
                      options=TrainerOptions(epochs=2, recalibrate_bn_batches=1, progress=False, quiet=True,
                                             amp="bf16", channels_last=True, compact=True),
                      method=parts.method, scheduler=parts.scheduler, wrap=step_wrapper(config, parts.device))
    trainer.fit()
    assert conv.out_channels == 4 < 8  # compacted twice (8 -> 6 -> 4 filters)
    # every training step and test batch in bf16, on channels-last inputs
    steps = 2 * len(parts.train_loader)
    assert losses.count((torch.bfloat16, True)) == steps and len(losses) == steps + 2 * len(parts.test_loader)
    # evaluation computes its summed loss from float32 logits; its convolutions ran in bf16 too
    assert seen.count((torch.bfloat16, torch.bfloat16, True, False)) >= 2 * len(parts.test_loader)
    evaluation = [s for s in seen if s[:3] == (torch.bfloat16, torch.bfloat16, True) and not s[3]]
    assert len(evaluation) >= 2 * len(parts.test_loader)  # test batches (and BatchNorm re-estimation)
    assert all(m.weight.is_contiguous(memory_format=CHANNELS_LAST) for m in parts.model.modules()
               if isinstance(m, torch.nn.Conv2d))
    assert parts.model.features[0].weight.dtype == torch.float32  # master weights stay float32


def pruned_channels_last(seed: int = 0):
    torch.manual_seed(seed)
    model = apply_memory_format(create_model("vgg16", width=0.25), TrainConfig.of(channels_last=True))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    method = pwt(target=0.9, epochs=1, criterion="l1").attach(model, optimizer)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(8, 1, 32, 32, generator=generator).contiguous(memory_format=CHANNELS_LAST)
    y = torch.randint(0, 10, (8,), generator=generator)
    for _ in range(2):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    method.prune_to(0.5)
    return model, optimizer, method, x


@pytest.mark.parametrize("amp, tolerance", [(False, 1e-4), (True, 2**-8)])
def test_channels_last_compacted_model_computes_what_the_masked_one_did(amp, tolerance):
    """float32: equal up to summation order, as without channels-last. bf16 autocast: each layer's
    output is rounded to bf16, so a different summation order may move it by one bf16 step (relative
    2^-8); measured bit-identical here (removed channels only added exact zeros)."""
    model, optimizer, method, x = pruned_channels_last()
    masked = copy.deepcopy(model)
    method.reattach(optimizer, graph=compact(model, optimizer, example_inputs=x[:1]).graph)
    apply_memory_format(model, TrainConfig.of(channels_last=True))
    assert model.features[0].out_channels < masked.features[0].out_channels
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        got, want = model.eval()(x), masked.eval()(x)
    assert float((got.float() - want.float()).abs().max()) <= tolerance * float(want.float().abs().max())


def test_bf16_channels_last_compacted_pwt_killed_mid_epoch_resumes_bit_identical(tmp_path):
    killed_and_resumed_matches(tmp_path, ["--model", "vgg16", "--width", "0.125", "--subset", "120", "--method",
                                          "pwt", "--target", "0.5", "--amp", "bf16", "--channels-last"])
    final = torch.load(tmp_path / "killed" / "model.pt", weights_only=True)["model"]
    assert final["features.0.weight"].shape[0] < 8  # compacted
    # export is as exact as today: the compact file computes what the run's model does
    export_run(tmp_path / "killed", "compact", latency=False)
    exported = load_compact(tmp_path / "killed" / "model_compact.pt")
    from intrain.export import compact_model, read_run

    config, state = read_run(tmp_path / "killed")
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(exported(x), compact_model(config, state)(x))


def test_fp16_needs_cuda(capsys):
    assert main(["train", "--dataset", "demo", "--amp", "fp16", "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fp16 trains with a gradient scaler on CUDA only" in err
    assert main(["train", "--dataset", "demo", "--amp", "fp8", "--quiet"]) == 2
    assert "amp: unknown value 'fp8'; choose one of: off, bf16, fp16" in capsys.readouterr().err
