"""Pruner / recoverer registries: listing, factory (None dropping, unknown kwargs), registration."""

from __future__ import annotations

import pytest

import strategies
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
from strategies.pruners import ClusterPruner, UniformPruner
from strategies.recoverers import TokenRecoveringAttention, TokenRecoveringInterpolation


def test_listed_names():
    assert list_pruners() == ["attention", "cluster", "motion", "none", "random", "uniform"]
    assert list_recoverers() == ["attention", "interpolation", "none"]
    assert list_pruners("*m*") == ["motion", "random", "uniform"]
    assert list_pruners("*", exclude=["none", "random"]) == ["attention", "cluster", "motion", "uniform"]
    assert list_recoverers(["att*", "int*"]) == ["attention", "interpolation"]


def test_public_api():
    for name in (
        "register_pruner",
        "register_recoverer",
        "list_pruners",
        "list_recoverers",
        "create_pruner",
        "create_recoverer",
        "apply_hourglass",
        "parse_schedule",
        "parse_axis",
    ):
        assert callable(getattr(strategies, name))


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
