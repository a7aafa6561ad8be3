"""The synthetic generator's motion written as MPI-INF-3DHP files, so the 3DHP path runs on any machine.

:func:`write_synthetic_3dhp` writes ``data_train_3dhp.npz`` and ``data_test_3dhp.npz`` in the layout of
:mod:`bench.data.mpi_inf_3dhp` (the P-STMO converter's), which then reads them exactly as it reads the
real files: same motion model as :mod:`bench.data.synthetic`, reordered into 3DHP's joint order,
millimetres in camera space (root absolute), 2D in pixels of 2048x2048 cameras (training, TS1-TS4) and
1920x1080 cameras (TS5, TS6), and a ``valid`` mask with gaps on the test sequences. It is a procedural
stand-in: its absolute errors are not comparable with the real dataset's.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.cameras import EXTRINSICS, world_to_camera
from bench.data.mpi_inf_3dhp import TEST_FILE, TEST_IMAGE_SIZE, TEST_SEQUENCES, TRAIN_FILE, TRAIN_IMAGE_SIZE
from bench.data.synthetic import ACTION_TYPES, FPS, GENERATOR_VERSION, NoiseMode, _detector_noise, synthetic_take_world

__all__ = ["H36M_TO_3DHP", "write_synthetic_3dhp"]

#: 3DHP joint i is Human3.6M joint H36M_TO_3DHP[i] (head_top <- head, neck <- thorax, head <- neck/nose)
H36M_TO_3DHP: tuple[int, ...] = (10, 8, 14, 15, 16, 11, 12, 13, 1, 2, 3, 4, 5, 6, 0, 7, 9)
TRAIN_SUBJECTS = tuple(f"S{i}" for i in range(1, 9))
#: the training cameras written (a subset of 3DHP's eight), each seen from one Human3.6M studio camera
CAMERAS = ("0", "2", "5", "8")
FOCAL_PX = {(2048, 2048): 1500.0, (1920, 1080): 1400.0}


def _project(xc_m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pinhole projection (no distortion) of camera-space metres (N, 17, 3) to pixels (N, 17, 2)."""
    w, h = size
    f = FOCAL_PX[size]
    return f * xc_m[..., :2] / xc_m[..., 2:3] + np.array([w / 2, h / 2])


def _view(world: np.ndarray, camera: int, size: tuple[int, int], noise: NoiseMode, rng: np.random.Generator) -> dict:
    extr = EXTRINSICS["S1"][camera]
    xc = world_to_camera(world, extr.quaternion, extr.translation_m)  # (N, 17, 3) metres, H36M order
    px = _project(xc, size)
    if noise == "detector":
        px, _ = _detector_noise(rng, px)
    order = list(H36M_TO_3DHP)
    return {"data_2d": px[:, order], "data_3d": xc[:, order] * 1000.0}


def _valid(n: int, rng: np.random.Generator) -> np.ndarray:
    """A 0/1 mask with a few gaps (3DHP leaves out frames without a reliable annotation)."""
    v = np.ones(n, dtype=np.float64)
    for _ in range(int(rng.integers(2, 5))):
        start, length = int(rng.integers(0, n)), int(rng.integers(n // 40 + 1, n // 10 + 2))
        v[start : start + length] = 0
    v[n // 2] = 1  # never empty
    return v


def _save(path: Path, data: Mapping[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, data=np.array(dict(data), dtype=object))  # the layout's pickled dict
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_synthetic_3dhp(
    cache_dir: str | os.PathLike[str], seed: int = 0, frames_per_sequence: int = 600, noise: NoiseMode = "none"
) -> Path:
    """Write (once per parameters) the two 3DHP files under ``cache_dir`` and return their folder.

    Training: S1-S8, Seq1 and Seq2 (each one synthetic action), cameras 0, 2, 5, 8. Test: TS1-TS6, one camera
    each, with gaps in ``valid``."""
    params = {"v": GENERATOR_VERSION, "seed": seed, "frames": frames_per_sequence, "noise": noise, "layout": "3dhp-1"}
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(cache_dir) / f"synthetic_3dhp_{digest}"
    if (folder / TRAIN_FILE).is_file() and (folder / TEST_FILE).is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    train: dict[str, Any] = {}
    for s, subject in enumerate(TRAIN_SUBJECTS):
        for q in (1, 2):
            action = ACTION_TYPES[(2 * s + q - 1) % len(ACTION_TYPES)]
            world = synthetic_take_world(f"3dhp-{subject}", action, q, seed, frames_per_sequence)
            rng = np.random.default_rng([seed, s, q, 0x3D])
            cams = {c: _view(world, k, TRAIN_IMAGE_SIZE, noise, rng) for k, c in enumerate(CAMERAS)}
            train[f"{subject} Seq{q}"] = [cams, FPS]
    test: dict[str, Any] = {}
    for i, name in enumerate(TEST_SEQUENCES):
        action = ACTION_TYPES[(3 * i + 1) % len(ACTION_TYPES)]
        world = synthetic_take_world(f"3dhp-{name}", action, 0, seed, frames_per_sequence)
        rng = np.random.default_rng([seed, 100 + i, 0x3D])
        leaf = _view(world, i % len(CAMERAS), TEST_IMAGE_SIZE[name], noise, rng)
        test[name] = {**leaf, "valid": _valid(frames_per_sequence, rng)}
    _save(folder / TRAIN_FILE, train)
    _save(folder / TEST_FILE, test)
    return folder
