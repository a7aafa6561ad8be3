"""Numeric precision as deployed: fp32, or ``torch.autocast`` to bf16 (CPU, CUDA) or fp16 (CUDA only).

A row's latency and its MPJPE must describe the same deployed model, so the speed protocol
(:mod:`bench.measure.speed`) and the evaluation (:mod:`bench.training.evaluate`) both run their
forward passes inside :func:`autocast`. Weights stay fp32; autocast runs matrix multiplies and
attention in the reduced type and keeps reductions and normalisations in fp32 (PyTorch's
autocast op lists), which is how mixed-precision inference is usually deployed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import get_args

import torch

from bench.config import ConfigError, Precision, precision_error

PRECISIONS: tuple[str, ...] = get_args(Precision)
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: str | torch.device, key: str = "precision") -> None:
    """Raise a one-line :class:`ConfigError` naming ``key`` when ``precision`` cannot run on ``device``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"{key}: must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    why = precision_error(precision, str(torch.device(device)))
    if why is not None:
        raise ConfigError(f"{key}: {why}")


@contextlib.contextmanager
def autocast(precision: str, device: str | torch.device) -> Iterator[None]:
    """The forward-pass context of ``precision`` on ``device``: nothing for fp32, else ``torch.autocast``."""
    check_precision(precision, device)
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[precision]):
        yield


__all__ = ["DTYPES", "PRECISIONS", "autocast", "check_precision", "precision_error"]
