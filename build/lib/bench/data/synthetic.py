"""Synthetic Human3.6M-like data: the suite's default data source (no downloads).

:func:`make_synthetic_h36m` builds 3D motion of the Human3.6M 17-joint skeleton by forward
kinematics, projects it into the four real Human3.6M cameras and applies exactly the
preprocessing of real data (VideoPose3D ``run.py``): per-camera ``world_to_camera``,
root-relative 3D with the root zeroed, 2D from the Human3.6M distortion model
(``project_to_2d``) in normalised screen coordinates, 50 fps, subjects S1, S5, S6, S7, S8
for training and S9, S11 for testing, each with its own real camera extrinsics.

How it is generated:

* **Skeleton**: per subject, the typical Human3.6M bone lengths
  (:data:`~bench.data.skeleton.TYPICAL_BONE_LENGTHS_M`) scaled by a height factor
  (0.90-1.10) and by per-segment factors (legs, torso, head, arms, hip and shoulder
  width, 0.94-1.06; left/right symmetric). Bone lengths are exactly constant within and
  across the sequences of a subject, as in the real data (one fitted skeleton per subject).
* **Motion**: per-joint Euler rotations (roll, pitch, yaw in the parent frame), a root
  heading and a world root trajectory (z up). The pelvis height comes from keeping the
  lower ankle at ground level (a soft minimum, so it stays smooth); for actions done in
  place the feet centre is kept fixed and the pelvis moves (sitting pushes it back).
* **Actions** (:data:`ACTION_TYPES`, two takes each, ``"Walking"`` / ``"Walking 1"``):
  Directions (pointing gestures, turning toward them), Discussion (two-arm talking
  gestures, nods, weight shifts), Greeting (waving, handshake, bow), Waiting (turns in
  place with small steps, looking around, checking a watch), Walking (gait cycle on an
  elliptical path with stops), WalkTogether (slower, back and forth, head turned to a
  companion), SittingDown (sit down, seated, stand up) and Jumping (crouch, flight with
  ballistic height, landing, sometimes turning in the air). Every take has idle stretches
  between events (only slow postural sway), which is the temporal redundancy token
  pruning exploits. Speeds, amplitudes, timings, phases and facing directions vary with
  the seed, the subject and the take.
* **2D**: exact projections (``noise="none"``, no confidence), or ``noise="detector"``:
  per-sequence Gaussian jitter of 2-4 px (1.5x on head and extremities) plus a slow
  drift, and short bursts of large errors (15-70 px offsets or a left/right swap) on
  random joints, with a confidence near 0.9 that drops to 0.05-0.4 where the bursts are.

How it differs from real Human3.6M (read before comparing numbers):

* Motion is procedural: smooth, low-dimensional, periodic-ish and far less varied than
  mocap; no object interaction, no contacts other than the ground, feet may slide while
  walking. Absolute MPJPE values are **not** comparable with published Human3.6M numbers;
  only relative comparisons (pruning vs. no pruning) on the same data are meaningful.
* Only 8 action types; "Jumping" is not a Human3.6M action, and Eating, Phoning, Photo,
  Posing, Purchases, Sitting, Smoking and WalkDog are absent. Take labels are "A", "A 1",
  "A 2"... by take index (real suffix numbers vary by subject).
* All takes have the same length (``frames_per_sequence``); real takes are ~1,000-6,000
  frames and 2D files may hold extra frames (the real loader truncates; nothing to do here).
* The subject stays within about 0.7 m of the floor point best covered by all cameras
  (:data:`CAPTURE_CENTRE`) so exact 2D stays inside every image; real subjects move more.
* The "detector" noise is a simple statistical model, not a CPN/SH detector: its errors are
  not correlated with appearance, occlusion or motion blur.
* Data are cached as a plain ``.npz`` (no pickle) named by a hash of the parameters and
  :data:`GENERATOR_VERSION`; bump the version whenever the output changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from bench.data.cameras import (
    EXTRINSICS,
    INTRINSICS,
    image_coordinates,
    normalize_screen_coordinates,
    project_to_2d,
    world_to_camera,
)
from bench.data.clips import PoseDataset, Sequence
from bench.data.skeleton import (
    JOINTS_LEFT,
    JOINTS_RIGHT,
    NUM_JOINTS,
    PARENTS,
    TYPICAL_BONE_LENGTHS_M,
)

__all__ = [
    "ACTION_TYPES",
    "CAPTURE_CENTRE",
    "FPS",
    "GENERATOR_VERSION",
    "NoiseMode",
    "cache_path",
    "make_synthetic_h36m",
    "subject_bone_lengths",
    "synthetic_take_world",
]

#: Bump whenever the generated arrays change (invalidates caches).
GENERATOR_VERSION = 1
#: Frame rate, as Human3.6M.
FPS = 50.0
#: World xy (metres) of the floor point seen with the most margin by all four cameras of
#: every subject; the synthetic subjects stay around it.
CAPTURE_CENTRE: tuple[float, float] = (0.35, 0.85)
#: Action types, with Human3.6M names where they fit ("Jumping" has no Human3.6M twin).
ACTION_TYPES: tuple[str, ...] = (
    "Directions",
    "Discussion",
    "Greeting",
    "Waiting",
    "Walking",
    "WalkTogether",
    "SittingDown",
    "Jumping",
)
NoiseMode = Literal["none", "detector"]

F64 = npt.NDArray[np.float64]

# joint indices (Human3.6M 17-joint order)
_HIP, _RHIP, _RKNEE, _RANK, _LHIP, _LKNEE, _LANK = 0, 1, 2, 3, 4, 5, 6
_SPINE, _THORAX, _NOSE, _HEAD = 7, 8, 9, 10
_LSHO, _LELB, _LWRI, _RSHO, _RELB, _RWRI = 11, 12, 13, 14, 15, 16
# Euler angle slots: roll about the forward x axis, pitch about the left y axis, yaw about
# the up z axis (body frame: x forward, y left, z up). R_local = Rz(yaw) Ry(pitch) Rx(roll).
_ROLL, _PITCH, _YAW = 0, 1, 2
_LEFT, _RIGHT = 1, -1

# Rest-pose bone directions (child joint j, in the parent's frame): standing upright,
# arms hanging. Row 0 (root) unused.
_REST_DIR = np.array(
    [
        [0.0, 0.0, 0.0],
        [0.0, -1.0, -0.05],  # right hip
        [0.0, 0.0, -1.0],  # right knee
        [-0.03, 0.0, -1.0],  # right ankle
        [0.0, 1.0, -0.05],  # left hip
        [0.0, 0.0, -1.0],  # left knee
        [-0.03, 0.0, -1.0],  # left ankle
        [0.02, 0.0, 1.0],  # spine
        [0.03, 0.0, 1.0],  # thorax
        [0.35, 0.0, 0.94],  # neck / nose
        [-0.2, 0.0, 1.0],  # head top
        [-0.05, 1.0, -0.15],  # left shoulder
        [0.0, 0.05, -1.0],  # left elbow
        [0.08, 0.0, -1.0],  # left wrist
        [-0.05, -1.0, -0.15],  # right shoulder
        [0.0, -0.05, -1.0],  # right elbow
        [0.08, 0.0, -1.0],  # right wrist
    ]
)
_REST_DIR[1:] /= np.linalg.norm(_REST_DIR[1:], axis=1, keepdims=True)

# bone (child joint) -> proportion group
_BONE_GROUP = {
    1: "hips", 4: "hips", 2: "legs", 3: "legs", 5: "legs", 6: "legs", 7: "torso",
    8: "torso", 9: "head", 10: "head", 11: "shoulders", 14: "shoulders", 12: "arms",
    13: "arms", 15: "arms", 16: "arms",
}  # fmt: skip
_GROUPS = ("hips", "legs", "torso", "head", "shoulders", "arms")


def _stable_id(text: str) -> int:
    """A process-independent integer for seeding (Python's ``hash`` is salted)."""
    return zlib.crc32(text.encode("utf-8"))


# --------------------------------------------------------------------------- body


@dataclass(frozen=True)
class _Body:
    """Per-subject skeleton and movement style."""

    offsets: F64  # (17, 3) rest bone vectors in the parent frame, metres
    ankle_height: float  # ankle joint height above the floor when standing
    arm_abd: float  # resting arm abduction, rad
    elbow: float  # resting elbow flexion, rad
    lean: float  # resting forward lean of the upper spine, rad
    gait_freq: float  # stride frequency, Hz
    speed: float  # walking speed, m/s


def subject_bone_lengths(subject: str, seed: int = 0) -> F64:
    """The synthetic subject's 16 bone lengths ``(16,)`` in metres (bone = child 1..16)."""
    rng = np.random.default_rng([seed, _stable_id(subject), 0xB0D1])
    height = rng.uniform(0.90, 1.10)
    factor = {g: rng.uniform(0.94, 1.06) for g in _GROUPS}
    typical = np.asarray(TYPICAL_BONE_LENGTHS_M)
    scale = np.array([height * factor[_BONE_GROUP[j]] for j in range(1, NUM_JOINTS)])
    out: F64 = typical * scale
    return out


def _subject_body(subject: str, seed: int) -> _Body:
    lengths = subject_bone_lengths(subject, seed)  # (16,)
    offsets = np.zeros((NUM_JOINTS, 3))
    offsets[1:] = _REST_DIR[1:] * lengths[:, None]
    rng = np.random.default_rng([seed, _stable_id(subject), 0x57E1])
    leg = lengths[1] + lengths[2]
    return _Body(
        offsets=offsets,
        ankle_height=0.085 * leg / 0.9,
        arm_abd=rng.uniform(0.06, 0.2),
        elbow=rng.uniform(0.1, 0.35),
        lean=rng.uniform(-0.02, 0.1),
        gait_freq=rng.uniform(0.85, 1.0),
        speed=rng.uniform(0.85, 1.1),
    )


# --------------------------------------------------------------------------- curves


def _ss(x: npt.ArrayLike) -> F64:
    """Quintic smoothstep clamped to [0, 1] (C2 at both ends)."""
    u = np.clip(np.asarray(x, np.float64), 0.0, 1.0)
    out: F64 = u * u * u * (u * (u * 6.0 - 15.0) + 10.0)
    return out


def _window(t: F64, t0: float, t1: float, ramp: float) -> F64:
    """0 outside [t0, t1], 1 inside, smooth ramps of ``ramp`` seconds at both ends."""
    ramp = max(1e-3, min(ramp, 0.5 * (t1 - t0)))
    return _ss((t - t0) / ramp) * (1.0 - _ss((t - (t1 - ramp)) / ramp))


def _keys(t: F64, times: SequenceABC[float], values: SequenceABC[float]) -> F64:
    """Piecewise smoothstep interpolation through keyframes (flat outside the keys)."""
    tk = np.asarray(times, np.float64)
    vk = np.asarray(values, np.float64)
    i = np.clip(np.searchsorted(tk, t, side="right") - 1, 0, len(tk) - 2)
    span = np.maximum(tk[i + 1] - tk[i], 1e-9)
    out: F64 = vk[i] + (vk[i + 1] - vk[i]) * _ss((t - tk[i]) / span)
    return out


def _sway(rng: np.random.Generator, t: F64, amp: float, fmax: float = 0.35) -> F64:
    """Slow postural sway: three low-frequency sinusoids with random phases, peak ~amp."""
    out = np.zeros_like(t)
    for _ in range(3):
        f = rng.uniform(0.05, fmax)
        out += rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    out *= amp / 2.0
    return out


def _schedule(
    rng: np.random.Generator,
    duration: float,
    length: tuple[float, float],
    gap: tuple[float, float],
) -> list[tuple[float, float]]:
    """Non-overlapping event intervals separated (and preceded) by idle gaps."""
    events: list[tuple[float, float]] = []
    t = rng.uniform(*gap)
    while True:
        d = rng.uniform(*length)
        if t + d > duration - 0.3:
            break
        events.append((t, t + d))
        t += d + rng.uniform(*gap)
    if not events:  # very short takes: one event in the middle
        d = min(length[0], 0.6 * duration)
        events.append((0.5 * (duration - d), 0.5 * (duration + d)))
    return events


# --------------------------------------------------------------------------- motion


@dataclass
class _Motion:
    """Joint angles and root placement of one take (mutable while being built)."""

    ang: F64  # (N, 17, 3) local roll/pitch/yaw; ang[:, 0, YAW] is the heading
    anchor: F64  # (N, 2) world xy: pelvis (walking) or centre of the feet (in place)
    anchor_is_pelvis: bool
    lift: F64  # (N,) extra root height (jump flight), metres


def _arm(m: _Motion, side: int, flex: npt.ArrayLike, abd: npt.ArrayLike, elbow: npt.ArrayLike, env: F64) -> None:
    """Add an arm pose: shoulder flexion (forward raise), abduction, elbow flexion."""
    sho, elb = (_LSHO, _LELB) if side == _LEFT else (_RSHO, _RELB)
    m.ang[:, sho, _PITCH] -= np.asarray(flex) * env
    m.ang[:, sho, _ROLL] += side * np.asarray(abd) * env
    m.ang[:, elb, _PITCH] -= np.asarray(elbow) * env


def _leg(m: _Motion, side: int, hip: npt.ArrayLike, knee: npt.ArrayLike) -> None:
    """Add hip flexion (thigh forward) and knee flexion (shin backward)."""
    h, k = (_LHIP, _LKNEE) if side == _LEFT else (_RHIP, _RKNEE)
    m.ang[:, h, _PITCH] -= np.asarray(hip)
    m.ang[:, k, _PITCH] += np.asarray(knee)


def _lean_pelvis(m: _Motion, lean: npt.ArrayLike) -> None:
    """Tilt the pelvis (whole trunk) forward, keeping the thighs' orientation."""
    m.ang[:, _HIP, _PITCH] += np.asarray(lean)
    m.ang[:, _RHIP, _PITCH] -= np.asarray(lean)
    m.ang[:, _LHIP, _PITCH] -= np.asarray(lean)


def _turn(m: _Motion, t: F64, t0: float, dur: float, delta: float, rng: np.random.Generator) -> None:
    """Turn in place by ``delta`` rad (persisting) with small alternating steps."""
    prog = _ss((t - t0) / dur)
    m.ang[:, _HIP, _YAW] += delta * prog
    active = _window(t, t0, t0 + dur, 0.15 * dur)
    n_steps = max(2, round(abs(delta) / 0.6))
    psi = np.pi * n_steps * np.clip((t - t0) / dur, 0.0, 1.0)
    first = _RIGHT if rng.random() < 0.5 else _LEFT
    step = np.minimum(np.floor(psi / np.pi), n_steps - 1)  # which step (0..n_steps-1)
    for k, side in enumerate((first, -first)):  # the two legs alternate
        s = np.where(step % 2 == k, np.sin(psi) ** 2, 0.0) * active
        _leg(m, side, 0.3 * s, 0.55 * s)


def _base(t: F64, rng: np.random.Generator, body: _Body, anchor_radius: float = 0.2) -> _Motion:
    """Standing idle: resting posture plus slow sway, random facing and floor position."""
    n = t.shape[0]
    ang = np.zeros((n, NUM_JOINTS, 3))
    m = _Motion(ang=ang, anchor=np.zeros((n, 2)), anchor_is_pelvis=False, lift=np.zeros(n))
    ang[:, _HIP, _YAW] = rng.uniform(-np.pi, np.pi) + _sway(rng, t, 0.03)
    ang[:, _HIP, _ROLL] = _sway(rng, t, 0.02)
    _lean_pelvis(m, _sway(rng, t, 0.015))
    ang[:, _SPINE, _PITCH] = body.lean + _sway(rng, t, 0.015)
    ang[:, _THORAX, _YAW] = _sway(rng, t, 0.05)
    ang[:, _NOSE, _PITCH] = _sway(rng, t, 0.05)
    ones = np.ones(n)
    for side in (_LEFT, _RIGHT):
        _arm(m, side, _sway(rng, t, 0.04), body.arm_abd, body.elbow + _sway(rng, t, 0.05), ones)
    r = anchor_radius * np.sqrt(rng.uniform())
    a = rng.uniform(0, 2 * np.pi)
    m.anchor[:] = np.array(CAPTURE_CENTRE) + r * np.array([np.cos(a), np.sin(a)])
    return m


def _directions(t: F64, rng: np.random.Generator, body: _Body) -> _Motion:
    m = _base(t, rng, body)
    for t0, t1 in _schedule(rng, float(t[-1]), (1.8, 3.2), (0.8, 2.5)):
        side = _LEFT if rng.random() < 0.5 else _RIGHT
        if rng.random() < 0.5:  # turn toward where the arm will point
            delta = side * rng.uniform(0.4, 1.0)
            _turn(m, t, t0 - 0.2, 1.2, delta, rng)
        env = _window(t, t0, t1, rng.uniform(0.4, 0.7))
        _arm(m, side, rng.uniform(1.1, 1.6), rng.uniform(0.0, 0.7), rng.uniform(0.05, 0.3), env)
        m.ang[:, _SPINE, _YAW] += side * rng.uniform(0.1, 0.3) * env
        m.ang[:, _THORAX, _YAW] += side * 0.15 * env
    return m


def _discussion(t: F64, rng: np.random.Generator, body: _Body) -> _Motion:
    m = _base(t, rng, body)
    m.ang[:, _HIP, _ROLL] += _sway(rng, t, 0.04)  # weight shifts
    for t0, t1 in _schedule(rng, float(t[-1]), (2.5, 4.5), (0.8, 2.0)):
        env = _window(t, t0, t1, 0.5)
        f = rng.uniform(0.8, 1.6)
        for side in (_LEFT, _RIGHT):
            ph = rng.uniform(0, 2 * np.pi)
            elbow = rng.uniform(0.9, 1.4) + rng.uniform(0.15, 0.35) * np.sin(2 * np.pi * f * t + ph)
            flex = rng.uniform(0.25, 0.55) + 0.12 * np.sin(2 * np.pi * 0.5 * f * t + ph)
            _arm(m, side, flex, rng.uniform(0.1, 0.35), elbow, env)
        m.ang[:, _NOSE, _PITCH] += 0.08 * np.sin(2 * np.pi * 0.7 * t) * env
        m.ang[:, _SPINE, _YAW] += 0.12 * np.sin(2 * np.pi * 0.25 * t + rng.uniform(0, 6)) * env
    return m


def _greeting(t: F64, rng: np.random.Generator, body: _Body) -> _Motion:
    m = _base(t, rng, body)
    for t0, t1 in _schedule(rng, float(t[-1]), (1.8, 3.0), (1.0, 2.5)):
        kind = rng.choice(3, p=[0.5, 0.3, 0.2])
        env = _window(t, t0, t1, 0.45)
        if rng.random() < 0.35:
            _turn(m, t, t0 - 0.3, 1.0, rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.8), rng)
        side = _RIGHT if rng.random() < 0.7 else _LEFT
        if kind == 0:  # wave, hand about head height
            wave = 0.35 * np.sin(2 * np.pi * rng.uniform(1.5, 2.5) * t)
            _arm(m, side, rng.uniform(1.6, 1.9), rng.uniform(0.3, 0.6), 0.95 + wave, env)
        elif kind == 1:  # handshake
            shake = 0.12 * np.sin(2 * np.pi * 2.5 * t)
            _arm(m, _RIGHT, 0.8, 0.1, 0.5 + shake, env)
            m.ang[:, _SPINE, _PITCH] += 0.15 * env
        else:  # bow
            _lean_pelvis(m, 0.15 * env)
            m.ang[:, _SPINE, _PITCH] += 0.35 * env
            m.ang[:, _NOSE, _PITCH] += 0.2 * env
    return m


