import math

import pytest

from intrain.schedules import PruneSchedule, abrupt_fraction, lr_factor


def pruned_fraction(epochs_done, *, target, rate, initial=0.0, every=1):
    """The paper's parametrisation: ``rate`` per epoch from ``initial``, pruning at epoch ends."""
    return PruneSchedule.from_rate(target=target, rate=rate, initial=initial, every=every).after_epoch(epochs_done)


def test_paper_schedule_one_percent_per_epoch_reaches_target_at_last_epoch():
    values = [pruned_fraction(e, target=0.8, rate=0.01) for e in range(81)]
    assert values[0] == 0.0
    assert values[1] == pytest.approx(0.01)
    assert values[40] == pytest.approx(0.40)
    assert values[80] == pytest.approx(0.80)


@pytest.mark.parametrize("epochs", [16, 20, 80])
@pytest.mark.parametrize("every", [2, 3, 4, 5, 7])
def test_every_mod_n_schedule_ends_at_the_target_with_its_last_prune_where_mod1_has_it(epochs, every):
    """Mod-N used to count events as epochs_done // N: Mod3 over 16 epochs ended at 75%, Mod4's
    biggest step fell after the last epoch. Events are now aligned to end at Mod-1's last prune."""
    target, rate = 0.8, 0.8 / epochs
    mod1 = [pruned_fraction(e, target=target, rate=rate) for e in range(epochs + 1)]
    modn = [pruned_fraction(e, target=target, rate=rate, every=every) for e in range(epochs + 1)]
    assert modn[-1] == pytest.approx(target)
    last_change = lambda f: max(e for e in range(1, epochs + 1) if f[e] > f[e - 1] + 1e-12)
    assert last_change(modn) == last_change(mod1) == epochs
    events = [e for e in range(1, epochs + 1) if modn[e] > modn[e - 1] + 1e-12]
    assert all(b - a == every for a, b in zip(events, events[1:]))  # every N-th epoch, N x rate at a time
    assert all(modn[b] - modn[a] == pytest.approx(every * rate) for a, b in zip(events, events[1:]))
    assert all(m <= one + 1e-12 for m, one in zip(modn, mod1))  # never ahead of Mod-1


def test_mod3_over_16_epochs_golden():
    f = [pruned_fraction(e, target=0.8, rate=0.05, every=3) for e in range(17)]
    assert f[0] == 0.0
    assert f[1] == f[2] == f[3] == pytest.approx(0.05)
    assert f[4] == pytest.approx(0.20)
    assert f[13] == f[14] == f[15] == pytest.approx(0.65)
    assert f[16] == pytest.approx(0.80)
    assert [PruneSchedule(target=0.8, reach=16, every=3).is_event(e) for e in range(18)] == \
        [e in (1, 4, 7, 10, 13, 16) for e in range(18)]


def test_initial_and_cap_at_target():
    """from_rate (the recommended recipe's linear schedule): initial + rate at the first event; Algorithm 1
    (recipe paper): initial at the first event, the same rate after."""
    assert pruned_fraction(1, target=0.5, rate=0.2, initial=0.1) == pytest.approx(0.3)
    paper = PruneSchedule.algorithm1(target=0.5, rate=0.2, initial=0.1)
    assert [paper.after_epoch(e) for e in range(5)] == pytest.approx([0.0, 0.1, 0.3, 0.5, 0.5])
    assert paper.last_epoch == 3
    assert pruned_fraction(10, target=0.5, rate=0.2, initial=0.1) == 0.5
    assert pruned_fraction(3, target=0.3, rate=0.1, initial=0.3) == 0.3
    assert pruned_fraction(0, target=0.3, rate=0.1, initial=0.3) == 0.0


def test_a_rate_that_does_not_divide_the_target_reaches_it_at_the_next_epoch():
    s = PruneSchedule.from_rate(target=0.8, rate=0.03)
    assert s.last_epoch == 27
    assert s.after_epoch(26) == pytest.approx(0.78)
    assert s.after_epoch(27) == 0.8


def test_reach_leaves_training_at_the_final_size():
    s = PruneSchedule(target=0.8, reach=0.6 * 20)
    assert s.last_epoch == 12
    assert s.after_epoch(6) == pytest.approx(0.4)
    assert [s.after_epoch(e) for e in (12, 13, 20)] == [0.8, 0.8, 0.8]


def test_cubic_is_zhu_and_gupta():
    s = PruneSchedule(target=0.8, reach=10, shape="cubic")
    assert s.at(0) == 0.0
    assert s.at(5) == pytest.approx(0.8 * (1 - 0.5 ** 3))  # 0.7 after half the span
    assert s.at(2.5) == pytest.approx(0.8 - 0.8 * 0.75 ** 3)
    assert s.at(10) == s.at(11) == 0.8
    increments = [s.at(t + 1) - s.at(t) for t in range(10)]
    assert increments == sorted(increments, reverse=True)  # fastest first
    assert PruneSchedule(target=0.8, reach=10, initial=0.2, shape="cubic").at(1e-12) == pytest.approx(0.2)


def test_steps_interpolate_the_epoch_schedule():
    s = PruneSchedule(target=0.8, reach=16)
    assert s.at(2.5) == pytest.approx(0.125)  # half-way through epoch 3
    assert s.at(3) == pytest.approx(s.after_epoch(3))


@pytest.mark.parametrize("bad", [dict(shape="quadratic"), dict(reach=0), dict(reach=math.inf), dict(every=0)])
def test_bad_schedules_are_refused(bad):
    with pytest.raises(ValueError):
        PruneSchedule(**{"target": 0.5, "reach": 4, **bad})


def test_abrupt_prt():
    assert [abrupt_fraction(e, target=0.8, prune_epoch=3) for e in (2, 3, 4)] == [0.0, 0.8, 0.8]


def test_lr_factors():
    kw = dict(iterations_per_epoch=10, total_iterations=100)
    assert lr_factor("constant", 57, **kw) == 1.0
    assert lr_factor("step", 29, step_epochs=3, gamma=0.1, **kw) == pytest.approx(1.0)
    assert lr_factor("step", 30, step_epochs=3, gamma=0.1, **kw) == pytest.approx(0.1)
    assert lr_factor("cosine", 50, **kw) == pytest.approx(0.5)
    assert lr_factor("cosine", 100, **kw) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor("inv", 10000, inv_gamma=1e-4, inv_power=0.75, **kw) == pytest.approx(2 ** -0.75)
    with pytest.raises(ValueError):
        lr_factor("nope", 0, **kw)
