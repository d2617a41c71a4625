"""The PWT comparison protocol: every arm with the same recipe, several seeds, mean +- std.

VGG-16-BN (width 0.25) on the full Fashion-MNIST training set (60,000 images, padded to 32x32),
evaluated on the full 10,000-image test set, 20 epochs, batch 128, constant-rate Adam (1e-3). Each
(arm, seed) is one ``intrain train`` process (one thread) writing its own run directory; a run that
has a summary is skipped, one with only a checkpoint is continued with ``--resume``, so the script
can be stopped and started again at any time. After every finished run all runs found are gathered
into ``benchmarks/results/pwt_protocol.json``::

    {"protocol": {...}, "runs": [{"arm", "seed", "final_test_accuracy", "last3_test_accuracy",
                                  "train_macs_total", "epoch_seconds_total", "pruned_filter_fraction",
                                  ...}, ...],
     "arms": {arm: {"seeds", "final_mean", "final_std", ...}}}

Usage::

    python benchmarks/pwt_protocol.py --arms dense,pwt-l1,prt-10 --seeds 0,1,2 --jobs 2
    python benchmarks/pwt_protocol.py --collect          # only gather finished runs, print the table
    python benchmarks/pwt_protocol.py --smoke --runs-dir /tmp/p   # tiny settings (bundled demo data)

Arms (the schedules reach 80% of the filters pruned):
  dense                 no pruning
  pwt-l1                the paper: L1, per layer, 4% more after every epoch, 80% after the last
  pwt-l1-global         the same ranked over all layers at once (the paper's Algorithm 1 loop)
  pwt-random, pwt-mean-activation   the paper's schedule with the other criteria (Fig. 5)
  prt-10, prt-14, prt-18            prune-then-retrain: dense for E epochs, prune to 80%, retrain
                        (E/N = 0.5, 0.7, 0.9: the paper's PRT-40/55/70 of 80 epochs)
  pwt-l1-steps          the paper's linear schedule applied every 6 optimizer steps
  pwt-l1-reach0.6       the paper's steps per epoch, 80% reached after 60% of the epochs
  pwt-l1-cubic          Zhu & Gupta's cubic schedule, 80% at the last epoch
  pwt-l1-recipe         cubic, 80% after 60% of the epochs, every 6 steps
  sfp                   Soft Filter Pruning (He et al. 2018): 80% of each layer's lowest-L2 filters
                        zeroed after every epoch but kept training, removed after the last
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import RESULTS, SHARED_DATA

PROTOCOL = {
    "model": "vgg16", "width": 0.25, "dataset": "fashion-mnist", "subset": None, "test_set": "full (10,000)",
    "epochs": 20, "batch_size": 128, "optimizer": "adam", "lr": 1e-3, "lr_schedule": "constant", "target": 0.8,
    "threads_per_run": 1,
}
SMOKE = {**PROTOCOL, "model": "lenet5", "width": 0.25, "dataset": "demo", "subset": 200, "epochs": 2,
         "batch_size": 50}

# the paper's schedule with intrain's per-layer selection, as measured in benchmarks/README.md (recipe paper's own
# default scope is the paper's Algorithms 1-3: pwt-l1-global is Algorithm 1's ranking)
PWT = ["--method", "pwt", "--target", "0.8", "--recipe", "paper"]
LAYER = ["--scope", "layer"]
ARMS: dict[str, list[str]] = {
    "dense": ["--method", "dense"],
    "pwt-l1": [*PWT, *LAYER],
    "pwt-l1-global": [*PWT, "--scope", "global"],
    "pwt-random": [*PWT, *LAYER, "--criterion", "random"],
    "pwt-mean-activation": [*PWT, *LAYER, "--criterion", "mean-activation"],
    "pwt-l1-steps": [*PWT, *LAYER, "--prune-every-steps", "6"],
    "pwt-l1-reach0.6": [*PWT, *LAYER, "--reach", "0.6"],
    "pwt-l1-cubic": [*PWT, *LAYER, "--schedule", "cubic"],
    "pwt-l1-recipe": [*PWT, *LAYER, "--schedule", "cubic", "--reach", "0.6", "--prune-every-steps", "6"],
    "sfp": ["--method", "sfp", "--target", "0.8"],
}
PRT_FRACTIONS = (0.5, 0.7, 0.9)  # E / N


def arms_for(epochs: int) -> dict[str, list[str]]:
    arms = dict(ARMS)
    for share in PRT_FRACTIONS:
        e = max(1, round(share * epochs))
        arms[f"prt-{e}"] = ["--method", "prt", "--target", "0.8", "--prune-epoch", str(e)]
    return arms


def base_args(protocol: dict, data_dir: str) -> list[str]:
    args = ["--model", protocol["model"], "--width", str(protocol["width"]), "--dataset", protocol["dataset"],
            "--epochs", str(protocol["epochs"]), "--batch-size", str(protocol["batch_size"]),
            "--optimizer", protocol["optimizer"], "--lr", str(protocol["lr"]),
            "--lr-schedule", protocol["lr_schedule"]]
    if protocol["dataset"] != "demo":
        args += ["--data-dir", data_dir]
    if protocol["subset"]:
        args += ["--subset", str(protocol["subset"])]
    return args


def run_one(arm: str, seed: int, args: list[str], runs_dir: Path, log) -> None:
    run_dir = runs_dir / f"{arm}-s{seed}"
    if (run_dir / "summary.json").exists():
        return
    if (run_dir / "checkpoint.pt").exists():
        command = ["--resume", str(run_dir)]
        log(f"resume {run_dir.name}")
    else:
        command = [*args, "--seed", str(seed), "--out", str(run_dir)]
        log(f"start  {run_dir.name}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    runs_dir.mkdir(parents=True, exist_ok=True)
    with open(runs_dir / f"{arm}-s{seed}.log", "a") as out:
        done = subprocess.run([sys.executable, "-m", "intrain", "train", *command, "--quiet"], env=env,
                              stdout=out, stderr=subprocess.STDOUT)
    log(f"{'done  ' if done.returncode == 0 else f'FAILED ({done.returncode})'} {run_dir.name}")


def read_run(run_dir: Path) -> dict | None:
    """The protocol's record of one finished run directory (None if unfinished)."""
    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        return None
    summary = json.loads(summary_path.read_text())
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    arm, _, seed = run_dir.name.rpartition("-s")
    last3 = [r["test_accuracy"] for r in history[-3:]]
    return {
        "arm": arm,
        "seed": int(seed),
        "final_test_accuracy": summary["final_test_accuracy"],
        "last3_test_accuracy": sum(last3) / len(last3),
        "best_test_accuracy": summary["best_test_accuracy"],
        "train_macs_total": summary.get("train_macs_total"),
        "dense_train_macs_total": summary.get("dense_train_macs_total"),
        "epoch_seconds_total": sum(r["epoch_seconds"] for r in history),
        "pruned_filter_fraction": summary["pruned_filter_fraction"],
        "params_final": summary.get("params_final"),
        "test_accuracy_by_epoch": [r["test_accuracy"] for r in history],
    }


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(runs: list[dict]) -> dict[str, dict]:
    arms: dict[str, dict] = {}
    dense_seconds = [r["epoch_seconds_total"] for r in runs if r["arm"] == "dense"]
    for arm in sorted({r["arm"] for r in runs}, key=lambda a: (a != "dense", a)):
        rows = [r for r in runs if r["arm"] == arm]
        final, last3 = mean_std([r["final_test_accuracy"] for r in rows]), mean_std([r["last3_test_accuracy"] for r in rows])
        macs = [r["train_macs_total"] / r["dense_train_macs_total"] for r in rows if r.get("dense_train_macs_total")]
        seconds = statistics.fmean(r["epoch_seconds_total"] for r in rows)
        arms[arm] = {
            "seeds": sorted(r["seed"] for r in rows),
            "final_mean": final[0], "final_std": final[1],
            "last3_mean": last3[0], "last3_std": last3[1],
            "train_macs_vs_dense": statistics.fmean(macs) if macs else None,
            "epoch_seconds_mean": seconds,
            "epoch_seconds_vs_dense": seconds / statistics.fmean(dense_seconds) if dense_seconds else None,
            "pruned_filter_fraction": statistics.fmean(r["pruned_filter_fraction"] for r in rows),
        }
    return arms


