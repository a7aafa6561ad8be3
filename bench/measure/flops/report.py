"""``FlopReport``: one configuration's parameters and FLOPs, every figure with its unit and convention."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tabulate import tabulate

from bench.measure.flops.convention import CANONICAL, FLIP, PAPER, UNITS
from bench.measure.flops.counters import CounterResult


def fmt_g(x: float) -> str:
    """A GFLOP figure with enough decimals for small models (>= 3 significant digits)."""
    if x == 0 or not math.isfinite(x):
        return f"{x:.2f}"
    decimals = 2 if abs(x) >= 1 else -math.floor(math.log10(abs(x))) + 2
    return f"{x:.{decimals}f}"


@dataclass
class FlopReport:
    """Parameters and FLOPs of one ``ModelConfig`` (see :mod:`bench.measure.flops.convention`).

    ``gflops`` is the canonical all-matmul figure (FlopCounterMode on meta) and ``gflops_paper``
    the HoT papers' convention (2 x Linear/Conv MACs); both per clip, batch 1, without flip.
    """

    config: dict[str, Any]
    label: str
    model_id: str  # ModelConfig.model_id(): the configuration's hash
    params: int
    frames: int  # T, input frames per clip
    output_frames: int  # frames a clip scores: T (seq2seq) or 1 (seq2frame / TPC)
    batch: int  # batch the counters ran at (figures are per clip regardless)
    gflops: float
    gflops_paper: float
    tokens_per_block: list[int]
    counters: list[CounterResult]
    flip: bool = False
    device: str = "meta"
    seconds: float = 0.0
    gflops_by_op: dict[str, float] = field(default_factory=dict)
    breakdown: list[dict[str, Any]] | None = None

    # ---- derived figures ---------------------------------------------------------------------------
    @property
    def gmacs(self) -> float:
        return self.gflops / 2

    @property
    def gmacs_paper(self) -> float:
        return self.gflops_paper / 2

    @property
    def gflops_per_frame(self) -> float:
        return self.gflops / self.output_frames

    @property
    def gflops_paper_per_frame(self) -> float:
        return self.gflops_paper / self.output_frames

    @property
    def flip_factor(self) -> int:
        return 2 if self.flip else 1

    @property
    def gflops_flip(self) -> float:
        """Per prediction with test-time flip when ``flip`` (2 forward passes), else = ``gflops``."""
        return self.gflops * self.flip_factor

    @property
    def gflops_paper_flip(self) -> float:
        return self.gflops_paper * self.flip_factor

    @property
    def pipeline(self) -> str:
        return "seq2seq" if self.output_frames == self.frames else "seq2frame"

    def counter(self, name: str) -> CounterResult | None:
        return next((c for c in self.counters if c.name == name), None)

    # ---- serialisation -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The json object of ``run_bench.py flops --format json``."""
        counters = []
        for c in self.counters:
            d = c.to_dict()
            d["ratio_to_canonical"] = None if c.gflops is None or not self.gflops else c.gflops / self.gflops
            counters.append(d)
        return {
            "label": self.label,
            "model_id": self.model_id,
            "config": self.config,
            "params": self.params,
            "frames": self.frames,
            "output_frames": self.output_frames,
            "pipeline": self.pipeline,
            "batch": self.batch,
            "gflops": self.gflops,
            "gmacs": self.gmacs,
            "gflops_paper": self.gflops_paper,
            "gmacs_paper": self.gmacs_paper,
            "gflops_per_frame": self.gflops_per_frame,
            "gflops_paper_per_frame": self.gflops_paper_per_frame,
            "flip": self.flip,
            "gflops_flip": self.gflops_flip,
            "gflops_paper_flip": self.gflops_paper_flip,
            "gflops_by_op": self.gflops_by_op,
            "tokens_per_block": list(self.tokens_per_block),
            "counters": counters,
            "units": UNITS,
            "convention": {
                "gflops": CANONICAL,
                "gflops_paper": PAPER,
                "flip": FLIP,
                "per_frame": "per clip / output_frames",
                "joint_pooling_included": False,
                "device": self.device,
            },
            "device": self.device,
            "seconds": self.seconds,
            "breakdown": self.breakdown,
        }

    # ---- text --------------------------------------------------------------------------------------
    def format_text(self) -> str:
        """One readable block with units; the per-module table when a breakdown was requested."""
        flip = " (flip on: x2)" if self.flip else " (flip off)"
        lines = [
            f"{self.label}   [model {self.model_id}]",
            f"  params          {self.params:,} ({self.params / 1e6:.2f} M)",
            f"  frames          {self.frames} in, {self.output_frames} scored per clip ({self.pipeline}); "
            f"counted at batch {self.batch} on {self.device}",
            f"  tokens/block    {' '.join(str(t) for t in self.tokens_per_block) or '-'}",
            "  canonical (all matmuls incl. attention, FlopCounterMode on meta):",
            f"    per clip      {fmt_g(self.gflops)} GFLOPs = {fmt_g(self.gmacs)} GMACs",
            f"    per out frame {fmt_g(self.gflops_per_frame)} GFLOPs",
            f"    with TTA      {fmt_g(self.gflops_flip)} GFLOPs per prediction{flip}",
            "  paper convention (HoT: 2 x Linear/Conv MACs only, attention excluded):",
            f"    per clip      {fmt_g(self.gflops_paper)} GFLOPs = {fmt_g(self.gmacs_paper)} GMACs",
            f"    per out frame {fmt_g(self.gflops_paper_per_frame)} GFLOPs",
            f"    with TTA      {fmt_g(self.gflops_paper_flip)} GFLOPs per prediction{flip}",
        ]
        if self.counters:
            rows = []
            for c in self.counters:
                ratio = "" if c.gflops is None or not self.gflops else f"{100 * c.gflops / self.gflops:.2f}%"
                unc = ", ".join(f"{k} x{v}" for k, v in sorted(c.uncounted_ops.items(), key=lambda kv: -kv[1]))
                rows.append(
                    [
                        c.name,
                        c.unit,
                        "-" if c.raw is None else f"{c.raw:,}",
                        "-" if c.gflops is None else fmt_g(c.gflops),
                        ratio,
                        f"{c.seconds:.2f}",
                        c.device,
                        (f"ERROR {c.error}" if c.error else unc)[:90] or "-",
                    ]
                )
            table = tabulate(
                rows,
                headers=[
                    "counter",
                    "unit",
                    "raw (per call)",
                    "GFLOPs/clip",
                    "vs canonical",
                    "s",
                    "device",
                    "uncounted",
                ],
                disable_numparse=True,
            )
            lines.append("  counters (raw in the counter's unit; GFLOPs = 2 x MACs):")
            lines.extend("    " + ln for ln in table.splitlines())
            notes = [c for c in self.counters if "fell back" in c.note]
            lines.extend(f"    note [{c.name}]: {c.note}" for c in notes)
        lines.append(f"  units: {UNITS}")
        if self.breakdown:
            lines.append("  per-module breakdown (GFLOPs per clip):")
            table = tabulate(
                [
                    [
                        r["module"] or "(model)",
                        f"{r['params']:,}",
                        fmt_g(r["gflops"]),
                        fmt_g(r["gflops_paper"]),
                        r["share"],
                    ]
                    for r in self.breakdown
                ],
                headers=["module", "params", "all-matmul", "paper", "% canonical"],
                disable_numparse=True,
                colalign=("left", "right", "right", "right", "right"),
            )
            lines.extend("    " + ln for ln in table.splitlines())
        return "\n".join(lines)


