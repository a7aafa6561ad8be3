"""Memory layout and cheap-but-equivalent rewrites inside the backbones (issue 4, model speed).

The backbones avoid hidden copies: a strided token view (what ``reshape`` returns at batch 1 after a
transpose) makes every LayerNorm copy it again and every Linear read strided rows. These tests pin
where tokens must be contiguous, and that the rewrites (MaxPool1d(1, s) as a slice, the two-pass
custom LayerNorm, the position step of MHFormer) compute exactly what the official layers compute.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch import Tensor, nn

from backbones import create_backbone
from backbones.base import PoseBackbone
from backbones.mhformer_blocks import HypothesisTransformer
from backbones.strided import LayerNorm, SublayerConnection


def build(name: str) -> PoseBackbone:
    model = create_backbone(name, "tiny").eval()
    assert isinstance(model, PoseBackbone)
    return model


def strided_norm_inputs(model: nn.Module, x: Tensor) -> Counter[str]:
    """Names of the LayerNorms (torch's and StridedTransformer's) that received a non-contiguous input."""
    seen: Counter[str] = Counter()
    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.LayerNorm, LayerNorm)):

            def hook(_: nn.Module, args: tuple[Tensor, ...], name: str = name) -> None:
                if not args[0].is_contiguous():
                    seen[name] += 1

            handles.append(mod.register_forward_pre_hook(hook))
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.mark.parametrize("batch", [1, 3])
def test_mixste_blocks_see_contiguous_tokens(batch: int) -> None:
    model = build("mixste")
    seen = strided_norm_inputs(model, torch.randn(batch, model.frames, 17, 2))
    assert set(seen) <= {"head.0"}, seen  # only the head's norm reads the (B, F, J, C) view of the last block


@pytest.mark.parametrize("batch", [1, 3])
def test_strided_transformer_layers_see_contiguous_tokens(batch: int) -> None:
    model = build("strided")
    x = torch.randn(batch, model.frames, 17, 2)
    assert model.embed(x).is_contiguous()
    assert not strided_norm_inputs(model, x)


@pytest.mark.parametrize("batch", [1, 3])
def test_mhformer_mhg_sees_contiguous_inputs(batch: int) -> None:
    model = build("mhformer")
    seen = strided_norm_inputs(model, torch.randn(batch, model.frames, 17, 2))
    # the per-hypothesis norms read slices of (B, F, 3, C), as the official code does; nothing else is strided
    assert all(".norm1_" in name or ".norm3_" in name for name in seen), seen
    assert not any(name.startswith("norm_") or "Transformer_encoder" in name for name in seen)


@pytest.mark.parametrize("stride, length", [(3, 27), (3, 28), (9, 351), (13, 13), (2, 1)])
def test_stride_residual_is_maxpool_kernel_one(stride: int, length: int) -> None:
    """The STE residual ``x[:, ::s]`` equals the official ``MaxPool1d(1, s)`` over frames, bit for bit."""
    torch.manual_seed(0)
    sub = SublayerConnection(8, dropout=0.0, stride=stride).eval()
    x = torch.randn(2, length, 8)
    pooled = nn.MaxPool1d(1, stride)(x.transpose(1, 2)).transpose(1, 2)
    out = sub(x, lambda y: torch.zeros_like(y[:, ::stride]))
    assert out.shape == pooled.shape == (2, (length - 1) // stride + 1, 8)
    assert torch.equal(out, pooled)


def official_layernorm(norm: LayerNorm, x: Tensor) -> Tensor:
    """The official formula: ``a_2 * (x - mean) / (std + eps) + b_2`` with ``Tensor.std`` (unbiased)."""
    return norm.a_2 * (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + norm.eps) + norm.b_2


def test_custom_layernorm_two_pass_matches_official_values_and_gradients() -> None:
    torch.manual_seed(3)
    norm = LayerNorm(32).double()
    with torch.no_grad():
        norm.a_2.normal_()
        norm.b_2.normal_()
    x = (torch.randn(3, 5, 32, dtype=torch.float64) * 4 + 2).requires_grad_()
    got, want = norm(x), official_layernorm(norm, x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(got)
    grads = torch.autograd.grad(got, (x, norm.a_2, norm.b_2), g)
    want_grads = torch.autograd.grad(want, (x, norm.a_2, norm.b_2), g)
    for a, b in zip(grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_custom_layernorm_constant_rows_give_the_bias() -> None:
    norm = LayerNorm(16)
    with torch.no_grad():
        norm.b_2.copy_(torch.arange(16.0))
    out = norm(torch.full((2, 3, 16), 7.0))  # std 0: (x - mean) / eps = 0, as the official
    assert torch.equal(out, norm.b_2.detach().expand(2, 3, 16))


@pytest.mark.parametrize("batch", [1, 2])
def test_mhformer_position_step_matches_stack_then_add(batch: int) -> None:
    torch.manual_seed(4)
    th = HypothesisTransformer(depth=2, dim=8, mlp_hidden=16, length=5, heads=2).eval()
    with torch.no_grad():
        for p in (th.pos_embed_1, th.pos_embed_2, th.pos_embed_3):
            p.normal_()
    es = [torch.randn(batch, 8, 5).transpose(1, 2) for _ in range(3)]  # (B, F, C) views of (B, C, F), as embed gives
    out = th.add_position(*es)
    pos = torch.stack([th.pos_embed_1, th.pos_embed_2, th.pos_embed_3], dim=2)
    assert out.shape == (batch, 5, 3, 8) and out.is_contiguous()
    assert torch.equal(out, torch.stack(es, dim=2) + pos)
