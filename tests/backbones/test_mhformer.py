"""MHFormer: official state-dict parity (meta device), the uniform view, and a tiny CPU forward/backward."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import backbones.mhformer  # noqa: F401  (registers 'mhformer' until backbones/__init__.py imports it)
from backbones import create_backbone, get_backbone_spec
from backbones.base import TokenState
from backbones.mhformer import MHFormer
from bench.config import ModelConfig
from bench.measure.flops.core import count_canonical

Layout = list[tuple[str, tuple[int, ...]]]
ReadTsv = Callable[[str], tuple[int, Layout]]


def _meta(preset: str) -> MHFormer:
    with torch.device("meta"):
        model = create_backbone("mhformer", preset)
    assert isinstance(model, MHFormer)
    return model


def _tiny() -> MHFormer:
    model = create_backbone("mhformer", "tiny")
    assert isinstance(model, MHFormer)
    return model


def _layout(model: torch.nn.Module) -> Layout:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


@pytest.mark.parametrize("preset", ["paper", "paper81"])
def test_official_layout_parity(preset: str, tsv: ReadTsv) -> None:
    """Parameters and state-dict keys (names, shapes, registration order) against the official listing."""
    spec = get_backbone_spec("mhformer").preset(preset)
    assert spec.official_layout is not None
    total, rows = tsv(spec.official_layout)
    model = _meta(preset)
    assert sum(p.numel() for p in model.parameters()) == total
    assert _layout(model) == rows  # same keys, same shapes, same (official registration) order
    assert spec.paper is not None and spec.paper.params == total  # the registry's figure is the listing's


def test_key_set_equals_hot_copy(tsv: ReadTsv) -> None:
    _, rows = tsv("tpc_mhformer_351_n117_k1")
    mine = _layout(_meta("paper"))
    assert set(mine) == set(rows)
    assert mine != rows  # HoT registers embeddings and Transformer_hypothesis first
    assert rows[0][0] == "embedding_1.weight"


def test_spec_agrees_with_the_model() -> None:
    spec = get_backbone_spec("mhformer")
    assert spec.pipeline == MHFormer.pipeline
    for name, preset in spec.presets.items():
        with torch.device("meta"):
            model = create_backbone("mhformer", name)
        assert (model.frames, model.in_channels, model.token_dim) == (preset.frames, preset.in_channels, preset.dim)


@pytest.mark.parametrize("preset", ["paper", "paper81"])
def test_counted_flops_equal_the_published_figures(preset: str) -> None:
    """FLOPs counted on the model against the registry's published figures (2 decimals, per clip)."""
    paper = get_backbone_spec("mhformer").preset(preset).paper
    assert paper is not None and paper.gflops_paper is not None and paper.gflops_all_matmul is not None
    gflops, gflops_paper, params = count_canonical(ModelConfig.create("mhformer", preset))
    assert gflops_paper == pytest.approx(paper.gflops_paper, abs=0.005)
    assert gflops == pytest.approx(paper.gflops_all_matmul, abs=0.005)
    assert params == paper.params


def test_view_structure() -> None:
    model = _meta("paper")
    assert model.pipeline == "seq2frame"
    assert model.num_blocks == 3 and model.n_shr == 2
    assert model.prune_depths == range(1, 3)
    shr = model.Transformer_hypothesis.SHR_blocks
    assert model.temporal_attention(0) is shr[0].attn_1
    assert model.temporal_attention(1) is shr[1].attn_1
    assert model.temporal_attention(2) is None
    assert model.centre == 175


def test_small_embedding_keys_switch_at_27_frames() -> None:
    tiny = _layout(_meta("tiny"))
    keys = [k for k, _ in tiny]
    assert ("embedding_1.0.weight", (64, 34, 1)) in tiny
    assert "embedding_3.1.running_mean" in keys and "embedding_2.1.num_batches_tracked" in keys
    assert "Transformer_encoder_1.blocks.1.mlp.fc2.weight" in keys
    assert "Transformer_encoder_1.blocks.2.norm1.weight" not in keys  # tiny: mhg_depth 2
    small = [k for k, _ in _layout(_meta("small"))]
    assert "embedding_1.weight" in small and "embedding_1.0.weight" not in small


