"""benchmarks/pwt_protocol.py on tiny settings: runs, skips finished runs, gathers mean +- std."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "pwt_protocol.py"


def protocol(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--smoke", *args], capture_output=True, text=True,
                          timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_protocol_runs_each_arm_and_seed_once_and_reports_mean_and_std(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "p.json"
    done = protocol("--arms", "dense,pwt-l1-recipe", "--seeds", "0,1", "--runs-dir", str(runs), "--json", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert sorted((r["arm"], r["seed"]) for r in result["runs"]) == [("dense", 0), ("dense", 1),
                                                                     ("pwt-l1-recipe", 0), ("pwt-l1-recipe", 1)]
    dense = [r["final_test_accuracy"] for r in result["runs"] if r["arm"] == "dense"]
    assert result["arms"]["dense"]["final_mean"] == pytest.approx(sum(dense) / 2)
    assert result["arms"]["dense"]["train_macs_vs_dense"] == pytest.approx(1.0)
    assert result["arms"]["pwt-l1-recipe"]["train_macs_vs_dense"] < 0.9
    assert result["arms"]["pwt-l1-recipe"]["pruned_filter_fraction"] >= 0.8
    assert "dense" in done.stdout and "±" in done.stdout
    again = protocol("--arms", "dense", "--seeds", "0", "--runs-dir", str(runs), "--json", str(out))
    assert "start" not in again.stdout  # finished runs are not trained again
    assert protocol("--arms", "nope", "--runs-dir", str(runs)).returncode == 2