def _waiting(t: F64, rng: np.random.Generator, body: _Body) -> _Motion:
    m = _base(t, rng, body)
    m.ang[:, _HIP, _ROLL] += _sway(rng, t, 0.05, fmax=0.2)  # weight shifts
    for i, (t0, t1) in enumerate(_schedule(rng, float(t[-1]), (1.5, 2.5), (1.0, 2.5))):
        kind = 0 if i == 0 else rng.integers(3)  # every take turns at least once
        if kind == 0:  # turn in place
            delta = rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 1.8)
            _turn(m, t, t0, min(t1 - t0, 0.7 + 0.6 * abs(delta)), delta, rng)
        elif kind == 1:  # look around
            env = _window(t, t0, t1, 0.5)
            m.ang[:, _THORAX, _YAW] += rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.45) * env
            m.ang[:, _NOSE, _PITCH] += rng.uniform(-0.15, 0.15) * env
        else:  # check a watch (left wrist)
            env = _window(t, t0, t1, 0.4)
            _arm(m, _LEFT, 0.55, -0.25, 1.7, env)
            m.ang[:, _NOSE, _PITCH] += 0.3 * env
    return m


def _ellipse_path(
    t: F64, speed: F64, centre: F64, radii: tuple[float, float], angle: float, start: float, sign: float
) -> tuple[F64, F64]:
    """Walk along an ellipse at ``speed`` (m/s per frame): positions (N, 2), heading (N,)."""
    u = np.linspace(0.0, 2 * np.pi, 2049)
    pts = np.stack([radii[0] * np.cos(u), radii[1] * np.sin(u)], axis=1)
    c, s = np.cos(angle), np.sin(angle)
    pts = pts @ np.array([[c, s], [-s, c]]) + centre  # (2049, 2)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    total = arc[-1]
    dt = np.diff(t, prepend=t[0])
    dist = start * total + sign * np.cumsum(speed * dt)
    q = np.mod(dist, total)
    x = np.interp(q, arc, pts[:, 0])
    y = np.interp(q, arc, pts[:, 1])
    eps = 1e-3
    x2 = np.interp(np.mod(q + sign * eps, total), arc, pts[:, 0])
    y2 = np.interp(np.mod(q + sign * eps, total), arc, pts[:, 1])
    heading = np.unwrap(np.arctan2(y2 - y, x2 - x))
    # people turn their body gradually: low-pass the heading over ~0.3 s
    heading = _moving_average(heading[:, None], 15)[:, 0]
    return np.stack([x, y], axis=1), heading


