"""Plain-text tables of runs, side by side."""

from __future__ import annotations

from typing import Any, Sequence


def runs_table(labels: Sequence[str], summaries: Sequence[dict[str, Any]]) -> str:
    """Method, accuracy (and Δ vs the first run), pruned filters, sparsity, parameters, time."""
    reference = summaries[0]["final_test_accuracy"] if summaries else 0.0
    header = ["run", "final acc", "best acc", "Δ acc", "pruned filters", "sparsity", "params", "compression", "seconds"]
    rows = [header]
    for label, s in zip(labels, summaries):
        rows.append([
            label,
            f"{100 * s['final_test_accuracy']:.2f}%",
            f"{100 * s['best_test_accuracy']:.2f}%",
            f"{100 * (s['final_test_accuracy'] - reference):+.2f} pt",
            f"{100 * s['pruned_filter_fraction']:.1f}%",
            f"{100 * s['sparsity']:.1f}%",
            f"{s['params_final']:,}",
            f"{s['compression']:.2f}x",
            f"{s['train_seconds']:.1f}",
        ])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table; ``|`` in cells is escaped, first column left-aligned."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    align = ["---"] + ["---:"] * (len(header) - 1)
    return "\n".join([line(header), line(align), *(line(r) for r in rows)])


def run_end_lines(summary: dict[str, Any]) -> list[str]:
    """What ``intrain train`` prints at the end of a run, from its summary: accuracy, parameters and
    training MACs per epoch before -> after, the run's training MACs and time against dense training,
    and where the model is (keys a summary of an older version lacks are left out)."""
    lines = [f"test accuracy: final {100 * summary['final_test_accuracy']:.2f}%, "
             f"best {100 * summary['best_test_accuracy']:.2f}%"]
    lines.append(f"parameters: {summary['params_dense']:,} -> {summary['params_final']:,} non-zero "
                 f"({summary['compression']:.2f}x smaller; {100 * summary['pruned_filter_fraction']:.1f}% of "
                 f"filters pruned, {100 * summary['sparsity']:.1f}% of weights zero)")
    epochs, dense_total = summary.get("epochs"), summary.get("dense_train_macs_total")
    if dense_total and epochs and "final_epoch_train_macs" in summary:
        dense_epoch, final = dense_total / epochs, summary["final_epoch_train_macs"]
        lines.append(f"training MACs per epoch: {dense_epoch:.3g} dense -> {final:.3g} at the end "
                     f"({dense_epoch / max(final, 1):.2f}x fewer)")
        saved = summary.get("savings_vs_dense", {}).get("macs")
        lines.append(f"training MACs of the run: {summary['train_macs_total']:.3g} vs {dense_total:.3g} dense"
                     + (f" ({100 * saved:.1f}% saved)" if saved is not None else ""))
    lines.append(f"wall-clock: {summary['train_seconds']:.1f} s training, {summary['prune_seconds']:.1f} s of it pruning")
    run_dir = summary.get("run_dir")
    if run_dir:
        extra = " and model_sparse.npz" if summary.get("sparse_file") else ""
        lines.append(f"model: {run_dir}/model.pt{extra} (compact/ONNX: intrain export {run_dir})")
    return lines
