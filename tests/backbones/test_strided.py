"""StridedTransformer: official-layout parity, the uniform view, the custom LayerNorm, refine."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

import backbones.strided  # noqa: F401  (registers "strided" until backbones/__init__.py imports it)
from backbones import create_backbone, get_backbone_spec
from backbones.base import PoseBackbone, TokenState
from backbones.strided import LayerNorm, Refine, StridedTransformer
from bench.config import ModelConfig
from bench.measure.flops.core import count_canonical

Layout = list[tuple[str, tuple[int, ...]]]
ReadTsv = Callable[[str], tuple[int, Layout]]

UNUSED = {
    "Transformer.model.norm.a_2",
    "Transformer.model.norm.b_2",
    "Transformer_reduce.model.norm.a_2",
    "Transformer_reduce.model.norm.b_2",
}


def layout(module: torch.nn.Module) -> tuple[int, Layout]:
    n = sum(p.numel() for p in module.parameters())
    return n, [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


@pytest.fixture(scope="module")
def tiny() -> StridedTransformer:
    torch.manual_seed(0)
    model = create_backbone("strided", "tiny")
    assert isinstance(model, StridedTransformer)
    return model


def test_paper_layout_matches_official(tsv: ReadTsv) -> None:
    """Parameters and state-dict keys (names, shapes, registration order) against the official listing."""
    paper = get_backbone_spec("strided").preset("paper")
    assert paper.official_layout is not None
    total, rows = tsv(paper.official_layout)
    with torch.device("meta"):
        model = create_backbone("strided", "paper")
    assert layout(model) == (total, rows)
    assert paper.paper is not None and paper.paper.params == total  # the registry's figure is the listing's


def test_refine_layout_matches_official(tsv: ReadTsv) -> None:
    with torch.device("meta"):
        refine = Refine()
    assert layout(refine) == tsv("strided_351_refine")


def test_spec_agrees_with_the_model() -> None:
    spec = get_backbone_spec("strided")
    assert spec.pipeline == StridedTransformer.pipeline
    for name, preset in spec.presets.items():
        with torch.device("meta"):
            model = create_backbone("strided", name)
        assert (model.frames, model.in_channels, model.token_dim) == (preset.frames, preset.in_channels, preset.dim)


def test_counted_flops_equal_the_published_figures() -> None:
    """FLOPs counted on the model against the registry's published figures (2 decimals, per clip)."""
    paper = get_backbone_spec("strided").preset("paper").paper
    assert paper is not None and paper.gflops_paper is not None and paper.gflops_all_matmul is not None
    gflops, gflops_paper, params = count_canonical(ModelConfig.create("strided", "paper"))
    assert gflops_paper == pytest.approx(paper.gflops_paper, abs=0.005)
    assert gflops == pytest.approx(paper.gflops_all_matmul, abs=0.005)
    assert params == paper.params


def test_view_shape_facts(tiny: StridedTransformer) -> None:
    assert tiny.num_blocks == 6
    assert tiny.aux_block == 2
    assert list(tiny.prune_depths) == [1, 2, 3]
    assert tiny.centre == 13
    assert all(tiny.temporal_attention(i) is not None for i in range(6))
    assert tiny.temporal_attention(0) is tiny.Transformer.model.layers[0].self_attn
    assert tiny.temporal_attention(4) is tiny.Transformer_reduce.model.layers[1].self_attn
    small = create_backbone("strided", "small")
    assert isinstance(small, PoseBackbone) and small.frames == 81


def test_tiny_forward_and_gradients(tiny: StridedTransformer) -> None:
    tiny.train()
    x = torch.randn(2, 27, 17, 2)
    out = tiny.forward_all(x)
    assert out.pose.shape == (2, 1, 17, 3)
    assert out.index.tolist() == [[13], [13]]
    assert out.aux is not None and out.aux.shape == (2, 27, 17, 3)
    assert out.aux_index is not None and torch.equal(out.aux_index[0], torch.arange(27))
    assert torch.isfinite(out.pose).all() and torch.isfinite(out.aux).all()
    tiny.zero_grad(set_to_none=True)
    (out.pose.square().mean() + out.aux.square().mean()).backward()
    no_grad = {n for n, p in tiny.named_parameters() if p.grad is None}
    assert no_grad == UNUSED
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all() for n, p in tiny.named_parameters() if n not in UNUSED
    )
    tiny.eval()
    with torch.no_grad():
        y = tiny(x)
        again = tiny.forward_all(x).pose
    assert y.shape == (2, 1, 17, 3)
    assert torch.equal(y, again)


