"""backbones.layers: the optimised layers equal their reference (official-layout) computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backbones import create_backbone, get_backbone_spec
from backbones.layers import TokenConv1d
from backbones.mhformer import MHFormer
from backbones.strided import StridedFeedForward, StridedTransformer


def reference_conv(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """The official layout: Conv1d on (B, C_in, F), back to tokens (B, F', C_out)."""
    return F.conv1d(x.transpose(1, 2), conv.weight, conv.bias, conv.stride, conv.padding).transpose(1, 2)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), [(1, 1, 0), (3, 3, 1), (3, 9, 1), (3, 13, 1), (3, 1, 1), (3, 2, 0), (5, 3, 2)]
)
@pytest.mark.parametrize("frames", [1, 2, 5, 13, 39, 117])
def test_token_conv_equals_conv1d(kernel: int, stride: int, padding: int, frames: int) -> None:
    if frames + 2 * padding < kernel:
        pytest.skip("no output frame")
    torch.manual_seed(frames * 31 + stride)
    conv = TokenConv1d(12, 7, kernel, stride=stride, padding=padding).double()
    x = torch.randn(3, frames, 12, dtype=torch.float64)
    with torch.no_grad():
        got, want = conv(x), reference_conv(conv, x)
    assert got.shape == want.shape == (3, (frames + 2 * padding - kernel) // stride + 1, 7)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_token_conv_keeps_the_conv1d_state_dict_and_gradients() -> None:
    torch.manual_seed(0)
    conv = TokenConv1d(8, 4, 3, stride=3, padding=1)
    plain = nn.Conv1d(8, 4, 3, stride=3, padding=1)
    assert isinstance(conv, nn.Conv1d)
    assert [(k, v.shape) for k, v in conv.state_dict().items()] == [(k, v.shape) for k, v in plain.state_dict().items()]
    plain.load_state_dict(conv.state_dict())
    x = torch.randn(2, 10, 8, requires_grad=True)
    conv(x).square().sum().backward()
    g_tokens = (conv.weight.grad, x.grad)
    x2 = x.detach().clone().requires_grad_(True)
    plain(x2.transpose(1, 2)).transpose(1, 2).square().sum().backward()
    torch.testing.assert_close(g_tokens[0], plain.weight.grad)
    torch.testing.assert_close(g_tokens[1], x2.grad)


@pytest.mark.parametrize("preset", sorted(get_backbone_spec("strided").presets))
def test_strided_ste_ffn_equals_the_conv_path_at_every_preset(preset: str) -> None:
    torch.manual_seed(0)
    model = create_backbone("strided", preset).eval()
    assert isinstance(model, StridedTransformer)
    ffns = [m for m in model.modules() if isinstance(m, StridedFeedForward)]
    assert len(ffns) == len(model.stride_num)
    length = model.frames
    for ffn, stride in zip(ffns, model.stride_num):
        for frames in sorted({length, max(1, length // 3), 1}):  # the full length and pruned ones
            x = torch.randn(2, frames, model.token_dim)
            with torch.no_grad():
                want = reference_conv(ffn.w_2, torch.relu(reference_conv(ffn.w_1, x)))
                got = ffn(x)
            assert got.shape == (2, (frames - 1) // stride + 1, model.token_dim)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        length = (length - 1) // stride + 1


@pytest.mark.parametrize("preset", sorted(get_backbone_spec("mhformer").presets))
def test_mhformer_embedding_equals_the_conv_path_at_every_preset(preset: str) -> None:
    """MHG -> embeddings -> position: the token-layout GEMMs and the cat equal Conv1d + stack bitwise."""
    torch.manual_seed(0)
    model = create_backbone("mhformer", preset).eval()
    assert isinstance(model, MHFormer)
    th = model.Transformer_hypothesis
    with torch.no_grad():
        for p in (th.pos_embed_1, th.pos_embed_2, th.pos_embed_3):
            p.normal_()  # zero-initialised: give the position step something to add
        x = torch.randn(2, model.frames, 17, 2)
        hypotheses = model.mhg(x)
        embeddings = (model.embedding_1, model.embedding_2, model.embedding_3)
        es = []
        for emb, h in zip(embeddings, hypotheses):
            conv = emb if isinstance(emb, nn.Conv1d) else emb[0]
            y = F.conv1d(h, conv.weight, conv.bias)  # (B, C, F), the official layout
            if not isinstance(emb, nn.Conv1d):
                y = emb[2](emb[1](y))  # BatchNorm1d, ReLU (F <= 27)
            es.append(y.transpose(1, 2))
        want = torch.stack([pos + e for pos, e in zip((th.pos_embed_1, th.pos_embed_2, th.pos_embed_3), es)], dim=2)
        got = model.embed(x)
    assert got.shape == (2, model.frames, 3, model.token_dim) and got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
