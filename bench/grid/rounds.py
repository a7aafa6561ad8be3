"""A speed group's finished rounds on disk, so that a run killed mid-group resumes at the next round.

A speed group (:mod:`bench.grid.speed_groups`) times all its configurations in the same interleaved
rounds, so no row of it is final before the last round. Instead of losing the group to a kill,
each finished round is appended (one line, fsync) to ``<out>/speed-rounds/<tag>-<group>.jsonl``
under a header line that says what the rounds belong to (configurations, batches, protocol, host:
:func:`bench.measure.speed.time_round_robin`). The next run of the folder reads the rounds back
when the header is the same and starts at the next round; a different header, a file that is not
this store's (a link, not a regular file, too large) or a line that is not a round ends what is
kept there, and the file starts over. The file is removed once the group's rows are stored.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_BYTES = 16 * 2**20  # far above any protocol's rounds (MAX_ITERS rounds of a group's keys)


class RoundFile:
    """The rounds of one speed group (implements :class:`bench.measure.speed.Rounds`)."""

    def __init__(self, path: Path, note: Callable[[str], None] | None = None, fsync: bool = True) -> None:
        self.path = path
        self.note = note
        self.fsync = fsync
        self._fd: int | None = None

    def load(self, header: dict[str, Any]) -> list[dict[str, float]]:
        """The rounds kept under ``header``; the file is rewritten to hold exactly those, ready for appends."""
        header = json.loads(json.dumps(header, default=str))
        kept = self._read(header)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text("".join(json.dumps(x) + "\n" for x in (header, *kept)))
            os.replace(tmp, self.path)  # replaces a link itself, never its target
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
        except OSError as e:  # the timing goes on; only its resumability is lost, and the user is told
            if self.note is not None:
                why = e.strerror or e
                self.note(f"speed: cannot keep this group's rounds at {self.path} ({why}): a kill loses them")
            return []
        if kept and self.note is not None:
            n = len(kept)
            self.note(f"speed: a timing group resumes at round {n + 1} ({n} rounds kept by an interrupted run)")
        return kept

    def _read(self, header: dict[str, Any]) -> list[dict[str, float]]:
        p = self.path
        if p.is_symlink() or not p.is_file():
            return []
        try:
            if p.stat().st_size > MAX_BYTES:
                return []
            lines = p.read_bytes().split(b"\n")
        except OSError:
            return []
        keys = set(header.get("batches", {}))
        kept: list[dict[str, float]] = []
        for n, line in enumerate(lines):
            try:
                value = json.loads(line.decode("utf-8"))
            except ValueError:  # a partial last line, garbage, not UTF-8: what follows is not kept
                break
            if n == 0:
                if value != header:
                    return []
                continue
            if not _is_round(value, keys):
                break
            kept.append({k: float(v) for k, v in value.items()})
        return kept

    def append(self, samples: dict[str, float]) -> None:
        if self._fd is None:  # not loaded, or the file could not be kept
            return
        os.write(self._fd, (json.dumps(samples) + "\n").encode())
        if self.fsync:
            os.fsync(self._fd)

    def discard(self) -> None:
        """The group's rows are stored: its rounds are no longer needed."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.path.is_file() and not self.path.is_symlink():
            self.path.unlink()


def _is_round(value: object, keys: set[str]) -> bool:
    if not isinstance(value, dict) or set(value) != keys:
        return False
    return all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in value.values()
    )


__all__ = ["MAX_BYTES", "RoundFile"]
