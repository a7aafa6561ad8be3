"""Strict loading of official checkpoints (MixSTE, MotionBERT, MHFormer, StridedTransformer, HoT).

Official files come in two containers (shared/docs/backbones.md §4): a training dict whose weights
sit under ``model_pos`` with a ``module.`` (DataParallel) prefix (MixSTE, MotionBERT), or a plain
state dict (HoT, MHFormer, StridedTransformer). Both load here *strictly*: every missing,
unexpected or mis-shaped key is an error that lists them, unlike the official loaders, which skip
mismatches silently. Files are opened with ``torch.load(weights_only=True)``: no code runs.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

STRIP_PREFIXES = ("module.", "_orig_mod.")
CONTAINER_KEYS = ("model_pos", "state_dict", "model")


class CheckpointError(ValueError):
    """A checkpoint file that is not loadable into the model (one-line message)."""


def read_checkpoint(path: str | os.PathLike[str]) -> Any:
    """``torch.load`` with ``weights_only=True`` on CPU; a clear error for anything else."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint '{p}' does not exist")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr: the error says it all
            warnings.simplefilter("ignore")
            return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types on corrupt or hostile bytes
        if isinstance(e, (MemoryError, KeyboardInterrupt)):
            raise
        if isinstance(e, pickle.UnpicklingError) and "weights_only" in str(e).lower():
            # never repeat torch's advice to retry with weights_only=False: that would run the file's code
            raise CheckpointError(
                f"'{p}' holds non-tensor objects (pickled Python classes or calls) and was not loaded; "
                "a checkpoint must hold only tensors, dicts, lists and numbers"
            ) from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in first:
            first = type(e).__name__
        why = f"{type(e).__name__}: {first[:200]}"
        raise CheckpointError(f"'{p}' is not a weights-only torch checkpoint and was not loaded ({why})") from None


def extract_state_dict(obj: Any, key: str | None = None) -> dict[str, Tensor]:
    """The tensor mapping inside a checkpoint object (``ckpt[key]``, else the known containers)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint holds a {type(obj).__name__}, not a state dict")
    if key is not None:
        if key not in obj:
            raise CheckpointError(f"checkpoint has no '{key}' entry (has: {', '.join(map(str, obj))})")
        obj = obj[key]
    elif not any(isinstance(v, Tensor) for v in obj.values()):
        for k in CONTAINER_KEYS:
            if isinstance(obj.get(k), Mapping):
                obj = obj[k]
                break
    sd = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not sd:
        raise CheckpointError("checkpoint contains no tensors")
    return sd


def clean_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Strip DataParallel ``module.`` and torch.compile ``_orig_mod.`` prefixes from every key."""
    out: dict[str, Tensor] = {}
    for k, v in state_dict.items():
        changed = True
        while changed:
            changed = False
            for pre in STRIP_PREFIXES:
                if k.startswith(pre):
                    k, changed = k[len(pre) :], True
        out[k] = v
    return out


def _short(keys: list[str], limit: int = 12) -> str:
    more = f", ... (+{len(keys) - limit})" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def check_finite(state_dict: Mapping[str, Tensor]) -> None:
    """Refuse NaN or infinite weights, naming the first tensor that holds them."""
    for k, v in state_dict.items():
        if not isinstance(v, Tensor) or v.is_meta or not (v.is_floating_point() or v.is_complex()):
            continue
        if not bool(torch.isfinite(v).all()):
            bad = int((~torch.isfinite(v)).sum())
            raise CheckpointError(
                f"checkpoint tensor '{k}' holds {bad} non-finite value(s) (NaN/Inf) of {v.numel()}; not loaded"
            )


def check_kinds(state_dict: Mapping[str, Tensor], own: Mapping[str, Tensor]) -> None:
    """Refuse a tensor that is not a plain dense one with data (sparse, meta, quantised...) or whose dtype
    is not of the model's kind (bool, integer or complex where the model holds real floats, and so on),
    naming the first; a float of another width (fp16, bf16 weights) is cast by ``load_state_dict``."""
    for k, v in state_dict.items():
        mine = own.get(k)
        structure = mine is not None and mine.is_meta  # a meta model takes a meta layout (a key and shape check)
        if v.layout != torch.strided or (v.is_meta and not structure) or v.is_quantized:
            kind = "meta" if v.is_meta else "quantised" if v.is_quantized else str(v.layout).removeprefix("torch.")
            raise CheckpointError(
                f"checkpoint tensor '{k}' is a {kind} tensor, not a dense one with values; not loaded"
            )
        if mine is None or structure:
            continue
        if (mine.is_floating_point(), mine.is_complex(), mine.dtype == torch.bool) != (
            v.is_floating_point(),
            v.is_complex(),
            v.dtype == torch.bool,
        ):
            raise CheckpointError(
                f"checkpoint tensor '{k}' is {str(v.dtype).removeprefix('torch.')} where the model holds "
                f"{str(mine.dtype).removeprefix('torch.')}; not loaded"
            )


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """``model.load_state_dict(strict=True)`` with a one-line report of every mismatch."""
    own = model.state_dict()
    check_kinds(state_dict, own)  # before anything reads the values
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    check_finite(state_dict)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {_short(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch {len(shapes)}: {_short(shapes, 4)}")
        raise CheckpointError(f"checkpoint does not match {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(dict(state_dict), strict=True)


def load_official_checkpoint(model: nn.Module, path: str | os.PathLike[str], key: str | None = None) -> nn.Module:
    """Load an official (or HourglassBench) checkpoint file into ``model`` strictly.

    Accepts a plain state dict or a dict holding it under ``key`` / ``model_pos`` / ``state_dict``
    / ``model``; strips ``module.`` and ``_orig_mod.`` prefixes; fails listing missing and
    unexpected keys and shape mismatches.
    """
    sd = clean_state_dict(extract_state_dict(read_checkpoint(path), key))
    load_state_dict_strict(model, sd)
    return model


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], *, key: str | None = None, prefix: str = ""
) -> Path:
    """Write weights only (CPU tensors), atomically; optionally in an official container layout."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sd = {prefix + k: v.detach().cpu() for k, v in model.state_dict().items()}
    obj: dict[str, Any] = {key: sd} if key else sd
    tmp = p.with_name(p.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, p)
    return p
