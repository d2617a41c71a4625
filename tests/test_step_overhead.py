"""benchmarks/step_overhead.py on tiny settings: both measurements run and are reported as ratios."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "step_overhead.py"


def test_smoke_run_reports_the_step_ratio_and_each_arms_epoch_time_ratio(tmp_path):
    out = tmp_path / "step_overhead.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--json", str(out)], capture_output=True, text=True,
                          timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                                            "PYTHONPATH": str(REPO / "src")})
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    line = next(line for line in done.stdout.splitlines() if line.startswith("{"))
    assert json.loads(line) == result  # the JSON line, then the table
    step = result["step"]
    assert step["ratio"] > 0 and 0.6 < step["pruned_filter_fraction"] < 0.7
    left = step["hooks_left"]["compacted"]
    assert {k: v for k, v in left.items() if k != "filter_masks"} == {k: 0 for k in left if k != "filter_masks"}
    runs = result["epochs"]["runs"]
    assert set(runs) == {"dense", "intrain-pwt-compact", "torch-pruning"} and runs["dense"]["epoch_time_ratio"] == 1.0
    assert runs["intrain-pwt-compact"]["pruned_filter_fraction"] >= 0.8 and runs["torch-pruning"]["pruned_filter_fraction"] >= 0.8
    assert runs["intrain-pwt-compact"]["params"] == runs["torch-pruning"]["params"]  # the same final shapes
    assert list(result["epochs"]["by_seed"]) == ["0"] and runs["torch-pruning"]["epoch_time_ratios"] == [
        result["epochs"]["by_seed"]["0"]["torch-pruning"]["epoch_time_ratio"]]  # mean over the one seed
    assert "epoch time / dense: torch-pruning" in done.stdout
    paired = result["epochs"]["intrain_minus_torch_pruning"]
    assert paired["by_seed"] == [runs["intrain-pwt-compact"]["epoch_time_ratio"] - runs["torch-pruning"]["epoch_time_ratio"]]


def test_over_a_pair_of_seeds_each_pruned_arm_trains_first_as_often_as_second_at_every_epoch():
    import importlib.util

    spec = importlib.util.spec_from_file_location("step_overhead", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = ["dense", "intrain", "tp"]
    for epoch in range(8):
        orders = [module.arm_order(names, epoch, mirrored) for mirrored in (False, True)]
        assert [order[0] for order in orders] == ["dense", "dense"]
        assert sorted(order[1] for order in orders) == ["intrain", "tp"]  # each goes second once, third once
    assert [module.arm_order(names, e, False)[1] for e in range(4)] == ["intrain", "tp", "intrain", "tp"]
