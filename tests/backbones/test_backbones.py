"""Registry-parametrised checks of every backbone: shapes, gradients, official parity."""

from __future__ import annotations

import pytest
import torch

from backbones import PoseBackbone, create_backbone, get_backbone_spec, list_backbones

NAMES = list_backbones()


@pytest.mark.parametrize("name", NAMES)
def test_tiny_forward_shape_no_nan_and_gradients(name):
    torch.manual_seed(0)
    spec = get_backbone_spec(name)
    preset = spec.presets["tiny"]
    model = create_backbone(name, "tiny")
    assert isinstance(model, PoseBackbone)
    model.train()
    x = torch.randn(2, preset.frames, 17, preset.in_channels)
    y = model(x)
    expected_t = preset.frames if spec.pipeline == "seq2seq" else 1
    assert y.shape == (2, expected_t, 17, 3)
    assert torch.isfinite(y).all()
    out = model.forward_all(x)
    loss = out.pose.square().mean() + (out.aux.square().mean() if out.aux is not None else 0)
    loss.backward()
    unused = set(getattr(model, "unused_parameters", ()))
    no_grad = [n for n, p in model.named_parameters() if p.grad is None and n not in unused]
    assert no_grad == []


@pytest.mark.parametrize("name", NAMES)
def test_forward_rows_match_forward_all(name):
    spec = get_backbone_spec(name)
    preset = spec.presets["tiny"]
    model = create_backbone(name, "tiny").eval()
    x = torch.randn(1, preset.frames, 17, preset.in_channels)
    with torch.inference_mode():
        out = model.forward_all(x)
        y = model(x)
    centre = (preset.frames - 1) // 2
    assert model.centre == centre
    row = (out.index[0] == centre).nonzero()
    assert row.numel() == 1
    got = y[0, 0] if get_backbone_spec(name).pipeline == "seq2frame" else y[0, centre]
    assert torch.equal(got, out.pose[0, int(row)])


def _presets_with_layout():
    for name in NAMES:
        for preset, p in get_backbone_spec(name).presets.items():
            if p.official_layout:
                yield name, preset, p.official_layout


@pytest.mark.parametrize(("name", "preset", "layout"), list(_presets_with_layout()))
def test_official_parity_on_meta(name, preset, layout, tsv):
    total, rows = tsv(layout)
    with torch.device("meta"):
        model = create_backbone(name, preset)
    assert sum(p.numel() for p in model.parameters()) == total
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == rows


@pytest.mark.parametrize("name", NAMES)
def test_wrong_frame_count_is_a_clear_error(name):
    preset = get_backbone_spec(name).presets["tiny"]
    model = create_backbone(name, "tiny")
    with pytest.raises(ValueError, match="frames"):
        model(torch.randn(1, preset.frames + 9, 17, preset.in_channels))
