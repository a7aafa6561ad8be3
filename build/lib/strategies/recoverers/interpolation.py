"""TRI: Token Recovering Interpolation (H2OT), parameter-free.

After the regression head, the 3D poses predicted at the kept frames are interpolated along time
to all T frames, at the kept frames' **true** frame indices (H2OT does not say which positions it
uses, papers.md §6.4; true indices are exact for any pruner, not only uniform ones). Frames before
the first / after the last kept frame take its pose (ends held constant). ``mode="nearest"``
copies the pose of the nearest kept frame (ties: the earlier one).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from strategies._registry import register_recoverer
from strategies.base import Recoverer

Mode = Literal["linear", "nearest"]


def interpolate_frames(values: Tensor, index: Tensor, frames: int, mode: Mode = "linear") -> Tensor:
    """Values (B, n, ...) at sorted frame ``index`` (B, n) -> (B, frames, ...) at frames 0..frames-1."""
    b, n = index.shape
    t = torch.arange(frames, device=index.device).expand(b, frames).contiguous()  # (B, T)
    hi = torch.searchsorted(index.contiguous(), t).clamp(max=n - 1)  # first kept frame >= t
    lo = (hi - 1).clamp(min=0)
    i_lo, i_hi = index.gather(1, lo), index.gather(1, hi)
    span = (i_hi - i_lo).clamp(min=1).to(values.dtype)
    w = ((t - i_lo).to(values.dtype) / span).clamp(0.0, 1.0)  # (B, T), 0 -> lo, 1 -> hi
    if mode == "nearest":
        w = (w > 0.5).to(values.dtype)
    elif mode != "linear":
        raise ValueError(f"unknown interpolation mode '{mode}' (expected 'linear' or 'nearest')")
    tail = values.shape[2:]
    shape = (b, frames, *([1] * len(tail)))

    def take(pos: Tensor) -> Tensor:
        return values.gather(1, pos.view(shape).expand((b, frames, *tail)))

    v_lo, v_hi = take(lo), take(hi)
    return torch.lerp(v_lo, v_hi, w.view(shape).expand_as(v_lo))  # exact at w = 0 and w = 1 (kept frames)


@register_recoverer("interpolation")
class TokenRecoveringInterpolation(Recoverer):
    """TRI (H2OT): linear (or nearest) interpolation of the 3D poses along time; no parameters."""

    stage = "pose"

    def __init__(self, frames: int, dim: int, mode: Mode = "linear") -> None:
        super().__init__(frames, dim)
        if mode not in ("linear", "nearest"):
            raise ValueError(f"unknown interpolation mode '{mode}' (expected 'linear' or 'nearest')")
        self.mode: Mode = mode

    def recover_pose(self, pose: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        out = interpolate_frames(pose, index, self.frames, self.mode)  # (B, T, J, 3)
        full = torch.arange(self.frames, device=index.device).expand(index.shape[0], self.frames)
        return out, full

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mode={self.mode!r}"
