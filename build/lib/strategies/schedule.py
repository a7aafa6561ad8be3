"""Token schedules: where to prune and how many frame tokens to keep (pure functions, no torch).

A schedule is a list of pruning stages ``(k, n)``: before block k, keep n tokens. Blocks 0..k1-1 see
all T frames, blocks k1..k2-1 see n1, and so on.

- HoT's one-shot form: ``parse_schedule(81, 3, 243, range(1, 8))`` -> stages ((3, 81),).
- H2OT's hierarchical form: ``parse_schedule([121, 81, 41], [2, 4, 6], 243, range(1, 8))``.
- Token counts may be fractions of T: ``0.33`` -> round(0.33 * 243) = 80 (at least 1).

Every invalid request raises :class:`ScheduleError` (a ``ValueError``) with a one-line message.
The CLI parses ``--tokens 81,41`` and ``--depths 3,6`` with :func:`parse_axis`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Number = int | float
TokenSpec = Number | Sequence[Number]
DepthSpec = int | Sequence[int]


class ScheduleError(ValueError):
    """An impossible token schedule (one-line message)."""


@dataclass(frozen=True)
class Schedule:
    """Pruning stages ``((k, n), ...)`` with strictly increasing depth k and decreasing count n."""

    stages: tuple[tuple[int, int], ...]
    frames: int  # T

    @property
    def depths(self) -> list[int]:
        return [k for k, _ in self.stages]

    @property
    def tokens(self) -> list[int]:
        return [n for _, n in self.stages]

    def __str__(self) -> str:
        return " -> ".join([f"T={self.frames}"] + [f"{n}@{k}" for k, n in self.stages])


def _listify(value: object, what: str) -> list[object]:
    if isinstance(value, str):
        raise ScheduleError(f"{what} must be numbers, not the string '{value}' (use parse_axis for CLI text)")
    if isinstance(value, Iterable):
        out = list(value)
        if not out:
            raise ScheduleError(f"{what} is empty")
        return out
    return [value]


def resolve_tokens(value: object, frames: int) -> int:
    """One token count: an int in [1, T], or a float fraction of T in (0, 1] (rounded, at least 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScheduleError(f"token count must be an int or a fraction of T in (0, 1], got {value!r}")
    if isinstance(value, float):
        if not (math.isfinite(value) and 0.0 < value <= 1.0):
            raise ScheduleError(f"token fraction {value} is not in (0, 1] (a fraction of T = {frames})")
        return max(1, math.floor(value * frames + 0.5))
    if not 1 <= value <= frames:
        raise ScheduleError(f"token count {value} is outside [1, T = {frames}]")
    return value


def _describe(valid: Sequence[int]) -> str:
    vals = list(valid)
    if not vals:
        return "none"
    if vals == list(range(vals[0], vals[-1] + 1)):
        return f"{vals[0]}..{vals[-1]}"
    return ", ".join(map(str, vals))


def parse_schedule(tokens: TokenSpec, depths: DepthSpec, frames: int, valid_depths: Iterable[int]) -> Schedule:
    """Validate a (tokens, depths) request against a backbone with T ``frames`` and its pruning depths.

    ``tokens``: int, float fraction of T, or a list of them (one per stage); ``depths``: int or a list
    of ints, one per stage, each in ``valid_depths`` (``model.prune_depths``), strictly increasing.
    Token counts must decrease strictly from stage to stage.
    """
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ScheduleError(f"frames T must be a positive int, got {frames!r}")
    valid = sorted(set(valid_depths))
    toks = _listify(tokens, "tokens")
    deps = _listify(depths, "depths")
    if len(toks) != len(deps):
        raise ScheduleError(f"tokens has {len(toks)} value(s) but depths has {len(deps)}: give one of each per stage")
    counts = [resolve_tokens(t, frames) for t in toks]
    ks: list[int] = []
    for k in deps:
        if isinstance(k, bool) or not isinstance(k, int):
            raise ScheduleError(f"depth must be an int, got {k!r}")
        if k not in valid:
            raise ScheduleError(f"depth {k} is outside this backbone's pruning depths ({_describe(valid)})")
        ks.append(k)
    if any(b <= a for a, b in itertools.pairwise(ks)):
        raise ScheduleError(f"depths must increase strictly from stage to stage, got {ks}")
    if any(b >= a for a, b in itertools.pairwise(counts)):
        raise ScheduleError(f"tokens must decrease strictly from stage to stage, got {counts}")
    return Schedule(stages=tuple(zip(ks, counts, strict=True)), frames=frames)


def tokens_per_block(
    schedule: Schedule, num_blocks: int, frames: int | None = None, shrink: Callable[[int, int], int] | None = None
) -> list[int]:
    """Frame tokens entering each of the ``num_blocks`` blocks (length ``num_blocks``).

    ``shrink(i, count)`` gives the count after block i for backbones whose blocks subsample time
    (StridedTransformer); identity by default.
    """
    t = schedule.frames if frames is None else frames
    at = dict(schedule.stages)
    out: list[int] = []
    count = t
    for i in range(num_blocks):
        if i in at:
            count = at[i]
        out.append(count)
        if shrink is not None:
            count = shrink(i, count)
    return out


def parse_axis(text: str | Number | Sequence[Number]) -> Number | list[Number]:
    """CLI helper: ``"81"`` -> 81, ``"0.33"`` -> 0.33, ``"81,41"`` -> [81, 41]; numbers pass through."""
    if not isinstance(text, str):
        return text if isinstance(text, int | float) else list(text)
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ScheduleError(f"cannot parse {text!r}: expected numbers separated by commas, e.g. 81,41")
    out: list[Number] = []
    for p in parts:
        try:
            out.append(int(p))
        except ValueError:
            try:
                out.append(float(p))
            except ValueError:
                raise ScheduleError(f"cannot parse {p!r} in {text!r} as a number") from None
    return out[0] if len(out) == 1 else out


__all__ = ["Schedule", "ScheduleError", "parse_axis", "parse_schedule", "resolve_tokens", "tokens_per_block"]
