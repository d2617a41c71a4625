"""Per-layer counts of a finished run (summary.json's ``layers``): filters a weight mask emptied are told
apart from filters pruned as filters, and the run's end names them."""

import torch
from torch import nn

from intrain.engine import run as run_module
from intrain.masks import ensure_weight_mask
from intrain.masks.filters import FILTER_MASK
from intrain.model_stats import empty_filter_notes, layer_report


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def test_a_filter_whose_weight_mask_is_all_zero_counts_as_empty_not_pruned():
    model = _model()
    conv = model[0]
    ensure_weight_mask(conv)[2].zero_()  # weight pruning took all of filter 2
    ensure_weight_mask(conv)[1, 0, 0, 0] = 0  # and one weight of filter 1
    with torch.no_grad():
        conv.weight[0].zero_()  # filter 0 pruned as a filter: zeroed, its filter mask 0
    conv.register_buffer(FILTER_MASK, torch.tensor([0.0, 1.0, 1.0, 1.0]))
    rows = {row["name"]: row for row in layer_report(model)}
    assert rows["0"]["filters"] == 4 and rows["0"]["filters_pruned"] == 1 and rows["0"]["filters_empty"] == 2
    assert rows["0"]["sparsity"] == 19 / 36
    assert rows["2"]["filters_empty"] == rows["2"]["filters_pruned"] == 0
    assert empty_filter_notes(list(rows.values())) == {"0": "0: 1 of 4 filters have no weight left (52.8% of the layer pruned)"}


def test_filters_removed_by_compaction_count_as_empty():
    rows = layer_report(_model(), original_filters={"0": 6})
    assert rows[0]["filters"] == 6 and rows[0]["filters_pruned"] == 2 and rows[0]["filters_empty"] == 2
    assert empty_filter_notes(rows) == {}


def test_an_ra_run_that_empties_conv1_filters_says_so_and_names_the_flag(tmp_path, capsys):
    from intrain.config import TrainConfig

    # LeNet-5's conv1 (filters of 25 weights) at range 2.5 from its initial weights, thresholds fixed there:
    # Eq. 1 takes ~98% of it, and 12 of its 20 filters lose every weight
    config = TrainConfig.of(model="lenet5", dataset="demo", method="ra", range=2.0, moments_at="start",
                            layer_ranges={"conv1": 2.5}, epochs=1, subset=200, batch_size=50,
                            out=str(tmp_path / "run"), seed=0)
    summary = run_module.train(config, quiet=False)
    conv1 = next(row for row in summary["layers"] if row["name"] == "conv1")
    assert conv1["filters_pruned"] == 0 and conv1["filters_empty"] == 12
    err = capsys.readouterr().err
    assert "intrain: note: conv1: 12 of 20 filters have no weight left" in err
    assert "; a lower range keeps them (--layer-ranges conv1=R)" in err


def test_the_report_layer_table_shows_emptied_filters_and_older_summaries_still_read():
    from pathlib import Path

    from intrain.reporting.report import RunRecord, layers_markdown

    row = {"name": "conv1", "kind": "conv", "filters": 20, "filters_pruned": 0, "weights": 500, "sparsity": 0.88}
    runs = [RunRecord("ra", Path("."), {"layers": [{**row, "filters_empty": 6}]}, [], {}),
            RunRecord("old", Path("."), {"layers": [row]}, [], {})]  # written before filters_empty existed
    table = layers_markdown(runs)
    assert "| conv1 | 0/20 · 88.0% · 6 empty | 0/20 · 88.0% |" in table
