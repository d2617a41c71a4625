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
