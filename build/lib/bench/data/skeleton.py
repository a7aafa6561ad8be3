"""The Human3.6M 17-joint skeleton as VideoPose3D / HoT use it.

Human3.6M stores 32 mocap joints; ``Human36mDataset(remove_static_joints=True)`` keeps
the 17 listed in :data:`KEPT_32_TO_17` (in that order), re-parents every child to its
nearest kept ancestor and then rewires both shoulders to the thorax (joint 8). The 2D
keypoint files use the same 17-joint order.

Index: 0 hip (root, pelvis centre), 1 right hip, 2 right knee, 3 right ankle, 4 left hip,
5 left knee, 6 left ankle, 7 spine, 8 thorax, 9 neck/nose, 10 head (top), 11 left
shoulder, 12 left elbow, 13 left wrist, 14 right shoulder, 15 right elbow, 16 right wrist.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NUM_JOINTS = 17
ROOT = 0

JOINT_NAMES: tuple[str, ...] = (
    "Hip",
    "RHip",
    "RKnee",
    "RAnkle",
    "LHip",
    "LKnee",
    "LAnkle",
    "Spine",
    "Thorax",
    "Neck/Nose",
    "Head",
    "LShoulder",
    "LElbow",
    "LWrist",
    "RShoulder",
    "RElbow",
    "RWrist",
)

#: Parent of each joint after ``remove_static_joints`` and the shoulder rewiring.
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

#: Left / right joints (``keypoints_symmetry``); also the flip-augmentation swap lists.
JOINTS_LEFT: tuple[int, ...] = (4, 5, 6, 11, 12, 13)
JOINTS_RIGHT: tuple[int, ...] = (1, 2, 3, 14, 15, 16)

#: Indices into the 32-joint Human3.6M mocap skeleton of the 17 kept joints, in order.
KEPT_32_TO_17: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

#: The 16 bones as (parent, child) pairs; bone ``b`` ends at joint ``b + 1``.
BONES: tuple[tuple[int, int], ...] = tuple((PARENTS[j], j) for j in range(1, NUM_JOINTS))

#: Typical bone lengths in metres, one per bone of :data:`BONES` (ordered by child joint
#: 1..16). APPROXIMATE: values of the size of Human3.6M's fitted 17-joint skeleton (close to
#: subject S1; other subjects differ by up to roughly +-10%), rounded to the millimetre and
#: left/right symmetric. They were not computed from the data files in this repository and
#: are not an exact dataset statistic; they only serve as the synthetic generator's template.
TYPICAL_BONE_LENGTHS_M: tuple[float, ...] = (
    0.133,  # 1  hip -> right hip
    0.443,  # 2  right hip -> right knee (thigh)
    0.454,  # 3  right knee -> right ankle (shin)
    0.133,  # 4  hip -> left hip
    0.443,  # 5  left hip -> left knee
    0.454,  # 6  left knee -> left ankle
    0.233,  # 7  hip -> spine
    0.257,  # 8  spine -> thorax
    0.121,  # 9  thorax -> neck/nose
    0.115,  # 10 neck/nose -> head
    0.151,  # 11 thorax -> left shoulder
    0.279,  # 12 left shoulder -> left elbow (upper arm)
    0.252,  # 13 left elbow -> left wrist (forearm)
    0.151,  # 14 thorax -> right shoulder
    0.279,  # 15 right shoulder -> right elbow
    0.252,  # 16 right elbow -> right wrist
)


def bone_lengths(pos: npt.ArrayLike) -> npt.NDArray[np.floating]:
    """Length of each of the 16 bones of the Human3.6M 17-joint skeleton.

    Args:
        pos: joint positions ``(..., 17, 3)`` (or ``(..., 17, 2)`` for image-plane lengths).

    Returns:
        ``(..., 16)`` Euclidean lengths, bone ``b`` going from ``PARENTS[b + 1]`` to
        joint ``b + 1``, in the units of ``pos``.
    """
    x = np.asarray(pos)
    if x.ndim < 2 or x.shape[-2] != NUM_JOINTS:
        raise ValueError(f"expected (..., {NUM_JOINTS}, C) joint positions, got {x.shape}")
    parents = np.asarray(PARENTS[1:])
    children = np.arange(1, NUM_JOINTS)
    diff = x[..., children, :] - x[..., parents, :]  # (..., 16, C)
    out: npt.NDArray[np.floating] = np.linalg.norm(diff, axis=-1)
    return out