def _walk(t: F64, rng: np.random.Generator, body: _Body, together: bool) -> _Motion:
    m = _base(t, rng, body, anchor_radius=0.05)
    dur = float(t[-1])
    # walking envelope: idle start, walk, optional pause, walk, idle end
    t_on = rng.uniform(0.6, 1.5)
    t_off = dur - rng.uniform(0.6, 1.5)
    env = _window(t, t_on, t_off, 0.8)
    if rng.random() < 0.5 and t_off - t_on > 5.0:
        tp = rng.uniform(t_on + 2.0, t_off - 3.0)
        env = env * (1.0 - _window(t, tp, tp + rng.uniform(1.8, 2.6), 0.7))
    speed = body.speed * (rng.uniform(0.7, 0.85) if together else rng.uniform(0.9, 1.15))
    radii = (rng.uniform(0.6, 0.8), rng.uniform(0.3, 0.4) if together else rng.uniform(0.45, 0.6))
    pos, heading = _ellipse_path(
        t,
        speed * env,
        np.array(CAPTURE_CENTRE),
        radii,
        rng.uniform(0, np.pi),
        rng.uniform(),
        1.0 if rng.random() < 0.5 else -1.0,
    )
    # heading follows the path only while walking (the ellipse tangent is defined anyway)
    m.anchor = pos
    m.anchor_is_pelvis = True
    m.ang[:, _HIP, _YAW] += heading - m.ang[0, _HIP, _YAW]
    # gait: phase advances with the envelope (legs stop when the subject stops)
    freq = body.gait_freq * (0.85 if together else 1.0) * (speed / body.speed) ** 0.5
    phi = 2 * np.pi * np.cumsum(freq * env * np.diff(t, prepend=t[0])) + rng.uniform(0, 2 * np.pi)
    hip_amp = rng.uniform(0.35, 0.45)
    knee_amp = rng.uniform(0.8, 1.0)
    arm_amp = rng.uniform(0.15, 0.25) if together else rng.uniform(0.25, 0.4)
    for side, ph in ((_RIGHT, 0.0), (_LEFT, np.pi)):
        p = phi + ph
        _leg(m, side, env * hip_amp * np.sin(p), env * (0.1 + knee_amp * ((1 + np.cos(p)) / 2) ** 3))
    # the arm opposite to the forward leg swings forward
    for side, ph in ((_LEFT, 0.0), (_RIGHT, np.pi)):
        p = phi + ph
        _arm(m, side, arm_amp * np.sin(p), 0.0, 0.15 + 0.1 * np.sin(p), env)
    m.ang[:, _SPINE, _YAW] += 0.08 * np.sin(phi) * env
    m.ang[:, _HIP, _YAW] -= 0.06 * np.sin(phi) * env
    m.ang[:, _HIP, _ROLL] += 0.04 * np.sin(2 * phi) * env
    m.ang[:, _SPINE, _PITCH] += 0.05 * env
    if together:  # talking to a companion walking alongside
        m.ang[:, _THORAX, _YAW] += rng.choice([-1.0, 1.0]) * rng.uniform(0.15, 0.35) * env
    return m


