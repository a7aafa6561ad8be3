"""MPI-INF-3DHP in the community's npz layout (P-STMO's converter), loaded without executing pickled code.

Files in ``data_root`` (shared/docs/mpi-inf-3dhp-format.md §1):

* ``data_train_3dhp.npz``: ``data`` = ``{"S1 Seq1": [{camera: {"data_2d", "data_3d"}}, fps], ...}``;
* ``data_test_3dhp.npz``: ``data`` = ``{"TS1": {"data_2d", "data_3d", "valid"}, ...}``;

``data_2d`` (N, 17, 2) pixels, ``data_3d`` (N, 17, 3) millimetres (``univ_annot3``), both in 3DHP's own
17-joint order (:data:`JOINT_NAMES`: root 14, not Human3.6M's order), ``valid`` (N,) 0/1. ``data`` is a
pickled dict, read by :mod:`bench.data.safe_pickle` (never ``np.load(allow_pickle=True)``).

Preprocessing is the reference loader's (P-STMO ``load_data_3dhp_mae.py``): 2D normalised with
``x / w * 2 - [1, h / w]`` at each sequence's image size (2048x2048; TS5 and TS6 1920x1080), 3D
root-relative for every joint but the root (joint 14), which the reference leaves absolute and zeroes
at loss and metric time; this loader zeroes it at once (:func:`reference_arrays` gives the reference's
arrays) and stores metres, as every :class:`~bench.data.clips.Sequence`. Every problem is one
:class:`~bench.data.h36m.DataError` line (or :class:`~bench.data.safe_pickle.UnsafeFileError` for a file
that tries to run code); there is never a fallback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.clips import PoseDataset, Sequence
from bench.data.h36m import DataError, _finite, _load_npz, _numeric, _unwrap, array_problem

__all__ = [
    "FPS",
    "JOINTS_LEFT",
    "JOINTS_RIGHT",
    "JOINT_NAMES",
    "PCK_JOINTS",
    "ROOT",
    "TEST_IMAGE_SIZE",
    "TEST_SEQUENCES",
    "TRAIN_CAMERAS",
    "load_3dhp",
    "reference_arrays",
]

TRAIN_FILE, TEST_FILE = "data_train_3dhp.npz", "data_test_3dhp.npz"
#: 3DHP's 17-joint order ("Human3.6m joints in CPM order", mpii_get_joints.m)
JOINT_NAMES: tuple[str, ...] = (
    "head_top",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "pelvis",
    "spine",
    "head",
)
ROOT = 14  # the pelvis
JOINTS_LEFT: tuple[int, ...] = (5, 6, 7, 11, 12, 13)
JOINTS_RIGHT: tuple[int, ...] = (2, 3, 4, 8, 9, 10)
#: PCK / AUC joints: the 14 of the official joint groups (pelvis, spine and head left out)
PCK_JOINTS: tuple[int, ...] = tuple(range(14))
TRAIN_CAMERAS: tuple[str, ...] = ("0", "1", "2", "4", "5", "6", "7", "8")
TRAIN_IMAGE_SIZE = (2048, 2048)
TEST_SEQUENCES: tuple[str, ...] = ("TS1", "TS2", "TS3", "TS4", "TS5", "TS6")
TEST_IMAGE_SIZE: Mapping[str, tuple[int, int]] = {
    **{f"TS{i}": (2048, 2048) for i in range(1, 5)},
    "TS5": (1920, 1080),
    "TS6": (1920, 1080),
}
FPS = 50.0  # the test sequences' rate; training sequences record their own (25 or 50)


def reference_arrays(data_2d: np.ndarray, data_3d: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The reference loader's arrays of one sequence: normalised 2D, and 3D (mm) relative to the root for
    every joint but the root, which stays absolute."""
    w, h = size
    kp = data_2d.astype(np.float64) / w * 2 - np.array([1.0, h / w])
    pos = data_3d.astype(np.float64).copy()
    others = [j for j in range(pos.shape[1]) if j != ROOT]
    pos[:, others] -= pos[:, ROOT : ROOT + 1]
    return kp, pos


def _pose(raw: Any, key: str, where: str, path: Path) -> np.ndarray:
    dims = 2 if key == "data_2d" else 3
    why = array_problem(
        raw, isinstance(raw, np.ndarray) and raw.ndim == 3 and raw.shape[1:] == (17, dims), f"(N, 17, {dims})"
    )
    if why:
        raise DataError(f"{path}: {where}['{key}'] {why}")
    if raw.shape[0] == 0:
        raise DataError(f"{path}: {where}['{key}'] is empty")
    _finite(raw, f"{where}['{key}']", path)
    return raw


