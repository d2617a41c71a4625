"""The README's own-loop examples run exactly as printed."""

import re
from pathlib import Path

import pytest
import torch

from intrain.masks import WEIGHT_MASK

README = Path(__file__).resolve().parents[1] / "README.md"
METHODS = ("pwt", "ra")  # each has its own complete example


def runnable_blocks() -> list[str]:
    """Python blocks of the README that are complete programs (they import what they use)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return [b for b in blocks if "from intrain.methods import" in b and "attached(" in b]


def block_for(name: str) -> str:
    found = [b for b in runnable_blocks() if re.search(rf"^from intrain\.methods import {name}$", b, flags=re.M)]
    assert len(found) == 1, f"README should have exactly one own-loop example importing {name}, found {len(found)}"
    return found[0]


def run_block(code: str, label: str) -> dict:
    namespace: dict = {}
    exec(compile(code, f"README.md ({label})", "exec"), namespace)
    return namespace


def test_readme_has_runnable_own_loop_examples():
    assert runnable_blocks(), "README lost its own-loop example"
    for name in METHODS:
        block_for(name)


@pytest.mark.parametrize("index", range(len(runnable_blocks())))
def test_readme_own_loop_example_runs(index, capsys):
    namespace = run_block(runnable_blocks()[index], f"block {index}")
    method = namespace["method"]
    assert method.model is None  # detached when the with-block ended
    assert method.pruned_filter_fraction() > 0 or getattr(method, "weight_sparsity", lambda: 0)() > 0
    printed = capsys.readouterr().out
    assert printed.count("epoch") == namespace["epochs"]


def test_readme_ra_example_prunes_weights_at_every_step(capsys):
    namespace = run_block(block_for("ra"), "ra")
    method, model, loader, epochs = namespace["method"], namespace["model"], namespace["loader"], namespace["epochs"]
    assert method.model is None and "forward" not in vars(model.conv1)  # detached: plain forward again
    assert method.iteration == epochs * len(loader)  # on_step_end after every optimizer step
    assert len(method.classes) == 2 and method.class_start_iterations()[1] == len(loader) * epochs // 2
    masks = {name: buf for name, buf in model.named_buffers() if name.endswith(WEIGHT_MASK)}
    assert len(masks) == 4 and all(((m == 0) | (m == 1)).all() for m in masks.values())
    assert 0.5 < method.weight_sparsity() < 1 and all((m == 0).any() for m in masks.values())
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"epoch {e}" for e in range(epochs)]
    assert lines[-1] == f"epoch {epochs - 1}: {method.weight_sparsity():.0%} of weights pruned"
    assert torch.isfinite(model(torch.zeros(1, 1, 28, 28))).all()
