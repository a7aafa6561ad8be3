"""Evaluation protocol: a perfect predictor scores 0 mm in both pipelines, with and without flip test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from backbones import PoseBackbone
from bench.data.clips import PoseDataset, Sequence
from bench.data.skeleton import JOINTS_LEFT, JOINTS_RIGHT
from bench.training.evaluate import evaluate, trivial_mpjpe


class Oracle(PoseBackbone):
    """Predicts (x, y, 0) from the 2D input: exact on data whose 3D target is (x, y, 0)."""

    def __init__(self, frames: int, pipeline: str) -> None:
        super().__init__(frames=frames, in_channels=2, token_dim=2)
        self.pipeline = pipeline  # type: ignore[misc]
        self.scale = torch.nn.Parameter(torch.ones(()))

    @property
    def num_blocks(self) -> int:
        return 0

    def embed(self, x: Tensor) -> Tensor:
        return x * self.scale

    def regress(self, tokens: Tensor) -> Tensor:
        return torch.cat([tokens, torch.zeros_like(tokens[..., :1])], dim=-1)


def _toy_poses(rng: np.random.Generator, n: int, root: int) -> tuple[np.ndarray, np.ndarray]:
    """Random 2D keypoints (n, 17, 2) and their 3D target (x, y, 0) with the root zeroed."""
    kp = rng.normal(size=(n, 17, 2)).astype(np.float32)
    pos = np.concatenate([kp, np.zeros((n, 17, 1), np.float32)], axis=-1)
    pos[:, root] = 0.0
    return kp, pos


def _dataset(lengths=(30, 45)) -> PoseDataset:
    rng = np.random.default_rng(0)
    seqs = [Sequence("S9", ["Walking", "Eating 1"][i % 2], 0, *_toy_poses(rng, n, 0)) for i, n in enumerate(lengths)]
    return PoseDataset("toy", tuple(seqs), tuple(seqs), 50.0, JOINTS_LEFT, JOINTS_RIGHT)


@pytest.mark.parametrize("mode", ["all", "centre"])
@pytest.mark.parametrize("flip", [False, True])
def test_perfect_predictor_scores_zero(mode, flip):
    data = _dataset()
    model = Oracle(9, "seq2seq" if mode == "all" else "seq2frame")
    r = evaluate(model, data, mode, flip=flip, batch_size=4)
    assert r.mpjpe_mm == pytest.approx(0.0, abs=1e-4)
    assert r.pmpjpe_mm == pytest.approx(0.0, abs=1e-3)
    assert r.mpjve_mm == pytest.approx(0.0, abs=1e-4)
    assert r.frames == 30 + 45  # every real frame scored exactly once
    assert set(r.per_action) == {"Walking", "Eating"}


def test_a_wrong_predictor_has_the_expected_error():
    data = _dataset()
    model = Oracle(9, "seq2seq")
    with torch.no_grad():
        model.scale.fill_(2.0)  # predicts (2x, 2y, 0): error = |(x, y)| per joint, root excluded
    r = evaluate(model, data, "all", flip=False)
    per_action = []
    for seq in data.test:
        err = np.linalg.norm(seq.keypoints_2d[:, 1:], axis=-1).sum(axis=1) / 17 * 1000
        per_action.append(err.mean())
    assert r.mpjpe_mm == pytest.approx(np.mean(per_action), rel=1e-4)


def test_trivial_predictor_is_the_mean_training_pose():
    data = _dataset()
    mean = np.concatenate([s.positions_3d for s in data.train]).mean(axis=0)
    errs = [np.linalg.norm(s.positions_3d - mean, axis=-1).mean(axis=-1).mean() * 1000 for s in data.test]
    assert trivial_mpjpe(data) == pytest.approx(np.mean(errs), rel=1e-5)


class LinearOracle(Oracle):
    """The oracle through an identity Linear (an autocast op), recording whether autocast was on."""

    def __init__(self, frames: int, pipeline: str) -> None:
        super().__init__(frames, pipeline)
        self.lin = torch.nn.Linear(2, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.eye(2))
            self.lin.bias.zero_()
        self.autocast_seen: list[bool] = []

    def embed(self, x: Tensor) -> Tensor:
        self.autocast_seen.append(torch.is_autocast_enabled("cpu"))
        return self.lin(x)


@pytest.mark.parametrize("mode", ["all", "centre"])
def test_evaluation_runs_under_the_requested_precision(mode):
    data = _dataset()
    model = LinearOracle(9, "seq2seq" if mode == "all" else "seq2frame")
    fp32 = evaluate(model, data, mode, flip=True, batch_size=4)
    assert fp32.precision == "fp32" and not any(model.autocast_seen)
    assert fp32.mpjpe_mm == pytest.approx(0.0, abs=1e-3)
    model.autocast_seen.clear()
    bf16 = evaluate(model, data, mode, flip=True, batch_size=4, precision="bf16")
    assert bf16.precision == "bf16" and model.autocast_seen and all(model.autocast_seen)
    # bf16 rounds the ~1 m coordinates to 8 mantissa bits: a few mm of error, not zero, not more
    assert 0.05 < bf16.mpjpe_mm < 10.0
    assert bf16.frames == fp32.frames == 75


def test_fp16_evaluation_on_cpu_is_refused():
    from bench.config import ConfigError

    with pytest.raises(ConfigError, match=r"^precision: fp16 runs on CUDA only"):
        evaluate(Oracle(9, "seq2seq"), _dataset(), "all", precision="fp16")


def _dataset_3dhp(lengths=(30, 50)) -> PoseDataset:
    """The toy data as 3DHP would hold it: root 14, PCK joints 0-13, test sequences with valid masks."""
    from bench.data.mpi_inf_3dhp import JOINTS_LEFT as L3
    from bench.data.mpi_inf_3dhp import JOINTS_RIGHT as R3
    from bench.data.mpi_inf_3dhp import PCK_JOINTS, ROOT

    rng = np.random.default_rng(1)
    seqs = []
    for i, n in enumerate(lengths):
        kp, pos = _toy_poses(rng, n, ROOT)
        valid = np.ones(n, bool)
        valid[: n // 2] = False  # half of each sequence is context only
        seqs.append(Sequence(f"TS{i + 1}", f"TS{i + 1}", 0, kp, pos, None, valid))
    return PoseDataset("toy-3dhp", tuple(seqs), tuple(seqs), 50.0, L3, R3, "", ROOT, PCK_JOINTS)


@pytest.mark.parametrize("mode", ["all", "centre"])
def test_3dhp_scores_valid_frames_with_its_root_and_names_the_convention(mode):
    data = _dataset_3dhp()
    model = Oracle(9, "seq2seq" if mode == "all" else "seq2frame")
    with torch.no_grad():
        model.scale.fill_(1.02)  # 2 % off: error 0.02 |(x, y)| per joint, the root (14) zeroed
    r = evaluate(model, data, mode, flip=True, batch_size=4)
    assert r.frames == 15 + 25 and r.aggregation == "pooled"  # valid frames only
    assert {k: v["frames"] for k, v in r.per_sequence.items()} == {"TS1": 15, "TS2": 25}
    errs = []
    for s in data.test:
        e = 0.02 * np.linalg.norm(s.keypoints_2d[s.valid], axis=-1) * 1000  # (K, 17) mm
        e[:, 14] = 0
        errs.append(e)
    pooled = np.concatenate(errs)
    assert r.mpjpe_mm == pytest.approx(pooled.mean(), rel=1e-4)
    assert r.pck == pytest.approx(100 * (pooled[:, :14] < 150).mean(), abs=1e-6)
    means = evaluate(model, data, mode, flip=True, batch_size=4, aggregation="sequence_mean")
    assert means.mpjpe_mm == pytest.approx(np.mean([e.mean() for e in errs]), rel=1e-4)
    assert means.mpjpe_mm != pytest.approx(r.mpjpe_mm, rel=1e-6)  # unequal valid counts: the conventions differ
