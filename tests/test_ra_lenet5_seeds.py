"""benchmarks/ra_lenet5_seeds.py's arms: every arm builds a valid configuration, a scratch-train arm
takes its RA arm's masks, initialisation and recipe, and unknown arms are refused."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
_spec = importlib.util.spec_from_file_location("ra_lenet5_seeds", BENCHMARKS / "ra_lenet5_seeds.py")
seeds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seeds)

ARGS = argparse.Namespace(data_dir="data", epochs=11, subset=None, out="runs/ra-seeds")


@pytest.mark.parametrize("arm", list(seeds.ARMS))
def test_every_arm_builds_a_valid_configuration(arm):
    """TrainConfig refuses an invalid arm (a ConfigError here); every arm is LeNet-5 on MNIST, 11 epochs."""
    config = seeds.arm_config(arm, 0, ARGS)
    assert config.out == f"runs/ra-seeds/{arm}-s0" and config.seed == 0 and config.epochs == 11
    assert (config.model, config.dataset, config.optimizer, config.momentum) == ("lenet5", "mnist", "sgd", 0.9)


@pytest.mark.parametrize("arm, expected", [
    # Caffe's LeNet solver, by hand: batch 64, lr 0.01, inv(1e-4, 0.75), weight decay 5e-4, He-normal
    ("dense", dict(method="dense", batch_size=64, lr=0.01, lr_schedule="inv", inv_gamma=1e-4, inv_power=0.75,
                   weight_decay=5e-4, init="he-normal", lr_milestones=None)),
    ("ra-2-0.1-gauss0.01", dict(method="ra", init="gaussian", init_std=0.01, lr_schedule="inv")),
    # 11 epochs of 938 batches = 10,318 iterations: the step at 90% is iteration 9,286
    ("ra-2-0.1-dns-fc2-1.0-fc1-3.2-freeze0.8-step0.9-lecun",
     dict(init="lecun-normal", lr_schedule="step", lr_milestones=(9286,), lr_gamma=0.1, lr=0.01, batch_size=64)),
    # batches of 32: 11 x 1,875 = 20,625 iterations, the step at round(18,562.5) = 18,562
    ("dense-step0.9-lecun-b32", dict(batch_size=32, lr_milestones=(18562,), init="lecun-normal")),
    ("dense-constant", dict(lr_schedule="constant", lr=0.01, weight_decay=5e-4)),
])
def test_arms_golden_recipes(arm, expected):
    config = seeds.arm_config(arm, 0, ARGS)
    assert {key: getattr(config, key) for key in expected} == expected


@pytest.mark.parametrize("arm, expected", [
    ("ra-2-0.1", dict(range=2.0, epsilon=0.1, partition="type", hysteresis="sigma", layer_ranges=None)),
    ("ra-2-0.1-dns-fc2-1.0-fc1-3.2-freeze0.8-step0.9-lecun",
     dict(hysteresis="relative", moments_at="start", update_gamma=1e-4, freeze_masks_at=0.8,
          layer_ranges=(("fc1", 3.2), ("fc2", 1.0)))),
])
def test_arms_golden_ra_settings(arm, expected):
    own = seeds.arm_config(arm, 0, ARGS).method_config
    assert {key: getattr(own, key) for key in expected} == expected


def test_a_scratch_arm_takes_its_ra_arms_masks_initialisation_and_recipe():
    source = "ra-2-0.1-dns-fc2-1.0-fc1-2.9-freeze0.8-constant"
    fresh, same = (seeds.arm_config(f"{prefix}{source}", 2, ARGS) for prefix in ("scratch-", "scratch-same-"))
    for config, init in ((fresh, "fresh"), (same, "same")):
        assert config.method == "scratch" and config.lr_schedule == "constant" and config.seed == 2
        assert config.method_config.masks_from == f"runs/ra-seeds/{source}-s2"
        assert config.method_config.scratch_init == init
    gauss = seeds.arm_config("scratch-ra-2-0.1-gauss0.01", 0, ARGS)
    assert gauss.init == "gaussian" and gauss.init_std == 0.01 and gauss.lr_schedule == "inv"


@pytest.mark.parametrize("arm", ["ra-9", "scratch-dense-typo", "scratch-same-nothing"])
def test_an_unknown_arm_is_refused_with_one_line(arm):
    with pytest.raises(SystemExit, match="unknown arm"):
        seeds.arm_config(arm, 0, ARGS)


def test_the_tuned_table2_preset_at_paper_scale_is_the_benchmarks_tuned_arms():
    from intrain.presets import get_preset

    preset = {run.label: run.config for run in get_preset("ra-table2-tuned", "paper", seeds=(4,)).runs}
    tuned = "ra-2-0.1-dns-c1--1.0-fc2-1.0-fc1-3.3-freeze0.8-step0.9-lecun"
    for label, arm in (("dense", "dense-step0.9-lecun"), ("ra-tuned", tuned), ("scratch", f"scratch-{tuned}")):
        expected = seeds.arm_config(arm, 4, ARGS).to_dict()
        got = preset[label].to_dict()
        for config in (expected, got):
            for key in ("out", "data_dir", "masks_from"):  # where runs live, not what they train
                config.pop(key, None)
        assert got == expected, label


def test_each_arm_is_measured_against_the_dense_arm_of_its_own_recipe():
    tuned = "ra-2-0.1-dns-fc2-1.0-fc1-3.2-freeze0.8-step0.9-lecun"
    assert seeds.dense_reference(tuned) == "dense-step0.9-lecun"
    assert seeds.dense_reference(f"scratch-{tuned}") == "dense-step0.9-lecun"
    assert seeds.dense_reference(f"{tuned}-b32") == "dense-step0.9-lecun-b32"
    assert seeds.dense_reference("ra-2-0.1") == "dense"
    assert seeds.dense_reference("dense-step0.9-lecun") is None
    assert seeds.dense_reference("ra-2-0.1-gauss0.01") is None  # no dense arm on a N(0, 0.01) init


def test_aggregate_pairs_each_arm_with_its_dense_arm_by_seed():
    def run(arm, seed, acc, sparsity=0.0):
        return {"arm": arm, "seed": seed, "final_test_accuracy": acc, "sparsity": sparsity}

    tuned = "ra-2-0.1-dns-fc2-1.0-fc1-3.2-freeze0.8-step0.9-lecun"
    runs = [run("dense-step0.9-lecun", 0, 0.990), run("dense-step0.9-lecun", 1, 0.994), run("dense-step0.9-lecun", 2, 0.992),
            run(tuned, 0, 0.989, 0.98), run(tuned, 1, 0.991, 0.97), run(tuned, 5, 0.990, 0.975),
            run("dense", 0, 0.5), {"arm": "ra-2-0.1", "seed": 0, "final_test_accuracy": None, "error": "boom"}]
    arms = seeds.aggregate(runs)
    dense = arms[tuned]["dense"]
    assert dense["arm"] == "dense-step0.9-lecun" and dense["seeds"] == 3 and dense["paired_seeds"] == 2
    assert dense["difference"] == pytest.approx(0.990 - 0.992)
    assert dense["paired_mean"] == pytest.approx(-0.002)  # seeds 0 and 1: -0.001 and -0.003
    assert dense["paired_std"] == pytest.approx(0.0014142, abs=1e-6)
    assert arms[tuned]["sparsity_mean"] == pytest.approx(0.975)
    assert "dense" not in arms["dense-step0.9-lecun"]
    assert arms["ra-2-0.1"] == {"seeds": [], "errors": ["boom"]}
