import torch
from torch import nn

from intrain import criteria


def test_l1_is_mean_absolute_weight_per_filter():
    w = torch.tensor([[[[1.0, -2.0], [3.0, -4.0]]], [[[0.5, 0.5], [-0.5, 0.5]]]])  # [2, 1, 2, 2]
    assert torch.equal(criteria.l1(w), torch.tensor([2.5, 0.5]))


def test_l1_of_linear_rows():
    w = torch.tensor([[1.0, -1.0, 4.0], [0.0, 0.0, 3.0]])
    assert torch.allclose(criteria.l1(w), torch.tensor([2.0, 1.0]))


def test_random_scores_are_seeded():
    a = criteria.random_scores(5, torch.Generator().manual_seed(3))
    b = criteria.random_scores(5, torch.Generator().manual_seed(3))
    c = criteria.random_scores(5, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_activation_means_accumulate_over_every_training_batch_only():
    site = nn.Identity()
    means = criteria.ActivationMeans([site])
    with means.recording():
        site.train()
        site(torch.tensor([[[[1.0, -3.0]], [[2.0, 2.0]]]]))  # [1, 2, 1, 2]: channel means of relu: 0.5, 2
        site(torch.tensor([[[[3.0, 3.0]], [[-1.0, 0.0]]]]))  # 3, 0
        site.eval()
        site(torch.full((1, 2, 1, 2), 100.0))  # ignored: evaluation
    site.train()
    site(torch.full((1, 2, 1, 2), 100.0))  # ignored: outside recording()
    assert torch.allclose(means.means()[0], torch.tensor([1.75, 1.0]))
    means.reset()
    assert means.means()[0].numel() == 0