def _sequence(
    leaf: Any, where: str, path: Path, size: tuple[int, int], subject: str, action: str, camera: int, test: bool
) -> Sequence:
    keys = ("data_2d", "data_3d", "valid") if test else ("data_2d", "data_3d")
    if not isinstance(leaf, dict):
        raise DataError(f"{path}: {where} must be a dict with {', '.join(keys)}, got {type(leaf).__name__}")
    missing = [k for k in keys if k not in leaf]
    if missing:
        raise DataError(f"{path}: {where} has no {', '.join(missing)} (has {sorted(map(str, leaf))})")
    x2, x3 = _pose(leaf["data_2d"], "data_2d", where, path), _pose(leaf["data_3d"], "data_3d", where, path)
    if len(x2) != len(x3):
        raise DataError(f"{path}: {where} has {len(x2)} 2D frames but {len(x3)} 3D frames")
    valid = None
    if test:
        v = leaf["valid"]
        if not (isinstance(v, np.ndarray) and _numeric(v) and v.reshape(-1).shape == (len(x3),)):
            raise DataError(f"{path}: {where}['valid'] must be {len(x3)} 0/1 values, got {getattr(v, 'shape', v)}")
        v = v.reshape(-1)
        if not np.isin(v, (0, 1)).all():
            raise DataError(f"{path}: {where}['valid'] holds values other than 0 and 1")
        if not v.any():
            raise DataError(f"{path}: {where} has no valid frame to score")
        valid = v.astype(bool)
    kp, pos = reference_arrays(x2, x3, size)
    pos[:, ROOT] = 0.0  # the root zeroed, as every Sequence (the reference zeroes it at metric time)
    return Sequence(subject, action, camera, kp.astype(np.float32), (pos / 1000.0).astype(np.float32), None, valid)


def _data(path: Path) -> dict[str, Any]:
    obj = _unwrap(_load_npz(path, "MPI-INF-3DHP in the P-STMO npz layout"), "data", path)
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) for k in obj):
        raise DataError(f"{path}: 'data' must be a non-empty dict keyed by sequence name")
    return obj


def _train(path: Path) -> tuple[list[Sequence], list[float]]:
    seqs: list[Sequence] = []
    rates: list[float] = []
    for name, value in _data(path).items():
        parts = name.split(" ")
        if len(parts) != 2 or not parts[0].startswith("S") or not parts[1].startswith("Seq"):
            raise DataError(f"{path}: training sequence {name!r} is not named 'S<k> Seq<k>'")
        if not (isinstance(value, list | tuple) and len(value) == 2 and isinstance(value[0], dict)):
            raise DataError(f"{path}: data[{name!r}] must be [{{camera: arrays}}, fps]")
        cams, fps = value
        try:
            rate = float(fps)
        except (TypeError, ValueError):
            raise DataError(f"{path}: data[{name!r}] fps must be a number, got {fps!r}") from None
        if not np.isfinite(rate) or rate <= 0:
            raise DataError(f"{path}: data[{name!r}] fps must be positive, got {fps!r}")
        if not cams:
            raise DataError(f"{path}: data[{name!r}] has no camera")
        for cam, leaf in cams.items():
            if str(cam) not in TRAIN_CAMERAS:
                raise DataError(f"{path}: data[{name!r}] camera {cam!r} is not one of {', '.join(TRAIN_CAMERAS)}")
            where = f"data[{name!r}][{cam!r}]"
            seqs.append(_sequence(leaf, where, path, TRAIN_IMAGE_SIZE, parts[0], parts[1], int(cam), test=False))
        rates.append(rate)
    return seqs, rates


def _test(path: Path) -> list[Sequence]:
    data = _data(path)
    unknown = sorted(k for k in data if k not in TEST_SEQUENCES)
    if unknown:
        raise DataError(f"{path}: unknown test sequence(s) {', '.join(unknown)} (3DHP's are TS1-TS6)")
    return [
        _sequence(data[n], f"data[{n!r}]", path, TEST_IMAGE_SIZE[n], n, n, 0, test=True)
        for n in TEST_SEQUENCES
        if n in data
    ]


def load_3dhp(data_root: str | os.PathLike[str]) -> PoseDataset:
    """The train (S1-S8) and test (TS1-TS6) splits of ``data_root`` as one :class:`PoseDataset`."""
    root = Path(data_root)
    train, rates = _train(root / TRAIN_FILE)
    test = _test(root / TEST_FILE)
    return PoseDataset(
        name="mpi-inf-3dhp",
        train=tuple(train),
        test=tuple(test),
        fps=FPS,
        joints_left=JOINTS_LEFT,
        joints_right=JOINTS_RIGHT,
        notes=(
            f"MPI-INF-3DHP (P-STMO npz layout) from {root}: {len(train)} training sequence-cameras "
            f"(fps {sorted(set(rates))}), {len(test)} test sequences scored on their valid frames; 3DHP joint "
            "order, root 14 zeroed, univ_annot3 in metres"
        ),
        root=ROOT,
        pck_joints=PCK_JOINTS,
    )
