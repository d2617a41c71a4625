"""Sparse export: exact round trip, size at LeNet-5 sparsity, no pickle."""

import numpy as np
import pytest
import torch
from torch import nn

from intrain.masks import WEIGHT_MASK
from intrain.methods import ra
from intrain.models import create_model
from intrain.sparse import dense_file_bytes, load_sparse, materialize, save_sparse


def masked_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    with ra(range_=1.0, epsilon=0.1, partition="none").attached(net) as method:
        net(torch.randn(2, 1, 8, 8))  # BatchNorm statistics and counter change
        method.on_step_end()
    return net


def assert_identical(a, b):
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert torch.equal(a[key], b[key]), key


def test_round_trip_gives_the_identical_materialised_state_dict(tmp_path):
    net = masked_net()
    state = net.state_dict()
    assert not torch.equal(state["0.weight"], materialize(state)["0.weight"])  # dense W has pruned values
    save_sparse(net, tmp_path / "m.npz")
    loaded = load_sparse(tmp_path / "m.npz")
    assert_identical(loaded, materialize(state))
    assert loaded[f"0.{WEIGHT_MASK}"].dtype == torch.float32 and loaded["1.num_batches_tracked"].dtype == torch.int64
    fresh = masked_net()
    with ra(partition="none").attached(fresh):
        fresh.load_state_dict(loaded)
        x = torch.randn(2, 1, 8, 8)
        fresh.eval(), net.eval()
        with ra(partition="none").attached(net):
            assert torch.equal(fresh(x), net(x))


def test_round_trip_of_plain_sparse_and_dense_tensors(tmp_path):
    weight = torch.zeros(30, 40)
    weight[3, 7], weight[29, 39], weight[0, 0] = 1.5, -2.25, 1e-30
    state = {"a.weight": weight, "a.bias": torch.randn(30), "b.weight": torch.randn(5, 5).double(),
             "steps": torch.tensor(7)}
    save_sparse(state, tmp_path / "plain.npz")
    assert_identical(load_sparse(tmp_path / "plain.npz"), state)


def test_lenet5_at_977_percent_sparsity_is_under_a_25th_of_the_dense_file(tmp_path):
    torch.manual_seed(0)
    net = create_model("lenet5")
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.register_buffer(WEIGHT_MASK, torch.rand_like(module.weight) < 0.023)
    size = save_sparse(net, tmp_path / "lenet.npz")
    assert size <= dense_file_bytes(net) / 25
    assert_identical(load_sparse(tmp_path / "lenet.npz"), materialize(net))


def test_the_file_is_plain_arrays_and_foreign_archives_are_refused(tmp_path):
    save_sparse(masked_net(), tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not an intrain sparse file"):
        load_sparse(tmp_path / "other.npz")
