"""Crash-safe checkpoints: everything that determines the rest of a run, written atomically.

A run directory holds ``checkpoint.pt``, rewritten after every completed epoch (and once before the
first, so that a run killed during epoch 1 resumes too). It is a plain ``torch.save`` of a dict:

- ``model``: the model's ``state_dict`` (pruning masks are buffers in it; a model compacted during
  training has its smaller shapes there);
- ``optimizer``, ``scheduler``: their ``state_dict``; ``method``: the pruning method's ``state_dict``
  (schedule position, mean-activation accumulators, RA classes and probe results);
- ``rng``: python ``random``, numpy, torch CPU (and CUDA when available) generator states; under
  torchrun also ``rng_ranks``, every rank's states (rank r resumes with entry r);
- ``epoch`` (epochs completed), ``history`` (the records so far), ``train_seconds``, ``config``
  (the resolved configuration).

The training data order depends only on ``(seed, epoch)`` (:func:`intrain.data.loader.epoch_generator`),
so a run resumed from the checkpoint of epoch ``e`` replays epoch ``e + 1`` exactly: on CPU it ends
bit-identical to a run that was never interrupted.

**Atomic writes.** The checkpoint is written to a temporary file in the same directory, flushed and
fsynced, then moved over the old one with :func:`os.replace`: a crash at any moment leaves either the
previous complete checkpoint or the new complete one, never a partial file.

**Safe loading.** :func:`load_checkpoint` reads with ``torch.load(..., weights_only=True)``: tensors
and plain containers only, so a crafted file cannot run code. Everything stored above is of those
types (the numpy generator's key array travels as a tensor).
"""

from __future__ import annotations

import os
import pickle
import random
import re
import signal
import tempfile
import threading
import time
import warnings
from contextlib import suppress
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, TrainingInterrupted
from ..rundir import CHECKPOINT

FORMAT, VERSION = "intrain-checkpoint", 1
REQUIRED_KEYS = ("config", "epoch", "history", "model", "optimizer", "scheduler", "method", "rng")


# ---------------------------------------------------------------------- atomic files
def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    """Write ``path`` atomically: ``write(binary_file)`` fills a temporary file in the same directory,
    which is flushed, fsynced and renamed over ``path``. On any failure ``path`` is left untouched
    and the temporary file is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would make run files private
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` ``state`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda handle: torch.save(state, handle))


# ---------------------------------------------------------------------- loading
def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a checkpoint written by :func:`save_checkpoint`, safely (weights only).

    Raises :class:`CheckpointError` (one line, naming the file) when it is missing, truncated,
    corrupt, not an intrain checkpoint, or holds objects whose loading could run code.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the error says it all
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"GLOBAL (\S+)", str(exc), flags=re.IGNORECASE)
        if unsafe:
            raise CheckpointError(
                f"refusing to load {path}: it references {unsafe.group(1)}, and loading it could run code "
                "(intrain only loads tensors and plain containers)") from None
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch file") from None
    except Exception as exc:  # truncated zips, empty files, bad records: many exception types
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__})") from None
    _check_format(state, path)
    return state


def _check_format(state: Any, path: Path) -> None:
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an intrain checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {state.get('version')!r}; "
                              f"this intrain reads version {VERSION}")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} is incomplete: no {', '.join(missing)}")
    if not isinstance(state["config"], dict) or not isinstance(state["epoch"], int):
        raise CheckpointError(f"checkpoint {path} is corrupt (bad config or epoch)")


# ---------------------------------------------------------------------- RNG states
def rng_state() -> dict[str, Any]:
    """Every global generator's state, as tensors and plain values (weights-only loadable)."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def all_rank_rng_states() -> list[dict[str, Any]] | None:
    """Every rank's :func:`rng_state`, gathered on every rank (a collective: all ranks call it);
    ``None`` in a single process."""
    import torch.distributed as dist

    from .distributed import is_distributed

    if not is_distributed():
        return None
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, rng_state())
    return gathered


