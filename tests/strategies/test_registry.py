"""Pruner / recoverer registries: listing, factory (None dropping, unknown kwargs), registration."""

from __future__ import annotations

import pytest
import torch

from strategies import (
    Pruner,
    Recoverer,
    RegistryError,
    create_pruner,
    create_recoverer,
    list_pruners,
    list_recoverers,
    register_pruner,
)
from strategies.base import PruneContext, check_selection
from strategies.pruners import ClusterPruner, UniformPruner
from strategies.recoverers import TokenRecoveringAttention, TokenRecoveringInterpolation


def test_listed_names():
    assert list_pruners() == ["attention", "cluster", "motion", "none", "random", "uniform"]
    assert list_recoverers() == ["attention", "interpolation", "none"]
    assert list_pruners("*m*") == ["motion", "random", "uniform"]
    assert list_pruners("*", exclude=["none", "random"]) == ["attention", "cluster", "motion", "uniform"]
    assert list_recoverers(["att*", "int*"]) == ["attention", "interpolation"]


def _context(b: int = 3, f: int = 27, n_tokens: int = 17, c: int = 8, seed: int = 0) -> PruneContext:
    """Everything a pruner may ask for, filled with random data; rows must keep frames 13, 0 and 26."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(b, f, n_tokens, c, generator=g)
    attention = torch.softmax(torch.randn(b, n_tokens, f, f, generator=g), dim=-1)
    return PruneContext(
        tokens=tokens,
        frame_index=torch.arange(f).expand(b, f),
        inputs=torch.randn(b, f, n_tokens, 2, generator=g),
        features=tokens.mean(dim=2),
        attention=attention,
        required=torch.tensor([13, 0, 26])[:b],
    )


@pytest.mark.parametrize("name", list_pruners())
def test_every_registered_pruner_keeps_n_sorted_unique_positions_with_the_required_frame(name):
    pruner = create_pruner(name)
    assert isinstance(pruner, Pruner) and pruner.name == name
    assert sum(p.numel() for p in pruner.parameters()) == 0  # a Token Pruning Module only selects
    ctx = _context()
    n = ctx.length if name == "none" else 9  # 'none' keeps every token
    index = pruner(ctx, n)
    assert index.shape == (3, n) and index.dtype == torch.int64
    assert bool((index[:, 1:] > index[:, :-1]).all())  # sorted, unique
    assert int(index.min()) >= 0 and int(index.max()) < ctx.length
    assert ctx.required is not None
    assert bool((index == ctx.required[:, None]).any(dim=1).all())  # the centre (required) frame is kept
    check_selection(index, n, ctx.length)
    for bad in (0, ctx.length + 1):
        with pytest.raises(ValueError, match="cannot keep"):
            pruner(ctx, bad)


@pytest.mark.parametrize("name", list_recoverers())
def test_every_registered_recoverer_restores_t_frames(name):
    torch.manual_seed(0)
    t, c, b, n = 27, 32, 2, 9
    rec = create_recoverer(name, frames=t, dim=c)
    assert isinstance(rec, Recoverer) and rec.name == name
    n_params = sum(p.numel() for p in rec.parameters())
    assert (n_params == 0) == rec.parameter_free  # parameter_free means usable training-free: no weights
    kept = torch.arange(1, t, 3).expand(b, n)  # (B, n) sorted kept frames
    if rec.stage == "features":
        out = rec.recover_features(torch.randn(b, n, 17, c), kept)
        assert out.shape == (b, t, 17, c) and torch.isfinite(out).all()
    elif rec.stage == "pose":
        pose = torch.randn(b, n, 17, 3)
        full, index = rec.recover_pose(pose, kept)
        assert full.shape == (b, t, 17, 3) and torch.isfinite(full).all()
        assert torch.equal(index, torch.arange(t).expand(b, t))
        torch.testing.assert_close(full[:, 1::3], pose)  # the kept frames come back unchanged
    else:
        assert rec.stage == "none" and rec.parameter_free
        with pytest.raises(NotImplementedError):
            rec.recover_features(torch.randn(b, n, 17, c), kept)


def test_create_pruner_drops_none_and_passes_kwargs():
    p = create_pruner("cluster", k=None)
    assert isinstance(p, ClusterPruner) and p.k == 2 and p.name == "cluster"
    assert create_pruner("cluster", k=3).k == 3
    assert create_pruner("uniform", align="centre").align == "centre"
    assert isinstance(create_pruner("uniform"), UniformPruner)


def test_create_recoverer():
    r = create_recoverer("attention", frames=27, dim=32, heads=None)
    assert isinstance(r, TokenRecoveringAttention) and r.heads == 8 and r.stage == "features"
    assert tuple(r.x_token.shape) == (1, 27, 32)
    i = create_recoverer("interpolation", 27, 32, mode="nearest")
    assert isinstance(i, TokenRecoveringInterpolation) and i.mode == "nearest" and i.stage == "pose"
    assert create_recoverer("none", 27, 32).stage == "none"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: create_pruner("kmeans"), r"^unknown pruner 'kmeans' \(known: attention, cluster, "),
        (lambda: create_pruner("cluster", kk=2), r"^pruner 'cluster' does not take kk \(options: k\)$"),
        (lambda: create_pruner("none", seed=1), r"^pruner 'none' does not take seed \(options: none\)$"),
        (lambda: create_recoverer("linear", 27, 32), r"^unknown recoverer 'linear'"),
        (lambda: create_recoverer("interpolation", 27, 32, order=1), r"does not take order \(options: mode\)$"),
    ],
)
def test_factory_errors_are_one_line(call, match):
    with pytest.raises(RegistryError, match=match) as e:
        call()
    assert "\n" not in str(e.value)


def test_bad_option_values():
    with pytest.raises(ValueError, match="align"):
        create_pruner("uniform", align="middle")
    with pytest.raises(ValueError, match="motion source"):
        create_pruner("motion", source="velocity")
    with pytest.raises(ValueError, match="divisible"):
        create_recoverer("attention", 27, 30, heads=8)


def test_register_decorator_rejects_non_pruners():
    with pytest.raises(TypeError, match="Pruner subclass"):
        register_pruner("bogus")(int)  # type: ignore[arg-type]


def test_base_classes_are_abstract():
    assert issubclass(ClusterPruner, Pruner) and issubclass(TokenRecoveringAttention, Recoverer)
