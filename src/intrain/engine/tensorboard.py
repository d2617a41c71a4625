"""``--log tensorboard``: every epoch's record (:meth:`Trainer.run_epoch`) as TensorBoard scalars in
``RUN_DIR/tensorboard`` (``tensorboard --logdir RUN_DIR``), beside ``history.jsonl`` and ``history.csv``.
Needs the ``tensorboard`` package (``pip install 'intrain[tensorboard]'``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..rundir import TENSORBOARD

# record keys grouped in TensorBoard's panels; the others go under "train"
GROUPS = {"accuracy": ("train_accuracy", "val_accuracy", "test_accuracy"),
          "loss": ("train_loss", "val_loss", "test_loss"),
          "pruning": ("pruned_filter_fraction", "sparsity", "params"),
          "cost": ("train_macs", "train_mem", "epoch_seconds", "prune_seconds", "eval_seconds")}


def summary_writer_class():
    """torch's ``SummaryWriter``, or a one-line ConfigError naming the extra to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("log: tensorboard needs the tensorboard package: pip install 'intrain[tensorboard]'") from None
    return SummaryWriter


def tag(key: str) -> str:
    group = next((name for name, keys in GROUPS.items() if key in keys), "train")
    return f"{group}/{key}"


class TensorBoardLog:
    """An epoch callback ``(trainer, record)``: the record's numbers as scalars at step ``epoch``.
    A resumed run appends to the same folder; TensorBoard shows the later value of a step written twice."""

    def __init__(self, run_dir: str | Path) -> None:
        self.writer = summary_writer_class()(log_dir=str(Path(run_dir) / TENSORBOARD))

    def __call__(self, trainer: Any, record: dict[str, Any]) -> None:
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(tag(key), value, global_step=record["epoch"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