def test_block_lengths_and_frame_index(tiny: StridedTransformer) -> None:
    tiny.eval()
    tokens = torch.randn(1, 27, 1, 32)
    frame_index = torch.arange(27).unsqueeze(0)
    with torch.no_grad():
        for i in range(6):
            tokens = tiny.block(i, tokens)
            frame_index = tiny.block_frame_index(i, frame_index)
            assert tokens.shape[1] == frame_index.shape[1]
    assert frame_index[0].tolist() == [0]
    assert tokens.shape == (1, 1, 1, 32)


@pytest.mark.parametrize("length", [9, 13, 20, 1])
def test_ste_on_pruned_tokens(tiny: StridedTransformer, length: int) -> None:
    tiny.eval()
    tokens = torch.randn(2, length, 1, 32)
    with torch.no_grad():
        for i in range(3, 6):
            expected = (tokens.shape[1] - 1) // tiny.stride_num[i - 3] + 1
            tokens = tiny.block(i, tokens)
            assert tokens.shape == (2, expected, 1, 32)
    assert tokens.shape[1] == 1


class KeepEveryThird:
    """A minimal token schedule: keep frames 1, 4, ..., 25 (9 of 27) before block ``k``."""

    keep_centre = False

    def __init__(self, k: int) -> None:
        self.k = k

    def before_block(self, model: PoseBackbone, i: int, state: TokenState) -> None:
        if i == self.k:
            keep = torch.arange(1, state.frames, 3)
            state.tokens = state.tokens[:, keep]
            state.frame_index = state.frame_index[:, keep]
            state.kept.append(keep.expand(state.tokens.shape[0], -1))

    def before_head(self, model: PoseBackbone, state: TokenState) -> None:
        return None

    def after_head(self, model: PoseBackbone, pose: Tensor, index: Tensor, state: TokenState) -> tuple[Tensor, Tensor]:
        return pose, index


@pytest.mark.parametrize("k", [1, 3])
def test_pruned_forward_gives_one_centre_row(tiny: StridedTransformer, k: int) -> None:
    tiny.eval()
    tiny.hourglass = KeepEveryThird(k)
    try:
        with torch.no_grad():
            out = tiny.forward_all(torch.randn(2, 27, 17, 2))
            y = tiny(torch.randn(2, 27, 17, 2))
    finally:
        tiny.hourglass = None
    assert out.pose.shape == (2, 1, 17, 3) and out.index.tolist() == [[13], [13]]
    assert out.aux is not None and out.aux.shape[1] == (9 if k < 3 else 27)
    assert len(out.kept) == 1 and out.kept[0].shape == (2, 9)
    assert y.shape == (2, 1, 17, 3)


def test_custom_layernorm_matches_hand_computation() -> None:
    torch.manual_seed(1)
    norm = LayerNorm(16)
    with torch.no_grad():
        norm.a_2.normal_()
        norm.b_2.normal_()
    x = torch.randn(4, 7, 16) * 3 + 1
    mean = x.sum(-1, keepdim=True) / 16
    std = ((x - mean).square().sum(-1, keepdim=True) / 15).sqrt()  # unbiased
    expected = norm.a_2 * (x - mean) / (std + 1e-6) + norm.b_2
    got = norm(x).detach()
    torch.testing.assert_close(got, expected.detach(), rtol=1e-5, atol=1e-5)
    standard = torch.nn.functional.layer_norm(x, (16,), norm.a_2, norm.b_2, eps=1e-6).detach()
    assert (got - standard).abs().max() > 1e-2  # not nn.LayerNorm (biased std, eps inside the root)


def test_refine_blends_xy_and_keeps_depth() -> None:
    torch.manual_seed(2)
    refine = Refine().eval()
    x, x_1 = torch.randn(3, 1, 17, 3), torch.randn(3, 1, 17, 3)
    with torch.no_grad():
        out = refine(x, x_1)
    assert out.shape == (3, 1, 17, 3)
    assert torch.equal(out[..., 2], x[..., 2])
    lo, hi = torch.minimum(x[..., :2], x_1[..., :2]), torch.maximum(x[..., :2], x_1[..., :2])
    assert bool(((out[..., :2] >= lo - 1e-6) & (out[..., :2] <= hi + 1e-6)).all())
    with torch.device("meta"):
        meta_out = Refine()(torch.empty(1, 1, 17, 3), torch.empty(1, 1, 17, 3))
    assert meta_out.shape == (1, 1, 17, 3)
    refine.train()
    refine(x, x_1).sum().backward()  # the official in-place dropout would fail here
    assert all(p.grad is not None for p in refine.parameters())


@pytest.mark.parametrize("strides", [(3, 3, 4), (3, 3, 2), (27, 0, 1)])
def test_bad_strides_raise(strides: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="stride_num"):
        StridedTransformer(frames=27, channel=32, d_hid=64, stride_num=strides, heads=4)
    with pytest.raises(ValueError, match="stride_num"):
        create_backbone("strided", "tiny", stride_num=strides)
