"""Errors a user can act on. The CLI prints them as one line and exits with their ``exit_code``:
2 for bad input (the default), 3 for divergence, 128 + N when stopped by signal N."""


class IntrainError(Exception):
    """Base class for user-facing errors (bad input, missing files): never a traceback."""

    exit_code = 2


class ConfigError(IntrainError, ValueError):
    """An invalid configuration value, name or file."""


class DataError(IntrainError):
    """A dataset file is missing, unreadable or corrupt."""


class CheckpointError(IntrainError):
    """A checkpoint is missing, corrupt, truncated or unsafe to load."""


class DivergenceError(IntrainError):
    """Training produced a non-finite loss or weight (exit status 3)."""

    exit_code = 3


class DeadLayerError(DivergenceError):
    """Pruning removed every weight of a layer: the network can no longer learn (exit status 3)."""


class TrainingInterrupted(IntrainError):
    """SIGINT or SIGTERM stopped training; the last completed epoch's checkpoint is kept."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code
