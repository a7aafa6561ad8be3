"""Training: one step lowers the loss, budgets, resume, training-free mode, checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from backbones import get_backbone_spec, list_backbones
from bench.config import ModelConfig, TrainConfig
from bench.data.synthetic import make_synthetic_h36m
from bench.training.loop import TrainError, train
from bench.training.objectives import objective_for


@pytest.fixture(scope="module")
def small_data():
    d = make_synthetic_h36m(seed=1, frames_per_sequence=81, takes=1, noise="none")
    # a few sequences keep the test fast: 2 train and 2 test takes
    return type(d)(d.name, d.train[:8:4], d.test[:8:4], d.fps, d.joints_left, d.joints_right, d.notes)


@pytest.mark.parametrize("name", list_backbones())
def test_one_step_lowers_the_loss_on_a_fixed_batch(name):
    torch.manual_seed(0)
    preset = get_backbone_spec(name).presets["tiny"]
    model = ModelConfig.create(name, "tiny").build().eval()  # eval: no dropout noise in the comparison
    x = torch.randn(4, preset.frames, 17, preset.in_channels) * 0.3
    y = torch.randn(4, preset.frames, 17, 3) * 0.2
    loss_fn = objective_for(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = loss_fn(model.forward_all(x), y)
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_fn(model.forward_all(x), y)
    assert float(after) < float(before.detach())


def test_train_writes_weights_and_config_and_resumes(tmp_path, small_data):
    cfg = ModelConfig.create("mixste", "tiny", "uniform", "interpolation", 9, 1)
    tc = TrainConfig(steps=3, batch_size=4, checkpoint_every=2, eval_stride=9, threads=1)
    r1 = train(cfg, tc, small_data, tmp_path, progress=False)
    assert r1.steps == 3 and (tmp_path / "model.pt").is_file() and (tmp_path / "train_state.pt").is_file()
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["model"]["pruner"] == "uniform" and meta["steps"] == 3
    d = r1.to_dict()
    for key in (
        "mpjpe_mm",
        "pmpjpe_mm",
        "mpjve_mm",
        "trivial_mpjpe_mm",
        "per_action",
        "steps",
        "seconds",
        "checkpoint",
    ):
        assert key in d
    assert d["mpjpe_mm"] > 0 and d["trivial_mpjpe_mm"] > 0
    # a larger budget in the same folder continues from step 3
    r2 = train(cfg, TrainConfig(steps=5, batch_size=4, eval_stride=9, threads=1), small_data, tmp_path, progress=False)
    assert r2.resumed_from == 3 and r2.steps == 5


def test_resume_is_deterministic(tmp_path, small_data):
    cfg = ModelConfig.create("mixste", "tiny")
    tc = TrainConfig(steps=4, batch_size=4, checkpoint_every=100, eval_stride=9, threads=1)
    straight = train(cfg, tc, small_data, tmp_path / "a", progress=False)
    train(cfg, TrainConfig(steps=2, batch_size=4, eval_stride=9, threads=1), small_data, tmp_path / "b", progress=False)
    resumed = train(cfg, tc, small_data, tmp_path / "b", progress=False)
    sa = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    assert all(torch.allclose(sa[k], sb[k], atol=1e-6) for k in sa)
    assert resumed.eval.mpjpe_mm == pytest.approx(straight.eval.mpjpe_mm, rel=1e-5)


def _spy_on_load_weights(monkeypatch) -> list[dict[str, torch.Tensor]]:
    """Record the model's state right after train() loaded --init into it (before any step)."""
    from bench.training import loop

    seen: list[dict[str, torch.Tensor]] = []
    original = loop.load_weights

    def spy(model, cfg, path):
        out = original(model, cfg, path)
        seen.append({k: v.detach().clone() for k, v in out.state_dict().items()})
        return out

    monkeypatch.setattr(loop, "load_weights", spy)
    return seen


def test_training_free_needs_a_parameter_free_strategy(tmp_path, small_data):
    base = ModelConfig.create("mixste", "tiny")
    train(base, TrainConfig(steps=1, batch_size=4, eval_stride=9), small_data, tmp_path / "base", progress=False)
    ckpt = tmp_path / "base" / "model.pt"
    hot = ModelConfig.create("mixste", "tiny", "cluster", "attention", 9, 1)
    with pytest.raises(TrainError, match="parameter-free"):
        train(hot, TrainConfig(mode="none"), small_data, tmp_path / "hot", init=ckpt, progress=False)
    tri = ModelConfig.create("mixste", "tiny", "uniform", "interpolation", 9, 1)
    r = train(tri, TrainConfig(mode="none", eval_stride=9), small_data, tmp_path / "tri", init=ckpt, progress=False)
    assert r.steps == 0 and r.eval.mpjpe_mm > 0
    # training-free: the written model is the baseline, weight for weight (TRI adds none)
    baseline = torch.load(ckpt, weights_only=True)
    written = torch.load(tmp_path / "tri" / "model.pt", weights_only=True)
    assert set(written) == set(baseline)
    assert all(torch.equal(written[k], baseline[k]) for k in baseline)


