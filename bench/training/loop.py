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

import contextlib
import dataclasses
import functools
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
    get_backbone_spec,
    load_state_dict_strict,
    save_checkpoint,
)
from backbones._checkpoint import extract_state_dict, read_checkpoint
from bench.config import MAX_STEPS, DataConfig, ModelConfig, TrainConfig, threads_problem
from bench.data.clips import PoseDataset, flip_where, seq2seq_clips
from bench.errors import UserError, one_line
from bench.measure.pck import Aggregation
from bench.training.evaluate import EvalResult, OutputMode, evaluate, trivial_mpjpe
from bench.training.objectives import objective_for

STATE_FILE = "train_state.pt"
MODEL_FILE = "model.pt"
META_FILE = "model.json"


class TrainError(UserError, ValueError):
    """A training request that cannot be honoured (one-line message)."""


@functools.lru_cache(maxsize=2)
def cached_data(cfg: DataConfig) -> PoseDataset:
    """One dataset per data configuration and process (a grid's cells and baselines share it)."""
    return load_data(cfg)


def load_data(cfg: DataConfig) -> PoseDataset:
    """The dataset a :class:`DataConfig` names (:func:`bench.data.sources.load_dataset`)."""
    from bench.data.sources import load_dataset

    return load_dataset(cfg)


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
            "pck": e["pck"],
            "auc": e["auc"],
            "aggregation": e["aggregation"],
            "per_sequence": e["per_sequence"],
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


def output_mode(model: PoseBackbone) -> OutputMode:
    """What a model is scored on: 'all' frames (seq2seq with recovery) or the 'centre' frame (seq2frame, TPC)."""
    return "all" if model.predicts_all_frames else "centre"


