"""Data for HourglassBench: Human3.6M (VideoPose3D layout) and a synthetic stand-in.

    from bench.data import make_synthetic_h36m, load_h36m, seq2seq_clips
    ds = make_synthetic_h36m(seed=0)            # default source, no downloads
    clips = seq2seq_clips(ds.train, frames=243, stride=243)

Both sources return a :class:`PoseDataset` of :class:`Sequence` objects with the same
preprocessing (camera-space, root-relative 3D with the root zeroed; normalised 2D).
"""

from bench.data.cameras import (
    EXTRINSICS,
    INTRINSICS,
    CameraExtrinsics,
    CameraIntrinsics,
    camera_parameters,
    camera_to_world,
    image_coordinates,
    normalize_screen_coordinates,
    project_to_2d,
    world_to_camera,
)
from bench.data.clips import (
    ClipSet,
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
from bench.data.h36m import DataError, load_h36m
from bench.data.safe_pickle import UnsafeFileError, load_npz_safely
from bench.data.skeleton import (
    JOINT_NAMES,
    JOINTS_LEFT,
    JOINTS_RIGHT,
    KEPT_32_TO_17,
    PARENTS,
    bone_lengths,
)
from bench.data.synthetic import ACTION_TYPES, GENERATOR_VERSION, make_synthetic_h36m

__all__ = [
    "ACTION_TYPES",
    "EXTRINSICS",
    "GENERATOR_VERSION",
    "INTRINSICS",
    "JOINTS_LEFT",
    "JOINTS_RIGHT",
    "JOINT_NAMES",
    "KEPT_32_TO_17",
    "PARENTS",
    "CameraExtrinsics",
    "CameraIntrinsics",
    "ClipSet",
    "DataError",
    "PoseDataset",
    "Sequence",
    "UnsafeFileError",
    "action_group",
    "add_confidence",
    "bone_lengths",
    "camera_parameters",
    "camera_to_world",
    "clip_starts",
    "clips_per_batch",
    "flip_pose",
    "image_coordinates",
    "load_h36m",
    "load_npz_safely",
    "make_synthetic_h36m",
    "normalize_screen_coordinates",
    "project_to_2d",
    "seq2frame_windows",
    "seq2seq_clips",
    "world_to_camera",
]
