"""apply_hourglass on every registered backbone x pruner x recoverer (tiny presets, CPU)."""

from __future__ import annotations

import itertools

import pytest
import torch

from backbones import create_backbone, get_backbone_spec, list_backbones, select_frame
from strategies import (
    Hourglass,
    HourglassError,
    RegistryError,
    ScheduleError,
    apply_hourglass,
    check_selection,
    list_pruners,
    list_recoverers,
    remove_hourglass,
)

BACKBONES = list_backbones()
GRID = list(itertools.product(BACKBONES, list_pruners(), list_recoverers()))


def tiny(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return create_backbone(name, "tiny").eval()


def clip(model, batch: int = 2, seed: int = 1) -> torch.Tensor:
    """A batch whose samples differ."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, model.frames, 17, model.in_channels, generator=g).cumsum(dim=1) * 0.1
    return x


def mid_depth(model) -> int:
    depths = list(model.prune_depths)
    return depths[len(depths) // 2]


def stage_frames(kept, frames: int, batch: int) -> list[torch.Tensor]:
    """Original frame indices kept after each stage, from the per-stage positions."""
    cur = torch.arange(frames).expand(batch, frames)
    out = []
    for pos in kept:
        cur = cur.gather(1, pos)
        out.append(cur)
    return out


@pytest.mark.parametrize(("backbone", "pruner", "recoverer"), GRID)
def test_grid_output_shapes_match_the_unpruned_model(backbone, pruner, recoverer):
    model = tiny(backbone)
    x = clip(model)
    with torch.no_grad():
        base_all = model.forward_all(x)
        base = model(x)
    seq2frame = model.pipeline == "seq2frame"
    kwargs = dict(pruner=pruner, recoverer=recoverer, tokens=model.frames // 3, depths=mid_depth(model))
    if seq2frame and recoverer != "none":
        with pytest.raises(HourglassError, match="is seq2frame") as e:
            apply_hourglass(model, **kwargs)
        assert "\n" not in str(e.value)
        return
    apply_hourglass(model, **kwargs)
    with torch.no_grad():
        out = model(x)
        out_all = model.forward_all(x)
    assert torch.isfinite(out).all()
    tpc_seq2seq = not seq2frame and recoverer == "none" and pruner != "none"
    if tpc_seq2seq:  # TPC form of a seq2seq backbone: the centre frame's prediction is the output
        expected = select_frame(base_all.pose, base_all.index, model.centre).shape
        assert out_all.pose.shape == (2, model.frames // 3, 17, 3)
    else:
        expected = base.shape
    assert out.shape == expected
    n_stages = 0 if pruner == "none" else 1
    assert len(out_all.kept) == n_stages
    for pos in out_all.kept:
        check_selection(pos, model.frames // 3, model.frames)
    if model.hourglass.keep_centre:
        for frames in stage_frames(out_all.kept, model.frames, 2):
            assert bool((frames == model.centre).any(dim=1).all())
    assert model.hourglass.last_tokens_per_block == model.hourglass.tokens_per_block


@pytest.mark.parametrize("backbone", BACKBONES)
def test_none_pruner_is_exactly_the_baseline(backbone):
    model = tiny(backbone)
    x = clip(model)
    with torch.no_grad():
        base = model.forward_all(x)
        apply_hourglass(model, pruner="none", tokens=5, depths=1)  # tokens / depths are ignored
        out = model.forward_all(x)
    assert torch.equal(out.pose, base.pose) and torch.equal(out.index, base.index)
    assert sum(p.numel() for p in model.hourglass.parameters()) == 0
    hg = model.hourglass
    assert hg.last_tokens_per_block == hg.tokens_per_block and hg.tokens_per_block[1] == model.frames
    assert out.kept == () and hg.schedule.stages == ()


@pytest.mark.parametrize("backbone", BACKBONES)
def test_remove_and_reapply(backbone):
    model = tiny(backbone)
    x = clip(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        base = model(x)
        apply_hourglass(model, pruner="attention", recoverer="none", tokens=7, depths=1)
        att = model.temporal_attention(0)
        assert att is not None and att.record_attention
        model(x)
        apply_hourglass(model, pruner="uniform", recoverer="none", tokens=5, depths=1)  # replaces
        assert not att.record_attention and model.hourglass.schedule.tokens == [5]
        remove_hourglass(model)
        assert model.hourglass is None and torch.equal(model(x), base)
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_pruned_model_trains_for_a_step(backbone):
    model = tiny(backbone).train()
    seq2frame = model.pipeline == "seq2frame"
    apply_hourglass(model, pruner="cluster", tokens=0.34, depths=min(model.prune_depths))
    hg = model.hourglass
    assert hg.recoverer.name == ("none" if seq2frame else "attention")  # the default recoverer
    x = clip(model, batch=3)
    target = torch.randn(3, model.frames, 17, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    weights = {k: v.detach().clone() for k, v in model.named_parameters()}
    out = model.forward_all(x)
    rows = torch.arange(3)[:, None]
    loss = (out.pose - target[rows, out.index]).pow(2).mean()  # TPC: loss on the kept frames
    loss.backward()
    assert torch.isfinite(loss)
    grads = {k: p.grad for k, p in model.named_parameters()}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    if not seq2frame:
        assert out.pose.shape[1] == model.frames
        assert float(grads["hourglass.recoverer.x_token"].abs().sum()) > 0
        assert float(grads["hourglass.pos_embed_token"].abs().sum()) > 0
    opt.step()
    changed = [k for k, p in model.named_parameters() if not torch.equal(p, weights[k])]
    assert len(changed) > len(weights) // 2


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("pruner", ["random", "cluster"])
def test_reuse_gives_identical_output(backbone, pruner):
    model = tiny(backbone)
    recoverer = "none" if model.pipeline == "seq2frame" else "interpolation"
    apply_hourglass(model, pruner=pruner, recoverer=recoverer, tokens=9, depths=min(model.prune_depths))
    x = clip(model)
    with torch.no_grad():
        first = model.forward_all(x)
        again = model.forward_all(x, reuse=first.kept)
        flipped = model.forward_all(-x, reuse=first.kept)  # TPC's flipped pass keeps the same frames
    assert torch.equal(again.pose, first.pose) and torch.equal(again.index, first.index)
    assert all(torch.equal(a, b) for a, b in zip(flipped.kept, first.kept))
    if pruner == "random":
        with torch.no_grad():
            assert not torch.equal(model.forward_all(x).kept[0], first.kept[0])  # a fresh draw without reuse


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("pruner", list_pruners(exclude="none"))
def test_extreme_counts_and_depths(backbone, pruner):
    model = tiny(backbone)
    x = clip(model)
    with torch.no_grad():
        base = model(x)
    depths = list(model.prune_depths)
    recoverers = ["none"] if model.pipeline == "seq2frame" else list_recoverers()
    for (n, k), recoverer in itertools.product(
        [(1, depths[0]), (1, depths[-1]), (model.frames, depths[0]), (model.frames, depths[-1])], recoverers
    ):
        apply_hourglass(model, pruner=pruner, recoverer=recoverer, tokens=n, depths=k)
        with torch.no_grad():
            out = model.forward_all(x)
            y = model(x)
        assert torch.isfinite(y).all()
        tpc_seq2seq = recoverer == "none" and model.pipeline == "seq2seq"
        assert y.shape == ((2, 1, 17, 3) if tpc_seq2seq else base.shape)  # TPC predicts the centre, even at n = T
        assert model.hourglass.tokens_per_block[k] == n
        assert [p.shape for p in out.kept] == [(2, n)]
        if n == 1 and model.hourglass.keep_centre:
            assert out.kept[0].tolist() == [[model.centre]] * 2  # only the centre frame is left


def test_hot_mixste_computes_exactly_hots_pipeline():
    """HoT w. MixSTE by hand (papers.md §6.1-6.3) equals the hourglass model, to the last bit."""
    from strategies.pruners import dpc_knn_score

    model = tiny("mixste")
    apply_hourglass(model, pruner="cluster", recoverer="attention", tokens=9, depths=2)
    hg = model.hourglass
    with torch.no_grad():
        for p in hg.parameters():
            p.normal_(std=0.5)
        x = clip(model)
        t = model.embed(x)
        for i in range(2):
            t = model.block(i, t)  # blocks 0..k-1 on all T frames
        score = dpc_knn_score(t.mean(dim=2), k=2)  # joint-mean pooled, DPC-kNN with k = 2
        index = score.topk(9, dim=1).indices.sort(dim=1).values  # cluster centres, in time order
        t = t[torch.arange(2)[:, None], index] + hg.pos_embed_token[:, :, None]  # gather + pos_embed_token
        for i in range(2, model.num_blocks):
            t = model.block(i, t)
        t = model.finalize(t)
        b, n, j, c = t.shape
        kv = t.transpose(1, 2).reshape(b * j, n, c)
        q = hg.recoverer.x_token.repeat(b * j, 1, 1)
        t = (q + hg.recoverer.cross_attention(q, kv, kv)).reshape(b, j, model.frames, c).transpose(1, 2)
        expected = model.regress(t)
        out = model.forward_all(x)
    assert torch.equal(out.kept[0], index)
    assert torch.equal(out.pose, expected)


def test_tpc_mixste_keeps_centre_and_returns_its_prediction():
    model = tiny("mixste")
    apply_hourglass(model, pruner="cluster", recoverer="none", tokens=7, depths=3)
    x = clip(model)
    with torch.no_grad():
        out = model.forward_all(x)
        y = model(x)
    assert out.pose.shape == (2, 7, 17, 3) and bool((out.index == model.centre).any(dim=1).all())
    assert torch.equal(y, select_frame(out.pose, out.index, model.centre))
    assert "pos_embed_token" not in model.state_dict()  # TPC: no embedding re-added after pruning


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("pruner", ["cluster", "attention", "uniform"])
def test_hierarchical_schedule_records_tokens_per_block(backbone, pruner):
    model = tiny(backbone)
    depths = list(model.prune_depths)
    if len(depths) < 2:
        pytest.skip(f"{backbone} tiny has one pruning depth")
    t = model.frames
    recoverer = "none" if model.pipeline == "seq2frame" else "attention"
    apply_hourglass(model, pruner=pruner, recoverer=recoverer, tokens=[t // 2, t // 4], depths=depths[:2])
    hg = model.hourglass
    assert isinstance(hg, Hourglass)
    with torch.no_grad():
        out = model.forward_all(clip(model))
    assert hg.last_tokens_per_block == hg.tokens_per_block
    assert hg.tokens_per_block[: depths[1] + 1][depths[0] : depths[1]] == [t // 2] * (depths[1] - depths[0])
    assert hg.tokens_per_block[depths[1]] == t // 4
    assert [p.shape[1] for p in out.kept] == [t // 2, t // 4]
    if recoverer == "attention":
        names = set(model.state_dict())
        assert {"pos_embed_token", "pos_embed_token_1", "x_token"} <= names
        assert model.state_dict()["pos_embed_token_1"].shape == (1, t // 4, model.token_dim)
    assert hg.config()["tokens"] == [t // 2, t // 4] and hg.config()["depths"] == depths[:2]


def test_mixste_tokens_per_block_closed_form():
    model = tiny("mixste")
    apply_hourglass(model, pruner="uniform", recoverer="interpolation", tokens=[13, 0.2], depths=[1, 3])
    assert model.hourglass.tokens_per_block == [27, 13, 13, 5]
    assert model.hourglass.config() == {
        "pruner": "uniform",
        "recoverer": "interpolation",
        "tokens": [13, 5],
        "depths": [1, 3],
        "tokens_per_block": [27, 13, 13, 5],
        "keep_centre": False,
        "pos_embed": False,
    }


def test_strided_counts_follow_the_time_subsampling():
    if "strided" not in BACKBONES:
        pytest.skip("strided backbone not present")
    model = tiny("strided")
    apply_hourglass(model, pruner="cluster", tokens=10, depths=1)
    with torch.no_grad():
        model(clip(model))
    strides = get_backbone_spec("strided").presets["tiny"].kwargs["stride_num"]
    expect, count = [27], 10
    for i in range(1, model.num_blocks):
        expect.append(count)
        if i >= model.num_blocks - len(strides):
            count = (count - 1) // strides[i - (model.num_blocks - len(strides))] + 1
    assert model.hourglass.tokens_per_block == expect == model.hourglass.last_tokens_per_block


def test_pos_embed_rules():
    model = tiny("mixste")
    apply_hourglass(model, pruner="cluster", recoverer="attention", tokens=9, depths=2)
    assert model.hourglass.use_pos_embed  # HoT: TRA goes with a post-pruning embedding
    apply_hourglass(model, pruner="cluster", recoverer="interpolation", tokens=9, depths=2)
    assert not model.hourglass.use_pos_embed
    apply_hourglass(model, pruner="cluster", recoverer="none", tokens=9, depths=2, pos_embed=True)
    assert model.hourglass.use_pos_embed and "pos_embed_token" in model.state_dict()
    apply_hourglass(model, pruner="cluster", recoverer="attention", tokens=9, depths=2, pos_embed=False)
    assert "pos_embed_token" not in model.state_dict() and "x_token" in model.state_dict()


def test_new_parameters_follow_the_model_dtype():
    model = tiny("mixste").double()
    apply_hourglass(model, pruner="cluster", recoverer="attention", tokens=9, depths=2)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    with torch.no_grad():
        assert model(clip(model).double()).dtype == torch.float64


@pytest.mark.parametrize("backbone", BACKBONES)
def test_impossible_configurations_fail_at_construction(backbone):
    model = tiny(backbone)
    t, depths = model.frames, list(model.prune_depths)
    cases = [
        (dict(tokens=t + 1, depths=depths[0]), ScheduleError, f"token count {t + 1} is outside"),
        (dict(tokens=0, depths=depths[0]), ScheduleError, "token count 0 is outside"),
        (dict(tokens=5, depths=0), ScheduleError, "depth 0 is outside this backbone's pruning depths"),
        (dict(tokens=5, depths=model.num_blocks), ScheduleError, "is outside this backbone's pruning depths"),
        (dict(tokens=[5, 9], depths=depths[:1] * 2), ScheduleError, "must"),
        (dict(tokens=5), HourglassError, "needs tokens and depths"),
        (dict(tokens=5, depths=depths[0], pruner="kmeans"), RegistryError, "unknown pruner 'kmeans'"),
        (dict(tokens=5, depths=depths[0], recoverer="cubic"), RegistryError, "unknown recoverer 'cubic'"),
        (dict(tokens=5, depths=depths[0], pruner_kwargs={"kk": 1}), RegistryError, "does not take kk"),
    ]
    if len(depths) >= 2:
        cases.append((dict(tokens=[5, 9], depths=depths[:2]), ScheduleError, "tokens must decrease strictly"))
    if model.pipeline == "seq2frame":
        for r in ("attention", "interpolation"):
            cases.append((dict(tokens=5, depths=depths[0], recoverer=r), HourglassError, "takes no recoverer"))
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message) as e:
            apply_hourglass(model, **kwargs)
        assert "\n" not in str(e.value)
        assert model.hourglass is None  # a failed call leaves the model untouched
    apply_hourglass(model, pruner="uniform", tokens=5, depths=depths[0], recoverer="none")
    kept = model.hourglass
    with pytest.raises(ScheduleError):
        apply_hourglass(model, tokens=t + 1, depths=depths[0])
    assert model.hourglass is kept  # ... including its current hourglass
    with pytest.raises(HourglassError, match="needs a registered PoseBackbone"):
        apply_hourglass(torch.nn.Linear(2, 2), tokens=5, depths=1)  # type: ignore[arg-type]
