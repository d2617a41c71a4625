"""The figures benchmarks/README.md quotes are the results files' own: every row of the PWT protocol
table and RA's Table 2 headline are recomputed from benchmarks/results/*.json, and the RA results file
describes itself (every arm in its protocol, every run with its configuration)."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
README = (REPO / "benchmarks" / "README.md").read_text(encoding="utf-8")
PROSE = " ".join(README.split())  # line breaks inside sentences do not matter
RA_HEADLINE = "ra-2-0.1-dns-c1--1.0-fc2-1.0-fc1-3.3-freeze0.8-step0.9-lecun"


def _results(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def _pct(values: list[float]) -> tuple[str, str]:
    """Mean and sample std in percent, as the README prints them."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.2f}", f"{100 * std:.2f}"


def _close(printed: list[str], values: list[float]) -> bool:
    """Printed with two decimals from ``values`` (in percent), either way of rounding a half."""
    return len(printed) == len(values) and all(abs(float(p) - 100 * v) <= 0.00501 for p, v in zip(printed, values))


def _mean_std(values: list[float]) -> list[float]:
    return [statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0]


def _pwt_table_rows() -> list[list[str]]:
    start = README.index("| dense | 0, 1, 2, 3 |")
    lines = README[start:].split("\n\n")[0].splitlines()
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_every_pwt_protocol_row_is_an_arm_of_the_results_file():
    runs = _results("pwt_protocol")["runs"]
    by_arm: dict[str, dict[int, dict]] = {}
    for r in runs:
        by_arm.setdefault(r["arm"], {})[r["seed"]] = r
    rows = _pwt_table_rows()
    assert len(rows) >= 10
    for label, seeds, final, last3, *_ in rows:
        seeds = [int(s) for s in seeds.split(",")]
        per_seed = re.findall(r"\d+\.\d\d", final)
        matches = [arm for arm, got in by_arm.items() if sorted(got) == seeds and
                   [f"{100 * got[s]['final_test_accuracy']:.2f}" for s in seeds] == (per_seed[2:] if len(seeds) > 1 else per_seed)]
        assert len(matches) == 1, f"row '{label[:40]}': no single arm with seeds {seeds} and finals {per_seed}"
        got = [by_arm[matches[0]][s] for s in seeds]
        if len(seeds) > 1:
            assert _close(per_seed[:2], _mean_std([r["final_test_accuracy"] for r in got])), label[:40]
            assert _close(re.findall(r"\d+\.\d\d", last3), _mean_std([r["last3_test_accuracy"] for r in got])), label[:40]


def test_ra_table2_headline_is_the_results_files():
    runs = [r for r in _results("ra_lenet5_seeds")["runs"] if r["final_test_accuracy"] is not None]
    mine = sorted((r for r in runs if r["arm"] == RA_HEADLINE), key=lambda r: r["seed"])
    dense = {r["seed"]: r for r in runs if r["arm"] == "dense-step0.9-lecun"}
    acc, acc_std = _pct([r["final_test_accuracy"] for r in mine])
    sp, sp_std = _pct([r["sparsity"] for r in mine])
    assert f"RA: {acc} ± {acc_std}% at {sp} ± {sp_std}% (seeds 0-{len(mine) - 1}: " in PROSE
    assert ", ".join(f"{100 * r['final_test_accuracy']:.2f}" for r in mine) in PROSE
    paired, paired_std = _pct([r["final_test_accuracy"] - dense[r["seed"]]["final_test_accuracy"] for r in mine])
    assert f"paired by seed {paired.replace('-', '−')} ± {paired_std} pt" in PROSE
    ratio = 1 / (1 - statistics.fmean(r["sparsity"] for r in mine))
    compression = statistics.fmean(r["compression"] for r in mine)
    assert f"1/(1 − sparsity) {ratio:.1f}x, the runs' own parameter compression {compression:.1f}x" in PROSE


def test_the_count_of_ra_variants_is_the_files():
    arms = {r["arm"] for r in _results("ra_lenet5_seeds")["runs"]}
    variants = len({a for a in arms if a.startswith("ra-")} - {"ra-2-0.1"})
    assert f"{variants} RA variants besides RA-2-0.1 were compared on the test set" in PROSE


def test_the_ra_results_file_describes_itself():
    result = _results("ra_lenet5_seeds")
    arms = {r["arm"] for r in result["runs"]}
    assert arms <= set(result["protocol"]["arms"]) and arms <= set(result["arms"])
    for run in result["runs"]:
        assert run["config"] is not None, (run["arm"], run["seed"])
        assert "intrain_version" in run
    headline = next(r for r in result["runs"] if r["arm"] == RA_HEADLINE)
    assert headline["config"]["layer_ranges"] == [["conv1", -1.0], ["fc1", 3.3], ["fc2", 1.0]]
    assert headline["config"]["init"] == "lecun-normal" and headline["config"]["freeze_masks_at"] == 0.8


@pytest.mark.parametrize("name", ["ra_lenet5_seeds"])
def test_stored_aggregates_are_recomputed_from_the_runs(name):
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    from ra_lenet5_seeds import aggregate

    result = _results(name)
    assert json.loads(json.dumps(aggregate(result["runs"]))) == result["arms"]


def test_ra_table2_chosen_on_validation_is_the_results_files():
    result = _results("ra_table2_val")
    assert result["chosen"] == RA_HEADLINE and result["variants_tried"] == 2
    runs = {(r["arm"], r["seed"]): r for r in result["runs"]}
    chosen = [runs[(RA_HEADLINE, s)] for s in range(5)]
    dense = [runs[("dense-step0.9-lecun", s)] for s in range(5)]
    acc, acc_std = _pct([r["final_test_accuracy"] for r in chosen])
    sp, sp_std = _pct([r["sparsity"] for r in chosen])
    assert f"reported on the test set:** the chosen point {acc} ± {acc_std}% at {sp} ± {sp_std}% sparsity" in PROSE.lower()
    assert ", ".join(f"{100 * r['final_test_accuracy']:.2f}" for r in chosen) in PROSE
    d_acc, d_std = _pct([r["final_test_accuracy"] for r in dense])
    assert f"against dense {d_acc} ± {d_std}%" in PROSE
    paired = [a["final_test_accuracy"] - b["final_test_accuracy"] for a, b in zip(chosen, dense)]
    mean, std = _mean_std(paired)
    assert f"paired by seed −{abs(100 * mean):.2f} ± {100 * std:.2f} pt** (5 seeds)" in PROSE
    # the choice used validation only: the rule picks the higher mean validation accuracy of seeds 0-2
    val = {arm: statistics.fmean(runs[(arm, s)]["final_val_accuracy"] for s in range(3))
           for arm in result["protocol"]["candidates"]}
    assert max(val, key=val.get) == result["chosen"]
    assert all(r["config"]["val_split"] == 5000 and r["intrain_version"] for r in result["runs"])
