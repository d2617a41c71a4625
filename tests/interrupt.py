"""A stand-in for the signal handler that interrupts a run after its first epoch (tests only)."""

from intrain.errors import TrainingInterrupted


class StopAfterFirstEpoch:
    """Stands in for :class:`~intrain.engine.run.StopSignals`: the run stops once its first epoch is
    checkpointed, as if interrupted."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None

    def check(self, where, epochs_done):
        if epochs_done >= 1:
            raise TrainingInterrupted("stopped after the first epoch")
