"""Evaluation on the test subjects: action-wise MPJPE (P1), P-MPJPE (P2), N-MPJPE (P3), MPJVE.

Two pipelines (shared/docs/papers.md §9):

* **all frames** (seq2seq with recovery, e.g. MixSTE, HoT w. MixSTE): each test sequence is cut into
  non-overlapping clips of T frames (the last one edge-padded) and every *real* frame is scored
  once (HoT also scores the padded copies; ``padded="include"`` does that).
* **centre frame** (seq2frame: MHFormer, StridedTransformer, and every TPC form): a window of T
  frames centred on every ``stride``-th frame (stride 1 = every frame), edge-padded at the ends;
  the centre prediction is scored.

Test-time flip augmentation (on by default, as in every paper here) averages the prediction with the
un-flipped prediction of the flipped input; pruned models reuse the kept frames of the un-flipped
pass (HoT). Predictions and targets are root-relative (root zeroed) and reported in millimetres;
averages are action-wise (the papers' number) with frame-wise alongside.

``precision`` evaluates the deployed model: fp32, or the forward passes under ``torch.autocast``
to bf16 (fp16 on CUDA), the same context the speed protocol times (:mod:`bench.measure.precision`),
so a row's MPJPE and FPS describe one model. Errors are computed in fp32 either way.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from backbones import PoseBackbone, select_frame
from bench.data.clips import PoseDataset, Sequence, flip_pose, seq2frame_windows, seq2seq_clips
from bench.errors import NonFiniteError
from bench.measure.metrics import ActionAccumulator, mpjpe, mpjve, n_mpjpe, p_mpjpe
from bench.measure.pck import Aggregation, SequenceScore, aggregate, score_sequence
from bench.measure.precision import autocast, check_precision

OutputMode = Literal["all", "centre"]


@dataclass
class EvalResult:
    """Test-set errors in millimetres (action-wise unless named frame-wise)."""

    mpjpe_mm: float
    pmpjpe_mm: float
    nmpjpe_mm: float
    mpjve_mm: float
    mpjpe_frame_wise_mm: float
    frames: int
    output: str
    flip: bool
    per_action: dict[str, dict[str, float]] = field(default_factory=dict)
    precision: str = "fp32"  # the autocast type of the forward passes
    # MPI-INF-3DHP (a dataset with PCK joints): PCK@150 mm and AUC under ``aggregation``, which also gives
    # ``mpjpe_mm``; ``per_sequence`` holds each test sequence's frames, MPJPE, PCK and AUC (valid frames only)
    pck: float | None = None
    auc: float | None = None
    aggregation: str | None = None
    per_sequence: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _device(model: PoseBackbone) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _predict(
    model: PoseBackbone,
    x: Tensor,
    mode: OutputMode,
    flip: bool,
    left: list[int],
    right: list[int],
    precision: str = "fp32",
) -> Tensor:
    """Forward (+ flip test) under ``precision``'s autocast, in fp32. all: (B, T, 17, 3); centre: (B, 1, 17, 3)."""
    if precision != "fp32":
        dev = _device(model)
        with autocast(precision, dev):
            pose = _predict(model, x.to(dev), mode, flip, left, right)
        return pose.float()
    out = model.forward_all(x)
    pose = out.pose if mode == "all" else select_frame(out.pose, out.index, model.centre)
    if not flip:
        return pose
    out_f = model.forward_all(flip_pose(x, left, right), reuse=out.kept or None)
    pose_f = out_f.pose if mode == "all" else select_frame(out_f.pose, out_f.index, model.centre)
    return (pose + flip_pose(pose_f, left, right)) / 2


