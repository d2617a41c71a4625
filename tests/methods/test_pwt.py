import pytest
import torch
from torch import nn

from intrain.methods import dense, prt, pwt
from intrain.methods.selection import global_choice, layer_choice


def drive(method, net, opt, epochs=2, steps=10):
    """``epochs`` epochs of ``steps`` steps on random 1x5x5 inputs: the pruned fraction after every step
    and each epoch's event."""
    fractions, events = [], []
    with method.attached(net, opt):
        for epoch in range(epochs):
            method.on_epoch_begin(epoch)
            for _ in range(steps):
                net(torch.randn(2, 1, 5, 5)).sum().backward()
                opt.step()
                method.on_step_end()
                fractions.append(method.pruned_filter_fraction())
            events.append(method.on_epoch_end(epoch))
    return fractions, events


def conv_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3),
    )


def set_filter_l1(conv, values):
    with torch.no_grad():
        for o, v in enumerate(values):
            conv.weight[o] = v


def test_layer_choice_prunes_lowest_unpruned_to_the_fraction_and_keeps_one():
    score = torch.tensor([0.4, 0.1, 0.3, 0.2])
    kept = torch.tensor([True, True, True, True])
    assert sorted(layer_choice(score, kept, 4, 0.5).tolist()) == [1, 3]
    kept = torch.tensor([True, False, True, False])
    assert layer_choice(score, kept, 4, 0.6).tolist() == [2]  # ceil(2.4) = 3 pruned in all
    assert sorted(layer_choice(score, torch.ones(4, dtype=torch.bool), 4, 0.99).tolist()) == [1, 2, 3]


def test_global_choice_ranks_across_layers_and_never_empties_a_layer():
    scores = [torch.tensor([0.1, 0.2]), torch.tensor([0.5, 0.05, 0.6, 0.7])]
    kept = [torch.ones(2, dtype=torch.bool), torch.ones(4, dtype=torch.bool)]
    chosen = global_choice(scores, kept, [2, 4], 0.5)  # 3 of 6: 0.05, 0.1, then 0.2 would empty layer 0 -> 0.5
    assert chosen[0].tolist() == [0]
    assert sorted(chosen[1].tolist()) == [0, 1]


def test_pwt_l1_follows_the_schedule_and_prunes_lowest_l1():
    net = conv_net()
    set_filter_l1(net[0], [0.4, 0.1, 0.3, 0.2])
    set_filter_l1(net[3], [0.9, 0.8, 0.7, 0.6, 0.5, 0.45])
    opt = torch.optim.Adam(net.parameters())
    method = pwt(target=0.5, epochs=5, recipe="paper", criterion="l1", scope="global")  # 10% per epoch of 10
    with method.attached(net, opt):
        event = method.on_epoch_end(0)
        assert event.filters_pruned == 1 and method.pruned_filter_fraction() == pytest.approx(0.1)
        assert net[0].filter_mask.tolist() == [True, False, True, True]
        method.on_epoch_end(1)
        assert net[0].filter_mask.tolist() == [True, False, True, False]
        for e in range(2, 5):
            method.on_epoch_end(e)
        assert method.pruned_filter_fraction() == pytest.approx(0.5)
        assert method.on_epoch_end(5) is None  # target reached: nothing more


def test_layer_scope_prunes_each_layer_to_the_fraction():
    net = conv_net()
    method = pwt(target=0.5, epochs=1, recipe="paper", scope="layer")
    with method.attached(net, torch.optim.SGD(net.parameters(), lr=0.1)):
        method.on_epoch_end(0)
    assert int((~net[0].filter_mask).sum()) == 2 and int((~net[3].filter_mask).sum()) == 3


def test_random_criterion_is_seeded():
    def pruned(seed):
        net = conv_net()
        method = pwt(target=0.5, epochs=1, recipe="paper", criterion="random", scope="layer", seed=seed)
        with method.attached(net):
            method.on_epoch_end(0)
        return torch.cat([net[0].filter_mask, net[3].filter_mask]).tolist()

    assert pruned(1) == pruned(1)
    assert any(pruned(s) != pruned(1) for s in (2, 3, 4))


