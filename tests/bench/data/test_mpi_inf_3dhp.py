"""MPI-INF-3DHP: the P-STMO layout read safely, the reference loader's arrays, and one line per bad input."""

from __future__ import annotations

import copy
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from bench.data.h36m import DataError
from bench.data.mpi_inf_3dhp import (
    JOINT_NAMES,
    JOINTS_LEFT,
    JOINTS_RIGHT,
    PCK_JOINTS,
    ROOT,
    TEST_FILE,
    TEST_IMAGE_SIZE,
    TRAIN_FILE,
    load_3dhp,
    reference_arrays,
)
from bench.data.safe_pickle import UnsafeFileError, load_npz_safely
from bench.data.synthetic_3dhp import H36M_TO_3DHP, write_synthetic_3dhp


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return write_synthetic_3dhp(tmp_path_factory.mktemp("3dhp"), seed=0, frames_per_sequence=80, noise="none")


def _raw(folder: Path, name: str) -> dict:
    return load_npz_safely(folder / name)["data"].item()


def test_layout_constants_are_the_documented_ones():
    assert JOINT_NAMES[ROOT] == "pelvis" and ROOT == 14 and tuple(range(14)) == PCK_JOINTS
    assert JOINTS_LEFT == (5, 6, 7, 11, 12, 13) and JOINTS_RIGHT == (2, 3, 4, 8, 9, 10)
    assert [JOINT_NAMES[j] for j in JOINTS_LEFT] == [
        n.replace("r_", "l_") for n in (JOINT_NAMES[j] for j in JOINTS_RIGHT)
    ]
    assert TEST_IMAGE_SIZE["TS5"] == TEST_IMAGE_SIZE["TS6"] == (1920, 1080) and TEST_IMAGE_SIZE["TS1"] == (2048, 2048)
    assert sorted(H36M_TO_3DHP) == list(range(17)) and H36M_TO_3DHP[ROOT] == 0  # pelvis <- Human3.6M's hip