def rank_rng_state(state: dict[str, Any]) -> dict[str, Any]:
    """The generator states this process resumes with: its own rank's from ``rng_ranks`` when the
    checkpoint has as many ranks as the current run, else ``rng`` (rank 0's, or the only one)."""
    import torch.distributed as dist

    from .distributed import is_distributed

    ranks = state.get("rng_ranks")
    if ranks and is_distributed() and len(ranks) == dist.get_world_size():
        return ranks[dist.get_rank()]
    return state["rng"]


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state` (CUDA states only where CUDA is available)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------- capture and restore
def capture(trainer, config_dict: dict[str, Any], train_seconds: float = 0.0,
            rng_ranks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The checkpoint of ``trainer`` at an epoch boundary (see the module docstring)."""
    extra = {"rng_ranks": rng_ranks} if rng_ranks is not None else {}
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": config_dict,
        **trainer.state_dict(),  # epoch, history
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else {},
        "method": trainer.method.state_dict(),
        "method_name": trainer.method.name,
        "rng": rng_state(),
        "train_seconds": float(train_seconds),
        **extra,
    }


def shapes_differ(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> bool:
    """Whether a saved ``state_dict`` has other tensor shapes than ``model`` (a compacted model).

    Keys the fresh model lacks (mask buffers, registered when the method attaches) are ignored.
    """
    current = model.state_dict()
    return any(key in current and tuple(current[key].shape) != tuple(value.shape)
               for key, value in state_dict.items())


def shrink_to_checkpoint(model: nn.Module, state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Reshape a freshly built dense ``model`` to the compacted shapes of ``state_dict``."""
    try:
        from ..compaction import shrink_to_state_dict
    except ImportError:
        raise CheckpointError(f"checkpoint {path} holds a compacted model, but this intrain has no "
                              "intrain.compaction.shrink_to_state_dict to rebuild it") from None
    shrink_to_state_dict(model, state_dict)


def load_training_state(state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
                        scheduler, method, path: str | os.PathLike) -> None:
    """Load model, optimizer, scheduler and method state into objects of the right shapes.

    ``method`` must already be attached to ``model`` (its mask buffers exist). Everything is loaded
    into the tensors that exist, so the method's hooks see the loaded values without a re-attach
    (its ``load_state_dict`` brings what it derives from the masks up to date). Mismatches become
    :class:`CheckpointError`.
    """
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"]:
            scheduler.load_state_dict(state["scheduler"])
        method.load_state_dict(state["method"])
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} does not fit the model of its own config: {first}") from None


def config_from_checkpoint(state: dict[str, Any], run_dir: str | os.PathLike):
    """The run's resolved configuration, writing to ``run_dir`` (wherever it was moved to).

    Checkpoints written before methods had their own settings hold every method's keys, flat: those
    the run's method does not use had no effect on it and are dropped. A PWT run from before recipes
    had the paper's schedule, the only one then."""
    from ..config import TrainConfig

    values = dict(state["config"])
    if values.get("method") == "pwt" and "recipe" not in values:
        values["recipe"] = "paper"
    config = TrainConfig.from_dict(values, source=str(Path(run_dir) / CHECKPOINT), lenient=True)
    return config.replace(out=str(run_dir))


def fit_parts_to_checkpoint(state: dict[str, Any], parts, config, path: str | os.PathLike) -> None:
    """Give the freshly built ``parts`` (a :class:`~intrain.engine.build.RunParts`) the checkpoint's
    shapes: a model compacted during training is shrunk, and its optimizer and lr scheduler are
    rebuilt over the new parameters (their state is loaded later, by :func:`resume_trainer`)."""
    if not shapes_differ(parts.model, state["model"]):
        return
    from .build import LrSchedule, make_optimizer

    shrink_to_checkpoint(parts.model, state["model"], path)
    parts.optimizer = make_optimizer(config, parts.model)
    parts.scheduler = torch.optim.lr_scheduler.LambdaLR(parts.optimizer, LrSchedule(config, len(parts.train_loader)))


def resume_trainer(trainer, state: dict[str, Any], path: str | os.PathLike) -> None:
    """Load a checkpoint into ``trainer`` (its method attached, shapes fitted): weights, masks,
    optimizer, scheduler, method, loop position and history, then every RNG state, last."""
    load_training_state(state, trainer.model, trainer.optimizer, trainer.scheduler, trainer.method, path)
    trainer.load_state_dict(state)
    restore_rng_state(rank_rng_state(state))


# ---------------------------------------------------------------------- the per-epoch callback
class Checkpointer:
    """Epoch callback (see :class:`~intrain.engine.trainer.Trainer`): save after every epoch.

    ``enabled=False`` (ranks other than 0) makes it a no-op. ``train_seconds`` carries the training
    time of earlier sessions of a resumed run.
    """

    def __init__(self, path: str | os.PathLike, config_dict: dict[str, Any], *, enabled: bool = True,
                 train_seconds: float = 0.0) -> None:
        self.path = Path(path)
        self.config_dict = config_dict
        self.enabled = enabled
        self.offset = train_seconds
        self.started = time.perf_counter()

    def train_seconds(self) -> float:
        """Training time of the whole run so far, earlier sessions included."""
        return self.offset + time.perf_counter() - self.started

    def save(self, trainer) -> None:
        ranks = all_rank_rng_states()  # every rank takes part in the gathering, rank 0 writes
        if self.enabled:
            save_checkpoint(capture(trainer, self.config_dict, self.train_seconds(), ranks), self.path)

    def __call__(self, trainer, record: dict[str, Any]) -> None:
        self.save(trainer)


# ---------------------------------------------------------------------- SIGINT / SIGTERM
class StopSignals:
    """Within the block, SIGINT and SIGTERM ask the training loop to stop instead of killing it.

    The first signal sets :attr:`received`; the loop polls :meth:`requested` after every step and
    every epoch (:meth:`check`) and raises :class:`TrainingInterrupted` (the last completed epoch's checkpoint is
    already on disk). A second signal stops at once (``KeyboardInterrupt``). Handlers are installed
    only in the main thread and only when ``enabled``; the previous handlers come back on exit.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, checkpoint: str | os.PathLike, *, enabled: bool = True) -> None:
        self.checkpoint = Path(checkpoint)
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if self.enabled:
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum

    def requested(self) -> bool:
        return self.received is not None

    def check(self, where: str, epochs_done: int) -> None:
        """Raise :class:`TrainingInterrupted` if a signal came (exit status 128 + its number)."""
        if self.received is None:
            return
        name = signal.Signals(self.received).name
        kept = f"checkpoint of epoch {epochs_done}" if epochs_done else "initial checkpoint"
        raise TrainingInterrupted(f"stopped by {name} {where}; {kept} kept in {self.checkpoint}; continue with "
                                  f"'intrain train --resume {self.checkpoint.parent}'",
                                  exit_code=128 + self.received)