def test_mean_activation_uses_the_whole_epoch():
    """1x1 convs on constant images: conv 0's filters (weights 1, 2, -1, 0.5, no bias) give post-ReLU
    means 1, 2, 0, 0.5 on an image of ones and 0, 0, 3, 0 on an image of -3s: 0.5, 1, 1.5, 0.25 over
    the epoch, so filter 3 is the lowest (filter 2 after the first batch alone; filter 2 as well if
    the batch of 100s before the epoch counted: 33.7, 67.3, 1, 16.8)."""
    net = nn.Sequential(nn.Conv2d(1, 4, 1, bias=False), nn.ReLU(), nn.Conv2d(4, 2, 1), nn.Flatten(), nn.LazyLinear(2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, 2.0, -1.0, 0.5]).view(4, 1, 1, 1))
    net(torch.zeros(1, 1, 2, 2))
    method = pwt(target=0.25, epochs=1, recipe="paper", criterion="mean-activation", scope="layer")
    with method.attached(net, torch.optim.SGD(net.parameters(), lr=0.0)):
        net.train()
        net(torch.full((2, 1, 2, 2), 100.0))  # before the epoch: not counted
        method.on_epoch_begin(0)
        net(torch.ones(2, 1, 2, 2))
        net(torch.full((2, 1, 2, 2), -3.0))
        assert method.activations.counts[0] == 2 * 2 * 2 * 2
        method.on_epoch_end(0)
    assert net[0].filter_mask.tolist() == [True, True, True, False]


def test_prt_prunes_exactly_at_its_epoch():
    net = conv_net()
    method = prt(target=0.6, prune_epoch=3, scope="global")
    fractions = []
    with method.attached(net, torch.optim.Adam(net.parameters())):
        for e in range(5):
            method.on_epoch_end(e)
            fractions.append(method.pruned_filter_fraction())
    assert fractions[:2] == [0.0, 0.0]
    assert fractions[2] == pytest.approx(0.6) and fractions[4] == pytest.approx(0.6)


def test_events_out_of_order_fail_clearly():
    from intrain.errors import IntrainError

    method = pwt(target=0.5, epochs=2)
    with pytest.raises(IntrainError, match="attach"):
        method.on_epoch_end(0)
    with pytest.raises(IntrainError, match="attach"):
        dense().on_step_end()


def test_state_dict_round_trip_keeps_original_filter_counts():
    net = conv_net()
    method = pwt(target=0.5, epochs=2, recipe="paper", scope="layer")
    with method.attached(net):
        method.on_epoch_end(0)
        state = method.state_dict()
    other = pwt(target=0.5, epochs=2, recipe="paper", scope="layer")
    other.load_state_dict(state)
    assert other.original_filters() == {"0": 4, "3": 6}


def test_pruning_every_k_steps_follows_the_schedule_by_iteration_and_reports_once_per_epoch():
    """10 steps per epoch, K = 5, linear to 50% over 2 epochs: 12.5% after step 5, 25% after 10,
    37.5% after 15, 50% after 20; one event per epoch holding that epoch's prunes."""
    net = conv_net()  # 10 filters: 4 + 6
    opt = torch.optim.Adam(net.parameters())
    method = pwt(target=0.5, epochs=2, recipe="paper", prune_every_steps=5, steps_per_epoch=10, scope="global")
    fractions, events = drive(method, net, opt)
    # ceil(0.125 * 10) = 2 filters after step 5, ceil(2.5) = 3 after step 10, 4 after 15, 5 after 20
    assert fractions[3] == 0.0 and fractions[4] == pytest.approx(0.2)
    assert fractions[9] == pytest.approx(0.3) and fractions[14] == pytest.approx(0.4) and fractions[19] == pytest.approx(0.5)
    assert [e.filters_pruned for e in events] == [3, 2]
    assert events[1].fraction == pytest.approx(0.5)