def test_every_sequence_equals_the_reference_loaders_arrays(files):
    """Normalised 2D at the sequence's image size, 3D relative to joint 14 except joint 14 (absolute in the
    reference, zeroed here), millimetres there and metres here; the test sequences keep their valid masks."""
    data = load_3dhp(files)
    train, test = _raw(files, TRAIN_FILE), _raw(files, TEST_FILE)
    assert data.root == ROOT and data.pck_joints == PCK_JOINTS and data.joints_left == JOINTS_LEFT
    assert len(data.train) == 8 * 2 * 4 and [s.subject for s in data.test] == ["TS1", "TS2", "TS3", "TS4", "TS5", "TS6"]
    for s in data.train:
        leaf = train[f"{s.subject} {s.action}"][0][str(s.camera)]
        kp, pos = reference_arrays(leaf["data_2d"], leaf["data_3d"], (2048, 2048))
        assert abs(pos[:, ROOT]).max() > 1000  # the reference leaves the root absolute (mm from the camera)
        pos[:, ROOT] = 0
        np.testing.assert_allclose(s.keypoints_2d, kp, rtol=0, atol=1e-6)
        np.testing.assert_allclose(s.positions_3d, pos / 1000, rtol=0, atol=1e-6)
        assert s.valid is None
    for s in data.test:
        leaf = test[s.subject]
        w, h = TEST_IMAGE_SIZE[s.subject]
        kp, pos = reference_arrays(leaf["data_2d"], leaf["data_3d"], (w, h))
        pos[:, ROOT] = 0
        np.testing.assert_allclose(s.keypoints_2d, kp, rtol=0, atol=1e-6)
        np.testing.assert_allclose(s.positions_3d, pos / 1000, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(s.valid, leaf["valid"].astype(bool))
        assert 0 < s.valid.sum() < s.num_frames  # gaps
    ts5 = next(s for s in data.test if s.subject == "TS5")
    assert np.abs(ts5.keypoints_2d[..., 1]).max() <= 1080 / 1920  # y' = 2y/w - h/w lies in [-0.5625, 0.5625]


class RunsShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def _write(folder: Path, train: object, test: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / TRAIN_FILE, data=np.array(train, dtype=object))
    np.savez_compressed(folder / TEST_FILE, data=np.array(test, dtype=object))


def _cases(train: dict, test: dict, marker: Path):
    """(name, train dict, test dict, message): each a broken copy of a good pair of files."""

    def t(f):
        d = copy.deepcopy(test)
        f(d)
        return d

    def r(f):
        d = copy.deepcopy(train)
        f(d)
        return d

    seq = next(iter(train))
    cam = next(iter(train[seq][0]))
    return [
        ("missing key", train, t(lambda d: d["TS1"].pop("valid")), r"TS1.*has no valid"),
        ("wrong nesting", r(lambda d: d.__setitem__(seq, d[seq][0])), test, r"must be \[\{camera: arrays\}, fps\]"),
        (
            "wrong shape",
            train,
            t(lambda d: d["TS2"].__setitem__("data_3d", d["TS2"]["data_3d"][:, :16])),
            r"\(N, 17, 3\)",
        ),
        ("NaN", train, t(lambda d: d["TS3"]["data_2d"].__setitem__((5, 3, 0), np.nan)), "non-finite"),
        ("hostile pickle", train, t(lambda d: d.__setitem__("TS4", RunsShell(marker))), "refusing to unpickle global"),
        (
            "2D/3D lengths",
            train,
            t(lambda d: d["TS1"].__setitem__("data_2d", d["TS1"]["data_2d"][:-3])),
            "2D frames but",
        ),
        ("unknown test sequence", train, t(lambda d: d.__setitem__("TS7", d["TS1"])), "unknown test sequence"),
        ("valid not 0/1", train, t(lambda d: d["TS5"]["valid"].__setitem__(0, 2)), "other than 0 and 1"),
        ("no valid frame", train, t(lambda d: d["TS6"]["valid"].__setitem__(slice(None), 0)), "no valid frame"),
        ("valid length", train, t(lambda d: d["TS6"].__setitem__("valid", d["TS6"]["valid"][:-1])), "0/1 values"),
        ("unknown camera", r(lambda d: d[seq][0].__setitem__("3", d[seq][0][cam])), test, "camera '3'"),
        ("bad fps", r(lambda d: d[seq].__setitem__(1, "fast")), test, "fps must be a number"),
        ("bad sequence name", r(lambda d: d.__setitem__("Seq9", d[seq])), test, "not named 'S<k> Seq<k>'"),
        ("not a dict", train, "TS1", "'data' must be a non-empty dict"),
        ("not a 0-d array", train, ["TS1"], "must be a 0-d object array"),
        ("empty 2D", train, t(lambda d: d["TS1"].__setitem__("data_2d", d["TS1"]["data_2d"][:0])), "is empty"),
        (
            "strings for poses",
            train,
            t(lambda d: d["TS2"].__setitem__("data_2d", "many")),
            r"must be an array \(N, 17, 2\), got a str",
        ),
    ]


def test_bad_inputs_are_one_line_each(files, tmp_path):
    train, test = _raw(files, TRAIN_FILE), _raw(files, TEST_FILE)
    marker = tmp_path / "pwned"
    cases = _cases(train, test, marker)
    assert len(cases) >= 12
    for i, (name, tr, te, message) in enumerate(cases):
        folder = tmp_path / f"case{i}"
        _write(folder, tr, te)
        with pytest.raises((DataError, UnsafeFileError)) as info:
            load_3dhp(folder)
        text = str(info.value)
        assert "\n" not in text and re.search(message, text), (name, text)
    assert not marker.exists()  # the hostile pickle never ran
    with pytest.raises(DataError, match="file not found"):
        load_3dhp(tmp_path / "nothing")
