"""The result store: an append-only CSV of rows keyed by ``cell_id``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd


class ResultStore:
    """An append-only CSV of result rows, one per cell, keyed by ``cell_id``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def done_ids(self) -> set[str]:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return set()
        df = pd.read_csv(self.path, usecols=["cell_id"], dtype=str)
        return set(df["cell_id"])

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row and flush it to disk before returning (columns may grow between rows)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = pd.DataFrame([dict(row)])
        if self.path.is_file() and self.path.stat().st_size > 0:
            old = pd.read_csv(self.path, dtype={"cell_id": str})
            if set(new.columns) - set(old.columns):
                merged = pd.concat([old, new], ignore_index=True)
                tmp = self.path.with_name(self.path.name + ".tmp")
                merged.to_csv(tmp, index=False)
                os.replace(tmp, self.path)
                return
            new = new.reindex(columns=old.columns)
            with self.path.open("a", newline="") as f:
                new.to_csv(f, header=False, index=False)
                f.flush()
                os.fsync(f.fileno())
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        new.to_csv(tmp, index=False)
        os.replace(tmp, self.path)

    def read(self) -> pd.DataFrame:
        return pd.read_csv(self.path, dtype={"cell_id": str}) if self.path.is_file() else pd.DataFrame()
