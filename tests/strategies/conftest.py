"""Strategy tests run over every registered backbone (``backbones.list_backbones()``)."""

from __future__ import annotations

import pytest
import torch

import backbones

assert backbones.list_backbones()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and OpenMP's spin-waiting makes 2 threads on a
    loaded 2-core machine up to ~30x slower; run every strategy test on one thread, then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
