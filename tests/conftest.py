"""Shared test helpers: the official state-dict TSVs (../shared/docs/official_state_dicts)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
DOCS = Path(os.environ.get("HOURGLASS_SHARED_DOCS", REPO.parent / "shared" / "docs"))
TSV_DIR = DOCS / "official_state_dicts"

torch.set_num_threads(1)  # tiny models: one thread is faster and immune to a busy machine


def read_tsv(name: str) -> tuple[int, list[tuple[str, tuple[int, ...]]]]:
    """(total_params, [(key, shape), ...]) of an official state-dict listing.

    A missing listing skips the test on a developer machine without ../shared, but fails it when the
    environment variable ``CI`` is set: CI always has the listings, so a parity test never silently vanishes.
    """
    path = TSV_DIR / f"{name}.tsv"
    if not path.is_file():
        message = f"official listing {path} not available"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set: the parity tests must run)", pytrace=False)
        pytest.skip(message)
    lines = path.read_text().splitlines()
    total = int(lines[0].split("=", 1)[1])
    rows = []
    for line in lines[1:]:
        key, shape = line.split("\t")
        rows.append((key, tuple(ast.literal_eval(shape))))
    return total, rows


@pytest.fixture
def tsv():
    return read_tsv
