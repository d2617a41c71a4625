"""Errors a user can act on. The CLI prints them as one line and exits with status 2."""


class IntrainError(Exception):
    """Base class for user-facing errors (bad input, missing files): never a traceback."""


class ConfigError(IntrainError, ValueError):
    """An invalid configuration value, name or file."""


class DataError(IntrainError):
    """A dataset file is missing, unreadable or corrupt."""


class CheckpointError(IntrainError):
    """A checkpoint is missing, corrupt, truncated or unsafe to load."""


class DivergenceError(IntrainError):
    """Training produced a non-finite loss or weight."""
