"""Synthetic Human3.6M generator: determinism, skeleton, projection, split, cache, speed."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from bench.data import synthetic
from bench.data.cameras import EXTRINSICS, INTRINSICS, image_coordinates, project_to_2d, world_to_camera
from bench.data.clips import PoseDataset
from bench.data.skeleton import JOINTS_LEFT, JOINTS_RIGHT, bone_lengths
from bench.data.synthetic import ACTION_TYPES, make_synthetic_h36m, synthetic_take_world

SMALL = {
    "frames_per_sequence": 150,
    "subjects_train": ("S1", "S5"),
    "subjects_test": ("S9",),
    "actions": ("Walking", "SittingDown", "Jumping"),
}


@pytest.fixture(scope="module")
def default_ds() -> tuple[PoseDataset, float]:
    t0 = time.perf_counter()
    ds = make_synthetic_h36m(seed=0)
    return ds, time.perf_counter() - t0


def _all(ds: PoseDataset):
    return ds.train + ds.test


def test_default_generation_is_fast_and_sized(default_ds):
    ds, seconds = default_ds
    assert seconds < 20.0
    n_actions, n_takes, n_cams = len(ACTION_TYPES), 2, 4
    assert len(ds.train) == 5 * n_actions * n_takes * n_cams
    assert len(ds.test) == 2 * n_actions * n_takes * n_cams
    s = ds.train[0]
    assert s.keypoints_2d.shape == (600, 17, 2) and s.keypoints_2d.dtype == np.float32
    assert s.positions_3d.shape == (600, 17, 3) and s.positions_3d.dtype == np.float32
    assert s.confidence is None
    assert ds.fps == 50.0
    assert ds.joints_left == JOINTS_LEFT and ds.joints_right == JOINTS_RIGHT


def test_same_seed_identical_different_seed_differs():
    a = make_synthetic_h36m(seed=3, **SMALL)
    b = make_synthetic_h36m(seed=3, **SMALL)
    c = make_synthetic_h36m(seed=4, **SMALL)
    assert len(_all(a)) == len(_all(b)) == len(_all(c))
    for sa, sb in zip(_all(a), _all(b), strict=True):
        assert (sa.subject, sa.action, sa.camera) == (sb.subject, sb.action, sb.camera)
        np.testing.assert_array_equal(sa.keypoints_2d, sb.keypoints_2d)
        np.testing.assert_array_equal(sa.positions_3d, sb.positions_3d)
    for sa, sc in zip(_all(a), _all(c), strict=True):
        assert np.abs(sa.positions_3d - sc.positions_3d).max() > 1e-3
        assert np.abs(sa.keypoints_2d - sc.keypoints_2d).max() > 1e-3


#: The first 8 frames of two takes of the default dataset (seed 0), generated once and committed:
#: keys "subject|action|camera" (2,), keypoints_2d (2, 8, 17, 2), positions_3d (2, 8, 17, 3), float32.
#: Regenerate only on a deliberate change of the generator (and say so in the commit):
#:   ds = make_synthetic_h36m(seed=0); takes = [ds.train[0], ds.test[-1]]
#:   np.savez_compressed(FIXTURE, keys=np.array([f"{s.subject}|{s.action}|{s.camera}" for s in takes]),
#:                       keypoints_2d=np.stack([s.keypoints_2d[:8] for s in takes]),
#:                       positions_3d=np.stack([s.positions_3d[:8] for s in takes]))
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "synthetic_h36m_seed0_first8.npz"


def test_default_matches_stored_fixture(default_ds):
    ds, _ = default_ds
    with np.load(FIXTURE, allow_pickle=False) as stored:
        keys, kp2d, pos3d = stored["keys"], stored["keypoints_2d"], stored["positions_3d"]
    takes = {f"{s.subject}|{s.action}|{s.camera}": s for s in _all(ds)}
    assert kp2d.shape == (len(keys), 8, 17, 2) and pos3d.shape == (len(keys), 8, 17, 3)
    for i, key in enumerate(keys.tolist()):
        s = takes[key]
        assert s.keypoints_2d.dtype == kp2d.dtype and s.positions_3d.dtype == pos3d.dtype
        # a few float32 ulps of slack for libm differences between machines; any generator change is far larger
        np.testing.assert_allclose(s.keypoints_2d[:8], kp2d[i], rtol=0, atol=1e-6, err_msg=key)
        np.testing.assert_allclose(s.positions_3d[:8], pos3d[i], rtol=0, atol=1e-6, err_msg=key)


def test_a_subject_subset_generates_the_same_takes(default_ds):
    """Each take depends on (seed, subject, action, take) only, not on which other subjects are generated."""
    ds, _ = default_ds
    again = make_synthetic_h36m(seed=0, subjects_train=("S1",), subjects_test=("S11",))
    ref = {(s.subject, s.action, s.camera): s for s in _all(ds)}
    assert len(_all(again)) > 0
    for s in _all(again):
        np.testing.assert_array_equal(s.keypoints_2d, ref[(s.subject, s.action, s.camera)].keypoints_2d)


def test_root_relative_with_root_zeroed(default_ds):
    ds, _ = default_ds
    for s in _all(ds):
        assert np.all(s.positions_3d[:, 0] == 0.0)
    # the root-relative pose is not degenerate
    assert np.abs(ds.train[0].positions_3d[:, 1:]).max() > 0.1


def test_bone_lengths_constant_within_sequence_and_differ_between_subjects(default_ds):
    ds, _ = default_ds
    per_subject: dict[str, np.ndarray] = {}
    for s in _all(ds):
        bl = bone_lengths(s.positions_3d.astype(np.float64))  # (N, 16)
        assert bl.std(axis=0).max() < 1e-6
        mean = bl.mean(axis=0)
        if s.subject in per_subject:  # same skeleton in every take and camera
            np.testing.assert_allclose(mean, per_subject[s.subject], atol=1e-5)
        else:
            per_subject[s.subject] = mean
    assert set(per_subject) == {"S1", "S5", "S6", "S7", "S8", "S9", "S11"}
    for a, b in itertools.combinations(per_subject, 2):
        assert np.abs(per_subject[a] - per_subject[b]).max() > 3e-3, (a, b)
    # left/right symmetric skeleton, human-sized (thigh 0.35-0.55 m)
    bl = per_subject["S1"]
    np.testing.assert_allclose(bl[[0, 1, 2]], bl[[3, 4, 5]], atol=1e-6)
    assert 0.35 < bl[1] < 0.55


def test_exact_2d_inside_every_image(default_ds):
    ds, _ = default_ds
    for s in _all(ds):
        intr = INTRINSICS[s.camera]
        px = image_coordinates(s.keypoints_2d, intr.res_w, intr.res_h)  # (N, 17, 2)
        assert px[..., 0].min() >= 0 and px[..., 0].max() <= intr.res_w, (s.subject, s.action, s.camera)
        assert px[..., 1].min() >= 0 and px[..., 1].max() <= intr.res_h, (s.subject, s.action, s.camera)
        assert np.abs(s.keypoints_2d[..., 0]).max() <= 1.0


def test_2d_and_3d_follow_the_real_preprocessing():
    world = synthetic_take_world("S9", "Walking", take=1, seed=2, frames=150)  # (N, 17, 3)
    assert world.shape == (150, 17, 3)
    assert world[..., 2].min() > 0.0  # above the floor, z up
    ds = make_synthetic_h36m(seed=2, **SMALL)
    seqs = {(s.subject, s.action, s.camera): s for s in ds.test}
    for cam in range(4):
        ext = EXTRINSICS["S9"][cam]
        xc = world_to_camera(world, ext.quaternion, ext.translation_m)
        uv = project_to_2d(xc, INTRINSICS[cam].normalized_intrinsic())
        s = seqs[("S9", "Walking 1", cam)]
        np.testing.assert_allclose(s.keypoints_2d, uv, atol=1e-6)
        np.testing.assert_allclose(s.positions_3d, xc - xc[:, :1], atol=1e-6)


def test_actions_takes_and_split(default_ds):
    ds, _ = default_ds
    groups = {s.action_group for s in _all(ds)}
    assert len(groups) >= 5
    assert {"Walking", "SittingDown", "Directions", "Discussion"} <= groups
    actions = {s.action for s in ds.train}
    assert {"Walking", "Walking 1", "SittingDown", "SittingDown 1"} <= actions
    train_subjects = {s.subject for s in ds.train}
    test_subjects = {s.subject for s in ds.test}
    assert train_subjects == {"S1", "S5", "S6", "S7", "S8"}
    assert test_subjects == {"S9", "S11"}
    assert not train_subjects & test_subjects
    with pytest.raises(ValueError, match="both train and test"):
        make_synthetic_h36m(subjects_train=("S1",), subjects_test=("S1",))
    with pytest.raises(ValueError, match=r"no Human3\.6M cameras"):
        make_synthetic_h36m(subjects_train=("S2",), subjects_test=("S9",))


def test_every_take_has_idle_stretches(default_ds):
    ds, _ = default_ds
    for s in ds.train:
        if s.camera != 0:
            continue
        speed = np.linalg.norm(np.diff(s.positions_3d, axis=0), axis=-1).max(axis=1) * ds.fps  # (N-1,)
        still = speed < 0.2  # m/s, fastest joint
        longest = max(len(list(g)) for k, g in itertools.groupby(still) if k) if still.any() else 0
        assert longest >= 25, (s.subject, s.action, longest)  # >= 0.5 s idle
        assert speed.max() > 0.5, (s.subject, s.action)  # and it does move


def test_motion_is_smooth(default_ds):
    ds, _ = default_ds
    for s in ds.train:
        if s.camera == 0:
            acc = np.linalg.norm(np.diff(s.positions_3d, n=2, axis=0), axis=-1).max() * ds.fps**2
            assert acc < 400.0, (s.subject, s.action, acc)  # m/s^2: no teleporting joints


def test_detector_noise_and_confidence():
    clean = make_synthetic_h36m(seed=1, **SMALL)
    noisy = make_synthetic_h36m(seed=1, noise="detector", **SMALL)
    errs, confs = [], []
    for c, n in zip(_all(clean), _all(noisy), strict=True):
        np.testing.assert_array_equal(c.positions_3d, n.positions_3d)  # 3D untouched
        assert n.confidence is not None and n.confidence.shape == (150, 17)
        w = INTRINSICS[c.camera].res_w
        errs.append(np.linalg.norm(n.keypoints_2d - c.keypoints_2d, axis=-1) * w / 2)  # pixels
        confs.append(n.confidence)
    err = np.concatenate(errs).ravel()
    conf = np.concatenate(confs).ravel()
    assert 1.5 < np.median(err) < 8.0
    outliers = err > 15.0
    assert 0.0005 < outliers.mean() < 0.05
    assert conf[outliers].mean() < 0.5 < 0.85 < conf[err < 5.0].mean()
    assert conf.min() >= 0.0 and conf.max() <= 1.0


def test_cache_round_trip(tmp_path, monkeypatch):
    params = dict(seed=5, noise="detector", cache_dir=tmp_path, **SMALL)
    generated = make_synthetic_h36m(**params)
    files = list(tmp_path.glob("synthetic_h36m_*.npz"))
    assert len(files) == 1
    assert not list(tmp_path.glob("*.tmp"))  # atomic write left nothing behind
    with np.load(files[0], allow_pickle=False) as z:  # plain arrays only
        assert any(k.startswith("kp2d|S1|Walking 1|") for k in z.files)

    def boom(*args, **kwargs):
        raise AssertionError("regenerated instead of reading the cache")

    monkeypatch.setattr(synthetic, "synthetic_take_world", boom)
    loaded = make_synthetic_h36m(**params)
    assert len(_all(loaded)) == len(_all(generated))
    for g, ld in zip(_all(generated), _all(loaded), strict=True):
        assert (g.subject, g.action, g.camera) == (ld.subject, ld.action, ld.camera)
        np.testing.assert_array_equal(g.keypoints_2d, ld.keypoints_2d)
        np.testing.assert_array_equal(g.positions_3d, ld.positions_3d)
        np.testing.assert_array_equal(g.confidence, ld.confidence)
    assert [s.subject for s in loaded.test] == [s.subject for s in generated.test]
    # other parameters -> another file (and a regeneration, which is blocked here)
    with pytest.raises(AssertionError, match="regenerated"):
        make_synthetic_h36m(**{**params, "seed": 6})


def test_corrupt_cache_is_regenerated(tmp_path):
    params = dict(seed=0, cache_dir=tmp_path, **SMALL)
    ref = make_synthetic_h36m(**params)
    (path,) = tmp_path.glob("synthetic_h36m_*.npz")
    path.write_bytes(b"not a zip")
    again = make_synthetic_h36m(**params)
    np.testing.assert_array_equal(ref.train[3].keypoints_2d, again.train[3].keypoints_2d)
    with np.load(path, allow_pickle=False) as z:
        assert "meta|params" in z.files
