"""Which dataset a :class:`~bench.config.DataConfig` names, the files it needs, and loading it (one owner).

Sources: ``synthetic`` (the embedded Human3.6M-like generator), ``h36m`` (VideoPose3D's files),
``3dhp`` (MPI-INF-3DHP in P-STMO's layout) and ``synthetic_3dhp`` (the generator's motion written as
3DHP files under ``cache_dir`` and read back by the real 3DHP loader). Missing real data is an error,
never a fall-back to synthetic data.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from bench.config import DataConfig
from bench.data.clips import PoseDataset
from bench.data.h36m import DataError

#: the real datasets: what --data-root must hold
REAL = {"h36m": "Human3.6M in the VideoPose3D layout", "3dhp": "MPI-INF-3DHP in the P-STMO npz layout"}


def required_files(cfg: DataConfig) -> list[Path]:
    """The files a real source reads from ``data_root`` (none for the synthetic sources)."""
    if cfg.source not in REAL:
        return []
    if not cfg.data_root:
        raise DataError(f"--data {cfg.source} needs --data-root DIR (the folder with {REAL[cfg.source]})")
    if cfg.source == "h36m":
        from bench.data.h36m import path_2d, path_3d

        return [path_3d(cfg.data_root), path_2d(cfg.data_root, cfg.keypoints)]
    from bench.data.mpi_inf_3dhp import TEST_FILE, TRAIN_FILE

    return [Path(cfg.data_root) / TRAIN_FILE, Path(cfg.data_root) / TEST_FILE]


def load_dataset(cfg: DataConfig) -> PoseDataset:
    """The dataset ``cfg`` names (every problem with a file is one :class:`DataError` line)."""
    required_files(cfg)  # a real source without --data-root: one line
    if cfg.source == "synthetic":
        from bench.data.synthetic import make_synthetic_h36m

        return make_synthetic_h36m(
            seed=cfg.seed, noise=cfg.noise, cache_dir=cfg.cache_dir, frames_per_sequence=cfg.frames_per_sequence
        )
    if cfg.source == "h36m":
        from bench.data.h36m import load_h36m

        return load_h36m(str(cfg.data_root), keypoints=cfg.keypoints)
    from bench.data.mpi_inf_3dhp import load_3dhp

    if cfg.source == "3dhp":
        return load_3dhp(str(cfg.data_root))
    from bench.data.synthetic_3dhp import write_synthetic_3dhp

    cache = cfg.cache_dir or str(Path(tempfile.gettempdir()) / "hourglass-synthetic-3dhp")  # hash-named inside
    folder = write_synthetic_3dhp(cache, seed=cfg.seed, frames_per_sequence=cfg.frames_per_sequence, noise=cfg.noise)
    data = load_3dhp(folder)
    notes = data.notes.replace("MPI-INF-3DHP", "synthetic MPI-INF-3DHP (procedural motion, not comparable)", 1)
    return dataclasses.replace(data, name="synthetic-3dhp", notes=notes)


__all__ = ["REAL", "load_dataset", "required_files"]
