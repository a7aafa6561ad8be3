"""FLOP counters against closed forms, the papers' figures and the pruning's analytic savings."""

from __future__ import annotations

import json
import time
import warnings

import pytest
import torch
from torch import Tensor, nn

import backbones
from backbones.layers import Attention, Mlp
from bench.config import ModelConfig
from bench.measure.flops import (
    attention_flops,
    block_flops,
    count_canonical,
    count_flops,
    depth_flops_per_frame,
    linear_flops,
    matmul_flops,
    spatio_temporal_paper_flops,
)
from bench.measure.flops import counters as C
from bench.measure.flops.closed_form import attention_core_flops
from bench.measure.flops.targets import paper_targets

try:
    import strategies

    PRUNERS = set(strategies.list_pruners())
except Exception:  # strategies not importable yet
    PRUNERS = set()


def _fcm(model: nn.Module, x: Tensor) -> C.CanonicalPass:
    return C.canonical_pass(model.eval(), x, 1)


def _macs(res: C.CounterResult) -> int:
    assert res.error is None, res.error
    assert res.raw is not None
    return res.raw


def _available(cfg: ModelConfig) -> bool:
    if cfg.backbone not in backbones.list_backbones():
        return False
    return not cfg.pruned or cfg.pruner in PRUNERS


# ---- single ops: closed forms vs every counter ---------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_linear_closed_form_every_counter(bias: bool) -> None:
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(64, 96, bias=bias))
        x = torch.empty(2, 10, 64)
    rows = 2 * 10
    exact = linear_flops(rows, 64, 96)
    cp = _fcm(model, x)
    assert cp.total_flops == exact  # FlopCounterMode: 2 per MAC, bias not counted
    assert 2 * cp.paper_macs == exact
    assert 2 * _macs(C.run_fvcore(model, x, 1)) == exact  # fvcore: MACs, bias not counted
    # ptflops-aten counts the addmm bias as one MAC per output element (its known gap)
    assert 2 * _macs(C.run_ptflops(model, x, 1)) == exact + (2 * rows * 96 if bias else 0)


class _Matmul(nn.Module):
    def forward(self, a: Tensor) -> Tensor:
        return a @ a.transpose(-2, -1) @ a  # (B, m, k) @ (B, k, m) -> (B, m, m) @ (B, m, k)


def test_matmul_closed_form_every_counter() -> None:
    b, m, k = 3, 20, 16
    x = torch.empty(b, m, k, device="meta")
    exact = matmul_flops(b, m, k, m) + matmul_flops(b, m, m, k)
    model = _Matmul()
    assert _fcm(model, x).total_flops == exact
    assert _fcm(model, x).paper_macs == 0  # no Linear/Conv: attention-like matmuls are not "paper" FLOPs
    assert 2 * _macs(C.run_fvcore(model, x, 1)) == exact
    assert 2 * _macs(C.run_ptflops(model, x, 1)) == exact


@pytest.mark.parametrize("record", [False, True], ids=["fused-sdpa", "explicit-softmax"])
def test_attention_block_closed_form_every_counter(record: bool) -> None:
    b, n, c = 2, 27, 64
    with torch.device("meta"):
        attn = Attention(c, heads=8, qkv_bias=True)
        x = torch.empty(b, n, c)
    attn.record_attention = record
    exact = attention_flops(b, n, c)
    cp = _fcm(attn, x)
    assert cp.total_flops == exact
    assert 2 * cp.paper_macs == attention_flops(b, n, c, paper=True)
    assert 2 * _macs(C.run_fvcore(attn, x, 1)) == exact  # needs our SDPA handle (see below)
    bias_macs = b * n * 3 * c + b * n * c  # qkv and proj biases, counted by ptflops only
    assert 2 * _macs(C.run_ptflops(attn, x, 1)) == exact + 2 * bias_macs


