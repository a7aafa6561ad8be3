"""The published FLOPs the suite must reproduce, read from the backbone registry (``PaperResult`` of
each preset and each published HoT/TPC variant; their sources: shared/docs/papers.md §2-§3).

``gflops_paper`` is HoT's convention (2 x Linear/Conv MACs, per clip); HoT's own figures for the
two MixSTE variants include the 0.0045 G joint-pooling term (papers.md ‡), which ours does not, so
ours read 167.51 / 251.28 against 167.52 / 251.29. ``gflops_all_matmul`` is FlopCounterMode on the
official classes (attention included; no cdist handle there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.config import ModelConfig


@dataclass(frozen=True)
class PaperTarget:
    """One published configuration with its figures."""

    name: str
    backbone: str
    preset: str
    gflops_paper: float
    gflops_all_matmul: float
    params: int
    hourglass: dict[str, Any] = field(default_factory=dict)  # pruner / recoverer / tokens / depths
    source: str = ""

    def config(self) -> ModelConfig:
        return ModelConfig.create(self.backbone, self.preset, **self.hourglass)


def paper_targets() -> tuple[PaperTarget, ...]:
    """Every published configuration in the backbone registry: presets and HoT/TPC variants with FLOPs."""
    from backbones import get_backbone_spec, list_backbones

    out: list[PaperTarget] = []
    for name in list_backbones():
        spec = get_backbone_spec(name)
        for preset, ps in spec.presets.items():
            r = ps.paper
            if r is not None and r.gflops_paper is not None and r.gflops_all_matmul is not None:
                params = r.params if r.params is not None else 0
                out.append(
                    PaperTarget(
                        f"{name}/{preset}", name, preset, r.gflops_paper, r.gflops_all_matmul, params, {}, r.source
                    )
                )
        for v in spec.variants:
            r = v.paper
            if r is not None and r.gflops_paper is not None and r.gflops_all_matmul is not None:
                hourglass = {"pruner": v.pruner, "recoverer": v.recoverer, "tokens": v.tokens, "depths": v.depths}
                params = r.params if r.params is not None else 0
                out.append(
                    PaperTarget(
                        v.name, name, v.preset, r.gflops_paper, r.gflops_all_matmul, params, hourglass, r.source
                    )
                )
    return tuple(out)


def reproduce_targets(targets: tuple[PaperTarget, ...] | None = None) -> list[dict[str, Any]]:
    """Count every target that can be built here (canonical pass only); unavailable ones are rows too."""
    targets = paper_targets() if targets is None else targets
    from bench.measure.flops.core import count_canonical

    rows = []
    for t in targets:
        row: dict[str, Any] = {
            "name": t.name,
            "paper_gflops_paper": t.gflops_paper,
            "paper_all_matmul": t.gflops_all_matmul,
        }
        try:
            ours, paper, params = count_canonical(t.config())
        except Exception as exc:  # backbone or strategy not available: a row with the reason
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
            rows.append(row)
            continue
        row.update(
            gflops_paper=paper,
            diff_paper_pct=100 * (paper - t.gflops_paper) / t.gflops_paper,
            gflops=ours,
            diff_all_matmul_pct=100 * (ours - t.gflops_all_matmul) / t.gflops_all_matmul,
            params=params,
            paper_params=t.params,
        )
        rows.append(row)
    return rows


def format_targets(rows: list[dict[str, Any]]) -> str:
    """The reproduction table: ours vs published, paper convention and all-matmul, in GFLOPs per clip."""
    from tabulate import tabulate

    table = []
    for r in rows:
        if "error" in r:
            table.append(
                [r["name"], r["paper_gflops_paper"], "-", "-", r["paper_all_matmul"], "-", "-", "-", r["error"]]
            )
            continue
        table.append(
            [
                r["name"],
                f"{r['paper_gflops_paper']:.2f}",
                f"{r['gflops_paper']:.2f}",
                f"{r['diff_paper_pct']:+.3f}%",
                f"{r['paper_all_matmul']:.2f}",
                f"{r['gflops']:.2f}",
                f"{r['diff_all_matmul_pct']:+.3f}%",
                "ok" if r["params"] == r["paper_params"] else f"{r['params']:,} vs {r['paper_params']:,}",
                "",
            ]
        )
    return tabulate(
        table,
        headers=["config", "paper G", "ours G", "diff", "all-matmul ref", "ours", "diff", "params", "note"],
        disable_numparse=True,
    )


__all__ = ["PaperTarget", "format_targets", "paper_targets", "reproduce_targets"]
