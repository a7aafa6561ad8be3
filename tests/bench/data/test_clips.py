"""Data model and batching: seq2seq clips, seq2frame windows, flip, confidence."""

from __future__ import annotations

import tracemalloc
import types

import numpy as np
import pytest
import torch

from bench.data.clips import (
    PoseDataset,
    Sequence,
    action_group,
    add_confidence,
    clip_starts,
    clips_per_batch,
    flip_pose,
    seq2frame_windows,
    seq2seq_clips,
)
from bench.data.skeleton import JOINTS_LEFT, JOINTS_RIGHT


def ramp_sequence(n: int, action: str = "Walking 1", subject: str = "S1", conf: bool = False) -> Sequence:
    """A sequence whose every coordinate of frame i equals i (so padding is visible)."""
    frame = np.arange(n, dtype=np.float32)
    return Sequence(
        subject=subject,
        action=action,
        camera=2,
        keypoints_2d=np.broadcast_to(frame[:, None, None], (n, 17, 2)).copy(),
        positions_3d=np.broadcast_to(frame[:, None, None] * 10, (n, 17, 3)).copy(),
        confidence=np.full((n, 17), 0.5, np.float32) if conf else None,
    )


def test_sequence_validates_and_freezes():
    s = ramp_sequence(5)
    assert s.action_group == "Walking" and action_group("SittingDown 1") == "SittingDown"
    assert s.num_frames == 5
    with pytest.raises(ValueError):
        s.keypoints_2d[0, 0, 0] = 1.0  # read-only: shared between pipelines
    with pytest.raises(ValueError, match="positions_3d"):
        Sequence("S1", "A", 0, np.zeros((5, 17, 2)), np.zeros((4, 17, 3)))
    with pytest.raises(ValueError, match="keypoints_2d"):
        Sequence("S1", "A", 0, np.zeros((5, 16, 2)), np.zeros((5, 16, 3)))
    mine = np.zeros((5, 17, 2), np.float32)
    Sequence("S1", "A", 0, mine, np.zeros((5, 17, 3), np.float32))
    assert mine.flags.writeable  # the caller's array is not frozen, only the stored view
    ds = PoseDataset("x", (s,), (ramp_sequence(3, "Sitting", "S9"),), 50.0, JOINTS_LEFT, JOINTS_RIGHT)
    assert ds.subjects == ("S1", "S9") and ds.action_groups == ("Sitting", "Walking")
    assert ds.split("test")[0].subject == "S9"


def test_seq2seq_non_overlapping_with_edge_padding():
    cs = seq2seq_clips([ramp_sequence(10)], frames=4, stride=4)
    assert cs.inputs.shape == (3, 4, 17, 2) and cs.targets.shape == (3, 4, 17, 3)
    assert cs.inputs.dtype == np.float32 and cs.targets.dtype == np.float32
    np.testing.assert_array_equal(cs.starts, [0, 4, 8])
    np.testing.assert_array_equal(cs.inputs[:, :, 0, 0], [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 9, 9]])
    np.testing.assert_array_equal(cs.targets[2, :, 5, 1], [80, 90, 90, 90])  # targets padded too
    np.testing.assert_array_equal(cs.valid, [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0]])
    # both scoring options: HoT scores padded frames, "exclude" scores each real frame once
    assert cs.score_mask("include").sum() == 12
    assert cs.score_mask("exclude").sum() == 10
    assert cs.action_groups == ("Walking",) * 3 and cs.subjects == ("S1",) * 3 and cs.cameras == (2, 2, 2)


def test_seq2seq_zero_padding_and_hot_centre_layout():
    cs = seq2seq_clips([ramp_sequence(10)], frames=4, stride=4, pad="zero")
    np.testing.assert_array_equal(cs.inputs[2, :, 0, 0], [8, 9, 0, 0])
    hot = seq2seq_clips([ramp_sequence(10)], frames=4, stride=4, align="center")
    np.testing.assert_array_equal(hot.starts, [-1, 3, 7])  # padding split over both ends
    np.testing.assert_array_equal(hot.inputs[:, :, 0, 0], [[0, 0, 1, 2], [3, 4, 5, 6], [7, 8, 9, 9]])
    np.testing.assert_array_equal(hot.valid, [[0, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]])


def test_clip_counts_for_other_strides_and_short_sequences():
    np.testing.assert_array_equal(clip_starts(10, 4, 2), [0, 2, 4, 6])  # overlapping, no padding
    np.testing.assert_array_equal(clip_starts(600, 243, 243), [0, 243, 486])  # ceil(600 / 243)
    np.testing.assert_array_equal(clip_starts(243, 243, 243), [0])
    np.testing.assert_array_equal(clip_starts(3, 5, 5), [0])
    short = seq2seq_clips([ramp_sequence(3)], frames=5, stride=5)
    np.testing.assert_array_equal(short.valid, [[1, 1, 1, 0, 0]])
    many = seq2seq_clips([ramp_sequence(10), ramp_sequence(5, "Sitting")], frames=4, stride=4)
    assert len(many) == 3 + 2
    np.testing.assert_array_equal(many.sequence_index, [0, 0, 0, 1, 1])
    assert many.action_names == ("Sitting", "Walking")
    np.testing.assert_array_equal(many.action_ids(), [1, 1, 1, 0, 0])


