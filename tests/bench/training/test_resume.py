"""A train state resumes only the run that made it, holds sane numbers, and an interrupt keeps its steps."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.config import ModelConfig, TrainConfig
from bench.data.synthetic import make_synthetic_h36m
from bench.training.loop import STATE_FILE, TrainError, train


def default_sigint() -> None:
    """Child start-up: SIGINT at its default, as under a terminal. A background job of a non-interactive shell
    starts with SIGINT ignored, the child would inherit that, and its Ctrl-C would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


ROOT = Path(__file__).resolve().parents[3]
BASE = {"steps": 3, "batch_size": 4, "eval_stride": 9, "eval_every": 4, "threads": 1}


@pytest.fixture(scope="module")
def data():
    d = make_synthetic_h36m(seed=1, frames_per_sequence=81, takes=1, noise="none")
    return type(d)(d.name, d.train[:8:4], d.test[:8:4], d.fps, d.joints_left, d.joints_right, d.notes)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("run")
    train(ModelConfig.create("strided", "tiny"), TrainConfig(**BASE), data, out, progress=False)
    return out


@pytest.mark.parametrize(
    "change, named",
    [
        ({"lr": 0.5}, "lr"),
        ({"batch_size": 2}, "batch_size"),
        ({"seed": 3}, "seed"),
        ({"weight_decay": 0.1}, "weight_decay"),
        ({"flip_augment": False}, "flip_augment"),
        ({"loss": "mpjpe"}, "loss"),
        ({"warmup_steps": 5}, "warmup_steps"),
        ({"train_stride": 5}, "train_stride"),
        ({"steps": 2}, "beyond this run's 2 steps"),
    ],
)
def test_a_resume_with_another_option_is_refused_naming_it(state_dir, data, change, named, tmp_path):
    import shutil

    out = tmp_path / "d"
    shutil.copytree(state_dir, out)
    before = (out / "model.json").read_text()
    with pytest.raises(TrainError, match=named):
        train(ModelConfig.create("strided", "tiny"), TrainConfig(**(BASE | change)), data, out, progress=False)
    assert (out / "model.json").read_text() == before  # nothing rewritten as if the new options were used


def test_other_data_or_another_start_is_refused(state_dir, data, tmp_path):
    import shutil

    out = tmp_path / "d"
    shutil.copytree(state_dir, out)
    d = make_synthetic_h36m(seed=3, frames_per_sequence=81, takes=1, noise="none")
    other = type(d)(d.name, d.train[:8:4], d.test[:8:4], d.fps, d.joints_left, d.joints_right, d.notes)
    cfg = ModelConfig.create("strided", "tiny")
    with pytest.raises(TrainError, match="other data"):
        train(cfg, TrainConfig(**BASE), other, out, progress=False)
    base = cfg.build().state_dict()
    tuned = ModelConfig.create("strided", "tiny", "uniform", None, 9, 1)
    tc = TrainConfig(**(BASE | {"mode": "finetune"}))
    train(tuned, tc, data, tmp_path / "f", init=base, progress=False)
    with pytest.raises(TrainError, match="other init"):  # the same run, from another baseline
        train(tuned, tc, data, tmp_path / "f", init={k: v + 1 for k, v in base.items()}, progress=False)


def test_the_budget_evaluation_and_threads_do_not_stop_a_resume(state_dir, data, tmp_path):
    import shutil

    out = tmp_path / "d"
    shutil.copytree(state_dir, out)
    tc = TrainConfig(**(BASE | {"steps": 4, "eval_stride": 3, "threads": 2, "checkpoint_every": 7, "test_flip": False}))
    r = train(ModelConfig.create("strided", "tiny"), tc, data, out, progress=False)
    assert r.resumed_from == 3 and r.steps == 4


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("step", -1, "step -1 is not a step count"),
        ("step", 10**30, "is not a step count"),
        ("step", 2.5, "is not a step count"),
        ("seconds", math.nan, "seconds nan is not a finite duration"),
        ("seconds", -3.0, "not a finite duration"),
        ("optimizer", "nan", "optimizer state .* holds NaN"),
        ("model", "nan", "model state .* holds NaN"),
        ("run", "{}", "cannot be resumed"),
    ],
)
def test_a_train_state_with_impossible_numbers_is_one_line(state_dir, data, tmp_path, field, value, message):
    import shutil

    out = tmp_path / "d"
    shutil.copytree(state_dir, out)
    st = torch.load(out / STATE_FILE, weights_only=True)
    if value == "nan" and field == "optimizer":
        first = next(iter(st["optimizer"]["state"].values()))
        first["exp_avg"].fill_(math.nan)
    elif value == "nan":
        next(iter(st["model"].values())).fill_(math.nan)
    else:
        st[field] = value
    torch.save(st, out / STATE_FILE)
    with pytest.raises(TrainError, match=message):
        train(ModelConfig.create("strided", "tiny"), TrainConfig(**BASE), data, out, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_during_train_saves_the_steps_done(tmp_path, sig):
    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "run_bench.py"), "train", "-b", "strided", "-p", "tiny", "--steps", "100000"]
    cmd += ["--out", str(out), "--threads", "1", "--data-seed", "1"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    time.sleep(12)  # data and model are up; some steps run (checkpoint_every is 200)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("interrupted: stopped at step")  # one line, no traceback
    assert "Traceback" not in err
    st = torch.load(out / STATE_FILE, weights_only=True)
    assert 0 < st["step"] < 100000 and f"step {st['step']}" in err
