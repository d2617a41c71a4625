"""Fixtures shared across test folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_folder(root: Path, classes=("cat", "dog", "emu"), train: int = 6, val: int = 2,
                 size: tuple[int, int] = (24, 20)) -> Path:
    """Random RGB images in ``root/{train,val}/<class>/`` (the ImageNet layout): per class, ``0.jpg``
    then PNGs ``1.png``, ``2.png``, ... of ``size`` (width, height). Returns ``root``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / (f"{i}.jpg" if i == 0 else f"{i}.png"))
    return root


@pytest.fixture
def image_folder():
    """``image_folder(root, classes=..., train=6, val=2, size=(24, 20)) -> root``: see :func:`write_folder`."""
    pytest.importorskip("PIL.Image")
    return write_folder


@pytest.fixture
def one_thread():
    """One torch thread for the test: depthwise convolutions of tiny models are far slower on several
    threads of a busy machine. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
