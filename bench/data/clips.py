"""The data model shared by every data source, and batching for both pipelines.

A :class:`Sequence` is one (subject, action, camera) take: normalised 2D keypoints and the
camera-space, root-relative 3D pose (root zeroed), exactly the arrays VideoPose3D/HoT feed
to their models. A :class:`PoseDataset` is the train/test split of such sequences.

Two ways to cut sequences into model inputs:

* **seq2seq** (MixSTE, HoT w. MixSTE, MotionBERT): :func:`seq2seq_clips` cuts each
  sequence into clips of ``frames`` frames every ``stride`` frames (non-overlapping when
  ``stride == frames``) and edge-pads the clip(s) that run past the sequence ends. Every
  output frame of a clip is predicted.
* **seq2frame** (MHFormer, TPC w. MHFormer): :func:`seq2frame_windows` builds a window of
  ``frames`` frames centred on every frame (edge padding at the ends) and predicts the
  centre frame; windows are produced lazily, batch by batch.

Batch size. VideoPose3D defines its ``--batch-size`` in **output frames** (predicted
frames per optimisation step): its chunked generator is given ``batch_size // chunk_length``
chunks per batch. HoT and this module count **clips** instead (HoT's MixSTE
``--batch_size 4`` at T = 243 is 4 clips = 972 output frames; MHFormer's 128 is 128
windows = 128 output frames). :func:`clips_per_batch` converts a VideoPose3D-style
output-frame budget into a clip count.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt
import torch

from bench.data.skeleton import NUM_JOINTS

F32 = npt.NDArray[np.float32]
ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

PadMode = Literal["edge", "zero"]
ClipAlign = Literal["start", "center"]
PaddedFrames = Literal["include", "exclude"]


def action_group(action: str) -> str:
    """Human3.6M action group: the action name without its take suffix (``"Walking 1"`` ->
    ``"Walking"``), the key of action-wise averages (``action.split(' ')[0]``)."""
    return action.split(" ")[0]


def _frozen(a: np.ndarray) -> np.ndarray:
    view = a.view()  # a read-only view: the caller's own array keeps its flags
    view.setflags(write=False)
    return view


@dataclass(frozen=True, eq=False)
class Sequence:
    """One Human3.6M-style take seen from one camera.

    Attributes:
        subject: subject id, e.g. ``"S9"``.
        action: action name with its take suffix, e.g. ``"Walking 1"``.
        camera: camera index 0..3.
        keypoints_2d: ``(N, 17, 2)`` float32, normalised screen coordinates
            (``x / w * 2 - [1, h / w]``, x in [-1, 1]).
        positions_3d: ``(N, 17, 3)`` float32 metres, camera space, root-relative with
            the dataset's root zeroed (Human3.6M: joint 0, the hip; MPI-INF-3DHP: joint 14).
        confidence: ``(N, 17)`` float32 per-keypoint detector confidence, or ``None`` when
            the 2D source has none (GT 2D, CPN).
        valid: ``(N,)`` bool, the frames that are scored (MPI-INF-3DHP's test ``valid``
            mask), or ``None`` when every frame is. Invalid frames still serve as context.

    The arrays are made read-only on construction (the dataset is shared between
    pipelines); copy before modifying.
    """

    subject: str
    action: str
    camera: int
    keypoints_2d: F32
    positions_3d: F32
    confidence: F32 | None = None
    valid: npt.NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        kp = np.ascontiguousarray(self.keypoints_2d, dtype=np.float32)
        pos = np.ascontiguousarray(self.positions_3d, dtype=np.float32)
        if kp.ndim != 3 or kp.shape[1:] != (NUM_JOINTS, 2):
            raise ValueError(f"keypoints_2d must be (N, 17, 2), got {kp.shape}")
        if pos.shape != (kp.shape[0], NUM_JOINTS, 3):
            raise ValueError(f"positions_3d must be {(kp.shape[0], NUM_JOINTS, 3)}, got {pos.shape}")
        object.__setattr__(self, "keypoints_2d", _frozen(kp))
        object.__setattr__(self, "positions_3d", _frozen(pos))
        if self.confidence is not None:
            conf = np.ascontiguousarray(self.confidence, dtype=np.float32)
            if conf.shape != (kp.shape[0], NUM_JOINTS):
                raise ValueError(f"confidence must be {(kp.shape[0], NUM_JOINTS)}, got {conf.shape}")
            object.__setattr__(self, "confidence", _frozen(conf))
        if self.valid is not None:
            valid = np.asarray(self.valid)
            if valid.shape != (kp.shape[0],) or not np.isin(valid, (0, 1)).all():
                raise ValueError(f"valid must be a 0/1 mask of {kp.shape[0]} frames, got {valid.shape}")
            object.__setattr__(self, "valid", _frozen(valid.astype(bool)))

    @property
    def action_group(self) -> str:
        """Action without the take suffix; the grouping key of action-wise averages."""
        return action_group(self.action)

    @property
    def num_frames(self) -> int:
        """Number of frames N."""
        return int(self.keypoints_2d.shape[0])

    def inputs(self, with_confidence: bool = False) -> F32:
        """Model input ``(N, 17, 2)``, or ``(N, 17, 3)`` with confidence (see
        :func:`add_confidence`)."""
        if with_confidence:
            return add_confidence(self.keypoints_2d, self.confidence)
        return self.keypoints_2d


@dataclass(frozen=True, eq=False)
class PoseDataset:
    """A train/test split of :class:`Sequence` objects (one per subject, action, camera).

    Attributes:
        name: data source name (``"h36m"``, ``"synthetic-h36m"``...).
        train: training sequences (Human3.6M: S1, S5, S6, S7, S8).
        test: test sequences (Human3.6M: S9, S11).
        fps: frame rate (Human3.6M: 50).
        joints_left: left joints (``keypoints_symmetry[0]``), flip swap list.
        joints_right: right joints (``keypoints_symmetry[1]``).
        notes: provenance and caveats, free text.
        root: the root joint, zeroed in every 3D pose (Human3.6M 0, MPI-INF-3DHP 14).
        pck_joints: the joints PCK and AUC are scored on (MPI-INF-3DHP: 0-13), or ``()``
            for a dataset scored by MPJPE alone (Human3.6M).
    """

    name: str
    train: tuple[Sequence, ...]
    test: tuple[Sequence, ...]
    fps: float
    joints_left: tuple[int, ...]
    joints_right: tuple[int, ...]
    notes: str = ""
    root: int = 0
    pck_joints: tuple[int, ...] = ()

    def split(self, which: Literal["train", "test"]) -> tuple[Sequence, ...]:
        """The ``"train"`` or ``"test"`` sequences."""
        if which == "train":
            return self.train
        if which == "test":
            return self.test
        raise ValueError(f"split must be 'train' or 'test', got {which!r}")

    @property
    def subjects(self) -> tuple[str, ...]:
        """All subjects, train first, in order of appearance."""
        return tuple(dict.fromkeys(s.subject for s in self.train + self.test))

    @property
    def action_groups(self) -> tuple[str, ...]:
        """Sorted distinct action groups over both splits."""
        return tuple(sorted({s.action_group for s in self.train + self.test}))


# --------------------------------------------------------------------------- pure helpers


def add_confidence(x2d: npt.ArrayLike, conf: npt.ArrayLike | None = None) -> F32:
    """Append a confidence channel: ``(..., 17, 2)`` -> ``(..., 17, 3)`` (MotionBERT input).

    Args:
        x2d: 2D keypoints ``(..., 17, 2)``.
        conf: confidence ``(..., 17)``; ``None`` (GT 2D, CPN) means confidence 1 everywhere.
    """
    xy = np.asarray(x2d, dtype=np.float32)
    if xy.shape[-1] != 2:
        raise ValueError(f"expected (..., 17, 2) keypoints, got {xy.shape}")
    if conf is None:
        c = np.ones((*xy.shape[:-1], 1), dtype=np.float32)
    else:
        c = np.asarray(conf, dtype=np.float32)[..., None]
        if c.shape[:-1] != xy.shape[:-1]:
            raise ValueError(f"confidence shape {c.shape[:-1]} != keypoint shape {xy.shape[:-1]}")
    return np.concatenate([xy, c], axis=-1)


def flip_pose(x: ArrayT, joints_left: SequenceABC[int], joints_right: SequenceABC[int]) -> ArrayT:
    """Horizontal flip (VideoPose3D / HoT augmentation and test-time augmentation).

    Negates channel 0 (x; normalised 2D is centred at 0, camera-space 3D has x right) and
    swaps the left/right joints. Works on ``(..., J, C)`` numpy arrays or torch tensors of
    2D (C=2), 2D + confidence (C=3, only x is negated) or 3D poses (C=3). Pure: the input
    is not modified. Flipping twice is the identity.
    """
    left, right = list(joints_left), list(joints_right)
    if len(left) != len(right):
        raise ValueError("joints_left and joints_right must have the same length")
    perm = list(range(x.shape[-2]))
    for a, b in zip(left, right, strict=True):
        perm[a], perm[b] = b, a
    if isinstance(x, torch.Tensor):
        out_t = x[..., perm, :].clone()
        out_t[..., 0] = -out_t[..., 0]
        return out_t
    out = np.asarray(x)[..., perm, :]  # advanced indexing: a new array
    out[..., 0] = -out[..., 0]
    return out


def flip_where(
    x: torch.Tensor, mask: torch.Tensor, joints_left: SequenceABC[int], joints_right: SequenceABC[int]
) -> torch.Tensor:
    """``x`` (B, ..., J, C) with the batch entries where ``mask`` (B,) holds flipped by :func:`flip_pose`
    (the training augmentation of a random half of a batch)."""
    return torch.where(mask.view(-1, *([1] * (x.dim() - 1))), flip_pose(x, joints_left, joints_right), x)


def clips_per_batch(output_frames: int, frames_out_per_clip: int) -> int:
    """Convert a VideoPose3D-style batch size (in **output frames**) into clips per batch.

    seq2seq clips output ``T`` frames each (MixSTE: 243); seq2frame windows output 1.
    VideoPose3D passes ``batch_size // chunk_length`` chunks to its generator.
    """
    if output_frames <= 0 or frames_out_per_clip <= 0:
        raise ValueError("output_frames and frames_out_per_clip must be positive")
    return max(1, output_frames // frames_out_per_clip)


def _pad_time(x: np.ndarray, before: int, after: int, pad: PadMode) -> np.ndarray:
    if before == 0 and after == 0:
        return x
    width = [(before, after)] + [(0, 0)] * (x.ndim - 1)
    if pad == "edge":
        return np.pad(x, width, mode="edge")
    if pad == "zero":
        return np.pad(x, width, mode="constant")
    raise ValueError(f"pad must be 'edge' or 'zero', got {pad!r}")


def clip_starts(num_frames: int, frames: int, stride: int, align: ClipAlign = "start") -> np.ndarray:
    """Start frame of every seq2seq clip of a sequence of ``num_frames`` frames.

    ``n = max(1, ceil((N - T) / stride) + 1)`` clips (``ceil(N / T)`` when stride == T).
    ``align="start"``: clips start at 0, stride, ...; only the last clip runs past the end.
    ``align="center"``: HoT's / VideoPose3D's chunked-generator layout, which shifts all
    clips left by ``floor(total_padding / 2)`` so padding is split between both ends
    (the first start can be negative).
    """
    if frames <= 0 or stride <= 0:
        raise ValueError("frames and stride must be positive")
    if num_frames <= 0:
        raise ValueError("empty sequence")
    n = max(1, math.ceil((num_frames - frames) / stride) + 1)
    starts = np.arange(n, dtype=np.int64) * stride
    if align == "center":
        starts -= ((n - 1) * stride + frames - num_frames) // 2
    elif align != "start":
        raise ValueError(f"align must be 'start' or 'center', got {align!r}")
    return starts


# --------------------------------------------------------------------------- seq2seq


@dataclass(frozen=True, eq=False)
class ClipSet:
    """Fixed-length clips cut from sequences (seq2seq pipeline).

    Attributes:
        inputs: ``(M, T, 17, C_in)`` float32 model inputs (C_in = 2, or 3 with confidence).
        targets: ``(M, T, 17, 3)`` float32 root-relative camera-space 3D targets (metres).
        valid: ``(M, T)`` bool, False on padded frames (outside the real sequence).
        action_groups: action group of each clip (length M).
        subjects: subject of each clip (length M).
        cameras: camera index of each clip (length M).
        sequence_index: index into the ``seqs`` argument of each clip ``(M,)``.
        starts: start frame of each clip in its sequence ``(M,)`` (may be negative with
            ``align="center"``).
    """

    inputs: F32
    targets: F32
    valid: npt.NDArray[np.bool_]
    action_groups: tuple[str, ...]
    subjects: tuple[str, ...]
    cameras: tuple[int, ...]
    sequence_index: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]
    action_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "action_names", tuple(sorted(set(self.action_groups))))

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def frames(self) -> int:
        """Clip length T."""
        return int(self.inputs.shape[1])

    def action_ids(self) -> npt.NDArray[np.int64]:
        """``(M,)`` index of each clip's action group in :attr:`action_names`."""
        lookup = {a: i for i, a in enumerate(self.action_names)}
        return np.array([lookup[a] for a in self.action_groups], dtype=np.int64)

    def score_mask(self, padded: PaddedFrames) -> npt.NDArray[np.bool_]:
        """Which frames to score, ``(M, T)`` bool.

        ``"include"``: every frame of every clip, padded ones too; this is HoT's seq2seq
        test protocol (``out_all=1``: the 3D target is edge-padded as well, so each clip is
        one sample of T frames). ``"exclude"``: real frames only, each scored once (with
        ``stride == frames``).
        """
        if padded == "include":
            return np.ones_like(self.valid)
        if padded == "exclude":
            return self.valid.copy()
        raise ValueError(f"padded must be 'include' or 'exclude', got {padded!r}")

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """Yield batches of ``batch_size`` clips (the last one may be smaller).

        Each batch is a dict of tensors: ``inputs`` (B, T, 17, C_in) float32, ``targets``
        (B, T, 17, 3) float32, ``valid`` (B, T) bool, ``action_id`` (B,) int64 (index into
        :attr:`action_names`) and ``index`` (B,) int64 (clip index in this set). The batch
        size counts clips; see :func:`clips_per_batch` for VideoPose3D's output-frame
        definition. ``shuffle`` permutes clips with ``numpy.random.default_rng(seed)``.
        """
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        m = len(self)
        order = np.random.default_rng(seed).permutation(m) if shuffle else np.arange(m)
        action_ids = self.action_ids()
        for lo in range(0, m, batch_size):
            idx = order[lo : lo + batch_size]
            yield {
                "inputs": torch.from_numpy(self.inputs[idx]),  # fancy index -> a copy
                "targets": torch.from_numpy(self.targets[idx]),
                "valid": torch.from_numpy(self.valid[idx]),
                "action_id": torch.from_numpy(action_ids[idx]),
                "index": torch.from_numpy(idx.astype(np.int64)),
            }


