"""``--log tensorboard``: each epoch's history record as TensorBoard scalars in ``RUN_DIR/tensorboard``.

Every numeric key of the record (``train_loss``, ``test_accuracy``, ``sparsity``, ``params``,
``train_macs``, ``lr``, ...) becomes a scalar of that name at step ``epoch``. Needs the tensorboard
package (``pip install 'intrain[tensorboard]'``); a run that asks for it without is refused in one
line before its folder exists. A resumed run appends to the same folder; a fresh one (``--overwrite``)
first removes the event files of the run it replaces.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import IntrainError
from ..rundir import TENSORBOARD

FOLDER = TENSORBOARD
EVENTS = "events.out.tfevents.*"

EpochLog = Callable[[Any, dict[str, Any]], None]


def require_logger(log: str) -> None:
    """A one-line error when ``log``'s package is missing."""
    if log == "tensorboard":
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401 - only whether it imports
        except ImportError:
            raise IntrainError("log: tensorboard needs the tensorboard package: "
                               "pip install 'intrain[tensorboard]'") from None


def numeric_scalars(record: dict[str, Any]) -> dict[str, float]:
    """The record's numbers (not ``epoch``, not booleans), as TensorBoard scalars."""
    return {key: float(value) for key, value in record.items()
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool)}


@contextmanager
def epoch_logger(log: str, run_dir: Path, *, enabled: bool = True, fresh: bool = True) -> Iterator[EpochLog]:
    """A Trainer epoch callback ``(trainer, record)`` writing ``record`` for ``log`` (a no-op for
    ``none`` or when not ``enabled``, e.g. on ranks other than 0); the writer is closed on exit."""
    if log != "tensorboard" or not enabled:
        yield lambda trainer, record: None
        return
    from torch.utils.tensorboard import SummaryWriter

    folder = Path(run_dir) / FOLDER
    if fresh:
        for old in folder.glob(EVENTS):
            old.unlink()
    writer = SummaryWriter(str(folder))

    def write(trainer: Any, record: dict[str, Any]) -> None:
        for key, value in numeric_scalars(record).items():
            writer.add_scalar(key, value, int(record["epoch"]))
        writer.flush()

    try:
        yield write
    finally:
        writer.close()
