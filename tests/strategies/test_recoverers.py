"""Recoverers: interpolation is exact on linear signals; TRA has HoT's parameters and learns its queries."""

from __future__ import annotations

import pytest
import torch

from strategies import create_recoverer
from strategies.recoverers import interpolate_frames

T = 27


def linear_signal(frames: torch.Tensor) -> torch.Tensor:
    """(B, n) frame numbers -> (B, n, 17, 3) poses that are linear in time, different per joint."""
    slope = torch.linspace(-1, 1, 17 * 3).view(17, 3)
    offset = torch.arange(17 * 3, dtype=torch.float32).view(17, 3)
    return offset + slope * frames[..., None, None].float()


def test_interpolation_recovers_a_linear_signal_exactly():
    kept = torch.tensor([[0, 4, 5, 13, 20, 26], [0, 1, 2, 10, 25, 26]])  # first and last frame kept
    rec = create_recoverer("interpolation", T, 32)
    pose, index = rec.recover_pose(linear_signal(kept), kept)
    full = torch.arange(T).expand(2, T)
    assert pose.shape == (2, T, 17, 3) and torch.equal(index, full)
    torch.testing.assert_close(pose, linear_signal(full), rtol=0, atol=1e-5)
    torch.testing.assert_close(pose[:, kept[0]][0], linear_signal(kept)[0], rtol=0, atol=0)  # kept rows unchanged


def test_interpolation_holds_the_ends_and_nearest_mode():
    kept = torch.tensor([[5, 9, 20]])
    values = torch.tensor([[[1.0], [3.0], [-1.0]]])  # (1, 3, 1)
    out = interpolate_frames(values, kept, 24)[0, :, 0]
    assert out[:6].tolist() == [1.0] * 6 and out[20:].tolist() == [-1.0] * 4  # ends held constant
    assert out[7].item() == pytest.approx(2.0)  # halfway between frames 5 and 9
    near = interpolate_frames(values, kept, 24, "nearest")[0, :, 0]
    assert near[7].item() == 1.0 and near[8].item() == 3.0  # 7 is equidistant: the earlier kept frame
    assert near[14].item() == 3.0 and near[15].item() == -1.0
    single = interpolate_frames(values[:, :1], kept[:, :1], 4)  # one kept frame: copied everywhere
    assert single.flatten().tolist() == [1.0] * 4


def test_interpolation_is_parameter_free():
    assert sum(p.numel() for p in create_recoverer("interpolation", T, 32).parameters()) == 0
    with pytest.raises(ValueError, match="interpolation mode"):
        interpolate_frames(torch.zeros(1, 2, 1), torch.tensor([[0, 1]]), 3, "cubic")  # type: ignore[arg-type]


def test_tra_parameters_match_hot():
    rec = create_recoverer("attention", 243, 512)
    shapes = {k: tuple(v.shape) for k, v in rec.state_dict().items()}
    assert shapes == {
        "x_token": (1, 243, 512),
        **{f"cross_attention.linear_{x}.weight": (512, 512) for x in "qkv"},
        **{f"cross_attention.linear_{x}.bias": (512,) for x in "qkv"},
        "cross_attention.proj.weight": (512, 512),
        "cross_attention.proj.bias": (512,),
    }
    assert sum(p.numel() for p in rec.parameters()) == 243 * 512 + 4 * (512 * 512 + 512)
    assert torch.count_nonzero(rec.x_token) == 0  # zero-initialised queries


def test_tra_recovers_t_tokens_and_gets_gradients_into_its_queries():
    rec = create_recoverer("attention", T, 32, heads=4, init_std=0.02)
    kept = torch.randn(2, 9, 5, 32, requires_grad=True)  # (B, n, N, C)
    out = rec.recover_features(kept, torch.arange(9).expand(2, 9))
    assert out.shape == (2, T, 5, 32)
    (out * torch.randn_like(out)).sum().backward()
    assert rec.x_token.grad is not None and float(rec.x_token.grad.abs().sum()) > 0
    assert float(rec.cross_attention.linear_v.weight.grad.abs().sum()) > 0  # (k gets none while x_token = 0)
    assert kept.grad is not None and float(kept.grad.abs().sum()) > 0


def test_tra_rows_are_independent():
    # each token row (joint) attends only over its own kept tokens
    rec = create_recoverer("attention", T, 16, heads=2).eval()
    with torch.no_grad():
        rec.x_token.normal_()
    kept = torch.randn(1, 6, 3, 16)
    out = rec.recover_features(kept, torch.arange(6)[None])
    kept2 = kept.clone()
    kept2[:, :, 2] = torch.randn(1, 6, 16)  # change row 2 only
    out2 = rec.recover_features(kept2, torch.arange(6)[None])
    torch.testing.assert_close(out[:, :, :2], out2[:, :, :2])
    assert not torch.allclose(out[:, :, 2], out2[:, :, 2])
