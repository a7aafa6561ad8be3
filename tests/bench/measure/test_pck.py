"""3DHP metrics: hand-computed golden cases and P-STMO's published figures under each aggregation."""

from __future__ import annotations

import numpy as np
import pytest

from bench.measure.pck import (
    AUC_THRESHOLDS_MM,
    README_WEIGHTS,
    SequenceScore,
    aggregate,
    score_sequence,
)

ROOT, J14 = 14, tuple(range(14))


def _poses(n: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(0, 300, (n, 17, 3))


def _shifted(gt: np.ndarray, err: np.ndarray) -> np.ndarray:
    """gt with joint j moved by err[j] mm along x (every frame)."""
    out = gt.copy()
    out[..., 0] += err
    return out


def test_pck_threshold_is_strict_and_on_14_joints():
    gt = _poses()
    gt[:, ROOT] = 0
    err = np.zeros(17)
    err[0], err[1] = 150.0, 149.9  # at the threshold: a miss; just under: a hit
    err[15], err[16] = 900.0, 900.0  # spine and head: not PCK joints
    s = score_sequence("TS1", _shifted(gt, err), gt, ROOT, J14)
    assert s.pck == pytest.approx(100 * 13 / 14)
    assert s.mpjpe_mm == pytest.approx((150 + 149.9 + 1800) / 17)  # all 17 joints, the root's zero included


def test_auc_has_31_thresholds_and_zero_scores_nothing():
    assert len(AUC_THRESHOLDS_MM) == 31 and AUC_THRESHOLDS_MM[0] == 0 and AUC_THRESHOLDS_MM[-1] == 150
    gt = _poses()
    gt[:, ROOT] = 0
    perfect = score_sequence("TS1", gt, gt, ROOT, J14)
    assert perfect.pck == 100 and perfect.auc == pytest.approx(100 * 30 / 31)  # 0 < 0 is false
    off = score_sequence("TS1", _shifted(gt, np.full(17, 12.0)), gt, ROOT, J14)
    assert off.auc == pytest.approx(100 * 28 / 31)  # 12 mm fails t = 0, 5, 10 only


def test_the_root_is_zeroed_in_both_poses():
    gt = _poses()
    pred = gt.copy()
    gt[:, ROOT] = [100.0, 2000.0, 3800.0]  # a loader leaves 3DHP's root absolute
    pred[:, ROOT] = [-5.0, 7.0, 11.0]
    s = score_sequence("TS5", pred, gt, ROOT, J14)
    assert s.mpjpe_mm == 0 and s.pck == 100


def test_three_aggregations_differ_when_sequences_have_unequal_frames():
    scores = [SequenceScore("TS1", 10, 20.0, 99.0, 80.0), SequenceScore("TS5", 90, 40.0, 95.0, 70.0)]
    pooled, mean, readme = (aggregate(scores, a)["mpjpe_mm"] for a in ("pooled", "sequence_mean", "readme_weights"))
    assert pooled == pytest.approx((10 * 20 + 90 * 40) / 100)
    assert mean == pytest.approx(30.0)
    assert readme == pytest.approx((603 * 20 + 276 * 40) / (603 + 276))
    assert len({round(pooled, 6), round(mean, 6), round(readme, 6)}) == 3


#: P-STMO-S per sequence (shared/docs/mpi-inf-3dhp-format.md §9): MPJPE, PCK, AUC; valid frames present (§5)
PSTMO = {
    "TS1": (21.8611, 99.6802, 82.8186, 603),
    "TS2": (35.8336, 96.8651, 73.6708, 540),
    "TS3": (29.3702, 98.9695, 77.4271, 506),
    "TS4": (34.5674, 97.8495, 74.1134, 558),
    "TS5": (36.7592, 96.8944, 72.0155, 276),
    "TS6": (38.9681, 96.4468, 71.2234, 392),
}


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        ("readme_weights", (32.17, 97.93, 75.75)),
        ("sequence_mean", (32.89, 97.78, 75.21)),
        ("pooled", (32.04, 97.96, 75.84)),
    ],
)
def test_pstmo_published_figures_reproduce_under_each_convention(aggregation, expected):
    scores = [SequenceScore(name, n, m, p, a) for name, (m, p, a, n) in PSTMO.items()]
    got = aggregate(scores, aggregation)
    assert (round(got["mpjpe_mm"], 2), round(got["pck"], 2), round(got["auc"], 2)) == expected
    assert sum(README_WEIGHTS.values()) == 2929 and sum(v[3] for v in PSTMO.values()) == 2875


def test_readme_weights_name_their_sequences():
    with pytest.raises(ValueError, match="TS1-TS6 only"):
        aggregate([SequenceScore("S1 Seq1", 5, 1.0, 1.0, 1.0)], "readme_weights")
