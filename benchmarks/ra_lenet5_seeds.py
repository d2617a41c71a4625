"""The RA paper's Table 2 row over seeds: LeNet-5 / full MNIST, Caffe recipe, 11 epochs; dense, RA arms
and scratch-train arms, each run once per seed, mean ± std per arm.

Arms (``ARMS``): ``dense``; ``ra-2-0.1`` (the paper's setting and our defaults: |K| moments over all
weights, He-normal init, the fully connected class from ``total / 2``); candidate variants named by
what they change; ``scratch-<ra arm>`` trains that arm's final masks (same seed) from a fresh
initialisation (seed + 1, the paper's baseline) and ``scratch-same-<ra arm>`` from the RA run's own
initial weights. Resumable: a (arm, seed) already in the results file is skipped, a finished run
directory of the same configuration is read instead of trained again, and an interrupted one (SIGINT,
SIGTERM: the benchmark stops) is continued from its checkpoint. The results file is written after
every run.

    python benchmarks/ra_lenet5_seeds.py --arms dense ra-2-0.1 scratch-ra-2-0.1 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, SHARED_DATA, emit, train_or_resume  # noqa: E402

import intrain  # noqa: E402
from intrain.config import TrainConfig  # noqa: E402
from intrain.errors import IntrainError, TrainingInterrupted  # noqa: E402

ITERATIONS = 11 * 938  # 11 epochs of 938 batches of 64 (60,000 images)
PAPER_EXTENSION = round(ITERATIONS * 10_000 / 64_000)  # the ResNet-56 schedule's first extension, scaled: 1612

RA = dict(method="ra", range=2.0, epsilon=0.1, partition="type")
DNS = dict(moments_at="start", hysteresis="relative", update_gamma=1e-4, update_power=1.0)
# the best point found on Caffe's recipe: DNS rules, fc1 at 2.9, the classifier (fc2) at 1, masks frozen at 80%
BEST = {**RA, **DNS, "layer_ranges": (("fc1", 2.9), ("fc2", 1.0)), "freeze_masks_at": 0.8}
ARMS: dict[str, dict] = {
    "dense": dict(method="dense"),
    "ra-2-0.1": RA,
    # candidates (item 3 of issue #12), each one change from ra-2-0.1 unless named otherwise
    "ra-2-0.1-ext1612": {**RA, "extending_interval": PAPER_EXTENSION},
    "ra-2-0.1-signed": {**RA, "moments": "signed"},
    "ra-2-0.1-kept": {**RA, "moments_over": "kept"},
    "ra-2-0.1-fixed": {**RA, "moments_at": "start"},  # DNS: thresholds from the weights when the class starts
    "ra-2-0.1-gauss0.01": {**RA, "init": "gaussian", "init_std": 0.01},
    # range 2.7: 97.7% sparsity interpolated (normal quantiles) between ra_lenet5.json's 95.1% at 2 and 98.6% at 3
    "ra-2.7-0.1": {**RA, "range": 2.7},
    "ra-2.7-0.1-ext1612": {**RA, "range": 2.7, "extending_interval": PAPER_EXTENSION},
    "ra-3-0.1-ext1612": {**RA, "range": 3.0, "extending_interval": PAPER_EXTENSION},
    # Dynamic Network Surgery's three rules together: thresholds fixed when a class starts, the band
    # 0.9 / 1.1 of one threshold, masks updated with probability (1 + 1e-4 i)^-1
    "ra-2-0.1-dns": {**RA, **DNS},
    "ra-2-0.1-relative": {**RA, "hysteresis": "relative"},
    "ra-2.7-0.1-dns": {**RA, "range": 2.7, **DNS},
    "ra-2.5-0.1-dns": {**RA, "range": 2.5, **DNS},
    # the sparsity where the weights are: fc1 (93% of them) at range 2.7, every other layer at the
    # paper's 2 (at 2.7 the DNS rules leave conv1 16 of its 500 weights)
    "ra-2-0.1-dns-fc1-2.7": {**RA, **DNS, "layer_ranges": (("fc1", 2.7),)},
    "ra-2-0.1-dns-fc1-2.6": {**RA, **DNS, "layer_ranges": (("fc1", 2.6),)},
    # the same, with the fully connected class starting at the ResNet-56 schedule's proportion
    "ra-2-0.1-dns-fc1-2.7-ext1612": {**RA, **DNS, "layer_ranges": (("fc1", 2.7),), "extending_interval": PAPER_EXTENSION},
    # the same with masks settling sooner: update probability (1 + 1e-3 i)^-1 (0.09 at the end, DNS's 0.5)
    "ra-2-0.1-dns-fc1-2.7-g1e-3": {**RA, **DNS, "layer_ranges": (("fc1", 2.7),), "update_gamma": 1e-3},
    # the same with the masks frozen for the last 20% of the run: the network fine-tunes on fixed masks
    "ra-2-0.1-dns-fc1-2.7-freeze0.8": {**RA, **DNS, "layer_ranges": (("fc1", 2.7),), "freeze_masks_at": 0.8},
    # fc1 at 2.8 to make up the sparsity the frozen last 20% no longer adds (97.6% at 2.7)
    "ra-2-0.1-dns-fc1-2.8-freeze0.8": {**RA, **DNS, "layer_ranges": (("fc1", 2.8),), "freeze_masks_at": 0.8},
    # the small layers kept denser (conv1 holds 0.1% of the weights, conv2 6%), fc1 sparser
    "ra-2-0.1-dns-c1.0-c1.5-fc1-2.8-freeze0.8": {**RA, **DNS, "layer_ranges": (("conv1", 1.0), ("conv2", 1.5), ("fc1", 2.8)),
                                                 "freeze_masks_at": 0.8},
    "ra-2-0.1-dns-c1.0-c1.5-fc1-2.9-freeze0.8": {**RA, **DNS, "layer_ranges": (("conv1", 1.0), ("conv2", 1.5), ("fc1", 2.9)),
                                                 "freeze_masks_at": 0.8},
    # frozen for the last 30%, fc1 at 2.9 for the sparsity the earlier freeze leaves out
    "ra-2-0.1-dns-fc1-2.9-freeze0.7": {**RA, **DNS, "layer_ranges": (("fc1", 2.9),), "freeze_masks_at": 0.7},
    # gradual pruning: each class's thresholds grow linearly from 0 over 2,000 iterations (~2 epochs) once
    # it starts (`--ramp-iterations 2000`), instead of all at once
    "ra-2-0.1-dns-fc1-2.8-freeze0.8-ramp2000": {**RA, **DNS, "layer_ranges": (("fc1", 2.8),), "freeze_masks_at": 0.8,
                                                "ramp_iterations": 2000},
    "ra-2-0.1-dns-fc1-2.7-ramp3000": {**RA, **DNS, "layer_ranges": (("fc1", 2.7),), "ramp_iterations": 3000},
    # the classifier kept denser (fc2 at range 1: 79% pruned instead of 89%), fc1 sparser to pay for it
    "ra-2-0.1-dns-fc2-1.0-fc1-2.9-freeze0.8": BEST,
    "ra-2-0.1-dns-fc2-1.0-fc1-2.8-freeze0.8-ramp2000": {**RA, **DNS, "layer_ranges": (("fc1", 2.8), ("fc2", 1.0)),
                                                        "freeze_masks_at": 0.8, "ramp_iterations": 2000},
    "ra-2-0.1-dns-c1.0-c1.5-fc2-1.0-fc1-3.0-freeze0.8": {
        **RA, **DNS, "layer_ranges": (("conv1", 1.0), ("conv2", 1.5), ("fc1", 3.0), ("fc2", 1.0)), "freeze_masks_at": 0.8},
    # the fully connected class from iteration 1612 (8.7k iterations to recover instead of 5.2k), fc1's
    # range lowered to 2.45 for the sparsity the earlier start adds (98.97% of fc1 at 2.7 from 1612, 98.33% from 5159)
    "ra-2-0.1-dns-fc2-1.0-fc1-2.45-ext1612-freeze0.8": {**RA, **DNS, "layer_ranges": (("fc1", 2.45), ("fc2", 1.0)),
                                                        "extending_interval": PAPER_EXTENSION, "freeze_masks_at": 0.8},
    # weight decay 1e-4 instead of Caffe's 5e-4: the sparse network underfits (train loss 0.019 at the end
    # against dense's 0.0023); less sparse and no more accurate, so the dense arm was not run
    "ra-2-0.1-dns-fc2-1.0-fc1-2.9-freeze0.8-wd1e-4": {**BEST, "weight_decay": 1e-4},
}
# other recipes, each run for dense and the best point alike (the gap to that recipe's dense is what counts):
# cosine falls to 0 instead of Caffe's inv (0.0061 at the end); constant stays at 0.01; step0.9 is the
# constant rate with its last 10% at 0.001 (the masks are frozen from 80%)
def step_at(fraction: float, iterations: int) -> dict:
    """A constant lr with a tenth of it from ``fraction`` of ``iterations`` on."""
    return dict(lr_schedule="step", lr_milestones=(round(fraction * iterations),), lr_gamma=0.1)


STEP09 = step_at(0.9, ITERATIONS)
RECIPES = {
    "cosine": dict(lr_schedule="cosine"),
    "constant": dict(lr_schedule="constant"),
    "step0.9": STEP09,
    # the same at twice the rate: the sparse network underfits and recovers from the fc class's prune at mid-run
    "step0.9-lr0.02": {**STEP09, "lr": 0.02},
    # step0.9 from N(0, 1/fan_in) (Caffe xavier's variance, Gaussian): He-normal's doubles the variance at each
    # of LeNet-5's convolutions (no ReLU between them), initial logits std ~4-7, and dense diverges on seeds 3, 5
    "step0.9-lecun": {**STEP09, "init": "lecun-normal"},
    "step0.9-lecun-lr0.02": {**STEP09, "init": "lecun-normal", "lr": 0.02},
}
for _name, _recipe in RECIPES.items():
    ARMS[f"dense-{_name}"] = dict(method="dense", **_recipe)
    ARMS[f"ra-2-0.1-dns-fc2-1.0-fc1-2.9-freeze0.8-{_name}"] = {**BEST, **_recipe}
# from lecun-normal fc1 at 2.9 ends at 98.0% (He-normal: 98.5%), 97.4% in all: fc1 at 3.1 (97.68%, seed 0), 3.15, 3.2;
# at lr 0.02 fc1 at 3.2 keeps 2.5% of fc1 (96.9% in all): 3.8 for the sparsity
for _fc1, _name in ((3.1, "step0.9-lecun"), (3.15, "step0.9-lecun"), (3.2, "step0.9-lecun"),
                    (3.2, "step0.9-lecun-lr0.02"), (3.8, "step0.9-lecun-lr0.02")):
    ARMS[f"ra-2-0.1-dns-fc2-1.0-fc1-{_fc1}-freeze0.8-{_name}"] = {
        **BEST, "layer_ranges": (("fc1", _fc1), ("fc2", 1.0)), **RECIPES[_name]}
# the conv class from iteration 938 (one epoch: its masks from trained weights, not the initial ones), the fc class
# still from 5159 (`--first-class-at 938 --extending-interval 4221`)
ARMS["ra-2-0.1-dns-fc2-1.0-fc1-3.2-freeze0.8-step0.9-lecun-conv938"] = {
    **ARMS["ra-2-0.1-dns-fc2-1.0-fc1-3.2-freeze0.8-step0.9-lecun"], "first_class_at": 938, "extending_interval": 4221}

# the weights moved between the convolutions (6% of them, pruned from their initial weights at iteration 0) and fc1 at
# about the same 97.7-98%: conv1 and conv2 denser (range 1) paid by fc1 at 3.35 (3.45 is refused: Eq. 1 would take
# 99.0% of fc1) and fc2 at the default 2; conv2 sparser (range 3) paying for fc1 at 3.0
_LECUN_POINT = ARMS["ra-2-0.1-dns-fc2-1.0-fc1-3.2-freeze0.8-step0.9-lecun"]
ARMS["ra-2-0.1-dns-c1-1.0-c2-1.0-fc1-3.35-freeze0.8-step0.9-lecun"] = {
    **_LECUN_POINT, "layer_ranges": (("conv1", 1.0), ("conv2", 1.0), ("fc1", 3.35))}
ARMS["ra-2-0.1-dns-c2-3.0-fc2-1.0-fc1-3.0-freeze0.8-step0.9-lecun"] = {
    **_LECUN_POINT, "layer_ranges": (("conv2", 3.0), ("fc1", 3.0), ("fc2", 1.0))}
# conv1 (500 weights; at range 2 it keeps ~55, 2-6 of its 20 filters dead) nearly dense at range -1, fc1 at 3.3 to pay
ARMS["ra-2-0.1-dns-c1--1.0-fc2-1.0-fc1-3.3-freeze0.8-step0.9-lecun"] = {
    **_LECUN_POINT, "layer_ranges": (("conv1", -1.0), ("fc1", 3.3), ("fc2", 1.0))}
ARMS["ra-2-0.1-dns-c1-0.0-fc2-1.0-fc1-3.3-freeze0.8-step0.9-lecun"] = {
    **_LECUN_POINT, "layer_ranges": (("conv1", 0.0), ("fc1", 3.3), ("fc2", 1.0))}  # conv1 at range 0: about half of it
# the same on Caffe's recipe (He-normal, inv): the He-normal denser-classifier point with conv1 nearly dense, fc1 at 3.0
ARMS["ra-2-0.1-dns-c1--1.0-fc2-1.0-fc1-3.0-freeze0.8"] = {**BEST, "layer_ranges": (("conv1", -1.0), ("fc1", 3.0), ("fc2", 1.0))}
# the fully connected class from 60% of the run (6,191: its masks from weights trained longer, 2,063 iterations
# before the masks freeze) instead of 50%
ARMS["ra-2-0.1-dns-fc2-1.0-fc1-3.2-freeze0.8-step0.9-lecun-fc6191"] = {**_LECUN_POINT, "extending_interval": 6191}
# the same 11 epochs in batches of 32: twice the updates (20,625) for a sparse network that underfits
B32_ITERATIONS = 11 * 1875
_B32 = dict(batch_size=32, init="lecun-normal", **step_at(0.9, B32_ITERATIONS))
ARMS["dense-step0.9-lecun-b32"] = dict(method="dense", **_B32)
ARMS["ra-2-0.1-dns-fc2-1.0-fc1-3.2-freeze0.8-step0.9-lecun-b32"] = {**_LECUN_POINT, **_B32}


# what a scratch-train arm takes from its RA arm besides the masks: the initialisation and the recipe
SHARED_WITH_SCRATCH = ("init", "init_std", "batch_size", "lr", "lr_schedule", "lr_milestones", "lr_gamma", "weight_decay")


def caffe_recipe(seed: int, data_dir: str, epochs: int, subset: int | None = None) -> TrainConfig:
    return TrainConfig.of(model="lenet5", dataset="mnist", data_dir=data_dir, subset=subset, epochs=epochs, batch_size=64,
                       optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, lr_schedule="inv",
                       inv_gamma=1e-4, inv_power=0.75, seed=seed)


def scratch_source(arm: str) -> tuple[str, str] | None:
    """``(RA arm, scratch_init)`` of a scratch arm (``scratch-X``: fresh, ``scratch-same-X``: same), else None."""
    for prefix, init in (("scratch-same-", "same"), ("scratch-", "fresh")):
        if arm.startswith(prefix):
            return arm[len(prefix):], init
    return None


def recipe(arm: str) -> dict | None:
    """What an arm trains with besides its pruning: initialisation, batch, lr, schedule, weight decay (a
    scratch arm's are its RA arm's); None for an arm ARMS does not hold."""
    source = (scratch_source(arm) or (arm,))[0]
    return {k: v for k, v in ARMS[source].items() if k in SHARED_WITH_SCRATCH} if source in ARMS else None


def arm_config(arm: str, seed: int, args: argparse.Namespace) -> TrainConfig:
    base = caffe_recipe(seed, args.data_dir, args.epochs, args.subset)
    out = f"{args.out}/{arm}-s{seed}"
    if (scratch := scratch_source(arm)) is not None:
        source, init = scratch
        if source not in ARMS:
            raise SystemExit(f"unknown arm {arm}: {source} is not an RA arm")
        return base.replace(**recipe(source), method="scratch", masks_from=f"{args.out}/{source}-s{seed}",
                            scratch_init=init, out=out)
    if arm not in ARMS:
        raise SystemExit(f"unknown arm {arm}; choose from {', '.join(ARMS)} or scratch-[same-]<ra arm>")
    return base.replace(**ARMS[arm], out=out)


def record(arm: str, seed: int, s: dict) -> dict:
    sparse = s.get("sparse_file") or {}
    first_prune = None
    if s.get("ra"):
        fc_start = s["ra"]["class_start_iterations"][-1]
        first_prune = {"fc_start_iteration": fc_start, "interval": s["ra"]["extending_interval"]}
    return {"arm": arm, "seed": seed, "final_test_accuracy": s["final_test_accuracy"], "sparsity": s["sparsity"],
            "best_test_accuracy": s["best_test_accuracy"], "compression": s["compression"],
            "layers": {layer["name"]: layer["sparsity"] for layer in s["layers"]},
            "sparse_file_ratio": sparse.get("ratio"), "train_seconds": s["train_seconds"],
            "scratch_init_seed": (s.get("scratch") or {}).get("init_seed"),
            "scratch_init": (s.get("scratch") or {}).get("init"), "ra_schedule": first_prune}


def dense_reference(arm: str) -> str | None:
    """The dense arm an arm is measured against: the one on the same recipe (None for a dense arm, an arm
    ARMS no longer holds, or where no dense arm has that recipe)."""
    mine = recipe(arm)
    if mine is None or ARMS.get(arm, {}).get("method") == "dense":
        return None
    return next((name for name, spec in ARMS.items() if spec["method"] == "dense" and recipe(name) == mine), None)


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate(runs: list[dict]) -> dict[str, dict]:
    """Per arm: its seeds, accuracy and sparsity mean ± std, and against its dense reference (same recipe)
    the difference of the means and the paired difference over the seeds both ran."""
    done = {(r["arm"], r["seed"]): r for r in runs if r.get("final_test_accuracy") is not None}
    arms: dict[str, dict] = {}
    for arm in dict.fromkeys(r["arm"] for r in runs):
        mine = [r for (a, _), r in done.items() if a == arm]
        if not mine:
            arms[arm] = {"seeds": [], "errors": [r.get("error") for r in runs if r["arm"] == arm]}
            continue
        acc = [r["final_test_accuracy"] for r in mine]
        sp = [r["sparsity"] for r in mine]
        arms[arm] = {"seeds": [r["seed"] for r in mine], "accuracy_mean": statistics.fmean(acc),
                     "accuracy_std": _std(acc), "sparsity_mean": statistics.fmean(sp), "sparsity_std": _std(sp)}
        reference = dense_reference(arm)
        ref = [r["final_test_accuracy"] for (a, _), r in done.items() if a == reference]
        if ref:
            paired = [r["final_test_accuracy"] - done[(reference, r["seed"])]["final_test_accuracy"]
                      for r in mine if (reference, r["seed"]) in done]
            arms[arm]["dense"] = {"arm": reference, "seeds": len(ref),
                                  "difference": statistics.fmean(acc) - statistics.fmean(ref),
                                  "paired_mean": statistics.fmean(paired) if paired else None,
                                  "paired_std": _std(paired), "paired_seeds": len(paired)}
    return arms


def protocol(args: argparse.Namespace, arms: list[str]) -> dict:
    """What every run shares, and the settings of each arm in ``arms`` (the arms the file holds)."""
    return {
        "model": "lenet5", "dataset": "mnist (60,000 train, 10,000 test)", "epochs": args.epochs, "subset": args.subset,
        "recipe": "Caffe lenet_solver: SGD lr 0.01, momentum 0.9, weight decay 5e-4, inv (gamma 1e-4, power 0.75), "
                  "batch 64", "iterations": ITERATIONS, "init": "he-normal unless the arm says otherwise",
        "scratch": "scratch-X: X's final masks of the same seed, initial weights from seed + 1 (fresh); "
                   "scratch-same-X: from X's own initial weights",
        "arms": {arm: _arm_settings(arm) for arm in arms},
        "threads": "OMP_NUM_THREADS=1, CPU",
    }


def _arm_settings(arm: str) -> dict:
    if (scratch := scratch_source(arm)) is not None:
        return {"method": "scratch", "masks_from": scratch[0], "scratch_init": scratch[1], **(recipe(arm) or {})}
    return dict(ARMS.get(arm, {"unknown": "not in ARMS any more"}))


def resolved_config(arm: str, seed: int, args: argparse.Namespace) -> dict | None:
    """The run's resolved configuration (``out`` and ``data_dir`` aside), from the arm's definition."""
    try:
        config = arm_config(arm, seed, args).resolved().to_dict()
    except (SystemExit, IntrainError):
        return None
    return {k: v for k, v in config.items() if k not in ("out", "data_dir", "masks_from")}


def describe(result: dict, args: argparse.Namespace) -> dict:
    """The results file made self-describing from its runs alone: each run record with its resolved
    configuration (records written before records carried one get it rebuilt from the arm's definition,
    marked so, with no version), the protocol with every arm the runs hold, and the aggregates."""
    for run in result["runs"]:
        if "config" not in run:
            run["config"] = resolved_config(run["arm"], run["seed"], args)
            run["config_source"] = "rebuilt from the arm's definition (the run's record predates configs)"
            run.setdefault("intrain_version", None)
    arms = list(dict.fromkeys(r["arm"] for r in result["runs"]))
    result["protocol"] = protocol(args, arms)
    result["arms"] = aggregate(result["runs"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="+", default=["dense", "ra-2-0.1", "scratch-ra-2-0.1"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=11)
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--subset", type=int, default=None, help="training subset (smoke tests only)")
    parser.add_argument("--out", default="runs/ra-seeds")
    parser.add_argument("--name", default="ra_lenet5_seeds", help="results file benchmarks/results/NAME.json")
    parser.add_argument("--refresh", action="store_true", help="only rewrite the file's protocol, configs and "
                                                              "aggregates from its runs (no training)")
    args = parser.parse_args()
    path = RESULTS / f"{args.name}.json"
    result = json.loads(path.read_text()) if path.exists() else {"runs": []}
    if args.refresh:
        args.arms = []
    runs: list[dict] = result["runs"]
    for arm in args.arms:
        for seed in args.seeds:
            if any(r["arm"] == arm and r["seed"] == seed and r.get("final_test_accuracy") is not None for r in runs):
                continue
            config = arm_config(arm, seed, args)
            start = time.perf_counter()
            try:
                entry = record(arm, seed, train_or_resume(config))
            except TrainingInterrupted as exc:  # stop the whole benchmark; the next call continues the run
                raise SystemExit(f"{arm} seed {seed}: {exc}") from None
            except IntrainError as exc:
                entry = {"arm": arm, "seed": seed, "final_test_accuracy": None, "sparsity": None, "error": str(exc)}
            entry.update(config=resolved_config(arm, seed, args), intrain_version=intrain.__version__)
            runs[:] = [r for r in runs if not (r["arm"] == arm and r["seed"] == seed)] + [entry]
            describe(result, args)
            RESULTS.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result, indent=2) + "\n")
            acc = entry["final_test_accuracy"]
            print(f"{arm} seed {seed}: " + (f"{100 * acc:.2f}% at sparsity {100 * entry['sparsity']:.2f}%"
                                            if acc is not None else entry["error"])
                  + f" ({time.perf_counter() - start:.0f} s)", flush=True)
    describe(result, args)
    table = [["arm", "seeds", "final acc (mean ± std)", "vs its dense pt (paired ± std, n)", "sparsity (mean ± std)",
              "1/(1-sparsity)"]]
    for arm, a in result["arms"].items():
        if not a["seeds"]:
            table.append([arm, "-", "error", "-", "-", "-"])
            continue
        vs = "-"
        if "dense" in a:
            d = a["dense"]
            vs = f"{100 * d['difference']:+.2f}"
            if d["paired_seeds"]:
                vs += f" ({100 * d['paired_mean']:+.2f} ± {100 * d['paired_std']:.2f}, {d['paired_seeds']})"
        table.append([arm, len(a["seeds"]), f"{100 * a['accuracy_mean']:.2f} ± {100 * a['accuracy_std']:.2f}%", vs,
                      f"{100 * a['sparsity_mean']:.2f} ± {100 * a['sparsity_std']:.2f}%",
                      f"{1 / max(1e-9, 1 - a['sparsity_mean']):.1f}x"])
    emit(args.name, result, table)


if __name__ == "__main__":
    main()
