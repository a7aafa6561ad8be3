"""MPI-INF-3DHP's metrics as its official MATLAB evaluation computes them (shared/docs/mpi-inf-3dhp-format.md §5).

For one sequence, with e_{j,f} = ||p̂_{j,f} - p_{j,f}||_2 in mm after the root joint is zeroed in both the
prediction and the ground truth (so e_{root,f} = 0):

* **PCK** = 100 · mean over frames and the 14 evaluation joints of 1[e < 150 mm]; the comparison is strict.
* **AUC** = 100 · mean of PCK(t) over the 31 thresholds t = 0, 5, ..., 150 mm (t = 0 always scores 0).
* **MPJPE** = mean of e over frames and all 17 joints, the zero-error root included.

Only the frames the caller passes are scored (3DHP scores its ``valid`` frames only). A whole test set is
scored sequence by sequence, then combined under one of three conventions (:data:`AGGREGATIONS`), which
the literature mixes: ``pooled`` over every scored frame (the activity-wise "All"; the default),
``sequence_mean`` (the plain mean of the sequences) and ``readme_weights`` (P-STMO's spreadsheet:
sequences weighted 603/540/505/553/276/452, which are not the valid-frame counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence as SequenceABC
from dataclasses import asdict, dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

PCK_THRESHOLD_MM = 150.0
#: the AUC's 31 thresholds, mm
AUC_THRESHOLDS_MM: tuple[float, ...] = tuple(float(t) for t in range(0, 151, 5))
Aggregation = Literal["pooled", "sequence_mean", "readme_weights"]
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)
#: P-STMO's per-sequence weights (its README and spreadsheet; sum 2929), convention ``readme_weights``
README_WEIGHTS: Mapping[str, float] = {"TS1": 603, "TS2": 540, "TS3": 505, "TS4": 553, "TS5": 276, "TS6": 452}


@dataclass(frozen=True)
class SequenceScore:
    """One sequence's scores over its scored frames."""

    name: str
    frames: int
    mpjpe_mm: float
    pck: float
    auc: float

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def joint_errors(pred_mm: npt.ArrayLike, gt_mm: npt.ArrayLike, root: int) -> npt.NDArray[np.float64]:
    """(N, J) per-joint errors in mm of (N, J, 3) poses, the ``root`` joint zeroed in both first."""
    p = np.array(pred_mm, dtype=np.float64)
    g = np.array(gt_mm, dtype=np.float64)
    if p.shape != g.shape or p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} must both be (N, J, 3)")
    p[:, root] = 0.0
    g[:, root] = 0.0
    return np.linalg.norm(p - g, axis=-1)


def score_sequence(
    name: str, pred_mm: npt.ArrayLike, gt_mm: npt.ArrayLike, root: int, pck_joints: SequenceABC[int]
) -> SequenceScore:
    """PCK, AUC (on ``pck_joints``) and MPJPE (on every joint) of one sequence's scored frames."""
    e = joint_errors(pred_mm, gt_mm, root)
    if e.shape[0] == 0:
        raise ValueError(f"sequence {name}: no frame to score")
    sub = e[:, list(pck_joints)]
    curve = [float((sub < t).mean()) for t in AUC_THRESHOLDS_MM]  # strict '<', as the MATLAB code
    pck = 100.0 * float((sub < PCK_THRESHOLD_MM).mean())
    return SequenceScore(name, int(e.shape[0]), float(e.mean()), pck, 100.0 * float(np.mean(curve)))


def weights(scores: SequenceABC[SequenceScore], aggregation: Aggregation) -> list[float]:
    """Each sequence's weight under ``aggregation`` (pooling weighs a sequence by its scored frames)."""
    if aggregation == "pooled":
        return [float(s.frames) for s in scores]
    if aggregation == "sequence_mean":
        return [1.0] * len(scores)
    if aggregation == "readme_weights":
        unknown = [s.name for s in scores if s.name not in README_WEIGHTS]
        if unknown:
            raise ValueError(f"readme_weights has weights for TS1-TS6 only, not {', '.join(unknown)}")
        return [float(README_WEIGHTS[s.name]) for s in scores]
    raise ValueError(f"unknown aggregation {aggregation!r} (known: {', '.join(AGGREGATIONS)})")


def aggregate(scores: SequenceABC[SequenceScore], aggregation: Aggregation = "pooled") -> dict[str, float]:
    """MPJPE, PCK and AUC of a test set under ``aggregation``: the weighted mean of the sequences' values.

    Every measure is a mean over (frame, joint) pairs, so pooling the frames is the mean of the
    sequences' values weighted by their frame counts, exactly."""
    if not scores:
        raise ValueError("no sequence to aggregate")
    w = np.asarray(weights(scores, aggregation))
    out = {}
    for key in ("mpjpe_mm", "pck", "auc"):
        v = np.asarray([getattr(s, key) for s in scores])
        out[key] = float((w * v).sum() / w.sum())
    return out


__all__ = [
    "AGGREGATIONS",
    "AUC_THRESHOLDS_MM",
    "PCK_THRESHOLD_MM",
    "README_WEIGHTS",
    "Aggregation",
    "SequenceScore",
    "aggregate",
    "joint_errors",
    "score_sequence",
    "weights",
]
