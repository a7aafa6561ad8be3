from __future__ import annotations

import pickle

import pytest
import torch

from backbones import CheckpointError, clean_state_dict, create_backbone, load_official_checkpoint, save_checkpoint


@pytest.fixture
def model():
    torch.manual_seed(0)
    return create_backbone("mixste", "tiny")


def test_round_trip_official_layout_with_module_prefix(tmp_path, model):
    path = save_checkpoint(model, tmp_path / "best_epoch.bin", key="model_pos", prefix="module.")
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"model_pos"} and all(k.startswith("module.") for k in raw["model_pos"])
    fresh = create_backbone("mixste", "tiny")
    load_official_checkpoint(fresh, path)
    for (k, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    x = torch.randn(1, 27, 17, 2)
    model.eval(), fresh.eval()
    assert torch.equal(model(x), fresh(x))


def test_plain_state_dict_with_compile_prefix(tmp_path, model):
    sd = {"_orig_mod." + k: v for k, v in model.state_dict().items()}
    torch.save(sd, tmp_path / "plain.pth")
    load_official_checkpoint(create_backbone("mixste", "tiny"), tmp_path / "plain.pth")


def test_missing_key_is_listed(tmp_path, model):
    sd = model.state_dict()
    del sd["head.1.weight"]
    torch.save(sd, tmp_path / "m.pth")
    with pytest.raises(CheckpointError, match=r"missing 1: head\.1\.weight") as e:
        load_official_checkpoint(create_backbone("mixste", "tiny"), tmp_path / "m.pth")
    assert "\n" not in str(e.value)


def test_unexpected_key_is_listed(tmp_path, model):
    sd = dict(model.state_dict())
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "u.pth")
    with pytest.raises(CheckpointError, match=r"unexpected 1: extra\.weight"):
        load_official_checkpoint(create_backbone("mixste", "tiny"), tmp_path / "u.pth")


def test_wrong_shape_is_listed(tmp_path, model):
    sd = dict(model.state_dict())
    sd["head.1.weight"] = torch.zeros(4, 32)
    torch.save(sd, tmp_path / "s.pth")
    with pytest.raises(CheckpointError, match=r"shape mismatch 1: head\.1\.weight \(4, 32\) vs \(3, 32\)"):
        load_official_checkpoint(create_backbone("mixste", "tiny"), tmp_path / "s.pth")


def test_non_checkpoint_file(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello, I am not a checkpoint")
    with pytest.raises(CheckpointError, match="not a weights-only torch checkpoint"):
        load_official_checkpoint(create_backbone("mixste", "tiny"), p)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_official_checkpoint(create_backbone("mixste", "tiny"), tmp_path / "absent.pth")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_hostile_pickle_is_refused_without_running(tmp_path, monkeypatch, model):
    monkeypatch.chdir(tmp_path)
    torch.save({"model_pos": model.state_dict(), "payload": _Evil()}, tmp_path / "evil.pth", pickle_module=pickle)
    with pytest.raises(CheckpointError, match=r"holds non-tensor objects .* was not loaded") as e:
        load_official_checkpoint(create_backbone("mixste", "tiny"), tmp_path / "evil.pth")
    assert "weights_only" not in str(e.value)  # never the advice that would run the file
    assert not (tmp_path / "pwned").exists()


def test_non_finite_weights_are_refused_naming_the_key(tmp_path, model):
    sd = model.state_dict()
    key = sorted(k for k, v in sd.items() if v.is_floating_point())[3]
    sd[key] = sd[key].clone().fill_(float("nan"))
    torch.save(sd, tmp_path / "nan.pth")
    with pytest.raises(CheckpointError, match=f"'{key}' holds {sd[key].numel()} non-finite"):
        load_official_checkpoint(create_backbone("mixste", "tiny"), tmp_path / "nan.pth")


def test_clean_state_dict_strips_nested_prefixes():
    t = torch.zeros(1)
    assert list(clean_state_dict({"module._orig_mod.a.b": t, "c": t})) == ["a.b", "c"]
