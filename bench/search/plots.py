"""The search's figure: hypervolume against trials (the random control beside it when it ran), and the front
found over every candidate's free measure (grey), with the reference point stated."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.search.space import Candidate


def search_figure(
    trials: pd.DataFrame,
    hypervolume: Sequence[float],
    front: pd.DataFrame,
    candidates: Sequence[Candidate],
    reference: dict[str, float],
    path: Path,
    control: Sequence[float] | None = None,
) -> Path:
    """Write ``path`` (PNG) and its PDF twin; ``trials`` holds the completed trials' objectives in order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    objectives = [c for c in trials.columns if c not in ("trial", "cell_id", "label")]
    x_obj = next((o for o in objectives if o != "mpjpe_mm"), objectives[-1])
    fig, (ax_hv, ax_front) = plt.subplots(1, 2, figsize=(10, 4))
    ax_hv.plot(range(1, len(hypervolume) + 1), hypervolume, marker="o", ms=3, label="search")
    if control:
        ax_hv.plot(range(1, len(control) + 1), control, marker="o", ms=3, color="C1", label="random (same seed)")
    ax_hv.set_xlabel("completed trials")
    ax_hv.set_ylabel("hypervolume")
    ax_hv.legend(fontsize=8)
    free = [c.free[x_obj] for c in candidates if x_obj in c.free]
    if free:  # every candidate's free measure, before any trial: where the front could be
        ax_front.scatter(
            free,
            [reference["mpjpe_mm"]] * len(free),
            marker="|",
            color="0.75",
            s=200,
            label=f"{len(free)} candidates ({x_obj}, before any trial)",
        )
    ax_front.scatter(trials[x_obj], trials["mpjpe_mm"], color="0.45", s=14, label="trials")
    f = front.sort_values(x_obj)
    ax_front.step(f[x_obj], f["mpjpe_mm"], where="post", color="C3", marker="o", label="front found")
    ax_front.set_xlabel(x_obj)
    ax_front.set_ylabel("MPJPE (mm)")
    ax_front.legend(fontsize=8)
    ref = ", ".join(f"{k} {v:.4g}" for k, v in reference.items())
    fig.suptitle(f"search: hypervolume reference point {ref}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)
    return path
