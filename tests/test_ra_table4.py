"""benchmarks/ra_table4.py on tiny settings: a dense run and one RA run per δ factor, written to JSON;
a second call reads the finished run directories instead of training again."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "ra_table4.py"
DATA = REPO.parent / "shared" / "data"


@pytest.mark.skipif(not (DATA / "fashion-mnist").exists() and not (DATA / "FashionMNIST").exists(),
                    reason="needs ../shared/data")
def test_table4_reports_classes_and_accuracy_per_delta_and_reuses_finished_runs(tmp_path):
    out = tmp_path / "result.json"
    command = [sys.executable, str(SCRIPT), "--subset", "512", "--width", "0.25", "--range", "1", "--epochs", "1", "--deltas", "inf",
               "0.01", "--out", str(tmp_path / "runs"), "--json", str(out), "--data-dir", str(DATA)]
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert set(result["runs"]) == {"inf", "0.01"} and result["runs"]["inf"]["classes"] == 1
    assert result["extending_interval"] == 1 and result["lr_milestones"] == [4, 6]  # 8 iterations: 10/64, 50%, 75%
    assert 0 <= result["dense"]["final_test_accuracy"] <= 1
    first = (tmp_path / "runs" / "delta-inf" / "summary.json").stat().st_mtime_ns
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "runs" / "delta-inf" / "summary.json").stat().st_mtime_ns == first  # read, not retrained
    assert json.loads(out.read_text())["runs"] == result["runs"]