def _walking(t: F64, rng: np.random.Generator, body: _Body) -> _Motion:
    return _walk(t, rng, body, together=False)


def _walk_together(t: F64, rng: np.random.Generator, body: _Body) -> _Motion:
    return _walk(t, rng, body, together=True)


def _sitting_down(t: F64, rng: np.random.Generator, body: _Body) -> _Motion:
    m = _base(t, rng, body, anchor_radius=0.1)
    dur = float(t[-1])
    times: list[float] = [0.0]
    values: list[float] = [0.0]
    tc = rng.uniform(0.8, 2.0)
    while True:  # stand idle -> sit down -> seated -> stand up -> stand idle ...
        down, seated, up = rng.uniform(1.4, 2.4), rng.uniform(2.0, 4.0), rng.uniform(1.4, 2.2)
        if tc + down + seated + up > dur - 0.5:
            break
        times += [tc, tc + down, tc + down + seated, tc + down + seated + up]
        values += [0.0, 1.0, 1.0, 0.0]
        tc += down + seated + up + rng.uniform(1.0, 2.5)
    if len(times) == 1:  # too short for a full cycle: just sit down
        times += [0.25 * dur, 0.6 * dur]
        values += [0.0, 1.0]
    s = _keys(t, times, values)  # 0 standing .. 1 seated
    lean = 0.08 * s + 1.6 * s * (1.0 - s)  # the trunk leans forward mid-transition
    _lean_pelvis(m, lean)
    hip = rng.uniform(1.35, 1.55)
    knee = rng.uniform(1.4, 1.6)
    for side in (_LEFT, _RIGHT):
        _leg(m, side, hip * s, knee * s)
        m.ang[:, _LHIP if side == _LEFT else _RHIP, _ROLL] += side * 0.12 * s  # knees apart
        _arm(m, side, 0.45, 0.05, 0.55, s)  # hands towards the thighs
    # seated: occasional reaching / gesturing
    for t0, t1 in _schedule(rng, dur, (1.0, 2.0), (1.5, 3.0)):
        env = _window(t, t0, t1, 0.35) * s
        side = _LEFT if rng.random() < 0.5 else _RIGHT
        _arm(m, side, rng.uniform(0.3, 0.8), rng.uniform(0.0, 0.3), rng.uniform(0.3, 1.0), env)
    return m