def test_fvcore_without_sdpa_handle_misses_the_attention_core() -> None:
    """The known gap our handle closes: stock fvcore has no aten::scaled_dot_product_attention."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

    b, n, c = 2, 27, 64
    with torch.device("meta"):
        attn = Attention(c, heads=8).eval()
        x = torch.empty(b, n, c)
    fa = FlopCountAnalysis(attn, (x,))
    fa.unsupported_ops_warnings(False)
    with torch.inference_mode():
        stock = fa.total()
    assert 2 * stock == attention_flops(b, n, c) - attention_core_flops(b, n, n, c)
    assert "aten::scaled_dot_product_attention" in fa.unsupported_ops()


def test_fused_sdpa_counted_on_real_cpu_tensors_too() -> None:
    """FlopCounterMode alone misses the CPU SDPA kernel (torch 2.13); our mapping counts it."""
    torch.manual_seed(0)
    attn = Attention(32, heads=4).eval()
    x = torch.randn(1, 9, 32)
    assert _fcm(attn, x).total_flops == attention_flops(1, 9, 32)
    with torch.inference_mode(), torch.utils.flop_counter.FlopCounterMode(display=False) as stock:
        attn(x)
    assert stock.get_total_flops() == attention_flops(1, 9, 32) - attention_core_flops(1, 9, 9, 32)


class _Block(nn.Module):
    def __init__(self, c: int, hidden: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.attn = Attention(c, heads=4)
        self.mlp = Mlp(c, hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PrunedBlock(nn.Module):
    """DPC-kNN-like selection (cdist, topk, sort, gather) of n of T tokens, then a block on n tokens."""

    def __init__(self, c: int, hidden: int, n: int) -> None:
        super().__init__()
        self.n = n
        self.block = _Block(c, hidden)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, C)
        score = torch.cdist(x, x).mean(-1)  # (B, T)
        keep = score.topk(self.n, dim=-1).indices.sort(dim=-1).values  # (B, n)
        kept = x.gather(1, keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # (B, n, C)
        return self.block(kept)


def test_block_norm_gap_of_fvcore() -> None:
    b, n, c, h = 2, 30, 32, 64
    with torch.device("meta"):
        model = _Block(c, h)
        x = torch.empty(b, n, c)
    exact = block_flops(b, n, c, h)
    assert _fcm(model, x).total_flops == exact
    # fvcore also counts LayerNorm at 5 MACs per element (2 norms): its asserted, reported gap
    fv = C.run_fvcore(model, x, 1)
    assert 2 * _macs(fv) == exact + 2 * (2 * b * n * c * 5)
    assert fv.by_op["layer_norm"] == pytest.approx(2 * 2 * b * n * c * 5 / 1e9)


def test_pruned_block_closed_form_every_counter() -> None:
    b, t, n, c, h = 2, 40, 12, 32, 64
    with torch.device("meta"):
        model = _PrunedBlock(c, h, n)
        x = torch.empty(b, t, c)
    cdist = 2 * b * t * t * c  # clustering distance as its Gram GEMM (our handle)
    exact = block_flops(b, n, c, h) + cdist
    cp = _fcm(model, x)
    assert cp.total_flops == exact
    assert 2 * cp.paper_macs == block_flops(b, n, c, h, paper=True)
    # gather/topk/sort are zero-cost by convention and reported as such, not as uncounted arithmetic
    assert {"topk", "sort", "gather"} <= set(cp.result.zero_cost_ops)
    assert "native_layer_norm" in cp.result.uncounted_ops
    fv = C.run_fvcore(model, x, 1)
    assert 2 * _macs(fv) == exact + 2 * (2 * b * n * c * 5)
    pt = C.run_ptflops(model, x, 1)
    bias_macs = b * n * (3 * c + c + h + c)  # qkv, proj, fc1, fc2
    assert 2 * _macs(pt) == exact + 2 * bias_macs


# ---- failures are data ---------------------------------------------------------------------------
class _Broken(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        raise RuntimeError("boom")


def test_ptflops_swallowed_error_is_reported_and_mode_restored() -> None:
    model = _Broken().train()
    res = C.run_ptflops(model, torch.empty(1, 3, device="meta"), 1)
    assert res.raw is None and res.gflops is None
    assert res.error is not None and "None" in res.error
    assert model.training  # ptflops called .eval(); we restored it


class _MetaHostile(nn.Module):
    """Creates a CPU tensor inside forward (like StridedTransformer's official refine): fails on meta."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x) + torch.ones(8)


def test_counter_falls_back_to_cpu_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def probe(cfg: object, device: str, batch: int) -> tuple[nn.Module, Tensor]:
        return _MetaHostile().to(device).eval(), torch.zeros(batch, 5, 8, device=device)

    monkeypatch.setattr(C, "build_probe", probe)
    res = C.run_counter("fvcore", None, 1)  # type: ignore[arg-type]
    assert res.device == "cpu" and res.error is None
    assert "fell back to cpu" in res.note and "meta failed" in res.note
    assert 2 * _macs(res) == linear_flops(5, 8, 8)
    cp = C.run_canonical(None, 1)  # type: ignore[arg-type]
    assert cp.result.device == "cpu" and cp.total_flops == linear_flops(5, 8, 8)


# ---- whole models --------------------------------------------------------------------------------
def test_mixste_paper_matches_published_and_closed_form() -> None:
    rep = count_flops(ModelConfig.create("mixste", "paper"), breakdown=True)
    assert rep.params == 33_783_811
    assert rep.gflops_paper == pytest.approx(277.25, rel=0.01)
    assert rep.gflops == pytest.approx(294.85, rel=0.01)
    assert round(rep.gflops_paper * 1e9) == spatio_temporal_paper_flops([243] * 8)  # exact
    assert rep.gflops_per_frame == pytest.approx(rep.gflops / 243)
    assert rep.output_frames == rep.frames == 243
    assert rep.tokens_per_block == [243] * 8
    assert rep.device == "meta"
    by = {c.name: c for c in rep.counters}
    assert set(by) == {"fcm", "fvcore", "ptflops"}
    assert by["fcm"].raw == 294_845_266_944  # backbones.md §5.1, to the FLOP
    assert by["fvcore"].raw == 147_940_826_112 and by["fvcore"].unit == "MACs"
    assert by["ptflops"].raw == 147_661_649_001
    for c in rep.counters:  # every counter within its known gap (norms, biases) of the canonical
        assert c.error is None and c.device == "meta"
        assert c.gflops is not None and 1.0 <= c.gflops / rep.gflops < 1.01
    assert "gelu" in by["fcm"].uncounted_ops
    # breakdown: the depth-1 rows add up to the total
    top = [r for r in rep.breakdown or [] if r["module"] and "." not in r["module"]]
    assert sum(r["gflops"] for r in top) == pytest.approx(rep.gflops)
    assert sum(r["gflops_paper"] for r in top) == pytest.approx(rep.gflops_paper)


def test_report_json_and_text_fields() -> None:
    rep = count_flops(ModelConfig.create("mixste", "tiny"), counters=("fcm", "ptflops"), flip=True, breakdown=True)
    d = json.loads(json.dumps(rep.to_dict()))
    for key in ("params", "gflops", "gflops_paper", "gflops_per_frame", "gmacs", "frames", "tokens_per_block"):
        assert key in d
    assert isinstance(d["params"], int) and isinstance(d["tokens_per_block"], list)
    assert d["gmacs"] == pytest.approx(d["gflops"] / 2)
    assert d["gflops_flip"] == pytest.approx(2 * d["gflops"])
    assert [c["name"] for c in d["counters"]] == ["fcm", "ptflops"]
    for c in d["counters"]:
        assert {"name", "unit", "raw", "gflops", "uncounted_ops", "seconds"} <= set(c)
    assert "1 MAC = 2 FLOPs" in d["units"] and "Linear" in d["convention"]["gflops_paper"]
    text = rep.format_text()
    for needle in ("GFLOPs", "GMACs", "paper convention", "ptflops", "per out frame", "flip on", "breakdown"):
        assert needle in text
    no_flip = count_flops(ModelConfig.create("mixste", "tiny"), counters=())
    assert no_flip.gflops_flip == no_flip.gflops and no_flip.counters == []
    with pytest.raises(ValueError, match="unknown FLOP counter"):
        count_flops(ModelConfig.create("mixste", "tiny"), counters=("thop",))


def test_per_clip_figures_do_not_depend_on_batch() -> None:
    cfg = ModelConfig.create("mixste", "tiny")
    one, four = count_flops(cfg, counters=("fcm", "fvcore")), count_flops(cfg, batch=4, counters=("fcm", "fvcore"))
    assert four.gflops == pytest.approx(one.gflops) and four.gflops_paper == pytest.approx(one.gflops_paper)
    assert four.counters[0].raw == 4 * (one.counters[0].raw or 0)
    assert four.counters[1].gflops == pytest.approx(one.counters[1].gflops)


def test_flops_fall_with_frames_by_the_analytic_amount() -> None:
    """Fewer frame tokens at every depth (T = 243 -> 81): the paper-convention drop is exact."""
    full = count_flops(ModelConfig.create("mixste", "paper"), counters=())
    short = count_flops(ModelConfig.create("mixste", "paper", overrides={"num_frame": 81}), counters=())
    drop = round((full.gflops_paper - short.gflops_paper) * 1e9)
    per_frame = 8 * depth_flops_per_frame() + linear_flops(17, 2, 512) + linear_flops(17, 512, 3)
    assert drop == (243 - 81) * per_frame
    assert short.gflops < full.gflops


# ---- the published targets (skipped cleanly for what is not registered yet) ----------------------
@pytest.mark.parametrize("target", paper_targets(), ids=[t.name for t in paper_targets()])
def test_paper_targets_within_one_percent(target: object) -> None:
    from bench.measure.flops.targets import PaperTarget

    assert isinstance(target, PaperTarget)
    cfg = target.config()
    if not _available(cfg):
        pytest.skip(f"{cfg.label()} not available (backbone or pruner not registered)")
    gflops, paper, params = count_canonical(cfg)
    assert paper == pytest.approx(target.gflops_paper, rel=0.01)
    assert params == target.params
    # all-matmul: the reference excludes the clustering cdist, which we count (TPC-MHFormer: +0.38 G)
    assert gflops >= target.gflops_all_matmul * 0.99


@pytest.mark.skipif("cluster" not in PRUNERS, reason="strategies' cluster pruner not registered")
def test_hot_mixste_tokens_fall_by_the_analytic_amount() -> None:
    """HoT-MixSTE n = 81 -> 61 at k = 3: 5 pruned depths + TRA's k/v projections, per token (papers.md §4)."""
    a = count_flops(ModelConfig.create("mixste", "paper", pruner="cluster", tokens=81, depths=3), counters=())
    b = count_flops(ModelConfig.create("mixste", "paper", pruner="cluster", tokens=61, depths=3), counters=())
    assert a.tokens_per_block == [243] * 3 + [81] * 5 and b.tokens_per_block == [243] * 3 + [61] * 5
    per_token = 5 * depth_flops_per_frame() + 2 * linear_flops(17, 512, 512)
    assert round((a.gflops_paper - b.gflops_paper) * 1e9) == 20 * per_token
    assert (a.gflops_paper - b.gflops_paper) / 20 == pytest.approx(0.142607 * 5 + 0.017826, abs=1e-5)
    assert round(a.gflops_paper * 1e9) == spatio_temporal_paper_flops([243] * 3 + [81] * 5, recovered_from=81)
    # all-matmul adds the attention maps: spatial (17 x 17 per frame token) and temporal (n x n) in the
    # 5 pruned depths, and TRA's 243 x n; the cdist on the 243 incoming tokens is the same in both
    core = 5 * 20 * attention_core_flops(1, 17, 17, 512)
    core += 5 * (attention_core_flops(17, 81, 81, 512) - attention_core_flops(17, 61, 61, 512))
    core += attention_core_flops(17, 243, 81, 512) - attention_core_flops(17, 243, 61, 512)
    assert round((a.gflops - b.gflops) * 1e9) == 20 * per_token + core
    assert a.output_frames == 243


@pytest.mark.skipif("cluster" not in PRUNERS, reason="strategies' cluster pruner not registered")
def test_tpc_mixste_counts_one_output_frame() -> None:
    rep = count_flops(ModelConfig.create("mixste", "paper", pruner="cluster", recoverer="none", tokens=61, depths=7))
    assert rep.output_frames == 1 and rep.pipeline == "seq2frame"
    assert rep.gflops_per_frame == rep.gflops
    assert rep.tokens_per_block == [243] * 7 + [61]
    assert all(c.error is None and c.device == "meta" for c in rep.counters)
    fcm = rep.counter("fcm")
    assert fcm is not None and "_euclidean_dist" in fcm.by_op  # the clustering distance is counted
    assert {"topk", "sort"} <= set(fcm.zero_cost_ops)


def _grid(n: int) -> list[ModelConfig]:
    """``n`` distinct paper-preset configurations, round-robin over backbones (x pruners x n x k)."""
    pruners = [p for p in ("cluster", "uniform", "motion", "random", "attention") if p in PRUNERS]
    per_backbone: list[list[ModelConfig]] = []
    for backbone in backbones.list_backbones():
        frames = backbones.get_backbone_spec(backbone).preset("paper").frames
        depths = list(ModelConfig.create(backbone, "paper").build("meta").prune_depths)
        cfgs = [ModelConfig.create(backbone, "paper")]
        for tokens in (frames // 9, frames // 4, frames // 3, frames // 2):
            for k in depths:
                for p in pruners:
                    cfgs.append(ModelConfig.create(backbone, "paper", pruner=p, tokens=tokens, depths=k))
        per_backbone.append(cfgs)
    out: list[ModelConfig] = []
    for i in range(max(len(c) for c in per_backbone)):
        out.extend(c[i] for c in per_backbone if i < len(c))
    return out[:n]


@pytest.mark.slow
def test_hundred_paper_configs_are_counted() -> None:
    """100 paper-preset configurations on meta; the time is printed (a figure for notes), not asserted."""
    cfgs = _grid(100)
    if len(cfgs) < 100:
        pytest.skip(f"only {len(cfgs)} configurations registered")
    t0 = time.perf_counter()
    results = [count_canonical(c) for c in cfgs]
    elapsed = time.perf_counter() - t0
    print(f"\n100 paper-preset configurations counted (canonical + paper + params) in {elapsed:.1f} s")
    assert all(g > p > 0 and n > 0 for g, p, n in results)
    base = {c.backbone: r[0] for c, r in zip(cfgs, results, strict=True) if not c.pruned}
    assert all(r[0] < base[c.backbone] for c, r in zip(cfgs, results, strict=True) if c.pruned)
