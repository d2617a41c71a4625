"""The README's own-loop examples run exactly as printed."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def runnable_blocks() -> list[str]:
    """Python blocks of the README that are complete programs (they import what they use)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return [b for b in blocks if "from intrain.methods import" in b and "attached(" in b]


def test_readme_has_runnable_own_loop_examples():
    assert runnable_blocks(), "README lost its own-loop example"


@pytest.mark.parametrize("index", range(len(runnable_blocks())))
def test_readme_own_loop_example_runs(index, capsys):
    namespace: dict = {}
    exec(compile(runnable_blocks()[index], f"README.md block {index}", "exec"), namespace)
    method, model = namespace["method"], namespace["model"]
    assert method.model is None  # detached when the with-block ended
    assert method.pruned_filter_fraction() > 0 or getattr(method, "sparsity", lambda: 0)() > 0
    printed = capsys.readouterr().out
    assert printed.count("epoch") == namespace["epochs"]
