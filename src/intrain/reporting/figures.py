"""Figures drawn from run histories (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Run = tuple[str, Sequence[dict[str, Any]]]  # (label, history records)


def plot_metric(runs: Sequence[Run], key: str, path: str | Path, *, ylabel: str, title: str,
                scale: float = 1.0) -> Path:
    """One line per run of ``record[key] * scale`` against the epoch."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for label, history in runs:
        epochs = [r["epoch"] for r in history]
        ax.plot(epochs, [r[key] * scale for r in history], marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def accuracy_figure(runs: Sequence[Run], path: str | Path) -> Path:
    return plot_metric(runs, "test_accuracy", path, ylabel="test accuracy (%)", title="Test accuracy", scale=100)


def params_figure(runs: Sequence[Run], path: str | Path) -> Path:
    return plot_metric(runs, "params", path, ylabel="non-zero parameters", title="Non-zero parameters")
