"""Per-op handles that complete each counter's matmul coverage on the ops our models use.

Every handle counts multiply-accumulates (MACs) from shapes; the three adapters convert them to
each counter's unit and signature:

* FlopCounterMode (FLOPs, shape-wrapped ``f(*shapes, out_shape=None, **kw)``): the CPU SDPA kernel
  ``_scaled_dot_product_flash_attention_for_cpu`` (torch 2.13 only registers the CUDA kernels, so
  fused attention on real CPU tensors counts 0; on ``meta`` SDPA decomposes into ``bmm`` and is
  counted natively) and the DPC-kNN distance ``_euclidean_dist`` / ``_cdist_forward``.
* fvcore (MACs, ``h(inputs, outputs)`` over ``torch._C.Value``): ``aten::scaled_dot_product_attention``
  (fvcore has none: it would miss all fused attention), ``aten::cdist`` and ``aten::baddbmm``.
* ptflops ``aten`` backend (MACs, ``h(args, outputs)`` over tensors): CPU and CUDA SDPA kernels,
  ``baddbmm`` and the cdist kernels (its table only has mm/matmul/addmm/bmm/convolution).

Token gather/scatter, topk, sort and the random tie-break are zero-cost by convention
(:data:`bench.measure.flops.convention.ZERO_COST_OPS`): they are reported, not counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

aten = torch.ops.aten

Shape = Sequence[int]


# ---- closed-form MACs from shapes ----------------------------------------------------------------
def sdpa_macs(q: Shape, k: Shape, v: Shape) -> int:
    """Attention core ``softmax(q kᵀ) v``: q (..., Nq, d), k (..., Nk, d), v (..., Nk, dv) -> MACs."""
    return math.prod(q[:-1]) * k[-2] * (q[-1] + v[-1])


def cdist_macs(x1: Shape, x2: Shape) -> int:
    """Pairwise distance as its Gram-matrix GEMM: x1 (..., N, D), x2 (..., M, D) -> N·M·D per batch."""
    return math.prod(x1) * x2[-2]


def baddbmm_macs(b1: Shape, b2: Shape) -> int:
    """``baddbmm``: b1 (B, N, K) @ b2 (B, K, M) -> B·N·K·M (the added input is not counted)."""
    return math.prod(b1) * b2[-1]


# ---- FlopCounterMode (FLOPs = 2 x MACs; arguments arrive as shapes) -------------------------------
def _fcm_sdpa(q: Shape, k: Shape, v: Shape, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return 2 * sdpa_macs(q, k, v)


def _fcm_cdist(x1: Shape, x2: Shape, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return 2 * cdist_macs(x1, x2)


def fcm_custom_mapping() -> dict[Any, Callable[..., int]]:
    """Extra entries for ``FlopCounterMode(custom_mapping=...)``."""
    mapping: dict[Any, Callable[..., int]] = {aten._euclidean_dist: _fcm_cdist, aten._cdist_forward: _fcm_cdist}
    cpu_sdpa = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_sdpa is not None:
        mapping[cpu_sdpa] = _fcm_sdpa
    return mapping


# ---- fvcore (MACs; inputs are torch._C.Value from the jit trace) ----------------------------------
def _fv_shape(value: Any) -> list[int]:
    from fvcore.nn.jit_handles import get_shape

    shape = get_shape(value)
    if shape is None:
        raise ValueError("fvcore handle: input without a static shape")
    return list(shape)


def _fv_sdpa(inputs: list[Any], outputs: list[Any]) -> int:
    q, k, v = (_fv_shape(i) for i in inputs[:3])
    return sdpa_macs(q, k, v)


def _fv_cdist(inputs: list[Any], outputs: list[Any]) -> int:
    return cdist_macs(_fv_shape(inputs[0]), _fv_shape(inputs[1]))


def _fv_baddbmm(inputs: list[Any], outputs: list[Any]) -> int:
    return baddbmm_macs(_fv_shape(inputs[1]), _fv_shape(inputs[2]))


def fvcore_handles() -> dict[str, Callable[[list[Any], list[Any]], int]]:
    """Extra ``FlopCountAnalysis.set_op_handle`` entries (op name -> MAC handle)."""
    return {
        "aten::scaled_dot_product_attention": _fv_sdpa,
        "aten::cdist": _fv_cdist,
        "aten::baddbmm": _fv_baddbmm,
    }


# ---- ptflops aten backend (MACs; args are the dispatched tensors) ---------------------------------
def _pt_sdpa(args: Sequence[Any], outputs: Sequence[Any]) -> int:
    q, k, v = args[:3]
    return sdpa_macs(q.shape, k.shape, v.shape)


def _pt_cdist(args: Sequence[Any], outputs: Sequence[Any]) -> int:
    return cdist_macs(args[0].shape, args[1].shape)


def _pt_baddbmm(args: Sequence[Any], outputs: Sequence[Any]) -> int:
    return baddbmm_macs(args[1].shape, args[2].shape)


def ptflops_hooks() -> dict[Any, Callable[[Sequence[Any], Sequence[Any]], int]]:
    """Extra ``custom_modules_hooks`` for ptflops' aten backend (aten op packet -> MAC handle)."""
    hooks: dict[Any, Callable[[Sequence[Any], Sequence[Any]], int]] = {
        aten.baddbmm: _pt_baddbmm,
        aten._euclidean_dist: _pt_cdist,
        aten._cdist_forward: _pt_cdist,
    }
    for name in (
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
    ):
        op = getattr(aten, name, None)
        if op is not None:
            hooks[op] = _pt_sdpa
    return hooks


__all__ = [
    "baddbmm_macs",
    "cdist_macs",
    "fcm_custom_mapping",
    "fvcore_handles",
    "ptflops_hooks",
    "sdpa_macs",
]
