import math
import re

import pytest

from intrain.config import TrainConfig
from intrain.errors import ConfigError


def test_defaults_are_valid_and_derived_values():
    c = TrainConfig.of()
    assert c.learning_rate == 1e-3
    assert TrainConfig.of(optimizer="sgd").learning_rate == 0.01
    paper = TrainConfig.of(method="pwt", recipe="paper", target=0.8, epochs=80)
    assert paper.method_config.pruning_rate(80) == pytest.approx(0.01)


def test_pwt_defaults_to_the_recommended_recipe_and_presets_keep_the_papers():
    """--method pwt's defaults are the recipe measured best on the protocol (benchmarks/README.md):
    cubic, the target after 60% of the epochs, pruned every 6 steps; the paper's schedule is a flag away."""
    from intrain.presets import get_preset

    default = TrainConfig.of(method="pwt", target=0.8, epochs=20)
    assert default.method_config.recipe == "recommended"
    assert default.method_config.schedule_settings == {"schedule": "cubic", "reach": 0.6, "prune_every_steps": 6}
    assert default.last_prune_epoch == 12
    paper = TrainConfig.of(method="pwt", recipe="paper", target=0.8, epochs=20)
    assert paper.method_config.schedule_settings == {"schedule": "linear", "reach": 1.0, "prune_every_steps": None}
    for run in get_preset("pwt-fig1", "cpu").runs:
        if run.config.method == "pwt":
            assert run.config.method_config.recipe == "paper"


@pytest.mark.parametrize("changes, message", [
    ({"method": "pwt", "target": 1.0}, "target: must be a fraction"),
    ({"method": "prt", "prune_epoch": 1, "target": -0.1}, "target: must be a fraction"),
    ({"epochs": 0}, "epochs"),
    ({"epochs": -3}, "epochs"),
    ({"epochs": 2.5}, "whole number"),
    ({"epochs": True}, "whole number"),
    ({"lr": "fast"}, "lr"),
    ({"lr": 0.0}, "lr"),
    ({"width": 0}, "width"),
    ({"width": math.nan}, "width"),
    ({"method": "pwt", "criterion": "l2"}, "criterion: unknown value 'l2'; choose one of: l1, mean-activation, random"),
    ({"criterion": "l2"}, "criterion: not used by method dense (used by: pwt, prt)"),
    ({"method": "magic"}, "method"),
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"method": "prt"}, "prune-epoch"),
    ({"method": "prt", "prune_epoch": 20, "epochs": 10}, "prune_epoch"),
    ({"prune_epoch": 2}, "prune_epoch: not used by method dense (used by: prt)"),
    ({"method": "pwt", "initial": 0.6, "target": 0.5}, "initial"),
    ({"momentum": 1.0}, "momentum"),
    ({"subset": 0}, "subset"),
    ({"device": "tpu"}, "device"),
    ({"method": "scratch"}, "masks-from"),
    ({"method": "pwt", "include_linear": "yes"}, "true or false"),
    ({"amp": "fp8"}, "amp: unknown value 'fp8'; choose one of: off, bf16, fp16"),
    ({"channels_last": "yes"}, "true or false"),
    ({"image_size": 64}, "image_size: only used by dataset folder; mnist has its own size"),
    ({"dataset": "folder", "image_size": 8}, "image_size: must be at least 16"),
    ({"workers": 2}, "workers: only dataset folder decodes images"),
    ({"dataset": "folder", "workers": -1}, "workers: must be at least 0"),
])
def test_invalid_values_raise_one_line_config_errors(changes, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        TrainConfig.of(**changes)
    assert "\n" not in str(info.value)


def test_unknown_keys_suggest_the_right_name():
    with pytest.raises(ConfigError, match="did you mean 'batch_size'"):
        TrainConfig.from_dict({"batchsize": 3})


def test_yaml_with_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: vgg16\nepochs: 4\nmethod: pwt\ntarget: 0.5\n")
    c = TrainConfig.load(path, {"epochs": 7})
    assert (c.model, c.epochs, c.method_config.target) == ("vgg16", 7, 0.5)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("- 1\n- 2\n", "mapping"),
    ("a: [1,\n", "not valid YAML"),
    ("epochs: ten\n", "whole number"),
])
def test_bad_yaml_files(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        TrainConfig.load(path)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        TrainConfig.load(tmp_path / "nope.yaml")
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ConfigError, match="unreadable"):
        TrainConfig.load(binary)


