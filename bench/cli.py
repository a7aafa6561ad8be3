"""``run_bench.py`` / ``hourglass-bench``: a thin command line over ``bench``.

Every command that names a configuration takes the same axis flags: ``--backbone --preset
--pruner --recoverer --tokens --depths``. A user mistake (unknown name, impossible schedule,
malformed file) prints one ``error:`` line and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.config import ModelConfig

EXIT_USAGE = 2
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class UserError(Exception):
    """A mistake in the user's input: reported as one line, exit status 2."""


def parse_axis(text: str) -> list[int | float]:
    """``"81,41"`` -> [81, 41]; ``"0.33"`` -> [0.33] (a fraction of T)."""
    out: list[int | float] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(int(part))
        except ValueError:
            try:
                out.append(float(part))
            except ValueError:
                raise UserError(f"'{part}' is not a number (expected e.g. 81 or 81,41 or 0.33)") from None
    if not out:
        raise UserError(f"empty list '{text}'")
    return out


def add_model_args(p: argparse.ArgumentParser, backbone_required: bool = True) -> None:
    """The configuration axes shared by every command."""
    g = p.add_argument_group("configuration")
    g.add_argument("--backbone", "-b", required=backbone_required, help="registered backbone (see `list backbones`)")
    g.add_argument("--preset", "-p", default="paper", help="backbone preset: paper, small, tiny, ... (default paper)")
    g.add_argument("--pruner", default=None, help="token pruner (see `list pruners`); default none")
    g.add_argument("--recoverer", default=None, help="token recoverer; default attention (seq2seq) / none (seq2frame)")
    g.add_argument("--tokens", default=None, help="tokens kept per stage: 81 or 121,81,41 or fractions of T like 0.33")
    g.add_argument("--depths", default=None, help="pruning depth per stage (blocks before it run on all T): 3 or 2,4,6")


def model_config_from_args(a: argparse.Namespace) -> ModelConfig:
    tokens = parse_axis(a.tokens) if a.tokens else None
    depths = parse_axis(a.depths) if a.depths else None
    if depths is not None and any(not isinstance(d, int) for d in depths):
        raise UserError(f"--depths must be integers, got {a.depths}")
    if (tokens or depths) and not a.pruner:
        raise UserError("--tokens/--depths need a --pruner (e.g. --pruner cluster)")
    if a.pruner and a.pruner != "none" and (not tokens or not depths):
        raise UserError(f"--pruner {a.pruner} needs --tokens and --depths (e.g. --tokens 81 --depths 3)")
    return ModelConfig.create(
        backbone=a.backbone,
        preset=a.preset,
        pruner=a.pruner,
        recoverer=a.recoverer,
        tokens=tokens,
        depths=[int(d) for d in depths] if depths else None,
    )


def _print(obj: Any, fmt: str, text: Callable[[Any], str]) -> None:
    if fmt == "json":
        print(json.dumps(obj, indent=2, default=str))
    else:
        print(text(obj))


# ---- list ------------------------------------------------------------------------------------
def _list_entries(kind: str) -> list[dict[str, Any]]:
    if kind == "backbones":
        from backbones import get_backbone_spec, list_backbones

        return [get_backbone_spec(n).to_dict() for n in list_backbones()]
    if kind in ("pruners", "recoverers"):
        import strategies

        names = strategies.list_pruners() if kind == "pruners" else strategies.list_recoverers()
        info = strategies.pruner_info if kind == "pruners" else strategies.recoverer_info
        return [info(n) for n in names]
    if kind == "configs":
        return [{"name": p.stem, "path": str(p)} for p in sorted(CONFIG_DIR.glob("*.y*ml"))]
    raise UserError(f"unknown list '{kind}' (known: backbones, pruners, recoverers, configs)")


def _entries_text(kind: str, entries: list[dict[str, Any]]) -> str:
    lines = [f"{kind}:"]
    for e in entries:
        if kind == "backbones":
            presets = ", ".join(
                f"{k} (T={v['frames']}, dim={v['dim']}, depth={v['depth']})" for k, v in e["presets"].items()
            )
            lines.append(f"  {e['name']:<10} {e['pipeline']:<9} presets: {presets}")
        else:
            doc = e.get("summary") or e.get("path") or ""
            lines.append(f"  {e['name']:<14} {doc}")
    return "\n".join(lines)


def cmd_list(a: argparse.Namespace) -> int:
    kinds = [a.kind] if a.kind else ["backbones", "pruners", "recoverers", "configs"]
    result = {k: _list_entries(k) for k in kinds}
    if a.format == "json":
        print(json.dumps(result[a.kind] if a.kind else result, indent=2, default=str))
    else:
        print("\n".join(_entries_text(k, v) for k, v in result.items()))
    return 0


# ---- flops -----------------------------------------------------------------------------------
def cmd_flops(a: argparse.Namespace) -> int:
    from bench.flops import count_flops

    cfg = model_config_from_args(a)
    report = count_flops(cfg, batch=a.batch, flip=a.flip, breakdown=a.breakdown)
    _print(report.to_dict(), a.format, lambda _: report.format_text())
    return 0


# ---- default ---------------------------------------------------------------------------------
def cmd_default(a: argparse.Namespace) -> int:
    """No command: the default quick job (registry, then FLOPs of a baseline and its HoT form)."""
    print(_entries_text("backbones", _list_entries("backbones")))
    from bench.flops import count_flops

    for cfg in (
        ModelConfig.create("mixste", "paper"),
        ModelConfig.create("mixste", "paper", pruner="cluster", recoverer="attention", tokens=81, depths=3),
    ):
        r = count_flops(cfg, counters=("fcm",)).to_dict()
        print(
            f"{cfg.label():<40} params {r['params'] / 1e6:7.2f} M   {r['gflops']:8.2f} GFLOPs (all matmuls)"
            f"   {r['gflops_paper']:8.2f} GFLOPs (paper convention)"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_bench.py",
        description="HourglassBench: token pruning and recovery in video pose transformers. "
        "With no command, runs the default quick job.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    pl = sub.add_parser("list", help="list registered backbones, pruners, recoverers or grid configs")
    pl.add_argument("kind", nargs="?", choices=["backbones", "pruners", "recoverers", "configs"])
    pl.add_argument("--format", choices=["text", "json"], default="text")
    pl.set_defaults(func=cmd_list)

    pf = sub.add_parser("flops", help="parameters and FLOPs of one configuration, from every counter")
    add_model_args(pf)
    pf.add_argument("--batch", type=int, default=1, help="clips per forward (default 1)")
    pf.add_argument("--flip", action="store_true", help="count test-time flip augmentation (two passes)")
    pf.add_argument("--breakdown", action="store_true", help="add a per-module table")
    pf.add_argument("--format", choices=["text", "json"], default="text")
    pf.set_defaults(func=cmd_flops)
    return p


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the user asked for something impossible'."""
    from backbones import CheckpointError, RegistryError

    errs: list[type[BaseException]] = [UserError, RegistryError, CheckpointError]
    try:
        from strategies import ScheduleError

        errs.append(ScheduleError)
    except ImportError:
        pass
    try:
        from bench.data import DataError

        errs.append(DataError)
    except ImportError:
        pass
    return tuple(errs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    func = getattr(a, "func", cmd_default)
    try:
        return int(func(a))
    except user_errors() as e:
        msg = " ".join(str(e).split())
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
