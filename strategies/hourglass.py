"""``apply_hourglass``: turn any registered backbone into its pruned (HoT / TPC / H2OT) version.

A plug-in, not a copy (conventions.md §5): the backbone's file is not edited and its weights and
keys are left alone. ``apply_hourglass`` sets ``model.hourglass`` to an :class:`Hourglass` module,
which the backbone's ``forward_all`` calls at three points (``backbones.base.TokenSchedule``):

- ``before_block(i)``: at a pruning depth k, the pruner picks n positions (B, n) among the incoming
  tokens; the same frames are gathered for all N tokens of a frame; with TRA, a zero-initialised
  ``pos_embed_token`` (1, n, C) is added once (papers.md §6.2); the positions are appended to
  ``state.kept`` (and reused from ``state.reuse`` if the caller gives them: TPC's flipped pass);
- ``before_head``: a feature recoverer (TRA) restores T tokens after the last norm;
- ``after_head``: a pose recoverer (TRI) interpolates the 3D poses to T frames.

Seq2frame backbones, and seq2seq backbones with recoverer ``none`` (HoT's TPC form), keep the centre
frame at every stage. State-dict keys follow the official HoT files: the hourglass's parameters
appear under HoT's flat names (``pos_embed_token``, ``x_token``, ``cross_attention.*``; further
stages ``pos_embed_token_1``, ...), so ``backbones.load_official_checkpoint`` loads official HoT
checkpoints strictly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from backbones.base import PoseBackbone, TokenState
from strategies._registry import create_pruner, create_recoverer
from strategies.base import PruneContext, Pruner, Recoverer, required_positions
from strategies.schedule import DepthSpec, Schedule, TokenSpec, parse_schedule, tokens_per_block


class HourglassError(ValueError):
    """An impossible backbone x pruner x recoverer combination (one-line message)."""


def _pos_embed_name(stage: int) -> str:
    return "pos_embed_token" if stage == 0 else f"pos_embed_token_{stage}"


class Hourglass(nn.Module):
    """The token schedule a backbone runs with: pruner + stages + recoverer (+ post-pruning pos embeds).

    Attributes read by benchmarks and plots: ``schedule`` (stages (k, n)), ``tokens_per_block``
    (static: frame tokens entering each block), ``last_tokens_per_block`` (counted in the last
    forward), ``keep_centre``, ``config()``.
    """

    def __init__(
        self,
        model: PoseBackbone,
        pruner: Pruner,
        recoverer: Recoverer,
        schedule: Schedule | None,
        pos_embed: bool,
    ) -> None:
        super().__init__()
        self.pruner = pruner
        self.recoverer = recoverer
        self.schedule = schedule if schedule is not None else Schedule(stages=(), frames=model.frames)
        self.frames = model.frames
        self.centre = model.centre
        # TPC forms (seq2frame, or no recovery) keep and predict the centre frame; no stage: the baseline
        pruning = bool(self.schedule.stages)
        self.keep_centre = pruning and (model.pipeline == "seq2frame" or recoverer.stage == "none")
        self.use_pos_embed = pos_embed and bool(self.schedule.stages)
        self._stage_at = {k: s for s, (k, _) in enumerate(self.schedule.stages)}
        if self.use_pos_embed:
            for s, (_, n) in enumerate(self.schedule.stages):
                self.register_parameter(_pos_embed_name(s), nn.Parameter(torch.zeros(1, n, model.token_dim)))
        self.tokens_per_block = _static_tokens(model, self.schedule)
        self.last_tokens_per_block: list[int] = []
        # internal state-dict name (relative to the hourglass) -> HoT's flat name in the model
        self.flat_names = {k: k.removeprefix("recoverer.") for k in self.state_dict()}

    # ---- the TokenSchedule protocol --------------------------------------------------------------
    def before_block(self, model: PoseBackbone, i: int, state: TokenState) -> None:
        if i == 0:
            self.last_tokens_per_block = []
        s = self._stage_at.get(i)
        if s is not None:
            self._prune(model, s, state)
        self.last_tokens_per_block.append(int(state.tokens.shape[1]))

    def before_head(self, model: PoseBackbone, state: TokenState) -> None:
        if self.recoverer.stage != "features":
            return
        b = state.tokens.shape[0]
        state.tokens = self.recoverer.recover_features(state.tokens, state.frame_index)  # (B, T, N, C)
        state.frame_index = torch.arange(self.frames, device=state.tokens.device).expand(b, self.frames)

    def after_head(self, model: PoseBackbone, pose: Tensor, index: Tensor, state: TokenState) -> tuple[Tensor, Tensor]:
        if self.recoverer.stage != "pose":
            return pose, index
        return self.recoverer.recover_pose(pose, index)

    # ---- pruning ---------------------------------------------------------------------------------
    def pos_embed(self, stage: int) -> Tensor | None:
        """The (1, n, C) embedding added after stage ``stage``'s gather, or None (TPC / no TRA)."""
        if not self.use_pos_embed:
            return None
        p: Tensor = getattr(self, _pos_embed_name(stage))
        return p

    def _context(self, model: PoseBackbone, depth: int, state: TokenState, required: Tensor | None) -> PruneContext:
        ctx = PruneContext(state.tokens, state.frame_index, state.inputs, required=required)
        if self.pruner.needs_features:
            with torch.no_grad():
                ctx.features = model.frame_features(state.tokens)  # (B, F, D)
        if self.pruner.needs_attention:
            attn = model.temporal_attention(depth - 1)
            last = None if attn is None else attn.last_attention
            if last is None:
                raise RuntimeError(f"block {depth - 1} recorded no temporal attention for the attention pruner")
            b = state.tokens.shape[0]
            ctx.attention = last.reshape(b, -1, last.shape[-2], last.shape[-1])  # (B, N', F, F)
        return ctx

    def _prune(self, model: PoseBackbone, s: int, state: TokenState) -> None:
        depth, n = self.schedule.stages[s]
        b, f = state.tokens.shape[:2]
        if n > f:
            raise ValueError(f"stage {s} keeps {n} tokens but only {f} reach block {depth}")
        if state.reuse is not None:
            if len(state.reuse) != len(self.schedule.stages):
                raise ValueError(f"reuse has {len(state.reuse)} stage(s), the schedule has {len(self.schedule.stages)}")
            pos = state.reuse[s].to(state.tokens.device)
            if tuple(pos.shape) != (b, n):
                raise ValueError(f"reused positions of stage {s} have shape {tuple(pos.shape)}, expected {(b, n)}")
        else:
            required = required_positions(state.frame_index, self.centre) if self.keep_centre else None
            pos = self.pruner(self._context(model, depth, state, required), n)  # (B, n) sorted
        state.kept.append(pos)
        rows = torch.arange(b, device=pos.device)[:, None]
        tokens = state.tokens[rows, pos]  # (B, n, N, C): same frames for every joint / hypothesis
        pe = self.pos_embed(s)
        if pe is not None:
            tokens = tokens + pe.unsqueeze(2)  # (1, n, 1, C) broadcast over N
        state.tokens = tokens
        state.frame_index = state.frame_index.gather(1, pos)

    # ---- reporting -------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Flat description for result rows: pruner, recoverer, stages, static tokens per block."""
        return {
            "pruner": self.pruner.name,
            "recoverer": self.recoverer.name,
            "tokens": self.schedule.tokens,
            "depths": self.schedule.depths,
            "tokens_per_block": list(self.tokens_per_block),
            "keep_centre": self.keep_centre,
            "pos_embed": self.use_pos_embed,
        }

    def extra_repr(self) -> str:
        return f"schedule={self.schedule}, keep_centre={self.keep_centre}"


