"""The result store: one folder per grid, one append-only JSON-lines file per measure, merged by cell id.

Layout of ``<out>/<grid name>/``::

    grid.yaml                    the resolved grid (every default filled in, --set applied)
    env-<tag>.json               the environment of each run (versions, CPU/GPU, threads, git commit)
    <measure>-<tag>.jsonl        one record per (cell, measure); <tag> names the environment (as timm's
                                 result files do, e.g. ``pt2.13.0-cpu-x86_64``)
    speed-rounds/<tag>-<g>.jsonl the finished rounds of a speed group still being timed (removed once its
                                 rows are stored; a killed group resumes from them: bench.grid.rounds)
    .lock                        held (``fcntl.flock``) by the run that writes here

Appending a record is one ``os.write`` of one line plus ``fsync``: O(1), and a kill leaves at most a
partial last line. Opening the store (a run, under the lock) repairs a record file: a partial last
line, a line that is not JSON or not UTF-8, a record with wrong types (:func:`bench.rows.record_problem`)
go to ``<file>.rejected`` and the file keeps every valid record, with one line saying what moved (their
cells run again). What cannot be repaired without guessing (a symlink or a directory where a record
file belongs, a file or folder that cannot be read or written) is a one-line :class:`GridError`
before any cell runs; reading a folder (``report``) skips the lines that are not records and says
so. FLOPs and accuracy do not depend on the machine, so their records count as done
whatever the tag; speed is done only for this environment's tag.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.grid.rounds import RoundFile
from bench.grid.spec import MEASURES, GridError
from bench.rows import IDENTITY, LIST_COLUMNS, RECORD_ONLY, record_problem

ENV_DEPENDENT = ("speed",)
COMMON = IDENTITY  # the merge key of a cell's records (bench.rows owns the schema)


def env_tag(device: str = "cpu") -> str:
    """A short environment tag for file names: torch version, accelerator, machine (``pt2.13.0-cpu-x86_64``)."""
    import torch

    ver = torch.__version__.split("+")[0]
    if device.startswith("cuda") and torch.cuda.is_available():
        acc = "cu" + (torch.version.cuda or "").replace(".", "")
        name = torch.cuda.get_device_name().lower().split()[-1]
        return f"pt{ver}-{acc}-{name}"
    return f"pt{ver}-cpu-{platform.machine() or 'unknown'}"


def _dump(record: Mapping[str, Any]) -> bytes:
    ordered = {"cell_id": record["cell_id"], **{k: v for k, v in record.items() if k != "cell_id"}}
    return (json.dumps(ordered, default=str, allow_nan=True) + "\n").encode()


@dataclass
class RecordFile:
    """One record file read line by line: its valid records, and the lines that are not records (number,
    why, bytes); a partial last line (a kill while writing) is one of them."""

    path: Path
    records: list[dict[str, Any]]
    rejected: list[tuple[int, str, bytes]]

    def summary(self) -> str:
        """'kept N records, dropped line 3 (not JSON), line 9 (gflops is str, not a number)'."""
        shown = ", ".join(f"line {n} ({why})" for n, why, _ in self.rejected[:3])
        more = f" and {len(self.rejected) - 3} more" if len(self.rejected) > 3 else ""
        return f"{self.path.name}: kept {len(self.records)} records, dropped {shown}{more}"


def _records(path: Path) -> RecordFile:
    """Read a record file: a symlink, a directory or an unreadable file is a one-line
    :class:`GridError`; a line that is not a record (:func:`bench.rows.record_problem`) is rejected."""
    if path.is_symlink():
        raise GridError(
            f"results file '{path}' is a symbolic link (to {os.readlink(path)}); the store reads and writes only "
            "its own regular files: put the file itself there or move the link away"
        )
    if path.is_dir():
        raise GridError(f"results file '{path}' is a directory")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise GridError(f"results file '{path}' cannot be read ({e.strerror or type(e).__name__})") from None
    records: list[dict[str, Any]] = []
    rejected: list[tuple[int, str, bytes]] = []
    lines = raw.split(b"\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        partial = n == len(lines)  # no newline after it: a write that a kill cut short, if not a record
        try:
            rec = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            rejected.append((n, "a partial last line" if partial else "not UTF-8", line))
            continue
        except ValueError:
            rejected.append((n, "a partial last line" if partial else "not JSON", line))
            continue
        why = record_problem(rec)
        if why:
            rejected.append((n, why, line))
        else:
            records.append(rec)
    return RecordFile(path, records, rejected)


def _repair(rf: RecordFile) -> str:
    """Rewrite a record file with its valid records only (atomically), the rejected lines appended to
    ``<file>.rejected`` beside it: no byte is lost. Returns the line that says so."""
    keep = b"".join(_dump(r) for r in rf.records)
    with open(rf.path.with_name(rf.path.name + ".rejected"), "ab") as fh:
        fh.write(b"".join(line + b"\n" for _, _, line in rf.rejected))
    tmp = rf.path.with_name(f".{rf.path.name}.tmp")
    tmp.write_bytes(keep)
    os.replace(tmp, rf.path)
    return f"repaired {rf.summary()} (kept in {rf.path.name}.rejected)"


def _measure_files(folder: Path, measure: str) -> list[Path]:
    return sorted(folder.glob(f"{measure}-*.jsonl"))


class ResultStore:
    """The results folder of one grid: locked while open, one record per (cell, measure), appended in O(1).

    Use as a context manager (``with ResultStore(dir) as store:``); opening checks every file, cuts a
    partial last line, and takes the folder's lock (a second run on the same folder is refused).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        tag: str | None = None,
        fsync: bool = True,
        note: Callable[[str], None] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.tag = tag or env_tag()
        self.fsync = fsync
        self.note = note  # hears each repaired record file
        self._lock_fd: int | None = None
        self._fds: dict[str, int] = {}
        self._done: dict[str, dict[str, dict[str, Any]]] = {m: {} for m in MEASURES}  # measure -> key -> record
        self._by_cell: dict[str, set[str]] = {m: set() for m in MEASURES}

    # ---- opening ---------------------------------------------------------------------------------
    def open(self) -> ResultStore:
        f = self.folder
        try:
            if f.exists() and not f.is_dir():
                raise GridError(f"results folder '{f}' is a file, not a folder")
            f.mkdir(parents=True, exist_ok=True)
            fd = os.open(f / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except PermissionError:
            raise GridError(f"results folder '{f}' cannot be written (permission denied)") from None
        except OSError as e:
            raise GridError(f"results folder '{str(f)[:80]}': {e.strerror or type(e).__name__}") from None
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise GridError(
                f"results folder '{f}' is in use by another run (wait for it or use another --out)"
            ) from None
        self._lock_fd = fd
        try:
            if not os.access(f, os.W_OK):
                raise GridError(f"results folder '{f}' cannot be written (permission denied)")
            files = {m: [_records(path) for path in _measure_files(f, m)] for m in MEASURES}
            for m in MEASURES:
                for rf in files[m]:  # this run's own file is among them (the glob lists links and folders too)
                    if rf.rejected:  # every file was checked first: a refusal above changed nothing
                        line = _repair(rf)
                        if self.note is not None:
                            self.note(line)
                    same_env = rf.path.name == f"{m}-{self.tag}.jsonl"
                    for r in rf.records:
                        if m in ENV_DEPENDENT and not same_env:
                            continue
                        self._remember(m, r)
        except BaseException:
            self.close()
            raise
        return self

    def _remember(self, measure: str, r: Mapping[str, Any]) -> None:
        self._done[measure][str(r.get("key", r["cell_id"]))] = dict(r)
        self._by_cell[measure].add(str(r["cell_id"]))

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> ResultStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- queries ---------------------------------------------------------------------------------
    def record(self, measure: str, key: str) -> dict[str, Any] | None:
        """The last record stored for ``key`` (error records included)."""
        return self._done[measure].get(key)

    def has_cell(self, measure: str, cell_id: str) -> bool:
        return cell_id in self._by_cell[measure]

    # ---- writing ---------------------------------------------------------------------------------
    def append(self, measure: str, record: Mapping[str, Any]) -> None:
        """Append one record: one write of one line, then fsync (O(1): nothing is re-read)."""
        if self._lock_fd is None:
            raise GridError("the result store is not open")
        fd = self._fds.get(measure)
        if fd is None:
            path = self.folder / f"{measure}-{self.tag}.jsonl"
            fd = self._fds[measure] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        os.write(fd, _dump(record))
        if self.fsync:
            os.fsync(fd)
        self._remember(measure, record)

    def rounds(self, group: str) -> RoundFile:
        """Where the speed group named ``group`` keeps its finished rounds in this environment."""
        return RoundFile(self.folder / "speed-rounds" / f"{self.tag}-{group}.jsonl", self.note, self.fsync)

    def write_side(self, name: str, text: str) -> Path:
        """Write a side file (resolved grid, environment) atomically."""
        path = self.folder / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        return path

    def read(self) -> pd.DataFrame:
        return load_rows(self.folder)


def in_use(folder: str | os.PathLike[str]) -> bool:
    """Whether a run holds ``folder``'s lock now (its rows are still being written)."""
    import fcntl

    try:
        fd = os.open(Path(folder) / ".lock", os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # releases a lock taken just now
    return False


# ---- reading a results folder ---------------------------------------------------------------------
def _parse_list(v: Any) -> Any:
    if isinstance(v, str) and v.startswith("["):
        with contextlib.suppress(ValueError):
            return json.loads(v)
    return v


def _records_of(folder: Path, measure: str, note: Callable[[str], None] | None) -> Iterator[dict[str, Any]]:
    for path in _measure_files(folder, measure):
        rf = _records(path)
        if rf.rejected and note is not None:  # read-only here: the next run repairs the file
            note(f"skipped lines that are not records: {rf.summary()}")
        yield from rf.records


def load_rows(
    folder: str | os.PathLike[str], measures: Iterable[str] = MEASURES, note: Callable[[str], None] | None = None
) -> pd.DataFrame:
    """All rows of a results folder, one per cell: each measure's last record, merged by ``cell_id``.

    Columns of one measure keep their names; ``error`` joins the measures' errors
    (``"speed: ..."``), ``<measure>_seconds`` says what each took. List columns (tokens, depths,
    tokens_per_block) are lists; numbers are numbers; ``finished`` is a UTC timestamp. Lines that are not
    records are skipped, and ``note`` hears which.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise GridError(f"no results folder '{folder}'")
    merged: pd.DataFrame | None = None
    baseline_of: dict[str, str] = {}
    for m in measures:
        last: dict[str, dict[str, Any]] = {}
        for r in _records_of(folder, m, note):
            last[str(r["cell_id"])] = r
        if not last:
            continue
        if m == "accuracy":
            baseline_of = {k: r["baseline_key"] for k, r in last.items() if r.get("baseline_key")}
        df = pd.DataFrame(list(last.values()))
        df = df.drop(columns=[c for c in RECORD_ONLY if c in df])
        df = df.rename(columns={"cell_seconds": f"{m}_seconds", "error": f"{m}_error", "finished": f"{m}_finished"})
        if merged is None:
            merged = df
        else:
            common = [c for c in COMMON if c in merged and c in df]
            extra = [c for c in df.columns if c not in merged.columns or c in common]
            merged = merged.merge(df[extra], on=common, how="outer")
    if merged is None:
        return pd.DataFrame(columns=[*COMMON, "error"])
    if baseline_of:  # the accuracy record names the baseline the cell was scored against: it wins
        merged["baseline_key"] = merged["cell_id"].astype(str).map(baseline_of).fillna(merged["baseline_key"])
    errs = [c for c in merged.columns if c.endswith("_error")]
    merged["error"] = [
        "; ".join(f"{c[:-6]}: {row[c]}" for c in errs if isinstance(row[c], str) and row[c])
        for _, row in merged.iterrows()
    ]
    for c in merged.columns:
        if c in LIST_COLUMNS:
            merged[c] = merged[c].map(_parse_list)
        elif c.endswith("_finished"):
            merged[c] = pd.to_datetime(merged[c], utc=True, errors="coerce")
        elif merged[c].dtype == object and c not in COMMON and not c.endswith("error"):
            conv = pd.to_numeric(merged[c], errors="coerce")
            if conv.notna().sum() == merged[c].notna().sum():
                merged[c] = conv
    merged["seed"] = pd.to_numeric(merged["seed"], errors="coerce").astype("Int64") if "seed" in merged else None
    return merged.reset_index(drop=True)


__all__ = ["ENV_DEPENDENT", "ResultStore", "env_tag", "in_use", "load_rows"]
