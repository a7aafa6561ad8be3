"""Every pruner returns valid selections, and on constructed inputs does what its name says."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from strategies import PruneContext, check_selection, create_pruner, force_required, list_pruners, topk_keep
from strategies.pruners import attention_received, dpc_knn_score, motion_score, uniform_index

B, F, N, C = 3, 27, 4, 8


def make_context(seed: int = 0, required: torch.Tensor | None = None, length: int = F) -> PruneContext:
    """A batch whose samples differ: random tokens, inputs and a random attention map per sample."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(B, length, N, C, generator=g)
    inputs = torch.randn(B, length, 17, 2, generator=g).cumsum(dim=1)
    attention = torch.randn(B, 2, length, length, generator=g).softmax(dim=-1)
    return PruneContext(tokens, None, inputs, attention=attention, required=required)


@pytest.mark.parametrize("name", list_pruners(exclude="none"))
@pytest.mark.parametrize("n", [1, 2, 9, 26, 27])
def test_selection_is_sorted_unique_in_range(name, n):
    pruner = create_pruner(name)
    ctx = make_context()
    index = pruner(ctx, n)
    check_selection(index, n, F)
    assert index.shape == (B, n) and index.device == ctx.tokens.device


@pytest.mark.parametrize("name", list_pruners(exclude="none"))
@pytest.mark.parametrize("n", [1, 2, 9, 27])
def test_required_position_is_always_kept(name, n):
    required = torch.tensor([13, 0, 26])  # a different required position per sample
    index = create_pruner(name)(make_context(1, required), n)
    check_selection(index, n, F)
    assert bool((index == required[:, None]).any(dim=1).all())
    if n == 1:
        assert index[:, 0].tolist() == [13, 0, 26]


@pytest.mark.parametrize("name", ["cluster", "motion", "attention", "random"])
def test_samples_are_selected_independently(name):
    index = create_pruner(name)(make_context(2), 9)
    assert not torch.equal(index[0], index[1]) or not torch.equal(index[1], index[2])


def test_none_keeps_everything():
    pruner = create_pruner("none")
    index = pruner(make_context(), F)
    assert torch.equal(index, torch.arange(F).expand(B, F))
    with pytest.raises(ValueError, match="keeps every token"):
        pruner(make_context(), 9)


def test_none_places_no_pruning_stage():
    from backbones import create_backbone
    from strategies import apply_hourglass

    model = create_backbone("mixste", "tiny")
    x = torch.randn(1, model.frames, 17, 2)
    plain = model.eval()(x)
    apply_hourglass(model, pruner="none", recoverer=None, tokens=[9], depths=[1])
    assert model.hourglass.schedule.stages == ()  # no pruning stage: its select is never called in a model
    assert torch.equal(model(x), plain)  # exactly the backbone's computation


@pytest.mark.parametrize("name", list_pruners())
def test_impossible_counts_fail(name):
    for n in (0, F + 1):
        with pytest.raises(ValueError, match=f"cannot keep {n} of {F} tokens"):
            create_pruner(name)(make_context(), n)


# ---- cluster (TPC, DPC-kNN) -------------------------------------------------------------------------


def naive_dpc_knn(x: np.ndarray, k: int = 2) -> np.ndarray:
    """Reference gamma for one sample, written from papers.md §6.1 with plain loops.

    Equal densities (every pair of mutual nearest neighbours) are ordered by the documented
    priority frac(i * phi) instead of HoT's random 1e-6 noise.
    """
    f, c = x.shape
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)) / np.sqrt(c)
    rho = np.array([np.exp(-np.mean(np.sort(d[i])[:k] ** 2)) for i in range(f)])
    prio = (np.arange(f, dtype=np.float32) * np.float32(0.6180339887498949)) % 1
    delta = np.empty(f)
    for i in range(f):
        denser = [d[i, j] for j in range(f) if rho[j] > rho[i] or (rho[j] == rho[i] and prio[j] > prio[i])]
        delta[i] = min(denser) if denser else d.max()
    return rho * delta


