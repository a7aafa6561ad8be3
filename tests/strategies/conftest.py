"""Strategy tests: make every backbone module present in the repo registered before collection.

``backbones/__init__.py`` registers the backbones the lead has wired in; modules that exist but are not
wired in yet (written by other engineers at the same time) are imported here, so the registry-
parametrised tests cover all of them as soon as their files exist.
"""

from __future__ import annotations

import importlib
import importlib.util

import pytest
import torch

import backbones

for _name in ("mixste", "motionbert", "mhformer", "strided"):
    if importlib.util.find_spec(f"backbones.{_name}") is not None:
        importlib.import_module(f"backbones.{_name}")

assert backbones.list_backbones()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and OpenMP's spin-waiting makes 2 threads on a
    loaded 2-core machine up to ~30x slower; run every strategy test on one thread, then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