def test_config_round_trips_through_to_dict():
    c = TrainConfig.of(method="ra", classes=(("conv1", "conv2"), ("fc1",)))
    assert TrainConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("changes, last", [
    (dict(method="pwt", epochs=16, target=0.8, recipe="paper"), 16),  # the paper's schedule: the target at the last epoch
    (dict(method="pwt", epochs=16, target=0.8, rate=0.1), 8),
    (dict(method="pwt", epochs=16, target=0.8, every=3, recipe="paper"), 16),  # Mod-N ends where Mod-1 does
    (dict(method="pwt", epochs=20, target=0.8, reach=0.6), 12),
    (dict(method="pwt", epochs=20, target=0.8, reach=0.6, schedule="cubic", prune_every_steps=6), 12),
    (dict(method="prt", epochs=20, target=0.5, prune_epoch=12), 12),
    (dict(method="ra"), None),
    (dict(method="dense"), None),
])
def test_last_prune_epoch(changes, last):
    assert TrainConfig.of(**changes).last_prune_epoch == last


def test_a_late_last_prune_under_a_decayed_learning_rate_is_flagged():
    late = TrainConfig.of(method="pwt", epochs=16, target=0.8, rate=0.8 / 15, lr_schedule="cosine")
    (note,) = late.advisories()
    assert "after epoch 15 of 16" in note and "down to 1% of its start" in note and "\n" not in note
    assert TrainConfig.of(method="pwt", epochs=16, target=0.8, rate=0.1, lr_schedule="cosine").advisories() == []  # 50% left
    assert late.replace(lr_schedule="constant").advisories() == []
    assert TrainConfig.of(method="pwt", epochs=40, target=0.5, lr_schedule="step", lr_step_epochs=10).advisories()  # 0.1^4
    assert TrainConfig.of(method="prt", epochs=20, target=0.5, prune_epoch=19, lr_schedule="cosine").advisories() == []


@pytest.mark.parametrize("changes, message", [
    (dict(method="pwt", epochs=10, target=0.9, rate=0.01), "reaches its target 0.9 after epoch 90, beyond the 10 epochs"),
    (dict(method="pwt", reach=0.0), "reach: must be a fraction of the epochs in (0, 1]"),
    (dict(method="pwt", reach=1.5), "reach: must be a fraction of the epochs in (0, 1]"),
    (dict(method="pwt", reach=0.5, rate=0.1), "either rate"),
    (dict(method="pwt", schedule="exp"), "schedule: unknown value 'exp'; choose one of: linear, cubic"),
    (dict(method="pwt", schedule="cubic", rate=0.1), "set by reach"),
    (dict(method="pwt", prune_every_steps=0), "prune_every_steps: must be at least 1"),
    (dict(method="pwt", prune_every_steps=5, every=2), "replaces --every"),
    (dict(method="ra", reach=0.5), "reach: not used by method ra (used by: pwt)"),
    (dict(method="prt", prune_epoch=2, schedule="cubic"), "schedule: not used by method prt (used by: pwt)"),
])
def test_pwt_schedule_options_are_validated(changes, message):
    with pytest.raises(ConfigError) as info:
        TrainConfig.of(**changes)
    assert message in str(info.value)


def test_a_recipe_fills_the_pwt_schedule_settings_left_unset():
    paper = TrainConfig.of(method="pwt", epochs=20, target=0.8, recipe="paper")
    assert paper.method_config.schedule_settings == {"schedule": "linear", "reach": 1.0, "prune_every_steps": None}
    assert paper.method_config.plan(20).after_epoch(10) == pytest.approx(0.4)
    ours = TrainConfig.of(method="pwt", epochs=20, target=0.8, recipe="recommended")
    assert ours.method_config.schedule_settings == {"schedule": "cubic", "reach": 0.6, "prune_every_steps": 6}
    assert ours.last_prune_epoch == 12
    mixed = ours.replace(schedule="linear", prune_every_steps=2)
    assert mixed.method_config.schedule_settings == {"schedule": "linear", "reach": 0.6, "prune_every_steps": 2}
    assert ours.replace(rate=0.1).method_config.schedule_settings["schedule"] == "linear"  # a rate is the paper's form
    assert ours.replace(every=2).method_config.schedule_settings["prune_every_steps"] is None  # Mod-N prunes at epoch ends
    with pytest.raises(ConfigError, match="recipe: unknown value 'fast'"):
        TrainConfig.of(method="pwt", recipe="fast")


