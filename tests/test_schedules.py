import math

import pytest

from intrain.schedules import abrupt_fraction, is_pruning_epoch, lr_factor, pruned_fraction


def test_paper_schedule_one_percent_per_epoch_reaches_target_at_last_epoch():
    values = [pruned_fraction(e, target=0.8, rate=0.01) for e in range(81)]
    assert values[0] == 0.0
    assert values[1] == pytest.approx(0.01)
    assert values[40] == pytest.approx(0.40)
    assert values[80] == pytest.approx(0.80)


def test_mod_n_prunes_every_nth_epoch_with_n_times_rate():
    f = [pruned_fraction(e, target=0.8, rate=0.01, every=3) for e in range(10)]
    assert f[:3] == [0.0, 0.0, 0.0]
    assert f[3] == f[4] == f[5] == pytest.approx(0.03)
    assert f[6] == pytest.approx(0.06)
    assert [is_pruning_epoch(e, 3) for e in range(7)] == [False, False, False, True, False, False, True]


def test_initial_and_cap_at_target():
    assert pruned_fraction(1, target=0.5, rate=0.2, initial=0.1) == pytest.approx(0.3)
    assert pruned_fraction(10, target=0.5, rate=0.2, initial=0.1) == 0.5


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
