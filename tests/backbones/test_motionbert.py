"""MotionBERT DSTformer: parity with the official state-dict layouts, forward, pruned tokens, fusion."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

import backbones.motionbert  # noqa: F401  (registers 'motionbert' before backbones/__init__ does)
from backbones import create_backbone, get_backbone_spec
from backbones.motionbert import Block, DSTformer, attend_frames
from bench.config import ModelConfig
from bench.measure.flops.core import count_canonical

ReadTsv = Callable[[str], tuple[int, list[tuple[str, tuple[int, ...]]]]]


@pytest.mark.parametrize("preset", ["paper", "lite"])
def test_state_dict_parity_with_official(preset: str, tsv: ReadTsv) -> None:
    """Parameters and state-dict keys (names, shapes, registration order) against the official listing."""
    spec = get_backbone_spec("motionbert").preset(preset)
    assert spec.official_layout is not None
    total, rows = tsv(spec.official_layout)  # conftest: skips when the shared listings are absent (fails in CI)
    with torch.device("meta"):
        model = create_backbone("motionbert", preset)
    assert sum(p.numel() for p in model.parameters()) == total
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == rows
    assert spec.paper is not None and spec.paper.params == total  # the registry's figure is the listing's


def test_spec_agrees_with_the_model() -> None:
    spec = get_backbone_spec("motionbert")
    assert spec.pipeline == DSTformer.pipeline
    for name, preset in spec.presets.items():
        with torch.device("meta"):
            model = create_backbone("motionbert", name)
        assert isinstance(model, DSTformer)
        assert (model.frames, model.in_channels, model.token_dim) == (preset.frames, preset.in_channels, preset.dim)
        assert model.num_blocks == preset.depth, name


@pytest.mark.parametrize("preset", ["paper", "lite"])
def test_counted_flops_equal_the_published_figures(preset: str) -> None:
    """FLOPs counted on the model against the registry's published figures (2 decimals, per clip)."""
    paper = get_backbone_spec("motionbert").preset(preset).paper
    assert paper is not None and paper.gflops_paper is not None and paper.gflops_all_matmul is not None
    gflops, gflops_paper, params = count_canonical(ModelConfig.create("motionbert", preset))
    assert gflops_paper == pytest.approx(paper.gflops_paper, abs=0.005)
    assert gflops == pytest.approx(paper.gflops_all_matmul, abs=0.005)
    assert params == paper.params


def tiny_model(seed: int = 0) -> DSTformer:
    torch.manual_seed(seed)
    model = create_backbone("motionbert", "tiny")
    assert isinstance(model, DSTformer)
    return model


def stream(model: DSTformer, name: str, i: int) -> Block:
    blk = getattr(model, name)[i]
    assert isinstance(blk, Block)
    return blk


def fuser(model: DSTformer, i: int) -> nn.Linear:
    assert model.ts_attn is not None
    lin = model.ts_attn[i]
    assert isinstance(lin, nn.Linear)
    return lin


def test_tiny_forward_and_gradients() -> None:
    model = tiny_model()
    x = torch.randn(2, 27, 17, 3)
    out = model(x)
    assert out.shape == (2, 27, 17, 3)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


def test_initialisation() -> None:
    model = tiny_model()
    for i in range(model.num_blocks):
        assert torch.all(fuser(model, i).weight == 0) and torch.all(fuser(model, i).bias == 0.5)
    assert 0.005 < model.temp_embed.std().item() < 0.04
    assert torch.all(stream(model, "blocks_st", 0).attn_s.qkv.bias == 0)
    assert torch.all(model.norm.weight == 1) and model.norm.eps == 1e-6
    assert 0.01 < stream(model, "blocks_ts", 2).mlp_t.fc1.weight.std().item() < 0.03


def test_block_on_pruned_tokens() -> None:
    model = tiny_model().eval()
    with torch.no_grad():
        tokens = model.embed(torch.randn(2, 27, 17, 3))  # (B, 27, J, C)
        assert tokens.shape == (2, 27, 17, 32)
        pruned = tokens[:, ::3]  # (B, 9, J, C)
        out = model.block(1, pruned)
        assert out.shape == (2, 9, 17, 32)
        assert torch.isfinite(out).all()
        # the temporal attention attends over the 9 kept frames: frame 0's output depends on frame 8's input
        attn = model.temporal_attention(1)
        attn.record_attention = True
        model.block(1, pruned)
        assert attn.last_attention is not None and attn.last_attention.shape == (2 * 17, 9, 9)
        attn.record_attention = False
        moved = pruned.clone()
        moved[:, 8] += 1.0
        attn_t = stream(model, "blocks_ts", 1).attn_t
        assert not torch.allclose(attend_frames(attn_t, moved)[:, 0], attend_frames(attn_t, pruned)[:, 0])
        assert model.finalize(out).shape == (2, 9, 17, 32)
        assert model.regress(model.finalize(out)).shape == (2, 9, 17, 3)


def test_initial_fusion_is_mean_of_streams() -> None:
    model = tiny_model().eval()
    with torch.no_grad():
        tokens = model.embed(torch.randn(1, 27, 17, 3))
        x_st = stream(model, "blocks_st", 0)(tokens)
        x_ts = stream(model, "blocks_ts", 0)(tokens)
        assert not torch.allclose(x_st, x_ts)
        torch.testing.assert_close(model.block(0, tokens), (x_st + x_ts) / 2, rtol=1e-5, atol=1e-6)
        # non-trivial fusion weights give a per-token convex combination
        fuser(model, 0).bias.copy_(torch.tensor([2.0, 0.0]))
        w = torch.softmax(torch.tensor([2.0, 0.0]), dim=0)
        torch.testing.assert_close(model.block(0, tokens), w[0] * x_st + w[1] * x_ts, rtol=1e-5, atol=1e-6)


def test_stream_orders_differ() -> None:
    """stage_st applies the spatial pair first, stage_ts the temporal pair first."""
    model = tiny_model().eval()
    blk = stream(model, "blocks_st", 0)
    with torch.no_grad():
        x = model.embed(torch.randn(1, 27, 17, 3))
        torch.testing.assert_close(blk(x), blk.temporal(blk.spatial(x)))
        blk.st_mode = "stage_ts"
        torch.testing.assert_close(blk(x), blk.spatial(blk.temporal(x)))


def test_wrong_frame_count_rejected() -> None:
    model = tiny_model()
    with pytest.raises(ValueError, match="27 frames"):
        model(torch.randn(1, 9, 17, 3))


def test_lite_flops_split_on_meta() -> None:
    """Every Linear runs as one GEMM (addmm) at batch 1, attention as bmm: the split of backbones.md §5.1."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = create_backbone("motionbert", "lite").eval()
        x = torch.randn(1, 243, 17, 3)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    assert counts == {"aten.addmm": 131_094_277_632, "aten.bmm": 10_998_374_400}