def _jumping(t: F64, rng: np.random.Generator, body: _Body) -> _Motion:
    m = _base(t, rng, body, anchor_radius=0.1)
    dur = float(t[-1])
    crouch_t: list[float] = [0.0]
    crouch_v: list[float] = [0.0]
    arms_t: list[float] = [0.0]
    arms_v: list[float] = [0.0]
    tc = rng.uniform(0.8, 2.0)
    while True:
        tc_d, push, flight = rng.uniform(0.35, 0.55), 0.12, rng.uniform(0.3, 0.38)
        land, recover = 0.12, rng.uniform(0.4, 0.6)
        total = tc_d + push + flight + land + recover
        if tc + total > dur - 0.3:
            break
        t_take = tc + tc_d + push
        t_land = t_take + flight
        depth = rng.uniform(0.6, 1.0)
        crouch_t += [tc, tc + tc_d, t_take, t_land, t_land + land, t_land + land + recover]
        crouch_v += [0.0, depth, 0.0, 0.0, 0.7 * depth, 0.0]
        arms_t += [tc, tc + tc_d, t_take + 0.5 * flight, t_land + land, t_land + land + recover]
        arms_v += [0.0, -0.6, 1.2, 0.3, 0.0]
        tau = (t - t_take) / flight
        height = 9.81 * flight**2 / 8.0
        m.lift += np.where((tau > 0) & (tau < 1), 4.0 * height * tau * (1.0 - tau), 0.0)
        if rng.random() < 0.4:  # turn in the air
            delta = rng.choice([-1.0, 1.0]) * rng.choice([np.pi / 4, np.pi / 2])
            m.ang[:, _HIP, _YAW] += delta * _ss(tau)
        tc += total + rng.uniform(0.8, 2.2)
    crouch = _keys(t, crouch_t, crouch_v)
    arms = _keys(t, arms_t, arms_v)
    _lean_pelvis(m, 0.35 * crouch)
    for side in (_LEFT, _RIGHT):
        _leg(m, side, 0.9 * crouch, 1.6 * crouch)
        _arm(m, side, arms, 0.1, 0.3 * np.abs(arms), np.ones_like(t))
    return m


