
import pytest
import torch
import torch.nn.functional as F

from intrain.data import BatchLoader, dataset_spec
from intrain.errors import ConfigError

MNIST = dataset_spec("mnist")
CIFAR = dataset_spec("cifar10")


def make_data(n=50, channels=1, size=28, seed=0):
    """Random uint8 images; label i for example i, so a batch's labels reveal its indices."""
    generator = torch.Generator().manual_seed(seed)
    shape = (n, channels, size, size)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    return images, torch.arange(n)


def normalise(images, spec):
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    return (images.float() / 255 - mean) / std


def collect(loader, epoch, start_batch=0):
    return list(loader.epoch(epoch, start_batch=start_batch))


def order_of(loader, epoch):
    return torch.cat([y for _, y in loader.epoch(epoch)])


def test_batch_types_and_length():
    images, labels = make_data(50)
    loader = BatchLoader(images, labels, MNIST, batch_size=16, train=True)
    batches = collect(loader, 0)
    assert len(loader) == len(batches) == 4
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    x, y = batches[0]
    assert x.dtype == torch.float32 and x.shape == (16, 1, 28, 28) and y.dtype == torch.int64
    dropped = BatchLoader(images, labels, MNIST, batch_size=16, train=True, drop_last=True)
    assert len(dropped) == len(collect(dropped, 0)) == 3


