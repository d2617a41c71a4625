"""The event protocol every method shares: events called out of order fail with one clear line."""

import pytest
import torch
from torch import nn

from intrain.errors import IntrainError
from intrain.methods import dense, pwt, ra


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 3))


METHODS = {
    "dense": dense,
    "pwt": lambda: pwt(target=0.5, epochs=3, recipe="paper"),
    "ra": lambda: ra(range_=1.0, epsilon=0.1, partition="none"),
}
# after drive's 2 epochs: pwt's Algorithm 1 at 1/6 per epoch of 8 filters: ceil(8/3) = 3 pruned; RA and
# dense remove no whole filter
EXPECTED_FRACTION = {"dense": 0.0, "pwt": 3 / 8, "ra": 0.0}


def drive(method, model, optimizer, epochs=2, steps=2):
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 3, (4,))
    for epoch in range(epochs):
        method.on_epoch_begin(epoch)
        for _ in range(steps):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            method.on_before_optimizer_step()
            optimizer.step()
            method.on_step_end()
        method.on_epoch_end(epoch)


@pytest.mark.parametrize("name", METHODS)
def test_events_in_order_pass(name):
    model = net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    method = METHODS[name]()
    with method.attached(model, optimizer):
        drive(method, model, optimizer)
        assert method.iteration == 4
        assert method.pruned_filter_fraction() == pytest.approx(EXPECTED_FRACTION[name])
        if name == "ra":  # RA masks weights after every step: the first conv lost some
            assert 0 < float(model[0].weight_mask.float().mean()) < 1
    with method.attached(model, optimizer):  # a new attach is a new run: epochs start at 0 again
        drive(method, model, optimizer, epochs=1)


@pytest.mark.parametrize("name", METHODS)
def test_events_before_attach_fail(name):
    method = METHODS[name]()
    for call in (lambda: method.on_epoch_begin(0), method.on_before_optimizer_step, method.on_step_end,
                 lambda: method.on_epoch_end(0)):
        with pytest.raises(IntrainError, match=r"call attach\(model, optimizer\) before driving its events"):
            call()


@pytest.mark.parametrize("name", METHODS)
def test_events_out_of_order_fail_clearly(name):
    model = net()
    method = METHODS[name]()
    with method.attached(model, torch.optim.SGD(model.parameters(), lr=0.1)):
        method.on_epoch_begin(0)
        with pytest.raises(IntrainError, match=r"on_epoch_begin\(1\) while epoch 0 is still open; call on_epoch_end\(0\) first"):
            method.on_epoch_begin(1)
        with pytest.raises(IntrainError, match=r"on_epoch_end\(1\) while epoch 0 is open; call on_epoch_end\(0\)"):
            method.on_epoch_end(1)
        method.on_step_end()
        method.on_epoch_end(0)
        with pytest.raises(IntrainError, match=r"on_step_end\(\) after on_epoch_end\(0\) and before on_epoch_begin\(1\)"):
            method.on_step_end()
        with pytest.raises(IntrainError, match=r"on_before_optimizer_step\(\) after on_epoch_end\(0\) and before "
                                               r"on_epoch_begin\(1\); call on_before_optimizer_step\(\) before each"):
            method.on_before_optimizer_step()
        with pytest.raises(IntrainError, match=r"on_epoch_end\(0\) after on_epoch_end\(0\); each epoch ends once"):
            method.on_epoch_end(0)
        with pytest.raises(IntrainError, match=r"on_epoch_begin\(0\) after on_epoch_end\(0\); epochs count up .* next one is 1"):
            method.on_epoch_begin(0)
        assert method.iteration == 1  # the refused calls did nothing
        method.on_epoch_begin(1)  # and the run goes on
        method.on_step_end()
        method.on_epoch_end(1)
        assert method.iteration == 2


def test_a_refused_call_leaves_ra_untouched():
    model = net()
    method = ra(range_=1.0, epsilon=0.1, partition="none")
    with method.attached(model):
        method.on_epoch_begin(0)
        method.on_epoch_end(0)
        masks = [m.clone() for m in (model[0].weight_mask, model[2].weight_mask, model[5].weight_mask)]
        with pytest.raises(IntrainError, match="on_step_end"):
            method.on_step_end()
        assert method.iteration == 0 and method.trace == []
        assert all(torch.equal(a, b) for a, b in zip(masks, (model[0].weight_mask, model[2].weight_mask,
                                                              model[5].weight_mask)))


def test_loops_without_on_epoch_begin_still_work():
    """Steps alone (RA's probe, benchmarks) and on_epoch_end alone (PWT's schedule) stay allowed."""
    model = net()
    method = ra(range_=1.0, epsilon=0.1, partition="none")
    with method.attached(model):
        for _ in range(3):
            method.on_step_end()
        method.on_epoch_end(0)
        method.on_step_end()
        method.on_epoch_end(1)
    other = pwt(target=0.5, epochs=3, recipe="paper")
    with other.attached(net()):
        for epoch in range(3):
            other.on_epoch_end(epoch)
        assert other.pruned_filter_fraction() == pytest.approx(0.5, abs=0.1)


def test_reattach_keeps_the_epoch_position():
    model = net()
    method = pwt(target=0.5, epochs=3, recipe="paper")
    with method.attached(model, torch.optim.SGD(model.parameters(), lr=0.1)):
        method.on_epoch_begin(0)
        method.on_epoch_end(0)
        method.reattach(torch.optim.SGD(model.parameters(), lr=0.1))  # as after compaction
        with pytest.raises(IntrainError, match=r"on_epoch_begin\(0\) after on_epoch_end\(0\)"):
            method.on_epoch_begin(0)
        method.on_epoch_begin(1)