def test_step_schedule_defaults_to_a_third_of_the_run_and_must_step():
    assert TrainConfig.of(epochs=10, lr_schedule="step").step_epochs == 3
    assert TrainConfig.of(epochs=2, lr_schedule="step").resolved().lr_step_epochs == 1
    with pytest.raises(ConfigError, match="lr_schedule: step never lowers the rate in 1 epoch"):
        TrainConfig.of(epochs=1, lr_schedule="step")
    with pytest.raises(ConfigError, match="lr_step_epochs: a step every 5 epochs never lowers the rate in 5 epochs"):
        TrainConfig.of(epochs=5, lr_schedule="step", lr_step_epochs=5)
    with pytest.raises(ConfigError, match="lr_step_epochs: only lr_schedule step"):
        TrainConfig.of(epochs=1, lr_step_epochs=30)  # only the step schedule reads it: refused elsewhere
    # milestones are iterations: the step schedule then lowers the rate whatever the epochs
    assert TrainConfig.of(epochs=1, lr_schedule="step", lr_milestones=(4, 6)).lr_milestones == (4, 6)


@pytest.mark.parametrize("changes", [
    dict(method="pwt", target=0.5, epochs=10, every=3),
    dict(method="pwt", target=0.8, epochs=20, recipe="recommended"),
    dict(method="prt", target=0.5, prune_epoch=2, epochs=4, lr_schedule="step"),
    dict(method="ra", lr_schedule="cosine"),
    dict(method="dense", dataset="demo", epochs=1),
])
def test_resolved_configs_are_valid_and_final(changes):
    resolved = TrainConfig.of(**changes).resolved()
    assert resolved.resolved() == resolved
    assert resolved.lr is not None and resolved.compact is not None
    assert (resolved.lr_step_epochs is not None) == (resolved.lr_schedule == "step")  # only where used
    assert (resolved.data_dir is None) == (resolved.dataset == "demo")
    assert getattr(resolved.method_config, "rate", None) is None or resolved.method == "pwt"


@pytest.mark.parametrize("text, key, value", [
    ("lr: 1e-3\n", "lr", 1e-3), ("lr: 1E-3\n", "lr", 1e-3), ("lr: -2e+1\n", "lr", -20.0), ("lr: 3.\n", "lr", 3.0),
    ("epochs: 10\n", "epochs", 10), ("model: 1e3x\n", "model", "1e3x"), ("lr: .5\n", "lr", 0.5),
])
def test_yaml_numbers(tmp_path, text, key, value):
    from intrain.config import read_yaml

    path = tmp_path / "c.yaml"
    path.write_text(text)
    read = read_yaml(path)[key]
    assert read == value and type(read) is type(value)


def test_duplicate_keys_are_refused_with_their_line(tmp_path):
    from intrain.config import read_yaml

    path = tmp_path / "c.yaml"
    path.write_text("classes:\n  - [conv1]\nmodel: lenet5\nmodel: vgg16\n")
    with pytest.raises(ConfigError, match="key 'model' is given twice \\(line 4\\)"):
        read_yaml(path)


# ---------------------------------------------------------------------- the method registry
def test_the_registry_refuses_an_unknown_method_with_a_suggestion():
    from intrain.methods import registry

    assert registry.names()[:5] == ("dense", "pwt", "prt", "ra", "scratch")
    assert registry.get("pwt").structured and registry.get("dense").baseline
    with pytest.raises(ConfigError, match=r"method: unknown value 'pwtt'; did you mean 'pwt'\?") as info:
        registry.get("pwtt")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="method: unknown value 'magic'"):
        TrainConfig.of(method="magic")


