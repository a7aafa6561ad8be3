"""Real Human3.6M in the VideoPose3D layout, loaded without executing pickled code.

Files in ``data_root`` (see ``docs/h36m-format.md``):

* ``data_3d_h36m.npz``: ``positions_3d`` = ``{subject: {action: (N, 32, 3)}}``, world
  coordinates in metres, z up, 50 fps.
* ``data_2d_h36m_<keypoints>.npz`` (``cpn_ft_h36m_dbb``, ``gt``, ...): ``positions_2d`` =
  ``{subject: {action: [cam0, cam1, cam2, cam3]}}`` each ``(N_k, 17, 2)`` pixels
  (a third channel, if present, is read as confidence), and ``metadata`` with
  ``keypoints_symmetry``.

Preprocessing is VideoPose3D's ``run.py``: 32 -> 17 joints, ``world_to_camera`` with each
camera's extrinsics, root-relative with the root zeroed (HoT zeroes it), 2D cut to the
mocap length, 2D normalised with ``x / w * 2 - [1, h / w]``. Subjects and actions are
whatever the files hold. Every problem raises :class:`DataError` (or
:class:`~bench.data.safe_pickle.UnsafeFileError` for a file that tries to run code); there
is never a fallback to synthetic data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from collections.abc import Sequence as SequenceABC
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.cameras import (
    EXTRINSICS,
    INTRINSICS,
    normalize_screen_coordinates,
    world_to_camera,
)
from bench.data.clips import PoseDataset, Sequence
from bench.data.safe_pickle import UnsafeFileError, load_npz_safely
from bench.data.skeleton import KEPT_32_TO_17, NUM_JOINTS
from bench.errors import UserError

__all__ = ["H36M_FPS", "DataError", "load_h36m", "path_2d", "path_3d"]

H36M_FPS = 50.0
TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")


class DataError(UserError, ValueError):
    """A dataset file (Human3.6M, MPI-INF-3DHP) is missing or does not have its layout."""


def path_3d(data_root: str | os.PathLike[str]) -> Path:
    """``<data_root>/data_3d_h36m.npz``."""
    return Path(data_root) / "data_3d_h36m.npz"


def path_2d(data_root: str | os.PathLike[str], keypoints: str) -> Path:
    """``<data_root>/data_2d_h36m_<keypoints>.npz``."""
    return Path(data_root) / f"data_2d_h36m_{keypoints}.npz"


def _load_npz(path: Path, layout: str = "the VideoPose3D Human3.6M layout") -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected {layout})")
    try:
        return load_npz_safely(path)
    except UnsafeFileError:
        raise  # a file that tries to run code is reported as such, not as a layout error
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    except ValueError as exc:
        raise DataError(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from exc


def _unwrap(arrays: Mapping[str, np.ndarray], key: str, path: Path) -> Any:
    if key not in arrays:
        raise DataError(f"{path}: no '{key}' array (has {sorted(arrays)})")
    a = arrays[key]
    if a.dtype != object or a.shape != ():
        raise DataError(f"{path}: '{key}' must be a 0-d object array, got {a.dtype} {a.shape}")
    return a.item()


def _dict_of_dicts(obj: Any, key: str, path: Path) -> dict[str, dict[str, Any]]:
    if not isinstance(obj, dict) or not obj:
        raise DataError(f"{path}: '{key}' must be a non-empty dict {{subject: {{action: ...}}}}")
    for subject, actions in obj.items():
        if not isinstance(subject, str) or not isinstance(actions, dict):
            raise DataError(f"{path}: '{key}'[{subject!r}] must be a dict {{action: ...}}")
    return obj


def _numeric(a: np.ndarray) -> bool:
    return bool(np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer))


def array_problem(raw: Any, shape_ok: bool, expect: str) -> str:
    """What is wrong with an array read from a data file ('' for nothing): not an array, the wrong shape
    (``expect``), or not numbers (its dtype), in that order, so a dtype is never reported as a shape."""
    if not isinstance(raw, np.ndarray):
        return f"must be an array {expect}, got a {type(raw).__name__}"
    if not shape_ok:
        return f"must be {expect}, got shape {raw.shape}"
    if not _numeric(raw):
        return f"must hold numbers, got dtype {raw.dtype}"
    return ""


def _pose_3d_17(raw: Any, subject: str, action: str, path: Path) -> np.ndarray:
    shape_ok = isinstance(raw, np.ndarray) and raw.ndim == 3 and raw.shape[2] == 3 and raw.shape[1] in (32, NUM_JOINTS)
    why = array_problem(raw, shape_ok, "(N, 32|17, 3)")
    if why:
        raise DataError(f"{path}: positions_3d[{subject}][{action}] {why}")
    a: np.ndarray = raw
    if a.shape[0] == 0:
        raise DataError(f"{path}: positions_3d[{subject}][{action}] is empty")
    _finite(a, f"positions_3d[{subject}][{action}]", path)
    if a.shape[1] == 32:
        a = a[:, list(KEPT_32_TO_17)]
    return a.astype(np.float64)  # (N, 17, 3) world metres


def _finite(a: np.ndarray, what: str, path: Path) -> None:
    """Refuse NaN/Inf poses, naming the take (subject/action) and the first bad frame."""
    ok = np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    if not ok.all():
        first = int(np.argmin(ok))
        raise DataError(
            f"{path}: {what} holds non-finite values (NaN/Inf) in {int((~ok).sum())} frame(s), first at frame {first}"
        )


def _symmetry(metadata: Any, path: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if not isinstance(metadata, dict) or "keypoints_symmetry" not in metadata:
        raise DataError(f"{path}: metadata must be a dict with 'keypoints_symmetry'")
    sym = metadata["keypoints_symmetry"]
    try:
        left = tuple(int(j) for j in sym[0])
        right = tuple(int(j) for j in sym[1])
    except (TypeError, ValueError, IndexError) as exc:
        raise DataError(f"{path}: keypoints_symmetry must be [left joints, right joints]") from exc
    if len(left) != len(right) or not all(0 <= j < NUM_JOINTS for j in left + right):
        raise DataError(f"{path}: invalid keypoints_symmetry {sym!r}")
    return left, right


def load_h36m(
    data_root: str | os.PathLike[str],
    keypoints: str = "cpn_ft_h36m_dbb",
    train_subjects: SequenceABC[str] = TRAIN_SUBJECTS,
    test_subjects: SequenceABC[str] = TEST_SUBJECTS,
) -> PoseDataset:
    """Load Human3.6M from VideoPose3D's files into a :class:`PoseDataset`.

    Args:
        data_root: directory with ``data_3d_h36m.npz`` and ``data_2d_h36m_<keypoints>.npz``.
        keypoints: 2D source name: ``cpn_ft_h36m_dbb`` (CPN, HoT's default), ``gt``, ...
        train_subjects: training subjects (default S1, S5, S6, S7, S8).
        test_subjects: test subjects (default S9, S11).

    Returns:
        one :class:`Sequence` per (subject, action, camera), in file order, with
        ``keypoints_2d`` (N, 17, 2) normalised and ``positions_3d`` (N, 17, 3) camera-space,
        root-relative, root zeroed; ``joints_left/right`` from ``keypoints_symmetry``.

    Raises:
        DataError: missing file, wrong layout, a requested subject absent from the 3D file
            or without camera extrinsics, a 3D take without 2D, 2D shorter than 3D.
        UnsafeFileError: a file's pickle references anything but plain numpy data.
    """
    overlap = set(train_subjects) & set(test_subjects)
    if overlap:
        raise DataError(f"subjects in both train and test: {sorted(overlap)}")
    p3 = path_3d(data_root)
    p2 = path_2d(data_root, keypoints)
    pos3d = _dict_of_dicts(_unwrap(_load_npz(p3), "positions_3d", p3), "positions_3d", p3)
    arrays_2d = _load_npz(p2)
    pos2d = _dict_of_dicts(_unwrap(arrays_2d, "positions_2d", p2), "positions_2d", p2)
    left, right = _symmetry(_unwrap(arrays_2d, "metadata", p2), p2)

    def build(subjects: SequenceABC[str]) -> tuple[Sequence, ...]:
        out: list[Sequence] = []
        for subject in subjects:
            if subject not in pos3d:
                raise DataError(f"{p3}: subject {subject} not in positions_3d (has {sorted(pos3d)})")
            if subject not in EXTRINSICS:
                raise DataError(f"{p3}: subject {subject} has no Human3.6M camera parameters")
            if subject not in pos2d:
                raise DataError(f"{p2}: subject {subject} missing from positions_2d")
            for action, raw in pos3d[subject].items():
                out.extend(_take(subject, action, raw, pos2d[subject].get(action), p3, p2))
        return tuple(out)

    return PoseDataset(
        name="h36m",
        train=build(train_subjects),
        test=build(test_subjects),
        fps=H36M_FPS,
        joints_left=left,
        joints_right=right,
        notes=(
            f"Human3.6M (VideoPose3D layout) from {os.fspath(data_root)}; 2D: {keypoints}; "
            "3D camera-space, root-relative, root zeroed; 2D truncated to the mocap length"
        ),
    )


def _take(subject: str, action: str, raw3d: Any, raw2d: Any, p3: Path, p2: Path) -> list[Sequence]:
    world = _pose_3d_17(raw3d, subject, action, p3)  # (N, 17, 3)
    n = world.shape[0]
    if raw2d is None:
        raise DataError(f"{p2}: no 2D keypoints for {subject}/{action} (present in {p3.name})")
    if not isinstance(raw2d, (list, tuple)) or len(raw2d) != len(INTRINSICS):
        raise DataError(f"{p2}: positions_2d[{subject}][{action}] must be a list of 4 cameras")
    seqs: list[Sequence] = []
    for cam, (intr, extr) in enumerate(zip(INTRINSICS, EXTRINSICS[subject], strict=True)):
        kp = raw2d[cam]
        ok = isinstance(kp, np.ndarray) and kp.ndim == 3 and kp.shape[1] == NUM_JOINTS and kp.shape[2] in (2, 3)
        why = array_problem(kp, ok, "(N, 17, 2|3)")
        if why:
            raise DataError(f"{p2}: positions_2d[{subject}][{action}][{cam}] {why}")
        if kp.shape[0] < n:
            raise DataError(f"{p2}: {subject}/{action} camera {cam} has {kp.shape[0]} 2D frames < {n} 3D frames")
        kp = kp[:n].astype(np.float64)  # (N, 17, 2|3) pixels
        _finite(kp, f"positions_2d[{subject}][{action}][{cam}]", p2)
        xy = normalize_screen_coordinates(kp[..., :2], w=intr.res_w, h=intr.res_h)
        conf = kp[..., 2] if kp.shape[2] == 3 else None
        cam_pos = world_to_camera(world, extr.quaternion, extr.translation_m)  # (N, 17, 3)
        cam_pos = cam_pos - cam_pos[:, :1]  # root-relative, root zeroed
        seqs.append(
            Sequence(
                subject=subject,
                action=action,
                camera=cam,
                keypoints_2d=xy.astype(np.float32),
                positions_3d=cam_pos.astype(np.float32),
                confidence=None if conf is None else conf.astype(np.float32),
            )
        )
    return seqs
