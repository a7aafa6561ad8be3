"""The error contract in one place: which exceptions are the user's mistake, and how they read.

A user mistake (an unknown name, a value out of range, a contradiction between options, a
corrupt, hostile or non-finite file, a path that cannot be written) is reported as one
``error:`` line and exit status 2 by :func:`bench.cli.main`. Anything else is a bug: its
traceback stays visible and the exit status is 1. Every error ``bench`` raises for the user derives
from :class:`UserError`; ``backbones`` and ``strategies`` know nothing of ``bench`` and keep their own
one-line types, which the CLI adds (``bench.cli.user_errors``). A leaf: this module imports nothing of
the suite, so a new error type needs no entry here.
"""

from __future__ import annotations

import re

__all__ = ["NonFiniteError", "UserError", "one_line"]


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