@pytest.mark.parametrize("changes, message", [
    (dict(method="ra", target=0.5), "target: not used by method ra (used by: pwt, prt, sfp, slim)"),
    (dict(method="dense", recipe="paper"), "recipe: not used by method dense (used by: pwt, slim)"),
    (dict(method="pwt", masks_from="/x"), "masks_from: not used by method pwt (used by: scratch)"),
    (dict(method="prt", prune_epoch=2, range=2.0), "range: not used by method prt (used by: ra)"),
])
def test_a_setting_the_method_does_not_use_is_refused(changes, message):
    with pytest.raises(ConfigError) as info:
        TrainConfig.of(**changes)
    assert str(info.value) == message


def test_yaml_may_nest_the_methods_settings_under_its_name(tmp_path):
    nested, flat = tmp_path / "nested.yaml", tmp_path / "flat.yaml"
    nested.write_text("method: pwt\nepochs: 20\npwt:\n  target: 0.8\n  recipe: recommended\n")
    flat.write_text("method: pwt\nepochs: 20\ntarget: 0.8\nrecipe: recommended\n")
    assert TrainConfig.load(nested) == TrainConfig.load(flat)
    assert TrainConfig.load(nested).method_config.target == 0.8
    assert TrainConfig.load(nested, {"target": 0.5}).method_config.target == 0.5  # flags win
    for text, message in [
        ("method: ra\npwt:\n  target: 0.8\n", "pwt: settings of method pwt, but the method is ra"),
        ("method: pwt\npwt:\n  epochs: 3\n", "'pwt.epochs' is not a setting of method pwt"),
        ("method: pwt\ntarget: 0.5\npwt:\n  target: 0.8\n", "'target' is given twice (flat and under method pwt)"),
    ]:
        nested.write_text(text)
        with pytest.raises(ConfigError, match=re.escape(message)):
            TrainConfig.load(nested)


def test_replace_keeps_the_settings_the_new_method_shares():
    pwt = TrainConfig.of(method="pwt", target=0.8, criterion="random", recipe="recommended", epochs=20)
    prt = pwt.replace(method="prt", prune_epoch=10)
    assert (prt.method_config.target, prt.method_config.criterion) == (0.8, "random")
    assert prt.replace(method="dense").method_config == TrainConfig().method_config
    with pytest.raises(ConfigError, match="recipe: not used by method prt"):
        pwt.replace(method="prt", prune_epoch=10, recipe="paper")


def test_a_config_written_before_the_registry_loads_leniently(tmp_path):
    old = tmp_path / "config.yaml"
    old.write_text("method: ra\ntarget: 0.5\ncriterion: l1\nschedule: null\nrange: 2.5\nepochs: 3\n")
    with pytest.raises(ConfigError, match="target: not used by method ra"):
        TrainConfig.load(old)
    assert TrainConfig.load(old, lenient=True).method_config.range == 2.5


@pytest.mark.parametrize("values, key", [
    (dict(optimizer="adam", momentum=0.5), "momentum"),
    (dict(lr_schedule="constant", lr_gamma=0.5), "lr_gamma"),
    (dict(lr_schedule="constant", inv_gamma=1e-3), "inv_gamma"),
    (dict(lr_schedule="step", inv_power=0.5), "inv_power"),
    (dict(lr_schedule="cosine", lr_milestones=(100,)), "lr_milestones"),
    (dict(lr_schedule="step", lr_milestones=(100,), lr_step_epochs=2), "lr_step_epochs"),
    (dict(init="he-normal", init_std=0.1), "init_std"),
])
def test_settings_the_run_does_not_use_are_refused(values, key):
    with pytest.raises(ConfigError, match=f"^{key}: only .* drop --{key.replace('_', '-')}$"):
        TrainConfig.of(epochs=9, **values)
    TrainConfig.from_dict({"epochs": 9, **values}, lenient=True)  # a config.yaml of an older version: dropped


def test_settings_at_their_defaults_and_used_settings_pass():
    TrainConfig.of(optimizer="adam", momentum=0.9, lr_gamma=0.1, init_std=0.01)  # the defaults: nothing to say
    TrainConfig.of(optimizer="sgd", momentum=0.5, lr_schedule="inv", inv_gamma=1e-3, init="gaussian", init_std=0.1)
    # config.yaml records only the settings the run used
    assert TrainConfig.of(lr_schedule="constant").resolved().lr_step_epochs is None
    assert TrainConfig.of(lr_schedule="step", epochs=9).resolved().lr_step_epochs == 3
