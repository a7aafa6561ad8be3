"""Training (scratch / finetune / training-free) and evaluation of one configuration.

Three modes (issue: "Data and training"):

* ``scratch``: train the configured model from random initialisation;
* ``finetune``: load a trained baseline checkpoint into the backbone, insert the strategy (HoT's
  Token Pruning / Recovering Modules), train the whole model;
* ``none``: training-free: insert a parameter-free strategy into a trained baseline and evaluate.

Each backbone trains with its paper's objective (:mod:`bench.training.objectives`), AdamW, an exponential
per-epoch learning-rate decay and horizontal-flip augmentation; evaluation uses test-time flip.
A run writes, atomically, ``model.pt`` (weights only, a plain state dict with the paper's keys),
``model.json`` (the configuration, so ``evaluate`` can rebuild the model) and ``train_state.pt``
(weights, optimiser, step, RNG) from which an interrupted run resumes.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from backbones import (
    PoseBackbone,
    RegistryError,
    clean_state_dict,
    load_state_dict_strict,
    save_checkpoint,
)
from backbones._checkpoint import extract_state_dict, read_checkpoint
from bench.config import DataConfig, ModelConfig, TrainConfig
from bench.data.clips import PoseDataset, flip_pose, seq2seq_clips
from bench.training.evaluate import EvalResult, OutputMode, evaluate, trivial_mpjpe
from bench.training.objectives import objective_for

STATE_FILE = "train_state.pt"
MODEL_FILE = "model.pt"
META_FILE = "model.json"


class TrainError(ValueError):
    """A training request that cannot be honoured (one-line message)."""


def load_data(cfg: DataConfig) -> PoseDataset:
    """The dataset a :class:`DataConfig` names; missing real data is an error, never synthetic."""
    if cfg.source == "synthetic":
        from bench.data.synthetic import make_synthetic_h36m

        return make_synthetic_h36m(
            seed=cfg.seed, noise=cfg.noise, cache_dir=cfg.cache_dir, frames_per_sequence=cfg.frames_per_sequence
        )
    if cfg.source == "h36m":
        from bench.data.h36m import DataError, load_h36m

        if not cfg.data_root:
            raise DataError("--data h36m needs --data-root DIR (the folder with data_3d_h36m.npz)")
        return load_h36m(cfg.data_root, keypoints=cfg.keypoints)
    raise TrainError(f"unknown data source '{cfg.source}' (known: synthetic, h36m)")


@dataclass
class TrainResult:
    """What ``run_bench.py train --format json`` prints."""

    config: dict[str, Any]
    mode: str
    steps: int
    seconds: float
    final_loss: float | None
    checkpoint: str | None
    eval: EvalResult
    trivial_mpjpe_mm: float
    data: str
    resumed_from: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        e = self.eval.to_dict()
        return {
            "mpjpe_mm": e["mpjpe_mm"],
            "pmpjpe_mm": e["pmpjpe_mm"],
            "nmpjpe_mm": e["nmpjpe_mm"],
            "mpjve_mm": e["mpjve_mm"],
            "mpjpe_frame_wise_mm": e["mpjpe_frame_wise_mm"],
            "trivial_mpjpe_mm": self.trivial_mpjpe_mm,
            "per_action": e["per_action"],
            "eval_frames": e["frames"],
            "eval_output": e["output"],
            "flip_test": e["flip"],
            "eval_precision": e["precision"],
            "steps": self.steps,
            "seconds": round(self.seconds, 2),
            "final_loss": self.final_loss,
            "checkpoint": self.checkpoint,
            "mode": self.mode,
            "data": self.data,
            "resumed_from": self.resumed_from,
            "config": self.config,
            "notes": self.notes,
        }


def output_mode(cfg: ModelConfig) -> OutputMode:
    """'all' frames for seq2seq models with recovery, else the 'centre' frame (seq2frame, TPC)."""
    if cfg.pipeline == "seq2frame":
        return "centre"
    return "centre" if cfg.pruned and cfg.effective_recoverer == "none" else "all"


def _atomic_json(path: Path, obj: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def load_weights(model: PoseBackbone, cfg: ModelConfig, path: str | os.PathLike[str]) -> PoseBackbone:
    """Load ``path`` into ``cfg``'s model: a baseline file into the backbone (strategy inserted
    after, for finetune / training-free), or a file that already holds the strategy's weights."""
    sd = clean_state_dict(extract_state_dict(read_checkpoint(path)))
    own = set(model.state_dict())
    if set(sd) == own or not cfg.pruned:
        load_state_dict_strict(model, sd)
        return model
    base = cfg.baseline().build()
    load_state_dict_strict(base, sd)  # strict on every backbone key: only the strategy's keys may be absent
    result = model.load_state_dict(base.state_dict(), strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    return model


def _batches(clips: Any, batch_size: int, seed: int, start_epoch: int) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    epoch = start_epoch
    while True:
        for b in clips.batches(batch_size, shuffle=True, seed=seed * 100_003 + epoch):
            yield epoch, b
        epoch += 1


def train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data: PoseDataset,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    init: str | os.PathLike[str] | None = None,
    progress: bool = True,
    data_name: str = "synthetic",
) -> TrainResult:
    """Train (or not, for mode ``none``) and evaluate one configuration; see the module docstring."""
    tc = train_cfg
    if tc.mode in ("finetune", "none") and init is None:
        raise TrainError(f"--mode {tc.mode} needs --init CKPT (a trained baseline checkpoint)")
    if tc.mode != "none" and not tc.steps and not tc.minutes:
        raise TrainError("give a training budget: --steps N or --minutes M")
    torch.manual_seed(tc.seed)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    np.random.seed(tc.seed % 2**32)  # legacy global RNG is not used by the suite; pinned for safety
    model = model_cfg.build()
    if init is not None:
        model = load_weights(model, model_cfg, init)
    notes: list[str] = []
    hourglass_params = sum(p.numel() for n, p in model.named_parameters() if n.startswith("hourglass."))
    if tc.mode == "none" and hourglass_params:
        raise TrainError(
            f"--mode none (training-free) needs a parameter-free strategy; {model_cfg.label()} adds "
            f"{hourglass_params} parameters (use --recoverer interpolation or none)"
        )

    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    step, seconds_before, last_loss = 0, 0.0, None
    t_frames = model.frames
    conf = model.in_channels == 3
    if tc.mode != "none":
        stride = tc.train_stride or (t_frames if model_cfg.pipeline == "seq2seq" else max(1, t_frames // 3))
        clips = seq2seq_clips(data.train, t_frames, stride, with_confidence=conf)
        opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        steps_per_epoch = max(1, math.ceil(len(clips) / tc.batch_size))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: tc.lr_decay ** (s // steps_per_epoch))
        state_path = out / STATE_FILE if out is not None else None
        if state_path is not None and state_path.is_file():
            st = _read_state(state_path)
            if st.get("config") != json.dumps(model_cfg.to_dict(), sort_keys=True):
                raise TrainError(f"{state_path} belongs to another configuration; use another --out")
            load_state_dict_strict(model, st["model"])
            try:
                opt.load_state_dict(st["optimizer"])
                sched.load_state_dict(st["scheduler"])
                torch.set_rng_state(st["rng"])
                step, seconds_before = int(st["step"]), float(st["seconds"])
            except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as e:
                msg = " ".join(str(e).split())[:200]
                raise TrainError(f"{state_path} is a corrupt train state ({type(e).__name__}: {msg})") from None
            notes.append(f"resumed from step {step}")
        resumed_from = step
        loss_fn = objective_for(model_cfg.backbone, tc.loss)
        model.train()
        t0 = time.perf_counter()
        deadline = t0 + tc.minutes * 60 - seconds_before if tc.minutes else math.inf
        bar = tqdm(total=tc.steps, initial=step, disable=not progress, desc=model_cfg.label(), unit="step")
        batches = _batches(clips, tc.batch_size, tc.seed, step // steps_per_epoch)
        for _ in range(step % steps_per_epoch):  # skip what the interrupted epoch already consumed
            next(batches)
        while (tc.steps is None or step < tc.steps) and time.perf_counter() < deadline:
            _, b = next(batches)
            x, y = b["inputs"], b["targets"]
            if tc.flip_augment:
                flip = torch.rand(x.shape[0]) < 0.5
                if flip.any():
                    x, y = x.clone(), y.clone()
                    x[flip] = flip_pose(x[flip], data.joints_left, data.joints_right)
                    y[flip] = flip_pose(y[flip], data.joints_left, data.joints_right)
            loss = loss_fn(model.forward_all(x), y)
            if not bool(torch.isfinite(loss.detach())):
                raise TrainError(
                    f"training diverged: the loss is {float(loss.detach())} at step {step + 1} of "
                    f"{model_cfg.label()} (lr {tc.lr:g}); nothing was saved for this run past step {step}"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            last_loss = float(loss.detach())
            bar.update(1)
            left = deadline - time.perf_counter()
            bar.set_postfix(loss=f"{last_loss * 1000:.1f}mm", budget_left=f"{max(left, 0):.0f}s" if tc.minutes else "-")
            if state_path is not None and (step % tc.checkpoint_every == 0):
                _save_state(state_path, model, opt, sched, step, seconds_before + time.perf_counter() - t0, model_cfg)
        bar.close()
        seconds = seconds_before + time.perf_counter() - t0
        if state_path is not None:
            _save_state(state_path, model, opt, sched, step, seconds, model_cfg)
    else:
        seconds, resumed_from = 0.0, 0
        notes.append("training-free: strategy inserted into the trained baseline, no optimisation")

    ckpt_path = None
    if out is not None:
        ckpt_path = str(save_checkpoint(model, out / MODEL_FILE))
        _atomic_json(
            out / META_FILE,
            {"model": model_cfg.to_dict(), "train": tc.model_dump(), "steps": step, "data": data_name},
        )
    mode = output_mode(model_cfg)
    result = evaluate(
        model,
        data,
        mode,
        flip=tc.test_flip,
        batch_size=tc.eval_batch,
        stride=tc.eval_stride,
        precision=tc.eval_precision,
    )
    return TrainResult(
        config=model_cfg.to_dict(),
        mode=tc.mode,
        steps=step,
        seconds=seconds,
        final_loss=last_loss,
        checkpoint=ckpt_path,
        eval=result,
        trivial_mpjpe_mm=trivial_mpjpe(data),
        data=data_name,
        resumed_from=resumed_from,
        notes=notes,
    )


STATE_KEYS = ("model", "optimizer", "scheduler", "rng", "step", "seconds", "config")


def _read_state(path: Path) -> dict[str, Any]:
    """A ``train_state.pt`` written by :func:`_save_state`; anything else is a one-line TrainError."""
    st = read_checkpoint(path)
    if not isinstance(st, Mapping):
        raise TrainError(f"{path} is not a train state (it holds a {type(st).__name__}); delete it or change --out")
    missing = [k for k in STATE_KEYS if k not in st]
    if missing:
        raise TrainError(f"{path} is not a complete train state (no {', '.join(missing)}); delete it or change --out")
    model_sd = st["model"]
    if not isinstance(model_sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in model_sd.values()):
        raise TrainError(f"{path}: 'model' is not a state dict of tensors; delete it or use another --out")
    if not isinstance(st["optimizer"], Mapping):
        raise TrainError(f"{path}: 'model' and 'optimizer' must be state dicts; delete it or use another --out")
    return dict(st)


def _save_state(
    path: Path,
    model: PoseBackbone,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    step: int,
    seconds: float,
    cfg: ModelConfig,
) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "rng": torch.get_rng_state(),
            "step": step,
            "seconds": seconds,
            "config": json.dumps(cfg.to_dict(), sort_keys=True),
        },
        tmp,
    )
    os.replace(tmp, path)


def model_config_from_checkpoint(path: str | os.PathLike[str]) -> ModelConfig | None:
    """The configuration stored beside a checkpoint written by :func:`train` (``model.json``)."""
    meta = Path(path).with_name(META_FILE)
    if not meta.is_file():
        return None
    try:
        d = json.loads(meta.read_text())
        return ModelConfig.from_dict(d["model"])
    except (ValueError, KeyError, TypeError) as e:
        raise RegistryError(f"{meta} is not a valid model description: {e}") from None
