"""benchmarks/ra_table4_probe.py on tiny settings: one probe per seed, classes for every δ factor."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ra_table4_probe.py"


def test_probe_reports_the_classes_each_delta_gives_on_every_seed(tmp_path):
    name = tmp_path / "probe"
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--seeds", "0,1", "--name", str(name)],
                          capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    result = json.loads(name.with_suffix(".json").read_text())
    assert [r["seed"] for r in result["runs"]] == [0, 1]
    for run in result["runs"]:
        layers = len(run["layers"])
        assert layers == len(run["sensitivity"]) == len(run["sparsity"]) == 22  # ResNet-20: 19 convs, 2 shortcuts, fc
        assert run["iterations"] == 4
        assert run["classes_by_factor"]["inf"] == 1
        assert all(1 <= n <= layers for n in run["classes_by_factor"].values())
        # sensitivity is 1 / sparsity
        assert all(abs(s * p - 1) < 1e-9 for s, p in zip(run["sensitivity"], run["sparsity"]))
    # a factor is listed for "1 class" only when every seed gives one class with it
    for factor in result["factors_for_1_class"]:
        assert all(r["classes_by_factor"][factor] == 1 for r in result["runs"])
    assert "inf" in result["factors_for_1_class"]
    assert "δ factor" in done.stdout
