"""Real Human3.6M loader on a small fake dataset in the VideoPose3D layout, and safe unpickling."""

from __future__ import annotations

import os
import pickle
import shlex
from pathlib import Path

import numpy as np
import pytest

from bench.data.cameras import (
    EXTRINSICS,
    INTRINSICS,
    camera_to_world,
    image_coordinates,
    normalize_screen_coordinates,
    project_to_2d,
    world_to_camera,
)
from bench.data.h36m import DataError, load_h36m
from bench.data.safe_pickle import UnsafeFileError, load_npz_safely, safe_loads
from bench.data.skeleton import (
    JOINT_NAMES,
    JOINTS_LEFT,
    JOINTS_RIGHT,
    KEPT_32_TO_17,
    PARENTS,
    TYPICAL_BONE_LENGTHS_M,
    bone_lengths,
)

N3D = 40  # mocap frames per take
EXTRA_2D = 3  # real detection files may hold a few more video frames
SUBJECTS = ("S1", "S5", "S9")
ACTIONS = ("Walking", "Walking 1", "Dancing")  # not a Human3.6M action: names come from the file
METADATA = {
    "layout_name": "h36m",
    "num_joints": 17,
    "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]],
}


def fake_world(rng: np.random.Generator) -> np.ndarray:
    """(N3D, 32, 3) world poses in metres around the capture area, z up."""
    base = rng.uniform(-0.4, 0.4, size=(32, 3)) + np.array([0.3, 0.8, 1.0])
    drift = np.linspace(0.0, 0.3, N3D)[:, None, None] * np.array([1.0, 0.0, 0.0])
    return (base[None] + drift + 0.01 * rng.normal(size=(N3D, 32, 3))).astype(np.float32)


def gt_2d(world32: np.ndarray, subject: str) -> list[np.ndarray]:
    """The GT 2D as prepare_data_h36m.py makes it: project the 17 joints, in pixels."""
    out = []
    for cam, intr in enumerate(INTRINSICS):
        ext = EXTRINSICS[subject][cam]
        xc = world_to_camera(world32[:, list(KEPT_32_TO_17)], ext.quaternion, ext.translation_m)
        px = image_coordinates(project_to_2d(xc, intr.normalized_intrinsic()), intr.res_w, intr.res_h)
        pad = np.repeat(px[-1:], EXTRA_2D, axis=0)
        out.append(np.concatenate([px, pad]).astype(np.float32))
    return out


def write_fake_h36m(root: Path, keypoints: str = "gt", **overrides: object) -> dict:
    rng = np.random.default_rng(0)
    pos3d = {s: {a: fake_world(rng) for a in ACTIONS} for s in SUBJECTS}
    pos2d = {s: {a: gt_2d(pos3d[s][a], s) for a in ACTIONS} for s in SUBJECTS}
    arrays = {"positions_3d": pos3d, "positions_2d": pos2d, "metadata": METADATA}
    arrays.update(overrides)
    root.mkdir(parents=True, exist_ok=True)
    # exactly as VideoPose3D writes them: dicts become 0-d object arrays
    np.savez_compressed(root / "data_3d_h36m.npz", positions_3d=arrays["positions_3d"])
    np.savez_compressed(
        root / f"data_2d_h36m_{keypoints}.npz", positions_2d=arrays["positions_2d"], metadata=arrays["metadata"]
    )
    return arrays