def breakdown_rows(
    by_module: dict[str, int],
    paper_by_module: dict[str, int],
    params_by_module: dict[str, int],
    total_flops: int,
    batch: int,
    depth: int = 2,
) -> list[dict[str, Any]]:
    """Per-module rows (modules up to ``depth`` dots deep), in module order; figures per clip."""
    children: dict[str, list[str]] = {}
    for name in params_by_module:
        if name:
            parent = name.rsplit(".", 1)[0] if "." in name else ""
            children.setdefault(parent, []).append(name)

    def flops_of(name: str) -> int:
        # a container that is never called (ModuleList) gets the sum of its children
        if not name:
            return total_flops
        if name in by_module:
            return by_module[name]
        return sum(flops_of(c) for c in children.get(name, []))

    rows = []
    for name, params in params_by_module.items():
        level = 0 if not name else name.count(".") + 1
        if level > depth:
            continue
        flops = flops_of(name)
        paper = 2 * paper_by_module.get(name, 0)
        if flops == 0 and paper == 0 and params == 0:
            continue
        rows.append(
            {
                "module": name,
                "params": params,
                "gflops": flops / batch / 1e9,
                "gflops_paper": paper / batch / 1e9,
                "share": f"{100 * flops / total_flops:.1f}%" if total_flops else "",
            }
        )
    return rows


__all__ = ["FlopReport", "breakdown_rows", "fmt_g"]