_ACTIONS: dict[str, Callable[[F64, np.random.Generator, _Body], _Motion]] = {
    "Directions": _directions,
    "Discussion": _discussion,
    "Greeting": _greeting,
    "Waiting": _waiting,
    "Walking": _walking,
    "WalkTogether": _walk_together,
    "SittingDown": _sitting_down,
    "Jumping": _jumping,
}


# --------------------------------------------------------------------------- kinematics


def _euler_to_matrix(ang: F64) -> F64:
    """``(..., 3)`` roll, pitch, yaw -> ``(..., 3, 3)`` ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``."""
    cr, sr = np.cos(ang[..., 0]), np.sin(ang[..., 0])
    cp, sp = np.cos(ang[..., 1]), np.sin(ang[..., 1])
    cy, sy = np.cos(ang[..., 2]), np.sin(ang[..., 2])
    r = np.empty((*ang.shape[:-1], 3, 3))
    r[..., 0, 0] = cy * cp
    r[..., 0, 1] = cy * sp * sr - sy * cr
    r[..., 0, 2] = cy * sp * cr + sy * sr
    r[..., 1, 0] = sy * cp
    r[..., 1, 1] = sy * sp * sr + cy * cr
    r[..., 1, 2] = sy * sp * cr - cy * sr
    r[..., 2, 0] = -sp
    r[..., 2, 1] = cp * sr
    r[..., 2, 2] = cp * cr
    return r


def _forward_kinematics(ang: F64, offsets: F64) -> F64:
    """Joint positions ``(N, 17, 3)`` relative to the root, world-oriented.

    ``pos[j] = pos[parent] + G[parent] @ offsets[j]``, ``G[j] = G[parent] @ R_local[j]``.
    Rotations preserve lengths, so bone lengths equal ``|offsets[j]|`` exactly.
    """
    rot = _euler_to_matrix(ang)  # (N, 17, 3, 3)
    glob = np.empty_like(rot)
    pos = np.zeros((*ang.shape[:1], NUM_JOINTS, 3))
    glob[:, 0] = rot[:, 0]
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        pos[:, j] = pos[:, p] + glob[:, p] @ offsets[j]
        glob[:, j] = glob[:, p] @ rot[:, j]
    return pos


def _soft_min(a: F64, b: F64, tau: float = 0.015) -> F64:
    m = np.minimum(a, b)
    out: F64 = m - tau * np.log(np.exp(-(a - m) / tau) + np.exp(-(b - m) / tau))
    return out


def _place(m: _Motion, body: _Body) -> F64:
    """World positions ``(N, 17, 3)`` (metres, z up) of a motion."""
    rel = _forward_kinematics(m.ang, body.offsets)  # (N, 17, 3)
    feet = rel[:, [_RANK, _LANK]]  # (N, 2, 3)
    z = body.ankle_height + m.lift - _soft_min(feet[:, 0, 2], feet[:, 1, 2])  # (N,)
    xy = m.anchor if m.anchor_is_pelvis else m.anchor - feet[:, :, :2].mean(axis=1)
    root = np.concatenate([xy, z[:, None]], axis=1)  # (N, 3)
    out: F64 = rel + root[:, None, :]
    return out