def seq2seq_clips(
    seqs: SequenceABC[Sequence],
    frames: int,
    stride: int,
    pad: PadMode = "edge",
    align: ClipAlign = "start",
    with_confidence: bool = False,
) -> ClipSet:
    """Cut sequences into clips of ``frames`` frames (seq2seq pipeline).

    With ``stride == frames`` (MixSTE / HoT ``--stride 243``) clips are non-overlapping
    chunks; ``ceil(N / frames)`` clips per sequence, the clip running past the end padded
    (``pad="edge"`` repeats the last frame, as HoT does, for inputs *and* targets;
    ``"zero"`` fills zeros). Padded frames are marked False in ``valid``; whether they are
    scored is the caller's choice (:meth:`ClipSet.score_mask`: HoT includes them).
    ``align="center"`` reproduces HoT's generator, which splits the padding between the
    first and the last clip (see :func:`clip_starts`).

    Args:
        seqs: sequences to cut.
        frames: clip length T.
        stride: start-to-start distance (MotionBERT: T = 243, stride 81).
        pad: padding mode of frames outside the sequence.
        align: clip layout, ``"start"`` (padding at the end) or ``"center"`` (HoT).
        with_confidence: 3-channel inputs with confidence (:func:`add_confidence`).
    """
    inputs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    valids: list[np.ndarray] = []
    groups: list[str] = []
    subjects: list[str] = []
    cameras: list[int] = []
    seq_idx: list[int] = []
    all_starts: list[int] = []
    for i, seq in enumerate(seqs):
        n = seq.num_frames
        starts = clip_starts(n, frames, stride, align)
        before = max(0, -int(starts[0]))
        after = max(0, int(starts[-1]) + frames - n)
        x = _pad_time(seq.inputs(with_confidence), before, after, pad)  # (before+N+after, 17, C)
        y = _pad_time(seq.positions_3d, before, after, pad)  # (before+N+after, 17, 3)
        ok = np.zeros(before + n + after, dtype=bool)
        ok[before : before + n] = True
        for s in starts:
            lo = int(s) + before
            inputs.append(x[lo : lo + frames])
            targets.append(y[lo : lo + frames])
            valids.append(ok[lo : lo + frames])
            groups.append(seq.action_group)
            subjects.append(seq.subject)
            cameras.append(seq.camera)
            seq_idx.append(i)
            all_starts.append(int(s))
    if not inputs:
        raise ValueError("seq2seq_clips needs at least one sequence")
    return ClipSet(
        inputs=np.stack(inputs).astype(np.float32, copy=False),  # (M, T, 17, C_in)
        targets=np.stack(targets).astype(np.float32, copy=False),  # (M, T, 17, 3)
        valid=np.stack(valids),  # (M, T)
        action_groups=tuple(groups),
        subjects=tuple(subjects),
        cameras=tuple(cameras),
        sequence_index=np.asarray(seq_idx, dtype=np.int64),
        starts=np.asarray(all_starts, dtype=np.int64),
    )