def test_loads_fake_h36m_with_shapes_split_and_preprocessing(tmp_path):
    raw = write_fake_h36m(tmp_path, keypoints="cpn_ft_h36m_dbb")
    ds = load_h36m(tmp_path, train_subjects=("S1", "S5"), test_subjects=("S9",))
    assert ds.name == "h36m" and ds.fps == 50.0
    assert len(ds.train) == 2 * len(ACTIONS) * 4 and len(ds.test) == 1 * len(ACTIONS) * 4
    assert {s.subject for s in ds.train} == {"S1", "S5"} and {s.subject for s in ds.test} == {"S9"}
    assert {s.action for s in ds.test} == set(ACTIONS)
    assert ds.joints_left == (4, 5, 6, 11, 12, 13) and ds.joints_right == (1, 2, 3, 14, 15, 16)
    for s in ds.train + ds.test:
        assert s.keypoints_2d.shape == (N3D, 17, 2)  # cut to the mocap length
        assert s.positions_3d.shape == (N3D, 17, 3)
        assert s.keypoints_2d.dtype == np.float32 and s.positions_3d.dtype == np.float32
        assert s.confidence is None
        assert np.all(s.positions_3d[:, 0] == 0.0)
    s = next(x for x in ds.test if x.action == "Walking 1" and x.camera == 3)
    world17 = raw["positions_3d"]["S9"]["Walking 1"][:, list(KEPT_32_TO_17)]
    ext = EXTRINSICS["S9"][3]
    xc = world_to_camera(world17, ext.quaternion, np.asarray(ext.translation) / 1000.0)
    np.testing.assert_allclose(s.positions_3d, xc - xc[:, :1], atol=1e-5)
    px = raw["positions_2d"]["S9"]["Walking 1"][3][:N3D]
    np.testing.assert_allclose(s.keypoints_2d, px / 1000 * 2 - np.array([1.0, 1002 / 1000]), atol=1e-6)
    # GT 2D re-derived from the loaded 3D: root trajectory + root-relative pose -> same pixels
    root = xc[:, :1]
    uv = project_to_2d(s.positions_3d.astype(np.float64) + root, INTRINSICS[3].normalized_intrinsic())
    np.testing.assert_allclose(s.keypoints_2d, uv, atol=1e-5)


def test_gt_keypoints_and_confidence_channel(tmp_path):
    raw = write_fake_h36m(tmp_path, keypoints="gt")
    with_conf = {
        s: {
            a: [np.concatenate([k, np.full((*k.shape[:2], 1), 0.7, np.float32)], -1) for k in cams]
            for a, cams in acts.items()
        }
        for s, acts in raw["positions_2d"].items()
    }
    ds = load_h36m(tmp_path, keypoints="gt", train_subjects=("S1",), test_subjects=("S9",))
    assert len(ds.train) == len(ACTIONS) * 4
    np.savez_compressed(tmp_path / "data_2d_h36m_sh.npz", positions_2d=with_conf, metadata=METADATA)
    ds2 = load_h36m(tmp_path, keypoints="sh", train_subjects=("S1",), test_subjects=("S9",))
    assert ds2.train[0].confidence is not None
    assert ds2.train[0].confidence.shape == (N3D, 17) and np.allclose(ds2.train[0].confidence, 0.7)
    np.testing.assert_allclose(ds2.train[0].keypoints_2d, ds.train[0].keypoints_2d)