def test_train_order_depends_only_on_seed_and_epoch():
    images, labels = make_data(50)
    a = BatchLoader(images, labels, MNIST, batch_size=8, train=True, seed=7)
    b = BatchLoader(images, labels, MNIST, batch_size=8, train=True, seed=7)
    expected = torch.randperm(50, generator=torch.Generator().manual_seed(7 * 1_000_003 + 3))
    assert torch.equal(order_of(a, 3), expected)
    for (xa, ya), (xb, yb) in zip(collect(a, 3), collect(b, 3)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(order_of(a, 3), order_of(a, 4))
    assert sorted(order_of(a, 4).tolist()) == list(range(50))


def test_global_rng_untouched():
    images, labels = make_data(64, channels=3, size=32)
    loader = BatchLoader(images, labels, CIFAR, batch_size=16, train=True)
    state = torch.get_rng_state()
    collect(loader, 0)
    assert torch.equal(torch.get_rng_state(), state)


def test_eval_order_is_fixed_and_plain():
    images, labels = make_data(40, channels=3, size=32)
    loader = BatchLoader(images, labels, CIFAR, batch_size=16, train=False)
    for epoch in (0, 5):
        x = torch.cat([x for x, _ in loader.epoch(epoch)])
        assert torch.equal(order_of(loader, epoch), labels)
        torch.testing.assert_close(x, normalise(images, CIFAR))


@pytest.mark.parametrize("spec, channels, size", [(MNIST, 1, 28), (CIFAR, 3, 32)])
@pytest.mark.parametrize("start_batch", [0, 1, 3, 7])
def test_start_batch_resumes_exactly(spec, channels, size, start_batch):
    images, labels = make_data(50, channels, size)
    loader = BatchLoader(images, labels, spec, batch_size=7, train=True, seed=2)
    full = collect(loader, 5)
    resumed = collect(loader, 5, start_batch=start_batch)
    assert len(resumed) == len(full) - start_batch
    for (xa, ya), (xb, yb) in zip(full[start_batch:], resumed):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


@pytest.mark.parametrize("bad", [-1, 9])
def test_start_batch_out_of_range(bad):
    images, labels = make_data(50)
    loader = BatchLoader(images, labels, MNIST, batch_size=7, train=True)
    with pytest.raises(ConfigError, match="start_batch must be in 0..8"):
        loader.epoch(0, start_batch=bad)


def test_normalisation_golden_values():
    image = torch.tensor([[[[0, 255], [51, 128]]]], dtype=torch.uint8)
    (x, y), = collect(BatchLoader(image, torch.tensor([3]), MNIST, batch_size=4, train=False), 0)
    expected = torch.tensor([[[[-0.4242129, 2.8214865], [0.2249270, 1.2050009]]]])
    torch.testing.assert_close(x, expected, atol=1e-5, rtol=0)
    assert y.tolist() == [3]


def test_normalisation_golden_values_per_channel():
    image = torch.full((1, 3, 2, 2), 200, dtype=torch.uint8)
    (x, _), = collect(BatchLoader(image, torch.tensor([0]), CIFAR, batch_size=1, train=False), 0)
    for channel, value in enumerate([1.1858855, 1.2407135, 1.2913369]):
        torch.testing.assert_close(x[0, channel], torch.full((2, 2), value), atol=1e-5, rtol=0)


@pytest.mark.parametrize("pad_to, before, after", [(32, 2, 2), (31, 1, 2), (28, 0, 0)])
def test_pad_to_pads_black_pixels_before_normalisation(pad_to, before, after):
    images, labels = make_data(10)
    loader = BatchLoader(images, labels, MNIST, batch_size=10, train=False, pad_to=pad_to)
    (x, _), = collect(loader, 0)
    assert x.shape == (10, 1, pad_to, pad_to)
    inner = x[:, :, before : pad_to - after, before : pad_to - after]
    torch.testing.assert_close(inner, normalise(images, MNIST))
    black = (0 - 0.1307) / 0.3081
    border = torch.ones(pad_to, pad_to, dtype=torch.bool)
    border[before : pad_to - after, before : pad_to - after] = False
    assert border.sum() == pad_to**2 - 28**2
    torch.testing.assert_close(x[:, 0, border], torch.full_like(x[:, 0, border], black))


def test_pad_to_smaller_than_image_is_rejected():
    images, labels = make_data(4)
    with pytest.raises(ConfigError, match="pad_to=20"):
        BatchLoader(images, labels, MNIST, batch_size=2, train=False, pad_to=20)


def all_crops_and_flips(image):
    """The 9 x 9 x 2 images RandomCrop(32, padding=4) + horizontal flip can make of ``image``."""
    padded = F.pad(image, (4, 4, 4, 4))
    crops = [padded[:, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
    return torch.stack(crops + [c.flip(-1) for c in crops])


def test_cifar_train_augments_with_crop_and_flip():
    images, labels = make_data(32, channels=3, size=32)
    loader = BatchLoader(images, labels, CIFAR, batch_size=16, train=True, seed=1)
    x = torch.cat([x for x, _ in loader.epoch(0)])
    choices = []  # which of the 162 crop/flip candidates each sample is
    for sample, index in zip(x, order_of(loader, 0)):
        distance = (normalise(all_crops_and_flips(images[index]), CIFAR) - sample).abs()
        best = distance.amax(dim=(1, 2, 3)).argmin()
        assert torch.allclose(distance[best], torch.zeros(()), atol=1e-5)
        choices.append(int(best))
    flipped = sum(c >= 81 for c in choices)
    assert 4 < flipped < 28  # about half are flipped
    assert len({c % 81 for c in choices}) > 10  # crop offsets vary
    again = torch.cat([x for x, _ in loader.epoch(1)])
    assert not torch.equal(x, again)


def test_no_augmentation_for_mnist_even_when_training():
    images, labels = make_data(30)
    loader = BatchLoader(images, labels, MNIST, batch_size=8, train=True)
    x = torch.cat([x for x, _ in loader.epoch(2)])
    torch.testing.assert_close(x, normalise(images[order_of(loader, 2)], MNIST))


@pytest.mark.parametrize("n", [50, 51])
@pytest.mark.parametrize("spec, channels, size", [(MNIST, 1, 28), (CIFAR, 3, 32)])
def test_rank_shards_interleave_to_the_full_order(n, spec, channels, size):
    images, labels = make_data(n, channels, size)
    kwargs = dict(batch_size=5, train=True, seed=4)
    single = BatchLoader(images, labels, spec, **kwargs)
    ranks = [BatchLoader(images, labels, spec, rank=r, world_size=2, **kwargs) for r in (0, 1)]
    assert [len(r) for r in ranks] == ([5, 5] if n == 50 else [6, 6])  # ceil(ceil(n / 2) / 5)
    full_order = order_of(single, 9)
    padded = torch.cat([full_order, full_order[: 52 - n]]) if n % 2 else full_order
    shards = [order_of(r, 9) for r in ranks]
    assert torch.equal(torch.stack(shards, 1).flatten(), padded)
    assert set(torch.cat(shards).tolist()) == set(range(n))
    full_x = torch.cat([x for x, _ in single.epoch(9)])
    rank_x = [torch.cat([x for x, _ in r.epoch(9)]) for r in ranks]
    if n % 2 == 0:  # same augmentation for the same position of the epoch
        assert torch.equal(torch.stack(rank_x, 1).flatten(0, 1), full_x)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=4, rank=2, world_size=2), "rank"),
        (dict(batch_size=4, world_size=0), "rank"),
    ],
)
def test_invalid_arguments(kwargs, match):
    images, labels = make_data(8)
    with pytest.raises(ConfigError, match=match):
        BatchLoader(images, labels, MNIST, train=True, **kwargs)


def test_wrong_image_dtype_or_channels():
    images, labels = make_data(8)
    with pytest.raises(ConfigError, match="uint8"):
        BatchLoader(images.float(), labels, MNIST, batch_size=4, train=True)
    with pytest.raises(ConfigError, match="uint8"):
        BatchLoader(images, labels, CIFAR, batch_size=4, train=True)