def table(arms: dict[str, dict]) -> list[list[str]]:
    rows = [["arm", "seeds", "final acc %", "last-3 acc %", "MACs/dense", "time/dense", "pruned"]]
    for arm, a in arms.items():
        rows.append([arm, str(len(a["seeds"])), f"{100 * a['final_mean']:.2f} ± {100 * a['final_std']:.2f}",
                     f"{100 * a['last3_mean']:.2f} ± {100 * a['last3_std']:.2f}",
                     f"{a['train_macs_vs_dense']:.3f}" if a["train_macs_vs_dense"] is not None else "-",
                     f"{a['epoch_seconds_vs_dense']:.3f}" if a["epoch_seconds_vs_dense"] is not None else "-",
                     f"{100 * a['pruned_filter_fraction']:.1f}%"])
    return rows


def collect(runs_dir: Path, protocol: dict, json_path: Path) -> dict:
    runs = [r for d in sorted(runs_dir.iterdir()) if d.is_dir() and (r := read_run(d)) is not None] \
        if runs_dir.exists() else []
    result = {"protocol": {**protocol, "arms": {a: " ".join(v) for a, v in arms_for(protocol["epochs"]).items()}},
              "runs": runs, "arms": aggregate(runs)}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = json_path.with_name(f".{json_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, json_path)
    return result


def print_table(result: dict) -> None:
    rows = table(result["arms"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)), flush=True)
        if n == 0:
            print("  ".join("-" * w for w in widths), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arms", default="dense,pwt-l1,prt-10,prt-14",
                        help="comma-separated arms (see the module docstring); default: %(default)s")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side, one thread each (default 2)")
    parser.add_argument("--runs-dir", default="runs/pwt-protocol", help="where the run directories go")
    parser.add_argument("--json", default=str(RESULTS / "pwt_protocol.json"), help="the results file")
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--collect", action="store_true", help="only gather finished runs and print the table")
    parser.add_argument("--smoke", action="store_true", help="tiny settings on the bundled demo data (a test)")
    args = parser.parse_args(argv)
    protocol = SMOKE if args.smoke else PROTOCOL
    arms = arms_for(protocol["epochs"])
    chosen = [a for a in args.arms.split(",") if a]
    unknown = [a for a in chosen if a not in arms]
    if unknown:
        parser.error(f"unknown arm '{unknown[0]}'; choose from: {', '.join(arms)}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    runs_dir, json_path = Path(args.runs_dir), Path(args.json)
    if not args.collect:
        common = base_args(protocol, args.data_dir)

        def log(message: str) -> None:
            print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)

        def job(arm_seed: tuple[str, int]) -> None:
            arm, seed = arm_seed
            run_one(arm, seed, [*common, *arms[arm]], runs_dir, log)
            collect(runs_dir, protocol, json_path)

        # seed-major order: every arm gets its first seed before any gets its second
        order = [(arm, seed) for seed in seeds for arm in chosen]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(job, order))
    result = collect(runs_dir, protocol, json_path)
    print(json.dumps({"protocol": result["protocol"]["model"], "arms": result["arms"]}))
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
