"""The error contract in one place: which exceptions are the user's mistake, and how they read.

A user mistake (an unknown name, a value out of range, a contradiction between options, a
corrupt, hostile or non-finite file, a path that cannot be written) is reported as one
``error:`` line and exit status 2 by :func:`bench.cli.main`. Anything else is a bug: its
traceback stays visible and the exit status is 1. Each layer keeps its own one-line error type
(``backbones`` and ``strategies`` know nothing of ``bench``), so the contract is the tuple
:func:`user_error_types` lists, not a common base class; errors raised by ``bench`` itself for
the user derive from :class:`UserError`.
"""

from __future__ import annotations

import re

__all__ = ["NonFiniteError", "UserError", "one_line", "user_error_types"]


class UserError(Exception):
    """A mistake in the user's input: reported as one line, exit status 2."""


class NonFiniteError(UserError, ValueError):
    """A NaN or infinite number where a finite one is required (weights, poses, predictions, a loss)."""


# torch's advice on a refused pickle is to retry with weights_only=False: the one step that would run
# a hostile file. No message of the suite repeats it.
_UNSAFE_ADVICE = re.compile(r"[^.]*weights_only[^.]*(\.|$)", re.IGNORECASE)


def one_line(exc: BaseException) -> str:
    """The exception's message on one line, without advice to load a file unsafely."""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if "weights_only" in msg:
        msg = " ".join(_UNSAFE_ADVICE.sub("", msg).split()) or "refused: the file holds non-tensor objects"
    return msg


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the user asked for something impossible' (exit 2, one line).

    Data, checkpoint, unsafe file, schedule, hourglass, registry, configuration, grid, training,
    objective and file-system (``OSError``: a path that does not exist, cannot be read or written,
    is too long) errors.
    """
    from backbones import CheckpointError, RegistryError
    from bench.config import ConfigError
    from bench.data.h36m import DataError
    from bench.data.safe_pickle import UnsafeFileError
    from bench.grid import GridError
    from bench.results import ResultsError
    from bench.training.loop import TrainError
    from bench.training.objectives import ObjectiveError
    from strategies import HourglassError, ScheduleError

    return (
        UserError,
        RegistryError,
        CheckpointError,
        ConfigError,
        GridError,
        ResultsError,
        TrainError,
        ObjectiveError,
        ScheduleError,
        HourglassError,
        DataError,
        UnsafeFileError,
        OSError,
    )
