"""Golden values for the protocol metrics and the action-wise / frame-wise averages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.measure.metrics import ActionAccumulator, mpjpe, mpjve, n_mpjpe, p_mpjpe, root_relative


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def test_mpjpe_two_joint_toy():
    target = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    pred = torch.tensor([[0.0, 0.0, 0.0], [4.0, 4.0, 0.0]])  # errors 0 and |(3, 4, 0)| = 5
    assert mpjpe(pred, target).item() == pytest.approx(2.5)
    batch_p = torch.stack([pred, target])  # (2 frames, 2 joints, 3)
    batch_t = torch.stack([target, target])
    per_frame = mpjpe(batch_p, batch_t, per_frame=True)
    assert per_frame.shape == (2,)
    np.testing.assert_allclose(per_frame.numpy(), [2.5, 0.0])
    assert mpjpe(batch_p, batch_t).item() == pytest.approx(1.25)
    # numpy accepted, float64 kept
    out = mpjpe(batch_p.numpy().astype(np.float64), batch_t.numpy().astype(np.float64))
    assert out.dtype == torch.float64 and out.item() == pytest.approx(1.25)
    with pytest.raises(ValueError):
        mpjpe(torch.zeros(2, 17, 3), torch.zeros(2, 16, 3))


def test_perfect_prediction_is_zero_everywhere():
    x = torch.randn(2, 9, 17, 3, generator=torch.Generator().manual_seed(0))
    for metric in (mpjpe, p_mpjpe, n_mpjpe, mpjve):
        assert metric(x, x).item() == pytest.approx(0.0, abs=1e-5), metric.__name__
    assert mpjpe(x, x, per_frame=True).shape == (2, 9)


def test_p_mpjpe_of_similarity_transformed_copy_is_zero():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(5, 17, 3))  # (frames, joints, 3)
    pred = np.stack(
        [2.7 * t @ random_rotation(rng).T + rng.normal(size=3) * 4 for t in target]
    )  # a different similarity per frame
    assert mpjpe(pred, target).item() > 1.0
    err = p_mpjpe(torch.as_tensor(pred, dtype=torch.float32), torch.as_tensor(target, dtype=torch.float32))
    assert err.item() == pytest.approx(0.0, abs=1e-4)
    assert p_mpjpe(pred, target, per_frame=True).shape == (5,)


def umeyama_error(pred: np.ndarray, target: np.ndarray) -> float:
    """Reference for one frame: Umeyama's (1991) closed form, written independently."""
    mu_p, mu_t = pred.mean(0), target.mean(0)
    p0, t0 = pred - mu_p, target - mu_t
    cov = t0.T @ p0 / len(pred)
    u, d, vt = np.linalg.svd(cov)
    s = np.diag([1.0, 1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rot = u @ s @ vt
    scale = np.trace(np.diag(d) @ s) / (p0**2).sum(1).mean()
    aligned = scale * p0 @ rot.T + mu_t
    return float(np.linalg.norm(aligned - target, axis=1).mean())


def test_p_mpjpe_matches_reference_and_fixes_reflections():
    rng = np.random.default_rng(1)
    target = rng.normal(size=(6, 17, 3))
    pred = 1.4 * target + 0.3 * rng.normal(size=(6, 17, 3))
    pred[2] = pred[2] * np.array([-1.0, 1.0, 1.0])  # a mirrored frame
    got = p_mpjpe(pred, target, per_frame=True).numpy()
    want = [umeyama_error(p, t) for p, t in zip(pred, target, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    assert p_mpjpe(pred, target).item() == pytest.approx(np.mean(want))
    # a reflection is not a rotation: a mirrored copy cannot be aligned to zero error
    mirrored = target[0] * np.array([-1.0, 1.0, 1.0])
    assert p_mpjpe(mirrored, target[0]).item() > 0.1
    # invariant to a similarity transform of the prediction, better than centring alone
    best = p_mpjpe(pred[0], target[0]).item()
    moved = 0.5 * pred[0] @ random_rotation(rng).T + 3.0
    assert p_mpjpe(moved, target[0]).item() == pytest.approx(best, abs=1e-6)
    assert best < mpjpe(pred[0] - pred[0].mean(0), target[0] - target[0].mean(0)).item()


def test_n_mpjpe_scale_only():
    rng = np.random.default_rng(2)
    target = rng.normal(size=(4, 17, 3))
    assert n_mpjpe(3.0 * target, target).item() == pytest.approx(0.0, abs=1e-6)
    # hand-computed: s = mean<t, p> / mean|p|^2 = (2 / 2) / (4 / 2) = 0.5 -> errors 0 and 1
    target2 = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    pred2 = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert n_mpjpe(pred2, target2).item() == pytest.approx(0.5)
    # scale does not fix a rotation
    rotated = target[0] @ random_rotation(rng).T
    assert n_mpjpe(rotated, target[0]).item() > 0.1


def test_mpjve_constant_offset_is_zero_and_drift_is_its_speed():
    rng = np.random.default_rng(3)
    target = rng.normal(size=(10, 17, 3))
    assert mpjve(target + np.array([5.0, -2.0, 1.0]), target).item() == pytest.approx(0.0, abs=1e-9)
    drift = np.arange(10)[:, None, None] * np.array([0.3, 0.4, 0.0])  # |velocity| = 0.5 per frame
    assert mpjve(target + drift, target).item() == pytest.approx(0.5)
    assert mpjve(target + drift, target, per_frame=True).shape == (9,)
    batched = np.stack([target, target])  # (2, 10, 17, 3): time is the axis before joints
    assert mpjve(batched + drift, batched, per_frame=True).shape == (2, 9)
    time_first = np.moveaxis(batched, 0, 1)  # (10, 2, 17, 3)
    assert mpjve(time_first + drift[:, None], time_first, time_dim=0).item() == pytest.approx(0.5)
    with pytest.raises(ValueError):
        mpjve(target[:1], target[:1])


def test_root_relative_zeroes_the_root():
    x = torch.arange(2 * 17 * 3, dtype=torch.float32).reshape(2, 17, 3)
    r = root_relative(x)
    assert torch.all(r[:, 0] == 0)
    assert torch.equal(r[:, 5], x[:, 5] - x[:, 0])
    assert torch.all(root_relative(x, root=3)[:, 3] == 0)


def test_action_wise_and_frame_wise_differ_on_unbalanced_actions():
    acc = ActionAccumulator()
    acc.add(torch.tensor([1.0, 1.0, 1.0]), "Walking")
    acc.add(np.array([4.0]), "Walking 1")  # same group as Walking
    acc.add(torch.tensor([[10.0, 10.0]]), ["Sitting 1"])  # one clip of two frames
    assert acc.per_action() == {"Sitting": 10.0, "Walking": pytest.approx(7.0 / 4.0)}
    assert acc.action_wise() == pytest.approx((10.0 + 1.75) / 2)  # 5.875
    assert acc.frame_wise() == pytest.approx((3.0 + 4.0 + 20.0) / 6)  # 4.5
    assert acc.num_frames == 6


def test_action_accumulator_mask_and_per_row_actions():
    acc = ActionAccumulator()
    errors = torch.tensor([[1.0, 2.0, 99.0], [3.0, 3.0, 3.0]])  # (clips, T)
    valid = torch.tensor([[True, True, False], [True, True, True]])  # padded frame excluded
    acc.add(errors, ["Greeting", "Eating 2"], mask=valid)
    assert acc.per_action() == {"Eating": 3.0, "Greeting": 1.5}
    assert acc.action_wise() == pytest.approx(2.25)
    assert acc.frame_wise() == pytest.approx(12.0 / 5)
    with pytest.raises(ValueError):
        acc.add(errors, ["only one"])
    with pytest.raises(ValueError):
        ActionAccumulator().action_wise()
