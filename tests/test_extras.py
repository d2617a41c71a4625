"""The optional extras never replace the user's torch (no network: pyproject, Makefile and README).

Each torchvision release requires exactly one torch (measured from the wheels' METADATA: 0.27.1 torch
==2.12.1, 0.28.0 ==2.13.0, 0.29.0 ==2.14.0). So an extra that capped torchvision would force an old
torch on a newer one, and an uncapped one lets pip take the newest torchvision and replace torch
(``pip install --dry-run torchvision`` on torch 2.13.0+cpu: torchvision 0.29.1, torch 2.14.1 and 19
CUDA packages). What keeps torch is pinning it to the installed version in the same pip command
(``make extra``: torchvision 0.28.0 alone).
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+
TORCH_COUPLED = ("torch", "torchvision", "timm")


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()


def test_extras_leave_torch_to_the_user():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch = [r for r in project["dependencies"] if _name(r) == "torch"]
    assert torch and not re.search(r"<|==|~=", torch[0])  # a floor, no cap: the installed torch stays
    for extra, requirements in project["optional-dependencies"].items():
        for requirement in requirements:
            name = _name(requirement)
            assert name != "torch", f"extra {extra} names torch: {requirement}"
            if name in TORCH_COUPLED:  # a cap would force an old torch on a user with a newer one
                assert not re.search(r"<|==|~=", requirement), f"extra {extra} caps {requirement}"


def test_make_extra_pins_the_installed_torch_and_the_readme_says_how():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\nextra:"):].split("\n\n")[0]
    assert '.[$(EXTRA)]' in recipe and "torch==$$($(PY) -c 'import torch; print(torch.__version__" in recipe
    readme = (ROOT / "README.md").read_text()
    assert "make extra EXTRA=vision" in readme
    assert "pip install 'intrain[vision]' \"torch==$(python -c 'import torch; print(torch.__version__.split(\"+\")[0])')\"" in readme


def test_a_torchvision_built_for_another_torch_is_one_line(monkeypatch):
    """PyPI's torchvision beside a +cpu torch fails to import its operators: one line naming the fix."""
    import importlib

    from intrain.errors import ConfigError
    from intrain.models.external import external_factory

    real = importlib.import_module

    def broken(name, *args, **kwargs):
        if name.startswith("torchvision"):
            raise RuntimeError("operator torchvision::nms does not exist")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", broken)
    monkeypatch.setattr("torch.__version__", "2.13.0+cpu")
    with pytest.raises(ConfigError) as info:
        external_factory("torchvision", "resnet18")(num_classes=10, in_channels=3, width=1.0)
    message = str(info.value)
    assert "\n" not in message and "torchvision does not fit the installed torch 2.13.0+cpu" in message
    assert 'pip install torchvision --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"' in message