def test_cubic_reach_schedule_prunes_early_and_then_leaves_the_network_alone():
    """Target 50% reached after half of 4 epochs; cubic prunes 0.5 - 0.5 * 0.5**3 = 43.75% after
    epoch 1 (ceil(17.5) = 18 of 40 filters), linear 25%; nothing changes after epoch 2."""
    def fractions(shape):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(1, 40, 3), nn.Flatten(), nn.LazyLinear(2))
        net(torch.zeros(1, 1, 4, 4))
        method = pwt(target=0.5, epochs=4, recipe="paper", reach=0.5, schedule=shape)
        with method.attached(net, torch.optim.Adam(net.parameters())):
            return [(method.on_epoch_end(e), method.pruned_filter_fraction())[1] for e in range(4)]

    assert fractions("cubic") == [pytest.approx(0.45)] + [pytest.approx(0.5)] * 3
    assert fractions("linear") == [pytest.approx(0.25)] + [pytest.approx(0.5)] * 3


def gradient_hooks(net):
    return {name: len(p._backward_hooks or {}) for name, p in net.named_parameters() if p._backward_hooks}


def test_gradients_are_masked_on_the_layers_with_pruned_filters_only_and_after_loading_masks():
    """A layer with every filter kept has no gradient hook (after a compaction: none at all); one with
    a pruned filter has one per parameter from the prune on, and so has a fresh method's model after
    a masked state is loaded into it (a resume): Adam cannot revive the pruned filter either way."""
    net = conv_net()
    opt = torch.optim.Adam(net.parameters())
    method = pwt(target=0.5, epochs=1, criterion="l1").attach(net, opt, example_inputs=torch.zeros(1, 1, 4, 4))
    assert gradient_hooks(net) == {}
    set_filter_l1(net[3], [0.9, 0.8, 0.7, 0.6, 0.5, 0.45])
    with torch.no_grad():
        net[0].weight.mul_(100)  # keep conv 0 out of a 25% global ranking
    method.scope = "global"
    method.prune_to(0.25)  # 3 of 10 filters, all from the second conv
    assert gradient_hooks(net) == {"3.weight": 1, "3.bias": 1, "4.weight": 1, "4.bias": 1}
    state, method_state = net.state_dict(), method.state_dict()
    method.detach()

    fresh = conv_net()
    fresh_opt = torch.optim.Adam(fresh.parameters())
    fresh_method = pwt(target=0.5, epochs=1, criterion="l1").attach(fresh, fresh_opt,
                                                                     example_inputs=torch.zeros(1, 1, 4, 4))
    fresh.load_state_dict(state)
    fresh_method.load_state_dict(method_state)
    assert set(gradient_hooks(fresh)) == {"3.weight", "3.bias", "4.weight", "4.bias"}
    pruned = ~fresh[3].filter_mask
    x, y = torch.randn(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
    for _ in range(3):
        fresh_opt.zero_grad()
        nn.functional.cross_entropy(fresh(x), y).backward()
        fresh_opt.step()
    assert int(pruned.sum()) == 3 and torch.count_nonzero(fresh[3].weight[pruned]) == 0
    assert torch.count_nonzero(fresh[4].bias[pruned]) == 0


def test_a_method_copies_and_lets_its_model_go_once_detached():
    """The dependency graph the method keeps for compactions is not copied (it refers to the model) and
    is dropped at detach, so a detached model can be freed."""
    import copy
    import gc
    import weakref

    from intrain.models import create_model

    model = create_model("resnet20", width=0.25)
    method = pwt(target=0.5, epochs=2).attach(model, example_inputs=torch.zeros(1, 1, 32, 32))
    assert method.channel_graph() is not None
    copied = copy.deepcopy(method)
    assert copied.channel_graph() is None and copied.channel_groups() == method.channel_groups()
    method.detach()
    assert method.channel_graph() is None
    copy.deepcopy(method)
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None
