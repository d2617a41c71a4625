"""benchmarks/gpu_suite.py --smoke: every part of the GPU suite runs on the CPU in under a minute and
writes the JSON it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_suite.py"


def test_smoke_run_covers_every_part_and_writes_its_json(tmp_path):
    out = tmp_path / "gpu_smoke.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SUITE.parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(SUITE), "--smoke", "--device", "cpu", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    printed = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("{")))
    result = json.loads(out.read_text())
    assert printed == result and result["smoke"] and result["device"].startswith("CPU")
    assert result["seconds"] < 60 and result["skipped"] == []
    runs = {(r["model"], r["precision"], r["method"], r["compact"]): r for r in result["schedule"]}
    expected = {(m, p, "dense", None) for m in ("vgg16", "resnet20") for p in ("fp32", "bf16")}
    expected |= {(m, p, "pwt", True) for m in ("vgg16", "resnet20") for p in ("fp32", "bf16")}
    expected |= {("vgg16", p, "pwt", False) for p in ("fp32", "bf16")}
    assert set(runs) == expected
    for (model, precision, method, compact), run in runs.items():
        assert len(run["step_ms"]) == len(run["epoch_seconds"]) == result["settings"]["epochs"] == 2
        assert min(run["step_ms"]) > 0 and abs(sum(run["epoch_seconds"]) - run["epoch_seconds_total"]) < 1e-3
        if method == "dense":
            assert run["pruned_filter_fraction"] == 0 and run["params_after"] == run["params_before"]
            continue
        if model == "vgg16":  # the schedule's target, reached at its end
            assert abs(run["pruned_filter_fraction"] - 0.8) < 0.05
        else:  # ResNet-20 at width 1/16 has 1-filter layers, which pruning never empties
            assert 0.3 < run["pruned_filter_fraction"] < 0.8
        assert (run["params_after"] < run["params_before"]) == compact  # compacted runs shrink, masked ones not
        assert run["measured_ratio"] > 0 and run["projected_ratio"] > 0
    assert {(r["model"], r["precision"]) for r in result["ra_overhead"]} == {
        (m, p) for m in ("vgg16", "resnet20") for p in ("fp32", "bf16")}
    assert all(r["overhead"] > 0 for r in result["ra_overhead"])
    assert [r["precision"] for r in result["loop"]] == ["fp32", "bf16"] and all(r["ratio"] > 0 for r in result["loop"])
