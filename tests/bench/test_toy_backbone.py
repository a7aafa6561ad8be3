"""Add a backbone = one file: a toy backbone defined and registered here runs through flops, speed, train,
evaluate and a one-cell grid with no edit anywhere else (issue 8, "everything about a backbone lives in its
registry entry"). The toy is unregistered after each test, so no other test sees it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from backbones import BackboneSpec, PaperResult, PoseBackbone, PresetSpec, register_backbone
from backbones._registry import _BACKBONES
from backbones.layers import Attention, Mlp
from backbones.objectives import mpjpe_objective
from bench.cli import main
from bench.config import ModelConfig
from bench.data.synthetic import make_synthetic_h36m
from bench.measure.flops import count_flops, linear_flops
from bench.results import load


class ToyBlock(nn.Module):
    """Pre-norm temporal transformer block over the frames of one joint."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 2 * dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ToyPose(PoseBackbone):
    """Joint embedding + ``depth`` temporal blocks per joint + a linear head: (B, T, 17, 2) -> (B, T, 17, 3)."""

    pipeline = "seq2seq"

    def __init__(self, frames: int = 27, dim: int = 16, depth: int = 2, heads: int = 2) -> None:
        super().__init__(frames=frames, in_channels=2, token_dim=dim)
        self.joint_embed = nn.Linear(2, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, frames, 1, dim))
        self.blocks = nn.ModuleList([ToyBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 3)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def embed(self, x: Tensor) -> Tensor:
        return self.joint_embed(x) + self.pos_embed  # (B, T, J, C)

    def block(self, i: int, tokens: Tensor) -> Tensor:
        b, f, j, c = tokens.shape
        x = tokens.transpose(1, 2).reshape(b * j, f, c)  # (B*J, F, C): attention over frames
        x = self.blocks[i](x)
        return x.reshape(b, j, f, c).transpose(1, 2)

    def finalize(self, tokens: Tensor) -> Tensor:
        out: Tensor = self.norm(tokens)
        return out

    def regress(self, tokens: Tensor) -> Tensor:
        out: Tensor = self.head(tokens)
        return out

    def temporal_attention(self, i: int) -> Attention:
        block = self.blocks[i]
        assert isinstance(block, ToyBlock)
        return block.attn


TINY = {"frames": 27, "dim": 16, "depth": 2, "heads": 2}
TOY_SPEC = BackboneSpec(
    name="toy",
    pipeline="seq2seq",
    paper_title="A toy video pose transformer (this test file)",
    official_code="tests/bench/test_toy_backbone.py::ToyPose",
    presets={
        "paper": PresetSpec(
            kwargs={**TINY, "frames": 81, "dim": 32},
            frames=81,
            depth=2,
            dim=32,
            heads=2,
            paper=PaperResult(mpjpe_mm=99.0, source="made up for the test"),
        ),
        "tiny": PresetSpec(kwargs=TINY, frames=27, depth=2, dim=16, heads=2),
    },
    objective=mpjpe_objective,
    objective_text="MPJPE",
)


def toy_paper_flops(t: int, c: int, depth: int, j: int = 17) -> int:
    """HoT's convention (2 x Linear MACs) for the toy, unpruned: embedding, qkv + proj + MLP per block, head."""
    rows = t * j
    per_block = linear_flops(rows, c, 3 * c) + linear_flops(rows, c, c) + 2 * linear_flops(rows, c, 2 * c)
    return linear_flops(rows, 2, c) + depth * per_block + linear_flops(rows, c, 3)


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register the toy backbone in a copy of the registry's table; the original comes back afterwards."""
    monkeypatch.setattr(_BACKBONES, "_entries", dict(_BACKBONES._entries))

    @register_backbone(TOY_SPEC)
    def toy(**kwargs: int) -> ToyPose:
        return ToyPose(**kwargs)

    return "toy"


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


MODEL_ARGS = ["--backbone", "toy", "--preset", "tiny"]


def test_toy_flops_speed_and_a_one_cell_grid(toy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # flops: the counters see the toy; paper-convention FLOPs equal the closed form
    flops = _json(capsys, ["flops", *MODEL_ARGS, "--format", "json"])
    assert flops["params"] == sum(p.numel() for p in ToyPose(**TINY).parameters())
    assert round(flops["gflops_paper"] * 1e9) == toy_paper_flops(27, 16, 2)
    assert flops["tokens_per_block"] == [27, 27] and flops["output_frames"] == 27
    assert flops["gflops"] > flops["gflops_paper"]  # + the attention matmuls
    assert all(c["error"] is None for c in flops["counters"])  # fvcore and ptflops count it too
    # ... and a strategy plugs into it (HoT's cluster pruner + TRA at depth 1)
    hot = count_flops(ModelConfig.create(toy, "tiny", pruner="cluster", tokens=9, depths=1), counters=())
    assert hot.tokens_per_block == [27, 9] and hot.output_frames == 27
    assert hot.gflops_paper < flops["gflops_paper"] and hot.params > flops["params"]

    # speed
    speed = _json(capsys, ["speed", *MODEL_ARGS, "--warmup", "1", "--iters", "3", "--threads", "1", "--format", "json"])
    assert speed["fps"] > 0 and speed["latency_ms_median"] > 0

    # a one-cell FLOPs grid
    grid = tmp_path / "toy.yaml"
    grid.write_text(f"name: toy\nbackbones: [{toy}]\npresets: [tiny]\npruners: [none]\nmeasure: [flops]\n")
    out = tmp_path / "grid"
    assert main(["run", str(grid), "--out", str(out)]) == 0
    rows = load(out / "toy")
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["backbone"] == toy and row["error"] == ""
    assert row["gflops"] == pytest.approx(flops["gflops"]) and row["params"] == flops["params"]


def _train_then_evaluate(capsys: pytest.CaptureFixture[str], run: Path) -> None:
    """``train --steps 2`` writes a checkpoint; ``evaluate`` reads it back (model.json names the toy)."""
    data_args = ["--noise", "none", "--no-flip-test"]
    trained = _json(
        capsys,
        [
            *["train", *MODEL_ARGS, "--steps", "2", "--batch-size", "4", "--threads", "1"],
            *["--out", str(run), *data_args, "--format", "json"],
        ],
    )
    assert trained["steps"] == 2 and Path(trained["checkpoint"]) == run / "model.pt"
    assert trained["config"]["backbone"] == "toy" and trained["mpjpe_mm"] > 0
    weights = torch.load(run / "model.pt", weights_only=True)
    assert set(weights) == set(ToyPose(**TINY).state_dict())
    evaluated = _json(capsys, ["evaluate", "--checkpoint", str(run / "model.pt"), *data_args, "--format", "json"])
    assert evaluated["config"]["backbone"] == "toy"
    assert evaluated["mpjpe_mm"] == pytest.approx(trained["mpjpe_mm"], rel=1e-5)


def test_toy_train_and_evaluate_on_small_data(
    toy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.training import loop

    d = make_synthetic_h36m(seed=1, frames_per_sequence=81, takes=1, noise="none")
    small = type(d)(d.name, d.train[:8:4], d.test[:8:4], d.fps, d.joints_left, d.joints_right, d.notes)
    monkeypatch.setattr(loop, "load_data", lambda cfg: small)  # the commands' data, made small
    _train_then_evaluate(capsys, tmp_path / "run")


@pytest.mark.slow
def test_toy_train_and_evaluate_on_the_default_data(
    toy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _train_then_evaluate(capsys, tmp_path / "run")


def test_the_toy_is_gone_after_its_test() -> None:
    from backbones import list_backbones

    assert "toy" not in list_backbones()
