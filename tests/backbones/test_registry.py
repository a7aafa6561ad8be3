from __future__ import annotations

import warnings

import pytest
import torch

import backbones
from backbones import (
    BackboneSpec,
    PresetSpec,
    RegistryError,
    create_backbone,
    get_backbone_spec,
    list_backbones,
    register_backbone,
)
from backbones._registry import Registry


def test_four_backbones_are_registered():
    assert {"mixste", "motionbert", "mhformer", "strided"} <= set(list_backbones())


def test_wildcard_listing_and_exclude():
    assert list_backbones("mix*") == ["mixste"]
    assert "mixste" not in list_backbones("*", exclude="mix*")
    assert list_backbones(["mix*", "strided"]) == ["mixste", "strided"]
    assert list_backbones("nothing*") == []


def test_listing_is_sorted():
    names = list_backbones()
    assert names == sorted(names)


def test_unknown_backbone_names_the_known_ones():
    with pytest.raises(RegistryError) as e:
        create_backbone("mixtse")
    assert "unknown backbone 'mixtse'" in str(e.value)
    assert "mixste" in str(e.value) and "\n" not in str(e.value)


def test_unknown_preset_and_override_are_rejected():
    with pytest.raises(RegistryError, match="no preset 'huge'"):
        create_backbone("mixste", "huge")
    with pytest.raises(RegistryError, match="does not take bogus"):
        create_backbone("mixste", "tiny", bogus=3)


def test_none_overrides_are_dropped_and_real_ones_applied():
    m = create_backbone("mixste", "tiny", depth=None, embed_dim_ratio=16)
    assert m.token_dim == 16
    assert m.num_blocks == get_backbone_spec("mixste").presets["tiny"].depth


@pytest.mark.parametrize("name", ["mixste", "motionbert", "mhformer", "strided"])
def test_spec_metadata_is_typed_and_complete(name):
    spec = get_backbone_spec(name)
    assert spec.pipeline in ("seq2seq", "seq2frame")
    assert {"paper", "small", "tiny"} <= set(spec.presets)
    paper = spec.presets["paper"]
    assert paper.paper is not None and paper.paper.params and paper.paper.gflops_paper
    assert paper.official_layout
    d = spec.to_dict()
    assert d["name"] == name and d["presets"]["paper"]["frames"] == paper.frames


def test_duplicate_registration_warns_and_last_wins():
    reg = Registry("thing")
    reg.add("a", 1)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        reg.add("a", 2)
    assert reg.get("a") == 2 and len(w) == 1


def test_register_backbone_decorator_adds_an_entry(monkeypatch):
    reg = Registry("backbone")
    monkeypatch.setattr(backbones._registry, "_BACKBONES", reg)
    spec = BackboneSpec(
        name="toy",
        pipeline="seq2seq",
        paper_title="t",
        official_code="-",
        presets={
            "paper": PresetSpec(kwargs={"n": 2}, frames=1, depth=1, dim=2, heads=1),
            "tiny": PresetSpec(kwargs={"n": 1}, frames=1, depth=1, dim=1, heads=1),
        },
    )

    @register_backbone(spec)
    def toy(n: int) -> torch.nn.Module:
        return torch.nn.Linear(n, n)

    assert list_backbones() == ["toy"]
    assert create_backbone("toy").in_features == 2
    assert create_backbone("toy", n=3).in_features == 3


def test_a_backbone_without_a_tiny_preset_is_refused():
    spec = BackboneSpec(
        name="no_tiny",
        pipeline="seq2seq",
        paper_title="t",
        official_code="-",
        presets={"paper": PresetSpec(kwargs={}, frames=1, depth=1, dim=2, heads=1)},
    )
    with pytest.raises(RegistryError, match=r"must declare the preset.*tiny"):
        register_backbone(spec)
