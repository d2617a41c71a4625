"""Image-folder datasets (the ImageNet layout) decoded with Pillow: layout errors, transforms,
determinism across worker counts, sharding, and training on a generated folder from the CLI."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from intrain.cli import main
from intrain.data.folder import (FolderLoader, center_box, folder_spec, random_resized_box, scan_folder)
from intrain.data.specs import IMAGENET_MEAN, IMAGENET_STD
from intrain.errors import DataError

Image = pytest.importorskip("PIL.Image")


def test_scan_lists_classes_sorted_and_skips_other_files(image_folder, tmp_path):
    root = image_folder(tmp_path / "d")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    (root / "train" / "cat" / ".hidden.png").write_bytes(b"")
    data = scan_folder(root, 32)
    assert data.classes == ("cat", "dog", "emu")
    assert data.spec == folder_spec(3, 32)
    assert data.spec.mean == IMAGENET_MEAN and data.spec.std == IMAGENET_STD
    assert len(data.train_files) == 18 and len(data.val_files) == 6
    assert data.train_labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert Path(data.train_files[0]).name == "0.jpg" and Path(data.train_files[6]).parent.name == "dog"


@pytest.mark.parametrize("breakage, names", [
    ("missing", "d not found"),
    ("no-val", "has no val folder"),
    ("no-classes", "train has no class folders"),
    ("empty-class", "train/dog holds no images"),
    ("val-differs", "val has other class folders than"),
    ("one-class", "a classifier needs at least 2"),
])
def test_bad_layouts_raise_one_line_naming_the_folder(image_folder, tmp_path, breakage, names):
    root = tmp_path / "d"
    if breakage != "missing":
        image_folder(root, classes=("cat",) if breakage == "one-class" else ("cat", "dog", "emu"))
    if breakage == "no-val":
        for f in (root / "val").rglob("*.*"):
            f.unlink()
        for d in sorted((root / "val").glob("*")):
            d.rmdir()
        (root / "val").rmdir()
    elif breakage == "no-classes":
        for f in (root / "train").rglob("*.*"):
            f.unlink()
        for d in (root / "train").glob("*"):
            d.rmdir()
    elif breakage == "empty-class":
        for f in (root / "train" / "dog").glob("*"):
            f.unlink()
    elif breakage == "val-differs":
        (root / "val" / "emu").rename(root / "val" / "gnu")
    with pytest.raises(DataError) as error:
        scan_folder(root)
    message = str(error.value)
    assert names in message and "\n" not in message
    if breakage == "val-differs":
        assert "missing 'emu'" in message and "extra 'gnu'" in message


def test_random_resized_box_golden_and_within_bounds():
    assert random_resized_box(100, 80, random.Random(0)) == GOLDEN_BOX
    for seed in range(200):
        left, top, right, bottom = random_resized_box(100, 80, random.Random(seed))
        width, height = right - left, bottom - top
        assert 0 <= left < right <= 100 and 0 <= top < bottom <= 80
        assert 0.08 * 8000 * 0.9 <= width * height <= 8000
        assert 3 / 4 * 0.9 <= width / height <= 4 / 3 * 1.1
    # no attempt fits a 1000x10 strip: the fallback is the centre crop of aspect 4/3
    assert random_resized_box(1000, 10, random.Random(0)) == (493, 0, 506, 10)


# Random(0): scale 0.08 + 0.92 * 0.8444 = 0.857 of 8,000 px, log-ratio -0.2877 + 0.5754 * 0.7580 -> aspect
# 1.16, so w = round(sqrt(6855 * 1.16)) = 89, h = round(sqrt(6855 / 1.16)) = 77; then top in 0..3, left in 0..11
GOLDEN_BOX = (0, 3, 89, 80)


def test_center_box_is_resize_then_center_crop():
    # shorter side 80 -> 64 / 0.875 = 73.1, crop 64 of it: 70 of the original's 80 pixels, centred
    assert center_box(100, 80, 64) == (15.0, 5.0, 85.0, 75.0)


def test_eval_batches_are_normalised_centre_crops(image_folder, tmp_path):
    root = tmp_path / "d"
    image_folder(root, train=2, val=1)
    # a val image whose left half is black and right half white, and one of a flat colour
    half = np.zeros((40, 60, 3), dtype=np.uint8)
    half[:, 30:] = 255
    Image.fromarray(half).save(root / "val" / "cat" / "0.jpg".replace("jpg", "png"))
    (root / "val" / "cat" / "0.jpg").unlink()
    Image.fromarray(np.full((30, 30, 3), (255, 0, 128), dtype=np.uint8)).save(root / "val" / "dog" / "0.png")
    (root / "val" / "dog" / "0.jpg").unlink()
    data = scan_folder(root, 16)
    loader = FolderLoader(data.val_files, data.val_labels, data.spec, batch_size=8, train=False)
    x, y = next(loader.epoch(0))
    assert x.shape == (3, 3, 16, 16) and x.dtype == torch.float32 and y.tolist() == [0, 1, 2]
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = x * std + mean
    assert torch.allclose(pixels[0, :, :, :7], torch.zeros(3, 16, 7), atol=1e-6)  # black left, not flipped
    assert torch.allclose(pixels[0, :, :, 9:], torch.ones(3, 16, 7), atol=1e-6)
    flat = torch.tensor([1.0, 0.0, 128 / 255]).view(3, 1, 1).expand(3, 16, 16)
    assert torch.allclose(pixels[1], flat, atol=1e-6)


def _epoch(loader, epoch=0, start=0):
    return [(x.clone(), y.clone()) for x, y in loader.epoch(epoch, start)]


def test_training_batches_depend_only_on_seed_and_epoch_not_on_workers(image_folder, tmp_path):
    data = scan_folder(image_folder(tmp_path / "d"), 16)
    make = lambda workers, seed=0: FolderLoader(data.train_files, data.train_labels, data.spec,  # noqa: E731
                                                batch_size=4, train=True, seed=seed, workers=workers)
    torch.manual_seed(123)
    inline = _epoch(make(0))
    before = torch.get_rng_state()
    two = _epoch(make(2))
    assert torch.equal(torch.get_rng_state(), before)  # the global generator is never drawn from
    assert len(inline) == len(make(0)) == 5 and sum(y.numel() for _, y in inline) == 18
    for (a, la), (b, lb) in zip(inline, two):
        assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(inline[0][0], _epoch(make(0), epoch=1)[0][0])
    assert not torch.equal(inline[0][0], _epoch(make(0, seed=1))[0][0])
    tail = _epoch(make(0), start=3)  # a resumed epoch replays its remaining batches
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(tail, inline[3:])) and len(tail) == 2
    # every training image once per epoch, in a seeded order
    assert sorted(torch.cat([y for _, y in inline]).tolist()) == [0] * 6 + [1] * 6 + [2] * 6


def test_ranks_shard_the_epoch_and_channels_last_is_kept(image_folder, tmp_path):
    data = scan_folder(image_folder(tmp_path / "d"), 16)
    whole = FolderLoader(data.train_files, data.train_labels, data.spec, batch_size=18, train=True)
    shards = [FolderLoader(data.train_files, data.train_labels, data.spec, batch_size=9, train=True, rank=r,
                           world_size=2, channels_last=True) for r in (0, 1)]
    (x, _), = _epoch(whole)
    (x0, _), = _epoch(shards[0])
    (x1, _), = _epoch(shards[1])
    assert torch.equal(x0, x[0::2]) and torch.equal(x1, x[1::2])
    assert x0.is_contiguous(memory_format=torch.channels_last) and x.is_contiguous()


def test_unreadable_image_is_a_one_line_error_naming_the_file(image_folder, tmp_path):
    root = image_folder(tmp_path / "d")
    bad = root / "train" / "dog" / "3.png"
    data = scan_folder(root, 16)
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")  # spoilt after the scan, e.g. a disk error
    for workers in (0, 2):
        loader = FolderLoader(data.train_files, data.train_labels, data.spec, batch_size=18, train=True,
                              workers=workers)
        with pytest.raises(DataError, match=f"cannot decode image {bad}"):
            _epoch(loader)


def test_cli_reports_a_bad_folder_in_one_line(image_folder, tmp_path, capsys):
    root = image_folder(tmp_path / "d")
    bad = root / "train" / "emu" / "1.png"
    bad.write_bytes(b"not a png")
    code = main(["train", "--dataset", "folder", "--data-dir", str(root), "--model", "vgg16-224", "--width",
                 "0.0625", "--image-size", "32", "--epochs", "1", "--batch-size", "18", "--device", "cpu",
                 "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"cannot decode image {bad}" in err
    code = main(["train", "--dataset", "folder", "--data-dir", str(tmp_path / "nowhere"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "nowhere not found" in err
    bad.unlink()
    code = main(["train", "--dataset", "folder", "--data-dir", str(root), "--model", "alexnet", "--width", "0.0625",
                 "--image-size", "64", "--device", "cpu", "--out", str(tmp_path / "run2"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "alexnet cannot take 3x64x64 inputs" in err


def test_train_on_a_folder_with_workers_pwt_and_compaction(image_folder, tmp_path):
    """A CLI run (2 decoding workers, a stratified subset) trains, prunes, compacts and exports."""
    root = image_folder(tmp_path / "d", train=8, val=2, size=(40, 36))
    run = tmp_path / "run"
    assert main(["train", "--dataset", "folder", "--data-dir", str(root), "--model", "vgg16-224", "--width",
                 "0.0625", "--image-size", "32", "--subset", "18", "--workers", "2", "--method", "pwt",
                 "--target", "0.5", "--epochs", "2", "--batch-size", "6", "--device", "cpu", "--out", str(run),
                 "--quiet"]) == 0
    summary = __import__("json").loads((run / "summary.json").read_text())
    assert summary["pruned_filter_fraction"] == pytest.approx(0.5, abs=0.02)
    model = torch.load(run / "model.pt", weights_only=True)
    assert model["data"] == {"num_classes": 3, "in_channels": 3, "input_shape": [3, 32, 32], "image_size": 32,
                             "pad_to": None, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert main(["export", str(run), "--no-latency"]) == 0
    from intrain.export import load_compact

    compact = load_compact(run / "model_compact.pt")
    saved = torch.load(run / "model_compact.pt", weights_only=True)
    assert saved["config"]["num_classes"] == 3 and saved["config"]["input_shape"] == [3, 32, 32]
    assert compact(torch.zeros(2, 3, 32, 32)).shape == (2, 3)


def test_scan_checks_every_image_and_skip_bad_leaves_them_out(image_folder, tmp_path):
    root = image_folder(tmp_path / "d")
    bad = root / "val" / "cat" / "1.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match=f"cannot decode image {bad}: .*--skip-bad-images"):
        scan_folder(root, 16)
    data = scan_folder(root, 16, skip_bad=True)
    assert data.skipped == (str(bad),) and len(data.val_files) == 5 and len(data.train_files) == 18
    assert data.val_labels.tolist() == [0, 1, 1, 2, 2]


def test_cli_refuses_a_corrupt_image_before_the_run_and_skips_it_on_request(image_folder, tmp_path, capsys):
    """One line naming the file and the switch, no run folder; with --skip-bad-images the run trains
    and its summary counts the image."""
    root = image_folder(tmp_path / "d")
    bad = root / "train" / "dog" / "2.png"
    bad.write_bytes(b"not an image")
    run = tmp_path / "run"
    args = ["train", "--dataset", "folder", "--data-dir", str(root), "--model", "vgg16-224", "--width", "0.0625",
            "--image-size", "32", "--epochs", "1", "--batch-size", "6", "--device", "cpu", "--out", str(run), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot decode image {bad}" in err and "--skip-bad-images" in err
    assert not run.exists()
    assert main([*args, "--skip-bad-images"]) == 0
    summary = __import__("json").loads((run / "summary.json").read_text())
    assert summary["skipped_images"] == 1
    assert "skip_bad_images: true" in (run / "config.yaml").read_text()
    assert main(["train", "--dataset", "demo", "--skip-bad-images", "--quiet"]) == 2
    assert "skip_bad_images: only dataset folder" in capsys.readouterr().err


def test_scan_draws_a_bar_on_a_terminal_for_large_folders(image_folder, tmp_path, monkeypatch, capsys):
    import sys

    from intrain.data import folder

    root = image_folder(tmp_path / "d")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    scan_folder(root, 16)  # 24 images: below the threshold
    assert "checking images" not in capsys.readouterr().err
    monkeypatch.setattr(folder, "SCAN_BAR_FROM", 20)
    scan_folder(root, 16, progress=False)
    assert "checking images" not in capsys.readouterr().err
    scan_folder(root, 16)
    assert "checking images" in capsys.readouterr().err
