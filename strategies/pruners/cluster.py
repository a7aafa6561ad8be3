"""TPC: Token Pruning Cluster, HoT's DPC-kNN density-peak clustering (papers.md §6.1).

For per-frame features x (B, F, D) (joint-mean pooled tokens; MHFormer: the three hypotheses
concatenated):

1. D = cdist(x, x) / sqrt(D)                                   distance, scaled by 1/sqrt(channels)
2. rho_i = exp(-mean_{j in kNN(i)} D_ij^2), k = 2 incl. i      local density
3. delta_i = min_{j denser than i} D_ij; the densest: max(D)    distance to a denser token
4. gamma_i = rho_i * delta_i; keep the top-n (cluster centres), sorted in time.

Tie-break (documented deviation): HoT adds ``U(0, 1) * 1e-6`` from the *global* RNG to rho, which
makes the selection depend on, and advance, the global random state. Here "j is denser than i" is
decided lexicographically on (rho, p) with a fixed pseudo-random priority p_i = frac(i * phi)
(golden-ratio sequence). It plays the role of the noise (a random-looking order among exactly equal
densities, e.g. edge-padded frames), is exact where float noise of 1e-6 may be rounded away, is
deterministic, device-independent and leaves every RNG untouched. gamma uses the unperturbed rho.
Exact ties are common: two mutual nearest neighbours have the same rho. So that they tie exactly (and
the priority, not float noise, decides), D is symmetrised and its diagonal set to 0; cdist's
matmul path leaves ~1e-8 asymmetries and self-distances otherwise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from strategies._registry import register_pruner
from strategies.base import PruneContext, Pruner, topk_keep

GOLDEN = 0.6180339887498949  # frac(phi)


def tie_priority(length: int, device: torch.device) -> Tensor:
    """(F,) distinct pseudo-random priorities frac(i * phi) in [0, 1), used to break density ties."""
    return (torch.arange(length, device=device, dtype=torch.float32) * GOLDEN).frac()


def dpc_knn_score(x: Tensor, k: int = 2) -> Tensor:
    """DPC-kNN cluster-centre score gamma = rho * delta: features (B, F, D) -> (B, F).

    Written for few passes over the (B, F, F) distances (F = 351 at the paper presets): the
    1/sqrt(D) scale and the symmetrisation are one pass, "j is denser than i" is one comparison of
    ranks in the (rho, priority) order, and the densest token's delta is filled in after the min.
    """
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    b, f, c = x.shape
    dist = torch.cdist(x, x)  # (B, F, F); cdist's matmul path is not bitwise symmetric
    dist = dist + dist.transpose(1, 2)  # exactly symmetric (times 2) ...
    dist.mul_(0.5 / c**0.5)  # ... and scaled to cdist / sqrt(D)
    diagonal = dist.diagonal(dim1=1, dim2=2)  # (B, F) view
    if k == 2 and f > 1:
        # The 2 nearest are the token itself (exactly 0) and its nearest other token m, so the mean of
        # their squares is m^2 / 2: one min over the rows instead of a top-k (bitwise the same values).
        diagonal.fill_(torch.inf)
        other = dist.amin(dim=-1)  # (B, F)
        diagonal.zero_()  # exactly 0 to itself: mutual nearest neighbours tie exactly
        density = (-(other * other) / 2).exp()  # (B, F)
    else:
        diagonal.zero_()
        nearest = dist.topk(min(k, f), dim=-1, largest=False).values  # (B, F, k), includes the token itself
        density = (-(nearest * nearest).mean(dim=-1)).exp()  # (B, F)
    # rank of each token in the strict total order (rho, priority): sort by priority, then stably by rho
    by_prio = tie_priority(f, x.device).argsort().expand(b, f)  # (B, F), priorities are distinct
    by_rho = density.gather(1, by_prio).sort(dim=1, stable=True).indices
    order = by_prio.gather(1, by_rho)  # (B, F) token indices, least to most dense
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(f, device=x.device).expand(b, f))
    denser = rank[:, None, :] > rank[:, :, None]  # [b, i, j]: j is denser than i
    delta = torch.where(denser, dist, torch.inf).amin(dim=-1)  # (B, F); inf for the densest token only
    dist_max = dist.flatten(1).amax(dim=-1, keepdim=True)  # (B, 1)
    return density * torch.where(delta.isinf(), dist_max, delta)


@register_pruner("cluster")
class ClusterPruner(Pruner):
    """TPC (HoT): keep the n DPC-kNN cluster centres among the frame features.

    With a required (centre) position it is HoT's ``cluster_dpc_knn_center``: the centre's score is
    set to -inf, n - 1 centres are taken and the centre frame is appended.
    """

    needs_features = True

    def __init__(self, k: int = 2) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"cluster pruner needs k >= 1 nearest neighbours, got {k}")
        self.k = k

    def select(self, ctx: PruneContext, n: int) -> Tensor:
        score = dpc_knn_score(ctx.frame_features(), self.k)
        return topk_keep(score, n, ctx.required)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, k={self.k}"
