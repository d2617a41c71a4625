from importlib import resources

from intrain.data import load_dataset

DEMO_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def test_demo_loads_balanced_subset(tmp_path):
    splits = load_dataset("demo", tmp_path / "ignored")  # data_dir is ignored for demo
    assert splits.spec.name == "demo"
    assert splits.train_images.shape == (6000, 1, 28, 28)
    assert splits.test_images.shape == (1000, 1, 28, 28)
    assert splits.train_labels.bincount().tolist() == [600] * 10
    assert splits.test_labels.bincount().tolist() == [100] * 10
    assert 0.10 < splits.train_images.float().mean().item() / 255 < 0.16  # MNIST-like ink


def test_demo_files_are_small_and_licensed():
    folder = resources.files("intrain.data").joinpath("demo")
    total = sum(len(folder.joinpath(name).read_bytes()) for name in DEMO_FILES)
    assert total <= 3 * 1024 * 1024
    readme = folder.joinpath("README.md").read_text()
    assert "CC BY-SA 3.0" in readme and "LeCun" in readme and "make_demo_subset.py" in readme


def test_demo_subset_option():
    splits = load_dataset("demo", subset=100, seed=0)
    assert splits.train_labels.bincount().tolist() == [10] * 10
