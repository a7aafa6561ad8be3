"""Parity with the published HoT / TPC models: parameter counts, state-dict keys, checkpoints, FLOPs.

Paper presets are built on the meta device (no memory, no time); the checkpoint round trip uses a
real tiny model. Official figures: shared/docs/official_state_dicts/*.tsv and backbones.md §5.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import backbones
from backbones import (
    CheckpointError,
    create_backbone,
    list_backbones,
    load_official_checkpoint,
    load_state_dict_strict,
    save_checkpoint,
)
from strategies import apply_hourglass


def _published() -> list[tuple[str, str, str, str, str, int, int, int]]:
    """(TSV, backbone, preset, pruner, recoverer, n, k, official all-matmul FLOPs) of every published
    HoT / TPC variant in the registry that has an official state-dict listing (the independent source)."""
    rows = []
    for name in list_backbones():
        for v in backbones.get_backbone_spec(name).variants:
            if v.official_layout and v.paper is not None and v.paper.flops_official is not None:
                assert isinstance(v.tokens, int) and isinstance(v.depths, int)
                rows.append(
                    (
                        v.official_layout,
                        name,
                        v.preset,
                        v.pruner,
                        v.recoverer,
                        v.tokens,
                        v.depths,
                        v.paper.flops_official,
                    )
                )
    return rows


PUBLISHED = _published()
IDS = [row[0] for row in PUBLISHED]


def test_every_published_variant_with_a_listing_is_checked():
    assert {r[0] for r in PUBLISHED} == {
        "hot_mixste_243_n81_k3",
        "tpc_mixste_243_n61_k7",
        "hot_motionbert_lite_n81_k1",
        "tpc_mhformer_351_n117_k1",
    }


def build_on_meta(backbone, preset, pruner, recoverer, n, k):
    if backbone not in list_backbones():
        pytest.skip(f"backbone '{backbone}' is not registered yet")
    with torch.device("meta"):
        model = create_backbone(backbone, preset)
        return apply_hourglass(model, pruner=pruner, recoverer=recoverer, tokens=n, depths=k)


@pytest.mark.parametrize(
    ("tsv_name", "backbone", "preset", "pruner", "recoverer", "n", "k", "flops"), PUBLISHED, ids=IDS
)
def test_params_and_state_dict_keys(tsv, tsv_name, backbone, preset, pruner, recoverer, n, k, flops):
    total, rows = tsv(tsv_name)
    model = build_on_meta(backbone, preset, pruner, recoverer, n, k)
    assert sum(p.numel() for p in model.parameters()) == total
    mine = {(key, tuple(v.shape)) for key, v in model.state_dict().items()}
    assert mine == set(rows)  # HoT's registration order differs from ours: compared as sets
    assert len(model.state_dict()) == len(rows)


@pytest.mark.parametrize(
    ("tsv_name", "backbone", "preset", "pruner", "recoverer", "n", "k", "flops"), PUBLISHED, ids=IDS
)
def test_official_layout_loads_strictly(tsv, tsv_name, backbone, preset, pruner, recoverer, n, k, flops):
    _, rows = tsv(tsv_name)
    model = build_on_meta(backbone, preset, pruner, recoverer, n, k)
    official = {key: torch.empty(shape, device="meta") for key, shape in rows}  # a plain HoT state dict
    load_state_dict_strict(model, official)
    del official[rows[0][0]]
    with pytest.raises(CheckpointError, match="missing 1"):
        load_state_dict_strict(model, official)


@pytest.mark.parametrize(
    ("tsv_name", "backbone", "preset", "pruner", "recoverer", "n", "k", "flops"), PUBLISHED, ids=IDS
)
def test_all_matmul_flops_equal_the_official_models(tsv_name, backbone, preset, pruner, recoverer, n, k, flops):
    """FlopCounterMode on meta counts exactly what it counts on the official HoT / TPC classes."""
    model = build_on_meta(backbone, preset, pruner, recoverer, n, k).eval()
    x = torch.empty(1, model.frames, 17, model.in_channels, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    assert counter.get_total_flops() == flops
    assert model.hourglass.tokens_per_block[k] == n


def test_hot_adds_exactly_ten_keys_and_tpc_none(tsv):
    _, base = tsv("mixste_243")
    _, hot = tsv("hot_mixste_243_n81_k3")
    extra = {k for k, _ in hot} - {k for k, _ in base}
    assert extra == {"pos_embed_token", "x_token"} | {
        f"cross_attention.{m}.{p}" for m in ("linear_q", "linear_k", "linear_v", "proj") for p in ("weight", "bias")
    }


def test_hierarchical_tra_adds_one_embedding_per_stage():
    model = build_on_meta("mixste", "paper", "cluster", "attention", [121, 81, 41], [2, 4, 6])
    base = 33_783_811
    tra = 243 * 512 + 4 * (512 * 512 + 512)
    assert sum(p.numel() for p in model.parameters()) == base + tra + (121 + 81 + 41) * 512
    keys = set(model.state_dict())
    assert {"pos_embed_token", "pos_embed_token_1", "pos_embed_token_2"} <= keys
    assert not any(k.startswith("hourglass.") for k in keys)
    assert model.hourglass.tokens_per_block == [243, 243, 121, 121, 81, 81, 41, 41]


def test_checkpoint_round_trip_in_official_layout(tmp_path):
    torch.manual_seed(0)

    def hot_tiny():
        m = create_backbone("mixste", "tiny").eval()
        return apply_hourglass(m, pruner="cluster", recoverer="attention", tokens=9, depths=2)

    model = hot_tiny()
    with torch.no_grad():  # make the zero-initialised HoT parameters non-trivial
        for p in model.hourglass.parameters():
            p.normal_()
    x = torch.randn(2, model.frames, 17, 2)
    with torch.no_grad():
        expected = model(x)

    plain = save_checkpoint(model, tmp_path / "hot_mixste_tiny.pth")  # HoT's container: a plain state dict
    saved = torch.load(plain, weights_only=True)
    assert {"pos_embed_token", "x_token", "cross_attention.proj.weight"} <= set(saved)
    assert not any(k.startswith("hourglass.") for k in saved)
    wrapped = save_checkpoint(model, tmp_path / "wrapped.bin", key="model_pos", prefix="module.")

    for path in (plain, wrapped):
        fresh = hot_tiny()
        load_official_checkpoint(fresh, path)
        with torch.no_grad():
            assert torch.equal(fresh(x), expected)

    # a base MixSTE checkpoint lacks exactly the ten HoT keys; TPC loads it as it is
    base = create_backbone("mixste", "tiny")
    base_file = save_checkpoint(base, tmp_path / "mixste_tiny.pth")
    with pytest.raises(CheckpointError, match="missing 10:") as e:
        load_official_checkpoint(hot_tiny(), base_file)
    assert "x_token" in str(e.value) and "hourglass" not in str(e.value)
    tpc = apply_hourglass(create_backbone("mixste", "tiny"), pruner="cluster", recoverer="none", tokens=7, depths=3)
    load_official_checkpoint(tpc, base_file)


def test_state_dict_hooks_survive_deepcopy_and_wrapping():
    import copy

    model = create_backbone("mixste", "tiny")
    apply_hourglass(model, pruner="uniform", recoverer="attention", tokens=9, depths=1)
    clone = copy.deepcopy(model)
    assert set(clone.state_dict()) == set(model.state_dict())
    assert "x_token" in clone.state_dict()
    wrapper = torch.nn.Sequential(model)
    keys = set(wrapper.state_dict())
    assert {"0.x_token", "0.pos_embed_token", "0.cross_attention.linear_q.weight"} <= keys
    wrapper.load_state_dict(wrapper.state_dict())  # strict, through the renaming hooks
    assert backbones.PoseBackbone in type(clone).__mro__