@pytest.mark.parametrize("frames", [30, 26, 100])
def test_frames_not_divisible_by_9(frames: int) -> None:
    with pytest.raises(ValueError, match="divisible by 9"):
        create_backbone("mhformer", "tiny", frames=frames)


def test_tiny_forward_backward() -> None:
    torch.manual_seed(0)
    model = _tiny().train()
    x = torch.randn(2, 27, 17, 2)
    out = model.forward_all(x)
    assert out.pose.shape == (2, 27, 17, 3)
    assert torch.equal(out.index, torch.arange(27).expand(2, 27))
    assert torch.isfinite(out.pose).all()
    out.pose.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    # dropout / drop-path can zero a branch for one draw; with this seed every parameter gets a signal
    zero = [n for n, p in model.named_parameters() if p.grad is not None and not p.grad.abs().sum() > 0]
    assert zero == []
    model.eval()
    with torch.no_grad():
        centre = model(x)
        rows = model.forward_all(x).pose
    assert centre.shape == (2, 1, 17, 3)
    assert torch.isfinite(centre).all()
    torch.testing.assert_close(centre, rows[:, 13:14])


def test_view_pieces_on_pruned_tokens() -> None:
    torch.manual_seed(0)
    model = _tiny().eval()
    x = torch.randn(2, 27, 17, 2)
    with torch.no_grad():
        tokens = model.embed(x)
        assert tokens.shape == (2, 27, 3, 64)
        feats = model.frame_features(tokens)
        assert feats.shape == (2, 27, 192)
        torch.testing.assert_close(feats, torch.cat(tokens.unbind(2), dim=-1))
        t = model.block(0, tokens)
        pruned = t[:, ::3]  # (2, 9, 3, 64)
        for i in range(1, model.num_blocks):
            pruned = model.block(i, pruned)
        assert pruned.shape == (2, 9, 3, 64)
        final = model.finalize(pruned)
        assert final.shape == (2, 9, 3, 64)
        # finalize is LayerNorm over the 3C concatenation: zero mean per frame
        torch.testing.assert_close(final.reshape(2, 9, -1).mean(-1), torch.zeros(2, 9), atol=1e-4, rtol=0)
        pose = model.regress(final)
        assert pose.shape == (2, 9, 17, 3)
        assert torch.isfinite(pose).all()
        # regression output channels are ordered (joint, coordinate): 'b (j c) f -> b f j c'
        raw = model.regression(final.reshape(2, 9, -1).transpose(1, 2))  # (2, 51, 9)
        torch.testing.assert_close(pose[:, 4, 5, 2], raw[:, 5 * 3 + 2, 4])
        torch.testing.assert_close(pose[:, 7, 16, 0], raw[:, 16 * 3 + 0, 7])


class _KeepFrames:
    """A minimal token schedule: keep fixed frames before block ``k`` (what a pruner does)."""

    keep_centre = False

    def __init__(self, keep: list[int], k: int) -> None:
        self.keep = torch.tensor(keep)
        self.k = k

    def before_block(self, model: object, i: int, state: TokenState) -> None:
        if i == self.k:
            state.tokens = state.tokens[:, self.keep]
            state.frame_index = state.frame_index[:, self.keep]

    def before_head(self, model: object, state: TokenState) -> None:
        return None

    def after_head(
        self, model: object, pose: torch.Tensor, index: torch.Tensor, state: TokenState
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return pose, index


def test_schedule_prunes_before_shr_block_1() -> None:
    torch.manual_seed(0)
    model = _tiny().eval()
    x = torch.randn(2, 27, 17, 2)
    model.hourglass = _KeepFrames([0, 4, 13, 20, 26], k=1)
    with torch.no_grad():
        out = model.forward_all(x)
        centre = model(x)
    assert out.pose.shape == (2, 5, 17, 3)
    assert out.index[0].tolist() == [0, 4, 13, 20, 26]
    torch.testing.assert_close(centre, out.pose[:, 2:3])
    model.hourglass = _KeepFrames(list(range(27)), k=1)  # keeping every frame changes nothing
    with torch.no_grad():
        full = model.forward_all(x).pose
    model.hourglass = None
    with torch.no_grad():
        torch.testing.assert_close(full, model.forward_all(x).pose)