def test_confidence_channel():
    cs = seq2seq_clips([ramp_sequence(6, conf=True)], frames=4, stride=4, with_confidence=True)
    assert cs.inputs.shape == (2, 4, 17, 3)
    assert np.all(cs.inputs[..., 2] == 0.5)
    x = add_confidence(np.zeros((7, 17, 2)))
    assert x.shape == (7, 17, 3) and np.all(x[..., 2] == 1.0)  # no confidence -> 1
    y = add_confidence(np.zeros((7, 17, 2)), np.full((7, 17), 0.25))
    assert np.all(y[..., 2] == 0.25)
    with pytest.raises(ValueError):
        add_confidence(np.zeros((7, 17, 2)), np.zeros((6, 17)))


def test_batches_cover_every_clip_once_and_shuffle_is_seeded():
    cs = seq2seq_clips([ramp_sequence(40), ramp_sequence(23, "Sitting")], frames=4, stride=4)
    assert len(cs) == 10 + 6
    batches = list(cs.batches(batch_size=5))
    assert [b["inputs"].shape[0] for b in batches] == [5, 5, 5, 1]
    b0 = batches[0]
    assert b0["inputs"].dtype == torch.float32 and b0["targets"].shape == (5, 4, 17, 3)
    assert b0["valid"].dtype == torch.bool and b0["action_id"].dtype == torch.int64
    np.testing.assert_array_equal(torch.cat([b["index"] for b in batches]).numpy(), np.arange(16))

    def order(seed: int) -> list[int]:
        return torch.cat([b["index"] for b in cs.batches(5, shuffle=True, seed=seed)]).tolist()

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(order(1)) == list(range(16))
    first = next(iter(cs.batches(16, shuffle=True, seed=1)))
    idx = first["index"].numpy()
    np.testing.assert_array_equal(first["inputs"].numpy(), cs.inputs[idx])
    assert [cs.action_names[i] for i in first["action_id"].tolist()] == [cs.action_groups[i] for i in idx]


def test_clips_per_batch_uses_output_frames():
    assert clips_per_batch(972, 243) == 4  # MixSTE: 4 clips x 243 frames
    assert clips_per_batch(1024, 1) == 1024  # seq2frame: one output frame per window
    assert clips_per_batch(100, 243) == 1


def test_seq2frame_window_centre_is_the_frame():
    seq = ramp_sequence(11)
    gen = seq2frame_windows(seq, frames=5, batch_size=4)
    assert isinstance(gen, types.GeneratorType)
    batches = list(gen)
    assert [b["inputs"].shape for b in batches] == [(4, 5, 17, 2), (4, 5, 17, 2), (3, 5, 17, 2)]
    frames = torch.cat([b["frame"] for b in batches])
    np.testing.assert_array_equal(frames.numpy(), np.arange(11))
    inputs = torch.cat([b["inputs"] for b in batches]).numpy()
    targets = torch.cat([b["targets"] for b in batches]).numpy()
    valid = torch.cat([b["valid"] for b in batches]).numpy()
    np.testing.assert_array_equal(inputs[:, 2, 0, 0], np.arange(11))  # centre == frame
    np.testing.assert_array_equal(targets[:, 2, 0, 0], np.arange(11) * 10)
    np.testing.assert_array_equal(inputs[0, :, 0, 0], [0, 0, 0, 1, 2])  # edge padding
    np.testing.assert_array_equal(inputs[10, :, 0, 0], [8, 9, 10, 10, 10])
    np.testing.assert_array_equal(valid[0], [0, 0, 1, 1, 1])
    strided = list(seq2frame_windows(seq, frames=5, stride=3, batch_size=100))
    np.testing.assert_array_equal(strided[0]["frame"].numpy(), [0, 3, 6, 9])
    conf = next(seq2frame_windows(ramp_sequence(4, conf=True), 3, with_confidence=True))
    assert conf["inputs"].shape == (4, 3, 17, 3)


def test_seq2frame_is_lazy_for_long_windows():
    seq = ramp_sequence(4000)
    tracemalloc.start()
    try:
        n = 0
        for batch in seq2frame_windows(seq, frames=351, batch_size=8):
            n += batch["inputs"].shape[0]
            if n >= 64:
                break
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # all 4000 windows at once would be 4000 * 351 * 17 * 5 * 4 B = 477 MB
    assert peak < 20 * 2**20


def test_flip_swaps_sides_negates_x_and_round_trips():
    rng = np.random.default_rng(0)
    for channels in (2, 3):
        x = rng.normal(size=(6, 17, channels)).astype(np.float32)
        orig = x.copy()
        f = flip_pose(x, JOINTS_LEFT, JOINTS_RIGHT)
        np.testing.assert_array_equal(x, orig)  # pure
        np.testing.assert_array_equal(f[:, 4, 0], -x[:, 1, 0])  # left hip <- -right hip
        np.testing.assert_array_equal(f[:, 16, 1:], x[:, 13, 1:])  # right wrist <- left wrist
        np.testing.assert_array_equal(f[:, 0, 0], -x[:, 0, 0])  # centre joints stay
        np.testing.assert_array_equal(flip_pose(f, JOINTS_LEFT, JOINTS_RIGHT), x)
    t = torch.from_numpy(orig)
    ft = flip_pose(t, JOINTS_LEFT, JOINTS_RIGHT)
    assert isinstance(ft, torch.Tensor)
    np.testing.assert_array_equal(ft.numpy(), flip_pose(orig, JOINTS_LEFT, JOINTS_RIGHT))
    assert torch.equal(flip_pose(ft, JOINTS_LEFT, JOINTS_RIGHT), t)