def test_safe_loader_matches_numpy_on_plain_data(tmp_path):
    raw = write_fake_h36m(tmp_path)
    path = tmp_path / "mixed.npz"
    np.savez_compressed(path, plain=np.arange(12.0).reshape(3, 4), fortran=np.asfortranarray(np.eye(3)[:, :2]))
    mine = load_npz_safely(path)
    np.testing.assert_array_equal(mine["plain"], np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(mine["fortran"], np.eye(3)[:, :2])
    loaded = load_npz_safely(tmp_path / "data_2d_h36m_gt.npz")
    assert loaded["metadata"].item() == METADATA
    cams = loaded["positions_2d"].item()["S5"]["Dancing"]
    for a, b in zip(cams, raw["positions_2d"]["S5"]["Dancing"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_numpy1_and_protocol5_pickles_are_accepted():
    value = np.array({"S1": {"Walking": np.arange(6, dtype=np.float32).reshape(2, 3)}, "k": np.float32(2.5)})
    blob = pickle.dumps(value, protocol=3)
    # the real files were written by numpy 1.x, which names numpy.core instead of numpy._core
    old = blob.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"numpy.core.multiarray" in old
    for payload in (blob, old):
        got = safe_loads(payload).item()
        np.testing.assert_array_equal(got["S1"]["Walking"], value.item()["S1"]["Walking"])
        assert got["k"] == np.float32(2.5) and got["k"].dtype == np.float32
    np.testing.assert_array_equal(safe_loads(pickle.dumps(np.arange(3.0), protocol=5)), np.arange(3.0))
    with pytest.raises(UnsafeFileError, match=r"builtins\.eval"):
        safe_loads(b"cbuiltins\neval\n(S'1+1'\ntR.")


class RunsShell:
    """Pickles as a call to os.system: loading it with plain np.load would run the command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


class OpensFile:
    """Pickles as a call to open(marker, 'w'), which creates the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("payload", [RunsShell, OpensFile])
def test_malicious_pickle_is_refused_without_running(tmp_path, payload):
    marker = tmp_path / "pwned"
    rng = np.random.default_rng(0)
    evil = {"S1": {"Walking": fake_world(rng), "Trap": payload(marker)}}
    write_fake_h36m(tmp_path, positions_3d=evil)
    with pytest.raises(UnsafeFileError, match=r"data_3d_h36m\.npz") as info:
        load_h36m(tmp_path, train_subjects=("S1",), test_subjects=())
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)
    assert not marker.exists()
    with pytest.raises(UnsafeFileError):
        load_npz_safely(tmp_path / "data_3d_h36m.npz")
    assert not marker.exists()


def test_control_plain_numpy_load_would_run_the_payload(tmp_path):
    # proves the payload above is live: an unrestricted load executes it
    marker = tmp_path / "pwned"
    np.savez_compressed(tmp_path / "evil.npz", x={"S1": OpensFile(marker)})
    np.load(tmp_path / "evil.npz", allow_pickle=True)["x"]
    assert marker.exists()


def test_missing_files_raise_data_error(tmp_path):
    with pytest.raises(DataError, match=r"data_3d_h36m\.npz"):
        load_h36m(tmp_path)
    write_fake_h36m(tmp_path, keypoints="gt")
    with pytest.raises(DataError, match=r"data_2d_h36m_cpn_ft_h36m_dbb\.npz"):
        load_h36m(tmp_path, train_subjects=("S1",), test_subjects=("S9",))


def _without(d: dict, subject: str, action: str) -> dict:
    out = {s: dict(a) for s, a in d.items()}
    del out[subject][action]
    return out


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("3d_not_dict", "positions_3d"),
        ("3d_not_dict_of_dicts", "must be a dict"),
        ("3d_wrong_shape", r"\(N, 32\|17, 3\)"),
        ("2d_missing_take", "no 2D keypoints for S5/Walking 1"),
        ("2d_three_cameras", "list of 4 cameras"),
        ("2d_too_short", "2D frames"),
        ("2d_wrong_joints", r"\(N, 17, 2\|3\)"),
        ("no_symmetry", "keypoints_symmetry"),
        ("no_camera_params", "S2 has no Human3.6M camera"),
        ("subject_absent", "S6 not in positions_3d"),
        ("not_a_zip", "not an .npz"),
    ],
)
def test_wrong_layout_raises_data_error(tmp_path, case, match):
    rng = np.random.default_rng(1)
    raw = write_fake_h36m(tmp_path)
    p3d, p2d = raw["positions_3d"], raw["positions_2d"]
    train: tuple[str, ...] = ("S1", "S5")
    if case == "3d_not_dict":
        write_fake_h36m(tmp_path, positions_3d=[fake_world(rng)])
    elif case == "3d_not_dict_of_dicts":
        write_fake_h36m(tmp_path, positions_3d={"S1": fake_world(rng)})
    elif case == "3d_wrong_shape":
        write_fake_h36m(tmp_path, positions_3d={**p3d, "S1": {"Walking": np.zeros((N3D, 32, 2))}})
    elif case == "2d_missing_take":
        write_fake_h36m(tmp_path, positions_2d=_without(p2d, "S5", "Walking 1"))
    elif case == "2d_three_cameras":
        write_fake_h36m(tmp_path, positions_2d={**p2d, "S1": {a: c[:3] for a, c in p2d["S1"].items()}})
    elif case == "2d_too_short":
        write_fake_h36m(tmp_path, positions_2d={**p2d, "S1": {a: [k[:10] for k in c] for a, c in p2d["S1"].items()}})
    elif case == "2d_wrong_joints":
        write_fake_h36m(tmp_path, positions_2d={**p2d, "S1": {a: [k[:, :16] for k in c] for a, c in p2d["S1"].items()}})
    elif case == "no_symmetry":
        write_fake_h36m(tmp_path, metadata={"num_joints": 17})
    elif case == "no_camera_params":
        write_fake_h36m(tmp_path, positions_3d={**p3d, "S2": p3d["S1"]}, positions_2d={**p2d, "S2": p2d["S1"]})
        train = ("S1", "S2")
    elif case == "subject_absent":
        train = ("S1", "S6")
    elif case == "not_a_zip":
        (tmp_path / "data_3d_h36m.npz").write_bytes(b"hello")
    with pytest.raises(DataError, match=match) as info:
        load_h36m(tmp_path, keypoints="gt", train_subjects=train, test_subjects=("S9",))
    message = str(info.value)
    assert "\n" not in message
    assert ".npz" in message  # names the file