def synthetic_take_world(subject: str, action: str, take: int = 0, seed: int = 0, frames: int = 600) -> F64:
    """World-space 3D motion ``(frames, 17, 3)`` (metres, z up) of one synthetic take.

    Args:
        subject: subject id (sets the skeleton and style).
        action: one of :data:`ACTION_TYPES`.
        take: take index (0 -> ``"Walking"``, 1 -> ``"Walking 1"``).
        seed: generator seed.
        frames: number of frames at :data:`FPS`.
    """
    if action not in _ACTIONS:
        raise ValueError(f"unknown synthetic action {action!r}; choose from {ACTION_TYPES}")
    if frames < 2:
        raise ValueError("frames must be >= 2")
    body = _subject_body(subject, seed)
    rng = np.random.default_rng([seed, _stable_id(subject), _stable_id(action), take])
    t = np.arange(frames, dtype=np.float64) / FPS
    return _place(_ACTIONS[action](t, rng, body), body)


# --------------------------------------------------------------------------- 2D + noise


def _moving_average(x: F64, k: int) -> F64:
    """Centred moving average of width ``k`` along axis 0 (edge-padded)."""
    pad = np.pad(x, [(k // 2, k - 1 - k // 2)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    c = np.cumsum(pad, axis=0)
    c = np.concatenate([np.zeros_like(c[:1]), c], axis=0)
    out: F64 = (c[k:] - c[:-k]) / k
    return out


def _detector_noise(rng: np.random.Generator, uv_px: F64) -> tuple[F64, npt.NDArray[np.float32]]:
    """Add detector-like errors to pixel keypoints ``(N, 17, 2)``; returns (uv, confidence)."""
    n = uv_px.shape[0]
    sigma = rng.uniform(2.0, 4.0)
    joint_scale = np.ones(NUM_JOINTS)
    joint_scale[[_RANK, _LANK, _HEAD, _LWRI, _RWRI]] = 1.5
    jitter = rng.normal(size=(n, NUM_JOINTS, 2)) * sigma * joint_scale[None, :, None]
    # slow drift: smoothed random walk, ~1.5 px
    drift = _moving_average(np.cumsum(rng.normal(size=(n, NUM_JOINTS, 2)), axis=0), 25)
    drift -= drift.mean(axis=0, keepdims=True)
    drift *= 1.5 / max(float(drift.std()), 1e-9)
    out = uv_px + jitter + drift
    conf = np.clip(0.92 + 0.03 * rng.normal(size=(n, NUM_JOINTS)), 0.5, 1.0)
    conf -= 0.04 * np.linalg.norm(jitter, axis=-1) / sigma / joint_scale
    # outlier bursts: a few frames of a large offset, or a left/right swap
    swap = dict(zip(JOINTS_LEFT + JOINTS_RIGHT, JOINTS_RIGHT + JOINTS_LEFT, strict=True))
    n_bursts = rng.poisson(0.004 * n * NUM_JOINTS / 3.0)
    for _ in range(int(n_bursts)):
        j = int(rng.integers(NUM_JOINTS))
        f0 = int(rng.integers(n))
        f1 = min(n, f0 + int(rng.integers(1, 7)))
        if j in swap and rng.random() < 0.3:
            out[f0:f1, j] = uv_px[f0:f1, swap[j]] + jitter[f0:f1, j]
        else:
            ang = rng.uniform(0, 2 * np.pi)
            out[f0:f1, j] += rng.uniform(15.0, 70.0) * np.array([np.cos(ang), np.sin(ang)])
        conf[f0:f1, j] = rng.uniform(0.05, 0.4, size=f1 - f0)
    return out, np.clip(conf, 0.0, 1.0).astype(np.float32)


def _camera_sequences(
    subject: str, take_label: str, world: F64, noise: NoiseMode, rng_seed: list[int]
) -> list[Sequence]:
    seqs: list[Sequence] = []
    for cam, (intr, extr) in enumerate(zip(INTRINSICS, EXTRINSICS[subject], strict=True)):
        xc = world_to_camera(world, extr.quaternion, extr.translation_m)  # (N, 17, 3)
        uv = project_to_2d(xc, intr.normalized_intrinsic())  # (N, 17, 2) normalised
        conf = None
        if noise == "detector":
            rng = np.random.default_rng([*rng_seed, cam, 45])
            px, conf = _detector_noise(rng, image_coordinates(uv, intr.res_w, intr.res_h))
            uv = normalize_screen_coordinates(px, intr.res_w, intr.res_h)
        pos = xc - xc[:, :1]  # root-relative, root zeroed (as the real-data pipeline)
        seqs.append(
            Sequence(
                subject=subject,
                action=take_label,
                camera=cam,
                keypoints_2d=uv.astype(np.float32),
                positions_3d=pos.astype(np.float32),
                confidence=conf,
            )
        )
    return seqs


# --------------------------------------------------------------------------- dataset + cache


def _params(
    seed: int,
    frames: int,
    train: SequenceABC[str],
    test: SequenceABC[str],
    noise: str,
    actions: SequenceABC[str],
    takes: int,
) -> dict[str, object]:
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "frames_per_sequence": int(frames),
        "subjects_train": list(train),
        "subjects_test": list(test),
        "noise": noise,
        "actions": list(actions),
        "takes": int(takes),
    }


def cache_path(cache_dir: str | os.PathLike[str], params: dict[str, object]) -> Path:
    """Cache file ``<cache_dir>/synthetic_h36m_<sha256(params)[:16]>.npz``."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"synthetic_h36m_{digest}.npz"


def _key(kind: str, s: Sequence) -> str:
    return f"{kind}|{s.subject}|{s.action}|{s.camera}"


def _save(path: Path, params: dict[str, object], train: list[Sequence], test: list[Sequence]) -> None:
    arrays: dict[str, np.ndarray] = {
        "meta|params": np.array(json.dumps(params, sort_keys=True)),
        "meta|train": np.array([_key("seq", s) for s in train], dtype=np.str_),
        "meta|test": np.array([_key("seq", s) for s in test], dtype=np.str_),
    }
    for s in train + test:
        arrays[_key("kp2d", s)] = s.keypoints_2d
        arrays[_key("pos3d", s)] = s.positions_3d
        if s.confidence is not None:
            arrays[_key("conf", s)] = s.confidence
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path, params: dict[str, object]) -> tuple[list[Sequence], list[Sequence]] | None:
    """Sequences from a cache file, or None if it is unreadable or for other parameters."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if json.loads(str(z["meta|params"])) != json.loads(json.dumps(params, sort_keys=True)):
                return None

            def seqs(which: str) -> list[Sequence]:
                out = []
                for name in z[f"meta|{which}"].tolist():
                    _, subject, action, cam = name.split("|")
                    tail = f"|{subject}|{action}|{cam}"
                    conf_key = "conf" + tail
                    out.append(
                        Sequence(
                            subject=subject,
                            action=action,
                            camera=int(cam),
                            keypoints_2d=z["kp2d" + tail],
                            positions_3d=z["pos3d" + tail],
                            confidence=z[conf_key] if conf_key in z.files else None,
                        )
                    )
                return out

            return seqs("train"), seqs("test")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def make_synthetic_h36m(
    seed: int = 0,
    frames_per_sequence: int = 600,
    subjects_train: SequenceABC[str] = ("S1", "S5", "S6", "S7", "S8"),
    subjects_test: SequenceABC[str] = ("S9", "S11"),
    noise: NoiseMode = "none",
    cache_dir: str | os.PathLike[str] | None = None,
    actions: SequenceABC[str] = ACTION_TYPES,
    takes: int = 2,
) -> PoseDataset:
    """Generate (or load from cache) the synthetic Human3.6M-like dataset.

    Args:
        seed: generator seed; the same seed gives identical arrays.
        frames_per_sequence: frames per take (50 fps), same for every take.
        subjects_train: training subjects; must have Human3.6M camera extrinsics.
        subjects_test: test subjects, disjoint from the training ones.
        noise: ``"none"`` (exact GT 2D, confidence None) or ``"detector"`` (jitter,
            outliers, confidence).
        cache_dir: if given, the dataset is read from / written to a ``.npz`` there.
        actions: action types (subset of :data:`ACTION_TYPES`).
        takes: takes per action (labels ``"A"``, ``"A 1"``, ``"A 2"``...).

    Returns:
        a :class:`PoseDataset` with one :class:`Sequence` per (subject, take, camera),
        ordered by subject, action, take, camera.
    """
    if noise not in ("none", "detector"):
        raise ValueError(f"noise must be 'none' or 'detector', got {noise!r}")
    overlap = set(subjects_train) & set(subjects_test)
    if overlap:
        raise ValueError(f"subjects in both train and test: {sorted(overlap)}")
    for s in list(subjects_train) + list(subjects_test):
        if s not in EXTRINSICS:
            raise ValueError(f"subject {s!r} has no Human3.6M cameras; use {sorted(EXTRINSICS)}")
    unknown = [a for a in actions if a not in _ACTIONS]
    if unknown:
        raise ValueError(f"unknown synthetic actions {unknown}; choose from {ACTION_TYPES}")
    if takes < 1 or frames_per_sequence < 2:
        raise ValueError("takes must be >= 1 and frames_per_sequence >= 2")
    params = _params(seed, frames_per_sequence, subjects_train, subjects_test, noise, actions, takes)
    path = None if cache_dir is None else cache_path(cache_dir, params)
    loaded = None if path is None or not path.is_file() else _load(path, params)
    if loaded is not None:
        train, test = loaded
    else:

        def build(subjects: SequenceABC[str]) -> list[Sequence]:
            out: list[Sequence] = []
            for subject in subjects:
                for action in actions:
                    for take in range(takes):
                        label = action if take == 0 else f"{action} {take}"
                        world = synthetic_take_world(subject, action, take, seed, frames_per_sequence)
                        rng_seed = [seed, _stable_id(subject), _stable_id(action), take]
                        out.extend(_camera_sequences(subject, label, world, noise, rng_seed))
            return out

        train, test = build(subjects_train), build(subjects_test)
        if path is not None:
            _save(path, params, train, test)
    return PoseDataset(
        name="synthetic-h36m",
        train=tuple(train),
        test=tuple(test),
        fps=FPS,
        joints_left=JOINTS_LEFT,
        joints_right=JOINTS_RIGHT,
        notes=(
            f"synthetic Human3.6M-like data, generator v{GENERATOR_VERSION}, seed {seed}, "
            f"{frames_per_sequence} frames/take, 2D noise {noise}; procedural motion, absolute "
            "errors not comparable with real Human3.6M (see bench.data.synthetic)"
        ),
    )