def test_dpc_knn_matches_the_definition():
    x = torch.randn(2, 30, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    got = dpc_knn_score(x, k=2)
    for b in range(2):
        np.testing.assert_allclose(got[b].numpy(), naive_dpc_knn(x[b].numpy(), 2), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("length", [27, 81])
def test_dpc_knn_matches_the_definition_with_exact_ties(length):
    """Padded runs (identical frames) and a smooth trajectory: exact density ties, ordered by priority.

    cdist's matmul path puts identical frames ~1e-8 apart instead of 0, hence the absolute tolerance;
    the selected centres must be the definition's.
    """
    g = torch.Generator().manual_seed(length)
    x = torch.randn(3, length, 8, generator=g, dtype=torch.float64)
    x[0, : length // 3] = x[0, :1]  # a padded run at the start
    x[1, -(length // 4) :] = x[1, -1:]  # and one at the end
    x[2] = x[2].cumsum(0) * 0.1  # a smooth trajectory
    got = dpc_knn_score(x, k=2)
    for b in range(3):
        want = naive_dpc_knn(x[b].numpy(), 2)
        np.testing.assert_allclose(got[b].numpy(), want, rtol=1e-9, atol=1e-7)
        n = length // 3
        assert sorted(got[b].topk(n).indices.tolist()) == sorted(np.argsort(-want, kind="stable")[:n].tolist())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dpc_knn_k2_fast_path_is_bitwise_the_top_k_path(dtype):
    """k = 2 takes a row minimum instead of a top-k; it must give the very same scores, ties included."""
    import strategies.pruners.cluster as cluster

    g = torch.Generator().manual_seed(11)
    x = torch.randn(3, 351, 64, generator=g, dtype=dtype)
    x[0, :40] = x[0, :1]  # an edge-padded run: several tokens at distance exactly 0
    x[1, -60:] = x[1, -1:]
    x[2] = x[2].cumsum(0) * 0.05
    fast = dpc_knn_score(x, k=2)
    b, f, c = x.shape
    dist = torch.cdist(x, x)
    dist = dist + dist.transpose(1, 2)
    dist.mul_(0.5 / c**0.5)
    dist.diagonal(dim1=1, dim2=2).zero_()
    nearest = dist.topk(2, dim=-1, largest=False).values
    density = (-(nearest * nearest).mean(dim=-1)).exp()
    by_prio = cluster.tie_priority(f, x.device).argsort().expand(b, f)
    order = by_prio.gather(1, density.gather(1, by_prio).sort(dim=1, stable=True).indices)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(f).expand(b, f))
    delta = dist.masked_fill(~(rank[:, None, :] > rank[:, :, None]), torch.inf).amin(dim=-1)
    want = density * torch.where(delta.isinf(), dist.flatten(1).amax(dim=-1, keepdim=True), delta)
    assert torch.equal(fast, want)
    assert torch.equal(dpc_knn_score(x[:, :1], k=2), dpc_knn_score(x[:, :1], k=1))  # one token: no other


def test_cluster_picks_one_frame_per_group():
    groups, length, dim = 6, 30, 16
    g = torch.Generator().manual_seed(4)
    centres = torch.randn(groups, dim, generator=g) * 10  # well separated
    feats, labels = [], []
    for _ in range(B):  # each sample: a different interleaving of the groups in time
        label = torch.randperm(length, generator=g) % groups
        feats.append(centres[label] + 0.01 * torch.randn(length, dim, generator=g))
        labels.append(label)
    features = torch.stack(feats)  # (B, F, D)
    ctx = PruneContext(features[:, :, None, :], features=features)
    index = create_pruner("cluster")(ctx, groups)
    check_selection(index, groups, length)
    for b in range(B):
        assert sorted(labels[b][index[b]].tolist()) == list(range(groups))
    assert not torch.equal(index[0], index[1])


def test_cluster_with_centre_forcing_takes_the_other_groups():
    # the centre frame sits in group 0: HoT's cluster_dpc_knn_center keeps it plus n - 1 centres
    groups, length = 4, 21
    label = torch.arange(length) % groups
    centres = torch.eye(groups) * 10
    features = (centres[label] + 0.01 * torch.randn(length, groups, generator=torch.Generator().manual_seed(5)))[None]
    ctx = PruneContext(features[:, :, None, :], features=features, required=torch.tensor([10]))
    index = create_pruner("cluster")(ctx, groups)
    assert 10 in index[0].tolist()
    assert len(set(label[index[0]].tolist())) >= groups - 1


def test_cluster_is_deterministic_and_leaves_the_global_rng_alone():
    # identical frames (edge padding) make exact density ties: the tie-break must not use the RNG
    x = torch.randn(2, 27, 4, 8)
    x[:, :10] = x[:, :1]  # ten identical padded frames
    state = torch.get_rng_state()
    a = create_pruner("cluster")(PruneContext(x), 9)
    b = create_pruner("cluster")(PruneContext(x), 9)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b)
    check_selection(a, 9, 27)
    assert int((a < 10).sum(dim=1).max()) <= 1  # the padded run is one cluster: at most one centre


# ---- uniform (TPS) ------------------------------------------------------------------------------------


def closed_form(length: int, n: int, align: str) -> list[int]:
    if align == "centre":
        return [int(Fraction(2 * i + 1, 2 * n) * length) for i in range(n)]
    if n == 1:
        return [(length - 1) // 2]
    return [int(Fraction(i * (length - 1), n - 1) + Fraction(1, 2)) for i in range(n)]


@pytest.mark.parametrize("align", ["ends", "centre"])
@pytest.mark.parametrize(("length", "n"), [(243, 81), (243, 61), (243, 1), (243, 243), (27, 4), (351, 117), (10, 7)])
def test_uniform_matches_the_closed_form(length, n, align):
    assert uniform_positions(length, n, align) == closed_form(length, n, align)
    ctx = PruneContext(torch.zeros(2, length, 1, 1))
    index = create_pruner("uniform", align=align)(ctx, n)
    assert index.tolist() == [closed_form(length, n, align)] * 2


def uniform_positions(length: int, n: int, align: str = "ends") -> list[int]:
    return uniform_index(length, n, align, torch.device("cpu")).tolist()  # type: ignore[arg-type]


def test_uniform_known_values():
    assert uniform_positions(243, 81, "centre") == list(range(1, 243, 3))
    assert uniform_positions(243, 81, "ends")[:4] == [0, 3, 6, 9] and uniform_positions(243, 81)[-1] == 242
    assert 121 in uniform_positions(243, 81) and 121 in uniform_positions(243, 81, "centre")
    assert uniform_positions(27, 4) == [0, 9, 17, 26]


def test_uniform_moves_the_nearest_grid_point_onto_the_centre():
    ctx = PruneContext(torch.zeros(1, 27, 1, 1), required=torch.tensor([13]))
    assert create_pruner("uniform")(ctx, 4).tolist() == [[0, 13, 17, 26]]  # 9 and 17 tie: the earlier moves


# ---- motion (TPMo) ------------------------------------------------------------------------------------


def test_motion_picks_the_frames_where_the_pose_moves():
    moving = [[3, 11, 20, 25], [1, 2, 14, 26], [7, 8, 9, 10]]
    inputs = torch.zeros(B, F, 17, 2)
    for b, frames in enumerate(moving):
        for t in frames:  # a jump at frame t: s_t differs from s_{t-1}
            inputs[b, t:] += torch.randn(17, 2) + 1.0
    ctx = PruneContext(torch.randn(B, F, N, C), None, inputs)
    assert create_pruner("motion")(ctx, 4).tolist() == moving


def test_motion_on_features_and_later_stages():
    feats = torch.zeros(1, 9, 5)
    feats[0, 6:] = 1.0  # moves at 6
    feats[0, 2:] += 2.0  # and at 2
    ctx = PruneContext(feats[:, :, None, :], features=feats)
    assert create_pruner("motion", source="features")(ctx, 2).tolist() == [[2, 6]]
    # a later stage: tokens at original frames [0, 4, 8, 12]; the pose jumps between 4 and 8 only
    inputs = torch.zeros(1, 13, 17, 2)
    inputs[0, 6:] = 1.0
    ctx = PruneContext(torch.zeros(1, 4, 1, 1), torch.tensor([[0, 4, 8, 12]]), inputs)
    assert create_pruner("motion")(ctx, 1).tolist() == [[2]]


def test_motion_score_ignores_confidence_channel():
    inputs = torch.zeros(1, 5, 17, 3)
    inputs[0, 3, :, 2] = 1.0  # confidence flickers at frame 3, x/y never move
    inputs[0, 1:, 0, 0] = 1.0  # x of the root moves at frame 1
    ctx = PruneContext(torch.zeros(1, 5, 1, 1), None, inputs)
    assert create_pruner("motion")(ctx, 1).tolist() == [[1]]
    assert motion_score(torch.tensor([[0.0, 0.0, 3.0, 3.0]])).tolist() == [[0.0, 0.0, 3.0, 0.0]]


# ---- attention (TPA) ----------------------------------------------------------------------------------


def test_attention_picks_the_frames_the_map_favours():
    favoured = [[0, 5, 6, 20], [3, 4, 25, 26], [10, 12, 14, 16]]
    attention = torch.full((B, 17, F, F), 0.1)
    for b, frames in enumerate(favoured):
        attention[b, :, :, frames] = 5.0 + torch.rand(17, F, len(frames))  # every query attends to them
    attention = attention / attention.sum(-1, keepdim=True)
    ctx = PruneContext(torch.randn(B, F, N, C), attention=attention)
    assert create_pruner("attention")(ctx, 4).tolist() == favoured
    received = attention_received(attention)
    assert received.shape == (B, F)
    torch.testing.assert_close(received.sum(-1), torch.ones(B))  # mean of row-stochastic maps


def test_attention_needs_a_map():
    with pytest.raises(ValueError, match="needs the preceding block's temporal attention"):
        create_pruner("attention")(PruneContext(torch.randn(1, F, 1, 4)), 3)


# ---- random control ---------------------------------------------------------------------------------


def test_random_is_deterministic_for_a_seed_and_rng_free():
    state = torch.get_rng_state()
    a, b, c = (create_pruner("random", seed=s) for s in (7, 7, 8))
    ctx = make_context()
    seq_a = [a(ctx, 9) for _ in range(3)]
    seq_b = [b(ctx, 9) for _ in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(seq_a, seq_b))
    assert not torch.equal(seq_a[0], seq_a[1])  # a fresh subset at every call
    assert not torch.equal(c(ctx, 9), seq_a[0])
    a.reset()
    assert torch.equal(a(ctx, 9), seq_a[0])
    assert torch.equal(torch.get_rng_state(), state)


# ---- helpers -------------------------------------------------------------------------------------------


def test_topk_keep_and_force_required():
    score = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.2]])
    assert topk_keep(score, 2).tolist() == [[1, 3]]
    assert topk_keep(score, 2, torch.tensor([0])).tolist() == [[0, 1]]
    assert topk_keep(score, 1, torch.tensor([4])).tolist() == [[4]]
    index = torch.tensor([[0, 4, 8], [2, 5, 8]])
    assert force_required(index, torch.tensor([5, 5])).tolist() == [[0, 5, 8], [2, 5, 8]]
    assert force_required(index, None) is index


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (torch.tensor([[0, 2, 1]]), "strictly increasing"),
        (torch.tensor([[0, 1, 1]]), "strictly increasing"),
        (torch.tensor([[0, 1, 9]]), r"outside \[0, 9\)"),
        (torch.tensor([[0, 1]]), r"must be \(B, 3\)"),
        (torch.tensor([[0, 1, 2]], dtype=torch.int32), "int64"),
    ],
)
def test_check_selection_catches_bad_selections(index, message):
    with pytest.raises(ValueError, match=message):
        check_selection(index, 3, 9)


def test_required_positions():
    from strategies.base import required_positions

    frames = torch.tensor([[0, 4, 13, 20], [13, 14, 15, 16]])
    assert required_positions(frames, 13).tolist() == [2, 0]
    with pytest.raises(RuntimeError, match="frame 5 is no longer among the tokens"):
        required_positions(frames, 5, check=True)