def _atomic_json(path: Path, obj: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def load_weights(
    model: PoseBackbone, cfg: ModelConfig, path: str | os.PathLike[str] | Mapping[str, torch.Tensor]
) -> PoseBackbone:
    """Load ``path`` (a file or a state dict) into ``cfg``'s model: a baseline into the backbone (strategy
    inserted after, for finetune / training-free), or weights that already hold the strategy's."""
    raw = dict(path) if isinstance(path, Mapping) else extract_state_dict(read_checkpoint(path))
    sd = clean_state_dict(raw)
    own = set(model.state_dict())
    if set(sd) == own or not cfg.pruned:
        load_state_dict_strict(model, sd)
        return model
    base = cfg.baseline().build()
    load_state_dict_strict(base, sd)  # strict on every backbone key: only the strategy's keys may be absent
    result = model.load_state_dict(base.state_dict(), strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    return model


DEFAULT_LR = 3e-3
DEFAULT_BATCH = 16


class _Stop:
    """Set by SIGINT / SIGTERM while a training loop runs: the loop stops between two steps."""

    def __init__(self) -> None:
        self.asked = False

    def __bool__(self) -> bool:
        return self.asked


@contextlib.contextmanager
def _stop_between_steps() -> Iterator[_Stop]:
    """SIGINT and SIGTERM set a flag instead of raising mid-step (in the main thread, where Python handles
    signals; a handler set to ignore, as in pool workers, is left alone). The old handlers come back after."""
    import signal
    import threading

    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) not in (signal.SIG_IGN, None):
            old[sig] = signal.signal(sig, lambda *_: setattr(stop, "asked", True))
    try:
        yield stop
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@dataclass(frozen=True)
class Recipe:
    """The optimisation recipe a run uses: the user's options over the preset's :class:`TrainRecipe`."""

    lr: float
    warmup_steps: int
    batch_size: int
    loss_weights: dict[str, float]
    notes: str = ""


def resolve_recipe(model_cfg: ModelConfig, tc: TrainConfig) -> Recipe:
    """Explicit options first, then the preset's ``recipe=TrainRecipe(...)`` (its ``finetune_lr`` and
    ``finetune_warmup_steps`` when a strategy is fine-tuned into a trained baseline), then the suite's defaults."""
    r = get_backbone_spec(model_cfg.backbone).preset(model_cfg.preset).recipe
    tuning = r is not None and tc.mode == "finetune"
    own = r.finetune_lr if r is not None and tuning else None
    own = own if own is not None else (r.lr if r is not None else None)
    lr = tc.lr if tc.lr is not None else (own if own is not None else DEFAULT_LR)
    own_warm = r.finetune_warmup_steps if r is not None and tuning else None
    own_warm = own_warm if own_warm is not None else (r.warmup_steps if r is not None else 0)
    warm = tc.warmup_steps if tc.warmup_steps is not None else own_warm
    batch = tc.batch_size or (r.batch_size if r is not None and r.batch_size else DEFAULT_BATCH)
    weights = dict(r.loss_weights) if r is not None and tc.loss == "paper" else {}
    notes = r.notes if r is not None else ""
    return Recipe(lr=lr, warmup_steps=warm, batch_size=batch, loss_weights=weights, notes=notes)


class _Batches:
    """Shuffled training batches from clip tensors built once (no per-step numpy copies or conversions)."""

    def __init__(self, clips: Any, batch_size: int, seed: int) -> None:
        self.x = torch.from_numpy(clips.inputs)
        self.y = torch.from_numpy(clips.targets)
        self.batch_size, self.seed, self.m = batch_size, seed, len(clips)

    def iterate(self, start_epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = start_epoch
        while True:  # the same order as ClipSet.batches(shuffle=True, seed=seed * 100_003 + epoch)
            order = torch.from_numpy(np.random.default_rng(self.seed * 100_003 + epoch).permutation(self.m))
            for lo in range(0, self.m, self.batch_size):
                idx = order[lo : lo + self.batch_size]
                yield self.x.index_select(0, idx), self.y.index_select(0, idx)
            epoch += 1


@dataclass
class FitResult:
    """A trained model and what its optimisation did."""

    model: PoseBackbone
    steps: int
    seconds: float
    final_loss: float | None
    resumed_from: int
    notes: list[str]


Init = str | os.PathLike[str] | Mapping[str, torch.Tensor] | None


def start_problem(tc: TrainConfig, has_init: bool) -> str | None:
    """Why a run of ``tc`` cannot start (one line), or None: finetune and training-free start from a trained
    baseline; every mode but training-free needs a budget. The one owner of these rules (the CLI asks it)."""
    if tc.mode in ("finetune", "none") and not has_init:
        return f"--mode {tc.mode} needs --init CKPT (a trained baseline checkpoint)"
    if tc.mode != "none" and not tc.steps and not tc.minutes:
        return "give a training budget: --steps N or --minutes M"
    return None


def training_free_problem(model: torch.nn.Module, cfg: ModelConfig) -> str | None:
    """Why ``model`` cannot be evaluated training-free (mode ``none``: a strategy inserted into a trained
    baseline, no optimisation), or None: its strategy must add no parameters, which nothing would train."""
    n = sum(p.numel() for name, p in model.named_parameters() if name.startswith("hourglass."))
    if not n:
        return None
    return f"training-free {cfg.label()} needs a parameter-free strategy, but it adds {n} parameters"


def fit(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data: PoseDataset,
    state_dir: str | os.PathLike[str] | None = None,
    *,
    init: Init = None,
    progress: bool = True,
) -> FitResult:
    """Optimise ``model_cfg`` (nothing for mode ``none``); ``state_dir/train_state.pt`` resumes a run."""
    tc = train_cfg
    why = start_problem(tc, init is not None)
    if why is not None:
        raise TrainError(why)
    torch.manual_seed(tc.seed)
    if tc.threads:
        why = threads_problem(tc.threads)
        if why is not None:
            raise TrainError(why)
        torch.set_num_threads(tc.threads)
    np.random.seed(tc.seed % 2**32)  # legacy global RNG is not used by the suite; pinned for safety
    model = model_cfg.build()
    if init is not None:
        model = load_weights(model, model_cfg, init)
    notes: list[str] = []
    why = training_free_problem(model, model_cfg) if tc.mode == "none" else None
    if why is not None:
        raise TrainError(f"--mode none: {why} (use --recoverer interpolation or none)")
    if tc.mode == "none":
        notes.append("training-free: strategy inserted into the trained baseline, no optimisation")
        return FitResult(model, 0, 0.0, None, 0, notes)
    rec = resolve_recipe(model_cfg, tc)
    out = Path(state_dir) if state_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    step, seconds_before, last_loss = 0, 0.0, None
    t_frames = model.frames
    conf = model.in_channels == 3
    stride = tc.train_stride or (t_frames if model_cfg.pipeline == "seq2seq" else max(1, t_frames // 3))
    clips = seq2seq_clips(data.train, t_frames, stride, with_confidence=conf)
    opt = torch.optim.AdamW(model.parameters(), lr=rec.lr, weight_decay=tc.weight_decay, foreach=True)
    steps_per_epoch = max(1, math.ceil(len(clips) / rec.batch_size))
    warm = rec.warmup_steps

    def lr_factor(s: int) -> float:
        ramp = min(1.0, (s + 1) / warm) if warm else 1.0
        return ramp * tc.lr_decay ** (s // steps_per_epoch)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    state_path = out / STATE_FILE if out is not None else None
    # what a train state is checked against; only a run that saves one needs it (a grid cell trains in memory)
    run = run_fingerprint(model_cfg, tc, rec, data, init) if state_path is not None else {}
    if state_path is not None and state_path.is_file():
        st = _read_state(state_path)
        why = resume_problem(st, run, tc)
        if why:
            raise TrainError(f"{state_path} cannot be resumed: {why}; use another --out, or delete it to start again")
        load_state_dict_strict(model, st["model"])
        try:
            opt.load_state_dict(st["optimizer"])
            sched.load_state_dict(st["scheduler"])
            torch.set_rng_state(st["rng"])
            step, seconds_before = int(st["step"]), float(st["seconds"])
        except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as e:
            msg = one_line(e)[:200]
            raise TrainError(f"{state_path} is a corrupt train state ({type(e).__name__}: {msg})") from None
        notes.append(f"resumed from step {step}")
    resumed_from = step
    loss_fn = objective_for(model_cfg.backbone, tc.loss, rec.loss_weights)
    if rec.notes:
        notes.append(f"recipe: {rec.notes}")
    sides = (data.joints_left, data.joints_right)  # the flip's left/right joint lists
    model.train()
    t0 = time.perf_counter()
    deadline = t0 + tc.minutes * 60 - seconds_before if tc.minutes else math.inf
    bar = tqdm(total=tc.steps, initial=step, disable=not progress, desc=model_cfg.label(), unit="step")
    batches = _Batches(clips, rec.batch_size, tc.seed).iterate(step // steps_per_epoch)
    for _ in range(step % steps_per_epoch):  # skip what the interrupted epoch already consumed
        next(batches)
    with _stop_between_steps() as stop:
        while (tc.steps is None or step < tc.steps) and time.perf_counter() < deadline:
            if stop:  # Ctrl-C or SIGTERM: the steps done so far are saved, then the interrupt goes on
                if state_path is not None:
                    _save_state(state_path, model, opt, sched, step, seconds_before + time.perf_counter() - t0, run)
                bar.close()
                raise KeyboardInterrupt(f"stopped at step {step}" + (f"; saved in {state_path}" if state_path else ""))
            x, y = next(batches)
            if tc.flip_augment:
                flip = torch.rand(x.shape[0]) < 0.5
                x, y = flip_where(x, flip, *sides), flip_where(y, flip, *sides)
            loss = loss_fn(model.forward_all(x), y)
            if not bool(torch.isfinite(loss.detach())):
                raise TrainError(
                    f"training diverged: the loss is {float(loss.detach())} at step {step + 1} of "
                    f"{model_cfg.label()} (lr {rec.lr:g}); nothing was saved for this run past step {step}"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            last_loss = loss.item()
            if progress:
                bar.update(1)
                left = deadline - time.perf_counter()
                left_text = f"{max(left, 0):.0f}s" if tc.minutes else "-"
                bar.set_postfix(loss=f"{last_loss * 1000:.1f}mm", budget_left=left_text)
            if state_path is not None and (step % tc.checkpoint_every == 0):
                _save_state(state_path, model, opt, sched, step, seconds_before + time.perf_counter() - t0, run)
    bar.close()
    seconds = seconds_before + time.perf_counter() - t0
    if state_path is not None:
        _save_state(state_path, model, opt, sched, step, seconds, run)
    return FitResult(model, step, seconds, last_loss, resumed_from, notes)


def train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data: PoseDataset,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    init: Init = None,
    progress: bool = True,
    data_name: str = "synthetic",
    aggregation: Aggregation = "pooled",
) -> TrainResult:
    """Train (or not, for mode ``none``) and evaluate one configuration; see the module docstring."""
    tc = train_cfg
    f = fit(model_cfg, tc, data, out_dir, init=init, progress=progress)
    out = Path(out_dir) if out_dir is not None else None
    ckpt_path = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        ckpt_path = str(save_checkpoint(f.model, out / MODEL_FILE))
        _atomic_json(
            out / META_FILE,
            {"model": model_cfg.to_dict(), "train": tc.model_dump(), "steps": f.steps, "data": data_name},
        )
    mode = output_mode(f.model)
    seqs = data.test[:: tc.eval_every]
    result = evaluate(
        f.model,
        data,
        mode,
        flip=tc.test_flip,
        batch_size=tc.eval_batch,
        stride=tc.eval_stride,
        sequences=seqs,
        precision=tc.eval_precision,
        aggregation=aggregation,
    )
    return TrainResult(
        config=model_cfg.to_dict(),
        mode=tc.mode,
        steps=f.steps,
        seconds=f.seconds,
        final_loss=f.final_loss,
        checkpoint=ckpt_path,
        eval=result,
        trivial_mpjpe_mm=trivial_mpjpe(data, sequences=seqs),
        data=data_name,
        resumed_from=f.resumed_from,
        notes=f.notes,
    )


STATE_KEYS = ("model", "optimizer", "scheduler", "rng", "step", "seconds", "run")
#: options that do not change the weights a run reaches: its budget, its evaluation, its threads, its saves
NOT_IN_RUN = frozenset(("steps", "minutes", "threads", "checkpoint_every", "test_flip", "eval_stride", "eval_batch"))
NOT_IN_RUN |= {"eval_every", "eval_precision"}


def _digest(*arrays: Any) -> str:
    import hashlib

    h = hashlib.blake2b(digest_size=12)
    for a in arrays:
        if a is not None:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def run_fingerprint(
    model_cfg: ModelConfig, tc: TrainConfig, rec: Recipe, data: PoseDataset, init: Init
) -> dict[str, Any]:
    """Everything that determines the weights a run reaches, step for step: the model, every training option
    but its budget and evaluation, the recipe it resolved to, the training data (a digest of its arrays) and
    the starting weights (a digest). A resume must match it entry for entry."""
    if init is None:
        start = "none"
    elif isinstance(init, Mapping):
        start = _digest(*(v.detach().cpu().float().numpy() for _, v in sorted(init.items())))
    else:
        start = _digest(np.frombuffer(Path(init).read_bytes(), np.uint8))
    train_seqs = [(s.keypoints_2d, s.positions_3d, s.confidence) for s in data.train]
    return {
        "model": model_cfg.to_dict(),
        "train": {k: v for k, v in tc.model_dump().items() if k not in NOT_IN_RUN},
        "recipe": dataclasses.asdict(rec),
        "data": f"{data.name}:{len(data.train)} sequences:{_digest(*(a for t in train_seqs for a in t))}",
        "init": start,
    }


def resume_problem(st: Mapping[str, Any], run: Mapping[str, Any], tc: TrainConfig) -> str:
    """Why train state ``st`` is not this run's to continue ('' when it is): a different model, option,
    recipe, data or start (named), or a step beyond this run's budget."""
    try:
        stored = json.loads(st["run"]) if isinstance(st["run"], str) else None
    except ValueError:
        stored = None
    if not isinstance(stored, dict):
        return "it does not say which run made it"
    for key in ("model", "train", "recipe", "data", "init"):
        a, b = stored.get(key), json.loads(json.dumps(run[key], default=str))
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            shown = ", ".join(f"{k} {a.get(k)!r} there, {b.get(k)!r} now" for k in diff[:3])
            return f"it was made with another {key} ({shown})"
        return f"it was made from other {key} ({a} there, {b} now)"
    if tc.steps is not None and int(st["step"]) > tc.steps:
        return f"it is at step {int(st['step'])}, beyond this run's {tc.steps} steps"
    return ""


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
    step, seconds = st["step"], st["seconds"]
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEPS:
        raise TrainError(
            f"{path}: step {step!r} is not a step count in [0, {MAX_STEPS}]; delete it or use another --out"
        )
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < math.inf:
        raise TrainError(f"{path}: seconds {seconds!r} is not a finite duration; delete it or use another --out")
    for part in ("model", "optimizer"):
        bad = _non_finite(st[part])
        if bad:
            raise TrainError(f"{path}: {part} state '{bad}' holds NaN or infinity; delete it or use another --out")
    return dict(st)


def _non_finite(tree: Any, at: str = "") -> str:
    """The first floating tensor in ``tree`` (nested mappings and lists) with a non-finite value, or ''."""
    if isinstance(tree, torch.Tensor):
        ok = not tree.is_floating_point() or tree.is_sparse or tree.is_meta or bool(torch.isfinite(tree).all())
        return "" if ok else at
    items = tree.items() if isinstance(tree, Mapping) else enumerate(tree) if isinstance(tree, list | tuple) else ()
    for k, v in items:
        bad = _non_finite(v, f"{at}.{k}" if at else str(k))
        if bad:
            return bad
    return ""


def _save_state(
    path: Path,
    model: PoseBackbone,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    step: int,
    seconds: float,
    run: Mapping[str, Any],
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
            "run": json.dumps(run, sort_keys=True, default=str),
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