def test_finetune_loads_the_baseline_into_the_backbone(tmp_path, small_data, monkeypatch):
    base = ModelConfig.create("mixste", "tiny")
    train(base, TrainConfig(steps=1, batch_size=4, eval_stride=9), small_data, tmp_path / "base", progress=False)
    baseline = torch.load(tmp_path / "base" / "model.pt", weights_only=True)
    seen = _spy_on_load_weights(monkeypatch)
    hot = ModelConfig.create("mixste", "tiny", "cluster", "attention", 9, 1)
    r = train(
        hot,
        TrainConfig(mode="finetune", steps=1, batch_size=4, eval_stride=9),
        small_data,
        tmp_path / "ft",
        init=tmp_path / "base" / "model.pt",
        progress=False,
    )
    assert r.steps == 1
    # before the first step every backbone weight is the baseline's; only TRA's weights are new
    assert len(seen) == 1
    before = seen[0]
    assert set(baseline) < set(before)
    differ = [k for k in baseline if not torch.equal(before[k], baseline[k])]
    assert differ == []
    # ... and the one fine-tuning step then moved them (the loaded weights are the ones trained)
    after = torch.load(tmp_path / "ft" / "model.pt", weights_only=True)
    moved = [k for k in baseline if baseline[k].is_floating_point() and not torch.equal(after[k], baseline[k])]
    assert len(moved) > len(baseline) // 2
    with pytest.raises(TrainError, match="needs --init"):
        train(hot, TrainConfig(mode="finetune", steps=1), small_data, None, progress=False)
    with pytest.raises(TrainError, match="budget"):
        train(base, TrainConfig(), small_data, None, progress=False)


@pytest.mark.parametrize(
    ("cfg", "mode"),
    [
        (ModelConfig.create("mixste", "tiny"), "all"),
        (ModelConfig.create("mixste", "tiny", "cluster", None, 9, 1), "all"),
        (ModelConfig.create("mixste", "tiny", "cluster", "none", 9, 1), "centre"),
        (ModelConfig.create("mhformer", "tiny"), "centre"),
        (ModelConfig.create("strided", "tiny", "uniform", None, 9, 1), "centre"),
    ],
)
def test_output_mode_follows_the_pipeline(cfg, mode):
    from bench.training.loop import output_mode

    assert output_mode(cfg.build("meta")) == mode


def test_load_weights_puts_the_baseline_into_the_pruned_backbone(tmp_path):
    from backbones import save_checkpoint
    from bench.training.loop import load_weights

    torch.manual_seed(3)
    base = ModelConfig.create("mixste", "tiny").build()
    save_checkpoint(base, tmp_path / "base.pt")
    hot = ModelConfig.create("mixste", "tiny", "cluster", "attention", 9, 1)
    model = load_weights(hot.build(), hot, tmp_path / "base.pt")
    own = model.state_dict()
    for k, v in base.state_dict().items():
        assert torch.equal(own[k], v), k
    assert set(own) - set(base.state_dict()) == set(model.hourglass.flat_names.values())


def test_the_tiny_recipe_is_a_default_under_explicit_options():
    from bench.training.loop import DEFAULT_BATCH, DEFAULT_LR, resolve_recipe

    spec = get_backbone_spec("motionbert")
    recipe = spec.presets["tiny"].recipe
    assert recipe is not None and recipe.notes and spec.presets["paper"].recipe is None
    tiny = ModelConfig.create("motionbert", "tiny")
    r = resolve_recipe(tiny, TrainConfig())
    assert (r.lr, r.warmup_steps, r.loss_weights) == (recipe.lr or DEFAULT_LR, recipe.warmup_steps, recipe.loss_weights)
    r = resolve_recipe(tiny, TrainConfig(lr=0.01, warmup_steps=0))
    assert (r.lr, r.warmup_steps) == (0.01, 0)
    assert resolve_recipe(tiny, TrainConfig(loss="mpjpe")).loss_weights == {}
    paper = resolve_recipe(ModelConfig.create("motionbert", "paper"), TrainConfig())
    assert (paper.lr, paper.warmup_steps, paper.loss_weights) == (DEFAULT_LR, 0, {})
    assert paper.batch_size == DEFAULT_BATCH
    assert resolve_recipe(tiny, TrainConfig()).batch_size == (recipe.batch_size or DEFAULT_BATCH)
    assert resolve_recipe(tiny, TrainConfig(batch_size=3)).batch_size == 3