@torch.inference_mode()
def predict_sequence(
    model: PoseBackbone,
    seq: Sequence,
    mode: OutputMode,
    joints_left: SequenceABC[int],
    joints_right: SequenceABC[int],
    *,
    flip: bool = True,
    batch_size: int = 64,
    stride: int = 1,
    precision: str = "fp32",
    root: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions for one sequence: ``(frames (K,), poses (K, 17, 3))`` in metres, the ``root`` joint zeroed."""
    left, right = list(joints_left), list(joints_right)
    conf = model.in_channels == 3
    t = model.frames
    frames: list[np.ndarray] = []
    poses: list[np.ndarray] = []
    if mode == "all":
        clips = seq2seq_clips([seq], t, t, with_confidence=conf)
        for batch in clips.batches(batch_size):
            clip_pred = (
                _predict(model, batch["inputs"], mode, flip, left, right, precision).cpu().numpy()
            )  # (B, T, 17, 3)
            for row, clip in enumerate(batch["index"].tolist()):
                valid = clips.valid[clip]
                frames.append(clips.starts[clip] + np.nonzero(valid)[0])
                poses.append(clip_pred[row][valid])
    else:
        for batch in seq2frame_windows(seq, t, stride=stride, batch_size=batch_size, with_confidence=conf):
            pred = _predict(model, batch["inputs"], mode, flip, left, right, precision).cpu()  # (B, 1, 17, 3)
            frames.append(batch["frame"].numpy())
            poses.append(pred[:, 0].numpy())
    p = np.concatenate(poses).astype(np.float32)
    p[:, root] = 0.0  # root-relative, root zeroed (targets are too)
    return np.concatenate(frames), p


def evaluate(
    model: PoseBackbone,
    data: PoseDataset,
    mode: OutputMode,
    *,
    flip: bool = True,
    batch_size: int = 64,
    stride: int = 1,
    sequences: SequenceABC[Sequence] | None = None,
    precision: str = "fp32",
    aggregation: Aggregation = "pooled",
) -> EvalResult:
    """Action-wise P1/P2/P3/MPJPE-velocity of ``model`` on the test sequences of ``data``.

    Only a sequence's ``valid`` frames are scored. On a dataset with PCK joints (MPI-INF-3DHP) each test
    sequence is scored as the official evaluation does (:mod:`bench.measure.pck`) and the sequences are
    combined under ``aggregation`` (pooled over the valid frames by default), which then gives MPJPE,
    PCK and AUC; P-MPJPE and the others are pooled over frames, or averaged over sequences for the other
    two conventions. ``precision``: fp32, or bf16 / fp16 autocast of the forward passes (fp16 on CUDA only).
    """
    check_precision(precision, _device(model))
    was_training = model.training
    model.eval()
    acc = {k: ActionAccumulator() for k in ("mpjpe", "pmpjpe", "nmpjpe", "mpjve")}
    scores: list[SequenceScore] = []
    total = 0
    for seq in sequences if sequences is not None else data.test:
        idx, pred = predict_sequence(
            model,
            seq,
            mode,
            data.joints_left,
            data.joints_right,
            flip=flip,
            batch_size=batch_size,
            stride=stride,
            precision=precision,
            root=data.root,
        )
        if seq.valid is not None:  # 3DHP scores its valid frames only (the others were context)
            keep = seq.valid[idx]
            idx, pred = idx[keep], pred[keep]
        if not np.isfinite(pred).all():
            raise NonFiniteError(
                f"the model's predictions are not finite (NaN/Inf) on {seq.subject}/{seq.action} camera {seq.camera}: "
                "its weights or inputs overflow; no metric is computed"
            )
        target = torch.from_numpy(np.array(seq.positions_3d[idx])) * 1000.0  # (K, 17, 3) mm
        p = torch.from_numpy(pred) * 1000.0
        acc["mpjpe"].add(mpjpe(p, target, per_frame=True), seq.action)
        acc["pmpjpe"].add(p_mpjpe(p, target, per_frame=True), seq.action)
        acc["nmpjpe"].add(n_mpjpe(p, target, per_frame=True), seq.action)
        if len(idx) > 1 and np.all(np.diff(idx) == np.diff(idx)[0]):
            acc["mpjve"].add(mpjve(p, target, per_frame=True) / float(np.diff(idx)[0]), seq.action)
        if data.pck_joints:
            scores.append(score_sequence(seq.action, p.numpy(), target.numpy(), data.root, data.pck_joints))
        total += len(idx)
    model.train(was_training)
    per_action = {
        a: {k: v.per_action().get(a, float("nan")) for k, v in acc.items()} for a in acc["mpjpe"].per_action()
    }
    pooled = bool(scores) and aggregation == "pooled"  # 3DHP's default: every valid frame weighs the same
    mean = {
        k: (v.frame_wise() if pooled else v.action_wise()) if v.num_frames else float("nan") for k, v in acc.items()
    }
    extra: dict[str, object] = {}
    if scores:
        agg = aggregate(scores, aggregation)
        mean["mpjpe"] = agg["mpjpe_mm"]
        extra = {"pck": agg["pck"], "auc": agg["auc"], "aggregation": aggregation}
        extra["per_sequence"] = {s.name: {k: v for k, v in s.to_dict().items() if k != "name"} for s in scores}
    return EvalResult(
        mpjpe_mm=mean["mpjpe"],
        pmpjpe_mm=mean["pmpjpe"],
        nmpjpe_mm=mean["nmpjpe"],
        mpjve_mm=mean["mpjve"],
        mpjpe_frame_wise_mm=acc["mpjpe"].frame_wise(),
        frames=total,
        output=mode,
        flip=flip,
        per_action=per_action,
        precision=precision,
        **extra,  # type: ignore[arg-type]
    )


def trivial_mpjpe(data: PoseDataset, stride: int = 1, sequences: SequenceABC[Sequence] | None = None) -> float:
    """MPJPE (mm) of the trivial predictor: the mean training pose, for every scored test frame (of
    ``sequences``, default every test sequence); action-wise, or pooled on MPI-INF-3DHP."""
    mean_pose = np.mean(np.concatenate([s.positions_3d for s in data.train]), axis=0)  # (17, 3)
    acc = ActionAccumulator()
    for seq in sequences if sequences is not None else data.test:
        frames = np.arange(0, seq.num_frames, stride)
        if seq.valid is not None:
            frames = frames[seq.valid[frames]]
        target = torch.from_numpy(np.array(seq.positions_3d[frames])) * 1000.0
        pred = torch.from_numpy(np.broadcast_to(mean_pose, target.shape).copy()) * 1000.0
        acc.add(mpjpe(pred, target, per_frame=True), seq.action)
    return acc.frame_wise() if data.pck_joints else acc.action_wise()  # 3DHP: pooled, as its default MPJPE
