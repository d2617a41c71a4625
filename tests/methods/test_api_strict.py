"""The Python API is as strict as the command line: the public constructors refuse, at construction
and with the same one-line ConfigError, what ``intrain train`` refuses (property-based: hypothesis
draws arguments, each valid or not, and compares with TrainConfig, the CLI's validation)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from intrain.config import TrainConfig
from intrain.errors import ConfigError, IntrainError
from intrain.methods import prt, pwt, ra, scratch
from intrain.models import create_model

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True)
NOT_A_NUMBER = st.sampled_from(["0.5", None, True, [0.1]])

# (valid values, invalid values) per argument
PWT_ARGS = {
    "target": (st.floats(0, 0.99), st.floats(min_value=1.0) | st.floats(max_value=-1e-6) | st.just(math.nan) | NOT_A_NUMBER),
    "epochs": (st.integers(1, 40), st.integers(max_value=0) | st.sampled_from([2.5, "3", True, None])),
    "rate": (st.none() | st.floats(0.001, 0.99), st.sampled_from([0.0, 1.0, -0.1, 1.5, math.nan, "0.1", True])),
    "initial": (st.floats(0, 0.5), st.floats(min_value=1.0) | st.floats(max_value=-1e-6) | NOT_A_NUMBER),
    "every": (st.integers(1, 6), st.integers(max_value=0) | st.sampled_from([1.5, "2", False])),
    "criterion": (st.sampled_from(["l1", "mean-activation", "random"]), st.sampled_from(["l2", "", "L1", 3, None])),
    "scope": (st.sampled_from(["layer", "global"]), st.sampled_from(["everywhere", "", 1])),
    "include_linear": (st.booleans(), st.sampled_from([1, "yes", None])),
    "seed": (st.integers(0, 2**32 - 1), st.integers(max_value=-1) | st.integers(min_value=2**32) | st.just(1.5)),
}
RA_ARGS = {
    "range_": (st.floats(-1.5, 5), st.floats(max_value=-1.9) | st.sampled_from([math.inf, -math.inf, math.nan, "2"])),
    "epsilon": (st.floats(0, 0.3), st.floats(max_value=-1e-6) | st.sampled_from([math.inf, math.nan, None])),
    "partition": (st.sampled_from(["type", "none"]), st.sampled_from(["random", "", 0, "sensitivity"])),
    "extending_interval": (st.none() | st.integers(1, 1000), st.integers(max_value=0) | st.sampled_from([1.5, "10"])),
}
RA_CONFIG_NAMES = {"range_": "range"}


@st.composite
def arguments(draw, table: dict) -> tuple[dict, int]:
    """Arguments with each one valid or invalid; returns them and how many were drawn invalid."""
    values, invalid = {}, 0
    for name, (good, bad) in table.items():
        if draw(st.integers(0, 4)) == 0:
            values[name], invalid = draw(bad), invalid + 1
        else:
            values[name] = draw(good)
    return values, invalid


def outcome(build) -> str | None:
    """None when ``build()`` succeeds, else the ConfigError's message (anything else fails the test)."""
    try:
        build()
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message
        return message
    return None


@SETTINGS
@given(drawn=arguments(PWT_ARGS))
def test_pwt_refuses_exactly_what_train_refuses(drawn):
    values, invalid = drawn
    api = outcome(lambda: pwt(**values))
    cli = outcome(lambda: TrainConfig.of(method="pwt", **values))
    assert (api is None) == (cli is None), (values, api, cli)
    if invalid <= 1:  # several bad arguments may be reported in another order
        assert api == cli, values


@SETTINGS
@given(drawn=arguments(RA_ARGS))
def test_ra_refuses_exactly_what_train_refuses(drawn):
    values, invalid = drawn
    api = outcome(lambda: ra(total_iterations=100, **values))
    cli = outcome(lambda: TrainConfig.of(method="ra", **{RA_CONFIG_NAMES.get(k, k): v for k, v in values.items()}))
    if values["partition"] == "sensitivity" and cli is None:  # the CLI runs a probe phase first; the API needs its result
        assert api is not None and "probe" in api
        return
    assert (api is None) == (cli is None), (values, api, cli)
    if invalid <= 1:
        assert api == cli, values


@SETTINGS
@given(target=PWT_ARGS["target"][0] | PWT_ARGS["target"][1],
       prune_epoch=st.integers(-3, 30) | st.sampled_from([2.5, "3", None]))
def test_prt_refuses_what_train_refuses(target, prune_epoch):
    api = outcome(lambda: prt(target=target, prune_epoch=prune_epoch))
    cli = outcome(lambda: TrainConfig.of(method="prt", target=target, prune_epoch=prune_epoch, epochs=30))
    assert (api is None) == (cli is None), (target, prune_epoch, api, cli)


@pytest.mark.parametrize("build, fragment", [
    (lambda: pwt(target=1.0, epochs=2), "target: must be a fraction in [0, 1), got 1.0"),
    (lambda: pwt(target=-0.5, epochs=2), "target: must be a fraction in [0, 1), got -0.5"),
    (lambda: pwt(target=0.5, epochs=0), "epochs: must be at least 1, got 0"),
    (lambda: pwt(target=0.5, epochs=2, criterion="l2"), "criterion: unknown value 'l2'"),
    (lambda: pwt(target=0.8, epochs=10, rate=0.05), "reaches its target 0.8 after epoch 16"),
    (lambda: ra(range_=-50), "nothing would ever be pruned"),
    (lambda: ra(partition="sensitivity"), "probe"),
    (lambda: scratch(42), "masks_from"),
    (lambda: scratch("/nonexistent/run"), "not found"),
])
def test_the_issues_examples(build, fragment):
    with pytest.raises(ConfigError) as info:
        build()
    assert fragment in str(info.value)


def test_ra_range_bound_is_where_eq1_stops_pruning():
    """range - epsilon = -sqrt(3) is the edge: for uniform weights (mu = sqrt(3) sigma of |K|) the lower
    threshold is 0 there, and just above it a uniform layer loses a few weights."""
    from intrain.methods.ra_eq1 import update_masks
    from intrain.validation import RA_MIN_LOWER_FACTOR

    assert RA_MIN_LOWER_FACTOR == pytest.approx(-math.sqrt(3))
    weight = torch.linspace(-1, 1, 20001)  # uniform magnitudes
    for range_, pruned in ((-1.5, True), (-1.8, False)):
        mask = torch.ones_like(weight)
        update_masks([weight], [mask], range_, 0.1)
        assert bool((mask == 0).any()) is pruned
    ra(range_=-1.5, epsilon=0.2)  # -1.7 > -sqrt(3): accepted
    with pytest.raises(ConfigError):
        ra(range_=-1.5, epsilon=0.25)  # -1.75


def test_a_model_takes_one_method_at_a_time():
    model = create_model("lenet5")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    first = pwt(target=0.5, epochs=2).attach(model, optimizer)
    with pytest.raises(IntrainError, match="already has FilterPruning attached"):
        ra(total_iterations=10).attach(model, optimizer)
    twin = copy.deepcopy(model)  # a copy is another model: free
    ra(total_iterations=10).attach(twin, None).detach()
    first.detach()
    ra(total_iterations=10).attach(model, optimizer).detach()  # free again after detach


def test_lightning_callback_validates_at_construction():
    lightning = pytest.importorskip("intrain.integrations.lightning", exc_type=ImportError)
    with pytest.raises(ConfigError, match="needs an intrain pruning method"):
        lightning.PruningCallback("pwt")