def test_every_tiny_preset_declares_a_recipe_and_no_paper_preset_does():
    from backbones import list_backbones

    for name in list_backbones():
        spec = get_backbone_spec(name)
        for preset, p in spec.presets.items():
            if preset == "tiny":
                assert p.recipe is not None and p.recipe.notes, name
            elif preset == "paper":
                assert p.recipe is None, name


def test_objective_weight_overrides_change_only_the_named_term():
    from backbones.objectives import MOTIONBERT_WEIGHTS
    from bench.training.objectives import ObjectiveError

    torch.manual_seed(0)
    model = ModelConfig.create("motionbert", "tiny").build().eval()
    out = model.forward_all(torch.randn(2, 27, 17, 3))
    y = torch.randn(2, 27, 17, 3) * 0.2
    paper = objective_for("motionbert")(out, y)
    same = objective_for("motionbert", "paper", dict(MOTIONBERT_WEIGHTS))(out, y)
    no_vel = objective_for("motionbert", "paper", {"velocity": 0.0})(out, y)
    assert torch.equal(paper, same) and float(no_vel) < float(paper)
    with pytest.raises(ObjectiveError):
        objective_for("mhformer", "paper", {"velocity": 1.0})


def test_a_finetune_takes_the_recipes_finetune_lr_unless_told():
    from bench.training.loop import DEFAULT_LR, resolve_recipe

    recipe = get_backbone_spec("mixste").presets["tiny"].recipe
    assert recipe is not None and recipe.finetune_lr is not None and recipe.finetune_lr != recipe.lr
    cfg = ModelConfig.create("mixste", "tiny", pruner="cluster", tokens=(9,), depths=(1,))
    assert resolve_recipe(cfg, TrainConfig(mode="finetune")).lr == recipe.finetune_lr
    assert resolve_recipe(cfg, TrainConfig(mode="scratch")).lr == recipe.lr
    assert resolve_recipe(cfg, TrainConfig(mode="finetune", lr=0.02)).lr == 0.02
    strided = get_backbone_spec("strided").presets["paper"].recipe  # no recipe at the paper preset: the default
    s_cfg = ModelConfig.create("strided", "paper", pruner="cluster", tokens=(81,), depths=(1,))
    assert strided is None and resolve_recipe(s_cfg, TrainConfig(mode="finetune")).lr == DEFAULT_LR


def test_a_finetune_takes_the_recipes_finetune_warmup_unless_told():
    from bench.training.loop import resolve_recipe

    mb = get_backbone_spec("motionbert").presets["tiny"].recipe
    assert mb is not None and mb.warmup_steps > 0 and mb.finetune_warmup_steps == 0
    cfg = ModelConfig.create("motionbert", "tiny", pruner="cluster", tokens=(9,), depths=(1,))
    assert resolve_recipe(cfg, TrainConfig(mode="finetune")).warmup_steps == 0
    assert resolve_recipe(cfg, TrainConfig(mode="scratch")).warmup_steps == mb.warmup_steps
    assert resolve_recipe(cfg, TrainConfig(mode="finetune", warmup_steps=7)).warmup_steps == 7
    mix = ModelConfig.create("mixste", "tiny", pruner="cluster", tokens=(9,), depths=(1,))  # None: its warm-up
    assert resolve_recipe(mix, TrainConfig(mode="finetune")).warmup_steps == 20


def test_flip_augmented_training_with_a_progress_bar_is_the_same_run(small_data):
    """The progress bar (the CLI's text output) changes nothing the run computes; flip augmentation runs at
    every step either way."""
    from bench.training.loop import fit

    cfg = ModelConfig.create("strided", "tiny")
    tc = TrainConfig(steps=3, batch_size=2, threads=1, flip_augment=True)
    quiet, shown = fit(cfg, tc, small_data, progress=False), fit(cfg, tc, small_data, progress=True)
    assert quiet.steps == shown.steps == 3 and quiet.final_loss == shown.final_loss