def test_train_test_overlap_rejected(tmp_path):
    write_fake_h36m(tmp_path)
    with pytest.raises(DataError, match="both train and test"):
        load_h36m(tmp_path, keypoints="gt", train_subjects=("S1",), test_subjects=("S1",))


def test_skeleton_constants_match_videopose3d():
    removed = [4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31]
    assert tuple(j for j in range(32) if j not in removed) == KEPT_32_TO_17
    assert len(JOINT_NAMES) == 17 and PARENTS[0] == -1 and PARENTS[11] == PARENTS[14] == 8
    assert all(PARENTS[j] < j for j in range(1, 17))
    assert sorted(JOINTS_LEFT + JOINTS_RIGHT + (0, 7, 8, 9, 10)) == list(range(17))
    bl = np.asarray(TYPICAL_BONE_LENGTHS_M)
    assert bl.shape == (16,)
    np.testing.assert_array_equal(bl[[0, 1, 2, 10, 11, 12]], bl[[3, 4, 5, 13, 14, 15]])  # symmetric
    pose = np.zeros((2, 3, 17, 3))
    pose[..., 2, :] = [0.0, -0.1, -0.4]  # right knee 0.3 m from the right hip at the origin
    pose[..., 1, :] = [0.0, -0.1, -0.1]
    out = bone_lengths(pose)
    assert out.shape == (2, 3, 16)
    np.testing.assert_allclose(out[0, 0, :3], [np.hypot(0.1, 0.1), 0.3, np.sqrt(0.1**2 + 0.4**2)])


def test_camera_model():
    intr = INTRINSICS[0]
    k = intr.normalized_intrinsic()  # [fx, fy, cx, cy, k1, k2, k3, p1, p2], normalised
    np.testing.assert_allclose(
        k[:4],
        [
            1145.0494384765625 / 500,
            1143.7811279296875 / 500,
            512.54150390625 / 500 - 1,
            515.4514770507812 / 500 - 1.002,
        ],
        rtol=1e-12,
    )
    ext = EXTRINSICS["S1"][0]
    np.testing.assert_allclose(ext.orientation, (0.14071, -0.15007, -0.75524, 0.62233), atol=1e-5)
    np.testing.assert_allclose(ext.translation_m, [1.8411, 4.9553, 1.5634], atol=1e-4)
    assert sorted(EXTRINSICS) == ["S1", "S11", "S5", "S6", "S7", "S8", "S9"]
    for cams in EXTRINSICS.values():
        assert len(cams) == 4
        for c in cams:
            assert abs(np.linalg.norm(c.quaternion) - 1.0) < 1e-6
    rng = np.random.default_rng(0)
    world = rng.normal(size=(5, 17, 3))
    xc = world_to_camera(world, ext.quaternion, ext.translation_m)
    # the shipped quaternions are float32 values (|q| = 1 +- 1e-7), used as is like VideoPose3D
    np.testing.assert_allclose(camera_to_world(xc, ext.quaternion, ext.translation_m), world, atol=1e-6)
    np.testing.assert_allclose(  # rigid: distances preserved
        np.linalg.norm(xc[:, 1] - xc[:, 0], axis=-1), np.linalg.norm(world[:, 1] - world[:, 0], axis=-1), rtol=1e-6
    )
    np.testing.assert_allclose(world_to_camera(ext.translation_m, ext.quaternion, ext.translation_m), 0, atol=1e-12)
    assert world_to_camera(np.zeros(3), ext.quaternion, ext.translation_m)[2] > 4.0  # origin in front
    # the distortion model by hand (VideoPose3D's tangential term) for one point, in pixels
    point = np.array([0.3, -0.2, 2.5])
    x, y = point[:2] / point[2]
    r2 = x * x + y * y
    k1, k2, k3 = intr.radial_distortion
    p1, p2 = intr.tangential_distortion
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    tan = p1 * x + p2 * y
    xd = np.array([x, y]) * (radial + tan) + np.array([p1, p2]) * r2
    want_px = np.array(intr.focal_length) * xd + np.array(intr.center)
    got_px = image_coordinates(project_to_2d(point, k), intr.res_w, intr.res_h)
    np.testing.assert_allclose(got_px, want_px, rtol=1e-10)
    np.testing.assert_allclose(normalize_screen_coordinates(got_px, intr.res_w, intr.res_h), project_to_2d(point, k))
    # coordinates are clamped to [-1, 1] before distortion
    np.testing.assert_allclose(project_to_2d([50.0, 0.0, 1.0], k), project_to_2d([1.0, 0.0, 1.0], k))