# --------------------------------------------------------------------------- seq2frame


def seq2frame_windows(
    seq: Sequence,
    frames: int,
    stride: int = 1,
    batch_size: int = 256,
    with_confidence: bool = False,
    pad: PadMode = "edge",
) -> Iterator[dict[str, torch.Tensor]]:
    """Windows of ``frames`` frames centred on every ``stride``-th frame (seq2frame pipeline).

    The window of frame ``i`` covers ``[i - frames // 2, i - frames // 2 + frames)`` (so the
    centre sits at index ``frames // 2``), edge-padded at the sequence ends as MHFormer /
    TPC w. MHFormer do. Windows are produced lazily, ``batch_size`` at a time: only one
    padded copy of the sequence plus one batch are in memory, so 351-frame windows over
    long sequences stay cheap. Each window outputs 1 frame in the seq2frame protocol
    (batch size in output frames == windows, see :func:`clips_per_batch`).

    Yields:
        dicts of tensors: ``inputs`` (B, T, 17, C_in) float32, ``targets`` (B, T, 17, 3)
        float32 (the whole window; the scored target is ``targets[:, frames // 2]``),
        ``valid`` (B, T) bool (False on padded frames) and ``frame`` (B,) int64, the
        centre frame index in the sequence.
    """
    if frames <= 0 or stride <= 0 or batch_size <= 0:
        raise ValueError("frames, stride and batch_size must be positive")
    n = seq.num_frames
    half = frames // 2
    before, after = half, frames - 1 - half
    x = _pad_time(seq.inputs(with_confidence), before, after, pad)  # (N + T - 1, 17, C)
    y = _pad_time(seq.positions_3d, before, after, pad)  # (N + T - 1, 17, 3)
    ok = np.zeros(n + frames - 1, dtype=bool)
    ok[before : before + n] = True
    # views, no copy: (N, 17, C, T) -> moved to (N, T, 17, C) when a batch is gathered
    xw = np.lib.stride_tricks.sliding_window_view(x, frames, axis=0)
    yw = np.lib.stride_tricks.sliding_window_view(y, frames, axis=0)
    okw = np.lib.stride_tricks.sliding_window_view(ok, frames)  # (N, T)
    centres = np.arange(0, n, stride, dtype=np.int64)
    for lo in range(0, len(centres), batch_size):
        c = centres[lo : lo + batch_size]
        yield {
            "inputs": torch.from_numpy(np.ascontiguousarray(np.moveaxis(xw[c], -1, 1))),
            "targets": torch.from_numpy(np.ascontiguousarray(np.moveaxis(yw[c], -1, 1))),
            "valid": torch.from_numpy(np.ascontiguousarray(okw[c])),
            "frame": torch.from_numpy(c.copy()),
        }