def block_tokens(model: PoseBackbone) -> list[int]:
    """Frame tokens entering each block of ``model``, with or without an hourglass inserted."""
    if isinstance(model.hourglass, Hourglass):
        return list(model.hourglass.tokens_per_block)
    return _static_tokens(model, Schedule(stages=(), frames=model.frames))


def _static_tokens(model: PoseBackbone, schedule: Schedule) -> list[int]:
    """Frame tokens entering each block (:func:`strategies.schedule.tokens_per_block`), with the
    backbone's own temporal subsampling (``model.block_frame_index``, StridedTransformer)."""

    def shrink(i: int, count: int) -> int:
        return int(model.block_frame_index(i, torch.arange(count)[None]).shape[1])

    return tokens_per_block(schedule, model.num_blocks, model.frames, shrink)


# ---- state-dict renaming hooks (module-level functions: deepcopy- and pickle-safe) ------------------------
def _flatten_keys(module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    """state_dict post hook: ``hourglass.recoverer.x_token`` -> ``x_token`` (HoT's flat names)."""
    hg = module._modules.get("hourglass")
    if isinstance(hg, Hourglass):
        for inner, flat in hg.flat_names.items():
            key = prefix + "hourglass." + inner
            if key in state_dict:
                state_dict[prefix + flat] = state_dict.pop(key)


def _unflatten_keys(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """load_state_dict pre hook: HoT's flat names back to the hourglass's own."""
    hg = module._modules.get("hourglass")
    if isinstance(hg, Hourglass):
        for inner, flat in hg.flat_names.items():
            key = prefix + flat
            if key in state_dict:
                state_dict[prefix + "hourglass." + inner] = state_dict.pop(key)


def _install_hooks(model: nn.Module) -> None:
    if getattr(model, "_hourglass_hooks", False):
        return
    model.register_state_dict_post_hook(_flatten_keys)
    model.register_load_state_dict_pre_hook(_unflatten_keys)
    model.__dict__["_hourglass_hooks"] = True  # once per model; the hooks find model.hourglass at call time


def _set_recording(model: PoseBackbone, hg: Hourglass, on: bool) -> None:
    if not hg.pruner.needs_attention:
        return
    for k in hg.schedule.depths:
        attn = model.temporal_attention(k - 1)
        if attn is not None:
            attn.record_attention = on
            if not on:
                attn.last_attention = None


def remove_hourglass(model: PoseBackbone) -> PoseBackbone:
    """Undo :func:`apply_hourglass`: the backbone runs unpruned again (its own weights untouched)."""
    hg = model.hourglass
    if isinstance(hg, Hourglass):
        _set_recording(model, hg, False)
    model.hourglass = None
    return model


def default_recoverer(pipeline: str, pruned: bool) -> str:
    """HoT's recoverer when none is named: TRA (``attention``) for a pruned seq2seq model, else ``none``
    (seq2frame keeps the centre frame; nothing to recover without pruning). The one owner of this rule."""
    return "attention" if pruned and pipeline == "seq2seq" else "none"


def _resolve(
    model: PoseBackbone,
    pruner: str | Pruner,
    recoverer: str | Recoverer | None,
    kw: dict[str, Any],
    rkw: dict[str, Any],
) -> tuple[Pruner, Recoverer]:
    p = pruner if isinstance(pruner, Pruner) else create_pruner(pruner, **kw)
    if recoverer is None:
        recoverer = default_recoverer(model.pipeline, p.name != "none")
    r = (
        recoverer
        if isinstance(recoverer, Recoverer)
        else create_recoverer(recoverer, model.frames, model.token_dim, **rkw)
    )
    if r.frames != model.frames or r.dim != model.token_dim:
        raise HourglassError(
            f"recoverer is built for T={r.frames}, C={r.dim}; the backbone has T={model.frames}, C={model.token_dim}"
        )
    return p, r


def apply_hourglass(
    model: PoseBackbone,
    pruner: str | Pruner = "cluster",
    recoverer: str | Recoverer | None = None,
    tokens: TokenSpec | None = None,
    depths: DepthSpec | None = None,
    pos_embed: bool | None = None,
    pruner_kwargs: dict[str, Any] | None = None,
    recoverer_kwargs: dict[str, Any] | None = None,
) -> PoseBackbone:
    """Turn ``model`` (a built, possibly pretrained backbone) into its hourglass version, in place.

    - ``pruner``: a registered pruner name or instance (``"none"``: the unpruned baseline; tokens and
      depths are then ignored).
    - ``recoverer``: a registered name or instance; ``None`` picks ``"attention"`` (TRA) for a pruned
      seq2seq backbone and ``"none"`` otherwise. A recoverer other than ``none`` on a seq2frame backbone
      is an error.
    - ``tokens`` / ``depths``: the schedule (:func:`strategies.schedule.parse_schedule`): ``81, 3`` is HoT's
      one-shot form, ``[121, 81, 41], [2, 4, 6]`` H2OT's hierarchical form; tokens may be fractions of T.
    - ``pos_embed``: add a learnable zero-init (1, n, C) embedding after each pruning stage; ``None``
      means "iff the recoverer works on features (TRA)", as in HoT.

    Existing weights are not touched; new parameters are created on the model's device and dtype.
    Any previous hourglass is replaced. Impossible requests raise ``HourglassError`` /
    ``ScheduleError`` / ``RegistryError`` (all ``ValueError``) with a one-line message.
    """
    if not isinstance(model, PoseBackbone):
        raise HourglassError(f"apply_hourglass needs a registered PoseBackbone, got {type(model).__name__}")
    name = type(model).__name__
    p, r = _resolve(model, pruner, recoverer, dict(pruner_kwargs or {}), dict(recoverer_kwargs or {}))
    if model.pipeline == "seq2frame" and r.stage != "none":
        raise HourglassError(f"{name} is seq2frame: it keeps the centre frame and takes no recoverer (got '{r.name}')")
    if p.name == "none":
        schedule = None
    elif tokens is None or depths is None:
        raise HourglassError(f"pruner '{p.name}' needs tokens and depths (e.g. tokens=81, depths=3)")
    else:
        schedule = parse_schedule(tokens, depths, model.frames, model.prune_depths)
    if p.needs_attention and schedule is not None:
        for k in schedule.depths:
            if model.temporal_attention(k - 1) is None:
                raise HourglassError(
                    f"{name} exposes no temporal attention in block {k - 1}: pruner '{p.name}' cannot sit at depth {k}"
                )
    use_pe = (r.stage == "features") if pos_embed is None else bool(pos_embed)
    hg = Hourglass(model, p, r, schedule, use_pe)
    old = model.hourglass
    own = set(model.state_dict()) - (set(old.flat_names.values()) if isinstance(old, Hourglass) else set())
    clash = sorted(own & set(hg.flat_names.values()))
    if clash:
        raise HourglassError(
            f"{name} already has state-dict keys {', '.join(clash)}; the hourglass cannot use HoT's names"
        )
    ref = next((p for n, p in model.named_parameters() if not n.startswith("hourglass.")), None)
    if ref is not None:
        hg = hg.to(device=ref.device, dtype=ref.dtype)
    remove_hourglass(model)
    model.hourglass = hg
    _set_recording(model, hg, True)
    _install_hooks(model)
    return model


__all__ = ["Hourglass", "HourglassError", "apply_hourglass", "remove_hourglass"]
