"""3D pose error metrics named after their Human3.6M protocols (pure functions, torch).

Inputs are ``(..., J, 3)`` predictions and targets in the same unit (multiply metres by
1000 for the usual mm). numpy arrays are accepted and converted with
:func:`torch.as_tensor`. Every metric returns either the mean over all frames (a 0-d
tensor) or, with ``per_frame=True``, one error per frame (shape ``(...)``: joints averaged).

* **Protocol #1, MPJPE** (:func:`mpjpe`): mean per-joint position error. HoT/VideoPose3D
  zero the root of both poses first (:func:`root_relative`).
* **Protocol #2, P-MPJPE** (:func:`p_mpjpe`): MPJPE after a per-frame similarity
  Procrustes alignment (scale, rotation with reflection fix, translation).
* **Protocol #3, N-MPJPE** (:func:`n_mpjpe`): MPJPE after a per-frame scale-only alignment
  (VideoPose3D's ``n_mpjpe``).
* **MPJVE** (:func:`mpjve`): mean per-joint velocity error (first differences in time).

Averages over a test set are action-wise in HoT/VideoPose3D tables: see
:class:`ActionAccumulator`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import torch

TensorLike = torch.Tensor | npt.NDArray[np.generic]


def _as_float(x: TensorLike) -> torch.Tensor:
    t = torch.as_tensor(x)
    if not torch.is_floating_point(t) or t.dtype in (torch.float16, torch.bfloat16):
        t = t.to(torch.float32)
    return t


def _pair(pred: TensorLike, target: TensorLike) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = _as_float(pred), _as_float(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction {tuple(p.shape)} and target {tuple(t.shape)} differ")
    if p.ndim < 2:
        raise ValueError(f"expected (..., J, C) poses, got {tuple(p.shape)}")
    dtype = torch.promote_types(p.dtype, t.dtype)
    return p.to(dtype), t.to(dtype)


def _reduce(per_joint: torch.Tensor, per_frame: bool) -> torch.Tensor:
    per_frame_err = per_joint.mean(dim=-1)  # (...,)
    return per_frame_err if per_frame else per_frame_err.mean()


def root_relative(x: TensorLike, root: int = 0) -> torch.Tensor:
    """Subtract the root joint: ``x - x[..., root:root+1, :]`` (the root becomes zero).

    Args:
        x: poses ``(..., J, C)``.
        root: root joint index (Human3.6M: 0, the hip).
    """
    t = _as_float(x)
    return t - t[..., root : root + 1, :]


def mpjpe(pred: TensorLike, target: TensorLike, per_frame: bool = False) -> torch.Tensor:
    """Protocol #1, MPJPE: mean Euclidean distance between corresponding joints.

    Args:
        pred: ``(..., J, 3)``.
        target: ``(..., J, 3)``, same unit.
        per_frame: return ``(...)`` per-frame errors instead of the mean.
    """
    p, t = _pair(pred, target)
    return _reduce(torch.linalg.vector_norm(p - t, dim=-1), per_frame)


def p_mpjpe(pred: TensorLike, target: TensorLike, per_frame: bool = False) -> torch.Tensor:
    """Protocol #2, P-MPJPE: MPJPE after per-frame similarity Procrustes alignment.

    For every frame, the prediction is centred, rotated (orthogonal Procrustes via SVD,
    with the reflection fix that flips the sign of the last singular vector when
    ``det(R) < 0``), scaled by the optimal ``s = trace(S) / |pred_centred|^2`` and moved to
    the target's centroid, as VideoPose3D's ``p_mpjpe``. Computed in float64.
    """
    p, t = _pair(pred, target)
    out_dtype = p.dtype
    p, t = p.to(torch.float64), t.to(torch.float64)
    mu_p = p.mean(dim=-2, keepdim=True)  # (..., 1, 3)
    mu_t = t.mean(dim=-2, keepdim=True)
    p0, t0 = p - mu_p, t - mu_t  # (..., J, 3)
    norm_p = torch.linalg.vector_norm(p0, dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    norm_t = torch.linalg.vector_norm(t0, dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    p0, t0 = p0 / norm_p, t0 / norm_t
    h = t0.transpose(-1, -2) @ p0  # (..., 3, 3)
    u, s, vt = torch.linalg.svd(h)
    v = vt.transpose(-1, -2)
    r = v @ u.transpose(-1, -2)  # (..., 3, 3), maps target frame to prediction frame
    # reflection fix: make det(R) = +1 by flipping the last column of V and the last
    # singular value where needed
    sign = torch.sign(torch.linalg.det(r)).unsqueeze(-1)  # (..., 1)
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    v = torch.cat([v[..., :, :2], v[..., :, 2:] * sign.unsqueeze(-1)], dim=-1)
    s = torch.cat([s[..., :2], s[..., 2:] * sign], dim=-1)
    r = v @ u.transpose(-1, -2)
    tr = s.sum(dim=-1, keepdim=True).unsqueeze(-1)  # (..., 1, 1)
    a = tr * norm_t / norm_p  # scale
    aligned = a * (p - mu_p) @ r + mu_t  # (..., J, 3)
    return _reduce(torch.linalg.vector_norm(aligned - t, dim=-1), per_frame).to(out_dtype)


def n_mpjpe(pred: TensorLike, target: TensorLike, per_frame: bool = False) -> torch.Tensor:
    """Protocol #3, N-MPJPE: MPJPE after per-frame scale-only alignment (VideoPose3D).

    ``s = mean_j <target_j, pred_j> / mean_j |pred_j|^2`` per frame, then
    ``mpjpe(s * pred, target)``. Poses are used as given (root-relative in practice).
    """
    p, t = _pair(pred, target)
    norm_pred = (p * p).sum(dim=-1).mean(dim=-1, keepdim=True)  # (..., 1)
    norm_tgt = (t * p).sum(dim=-1).mean(dim=-1, keepdim=True)
    scale = (norm_tgt / norm_pred.clamp_min(torch.finfo(p.dtype).tiny)).unsqueeze(-1)
    return mpjpe(scale * p, t, per_frame=per_frame)


def mpjve(pred: TensorLike, target: TensorLike, per_frame: bool = False, time_dim: int = -3) -> torch.Tensor:
    """MPJVE: mean per-joint velocity error (VideoPose3D's ``mean_velocity_error``).

    Velocities are first differences along ``time_dim`` (default: the axis before
    joints, i.e. ``(..., T, J, 3)``); the result has ``T - 1`` frames along that axis.
    A constant offset between prediction and target gives 0.
    """
    p, t = _pair(pred, target)
    if p.ndim < 3:
        raise ValueError(f"expected (..., T, J, 3) poses, got {tuple(p.shape)}")
    dim = time_dim % p.ndim
    if dim >= p.ndim - 2:
        raise ValueError("time_dim must come before the joint and coordinate axes")
    if p.shape[dim] < 2:
        raise ValueError("mpjve needs at least 2 frames")
    vp = torch.diff(p, dim=dim)
    vt = torch.diff(t, dim=dim)
    return _reduce(torch.linalg.vector_norm(vp - vt, dim=-1), per_frame)


class ActionAccumulator:
    """Accumulates per-frame errors by Human3.6M action group.

    ``action_wise()`` is the number HoT and VideoPose3D report: the **unweighted** mean of
    the per-action means (each action group counts once, whatever its frame count).
    ``frame_wise()`` weights every frame equally (VideoPose3D's "frame-weighted" average).
    Action names are grouped with ``action.split(' ')[0]`` (``"Walking 1"`` ->
    ``"Walking"``).
    """

    def __init__(self) -> None:
        self._sum: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def add(
        self,
        errors: TensorLike,
        actions: str | Iterable[str],
        mask: TensorLike | None = None,
    ) -> None:
        """Add per-frame errors.

        Args:
            errors: ``(M, ...)`` per-frame errors (e.g. ``mpjpe(..., per_frame=True)``).
            actions: one action name for all rows, or one per row (length M).
            mask: optional bool ``(M, ...)``, same shape as ``errors``: frames to count
                (e.g. :meth:`bench.data.clips.ClipSet.score_mask`).
        """
        e = torch.as_tensor(errors).detach().to("cpu", torch.float64)
        m = None if mask is None else torch.as_tensor(mask).detach().to("cpu", torch.bool)
        if m is not None and m.shape != e.shape:
            raise ValueError(f"mask {tuple(m.shape)} and errors {tuple(e.shape)} differ")
        if isinstance(actions, str):
            rows: list[tuple[str, torch.Tensor, torch.Tensor | None]] = [(actions, e, m)]
        else:
            names = list(actions)
            if e.ndim == 0 or len(names) != e.shape[0]:
                raise ValueError(f"{len(names)} action names for errors of shape {tuple(e.shape)}")
            rows = [(a, e[i], None if m is None else m[i]) for i, a in enumerate(names)]
        for name, err, msk in rows:
            sel = err.reshape(-1) if msk is None else err[msk]
            group = name.split(" ")[0]
            self._sum[group] = self._sum.get(group, 0.0) + float(sel.sum())
            self._count[group] = self._count.get(group, 0) + int(sel.numel())

    @property
    def num_frames(self) -> int:
        """Total number of accumulated frames."""
        return sum(self._count.values())

    def per_action(self) -> dict[str, float]:
        """Mean error per action group, sorted by name (groups with 0 frames omitted)."""
        return {a: self._sum[a] / self._count[a] for a in sorted(self._sum) if self._count[a] > 0}

    def action_wise(self) -> float:
        """Unweighted mean over action groups (the HoT / VideoPose3D reported number)."""
        per = self.per_action()
        if not per:
            raise ValueError("no errors accumulated")
        return sum(per.values()) / len(per)

    def frame_wise(self) -> float:
        """Mean over all accumulated frames (each frame weighted equally)."""
        n = self.num_frames
        if n == 0:
            raise ValueError("no errors accumulated")
        return sum(self._sum.values()) / n
