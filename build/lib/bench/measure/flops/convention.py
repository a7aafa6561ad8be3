"""Units, conventions and the op classification every FLOP figure of HourglassBench declares.

Two conventions are reported side by side (shared/docs/papers.md §2, §5; conventions.md §9):

* **canonical (all-matmul)**: ``torch.utils.flop_counter.FlopCounterMode`` on the ``meta`` device.
  Every GEMM is counted at 2 FLOPs per multiply-accumulate (MAC): Linear, Conv, the attention
  matmuls ``q kᵀ`` and ``attn v`` (fused SDPA included) and the DPC-kNN distance ``cdist`` (as
  its Gram-matrix GEMM). Bias additions, norms, softmax, activations, residual adds and the token
  selection (topk, sort, gather) are not counted.
* **paper (HoT / H2OT)**: 2 x MACs of ``nn.Linear`` and ``nn.Conv1d`` layers only, from module
  hooks: what HoT's ``thop`` x 2 gives with LayerNorm/GELU/BatchNorm rules off. Attention
  matmuls are **not** counted. The joint-pooling ``AdaptiveAvgPool1d`` term that HoT's thop
  count keeps (papers.md ‡, 0.0045 G for C = 512) is **not** included: strictly Linear + Conv.

Both are **per clip** (one input window of T frames, batch 1) and exclude test-time flip;
``gflops_flip`` doubles them when flip is on. Per output frame divides by the frames a clip
scores: T for a seq2seq model that outputs every frame, 1 for seq2frame (MHFormer,
StridedTransformer) and for TPC-style pruning without recovery.
"""

from __future__ import annotations

FLOPS_PER_MAC = 2
GIGA = 1e9

UNITS = (
    "GFLOPs = 1e9 floating-point operations, 1 MAC = 2 FLOPs (MAC: multiply-accumulate); GMACs = GFLOPs / 2. "
    "Per clip = one forward pass over one input window of T frames at batch 1 (no flip); "
    "per output frame = per clip / frames scored per clip (T for seq2seq, 1 for seq2frame/TPC)."
)

CANONICAL = (
    "all-matmul: torch FlopCounterMode on the meta device; every GEMM (Linear, Conv, attention q·kᵀ and "
    "attn·v incl. fused SDPA, clustering cdist) at 2 FLOPs per MAC; bias, norms, softmax, activations, "
    "elementwise ops and token selection/gather not counted"
)

PAPER = (
    "HoT/H2OT paper convention: 2 x MACs of nn.Linear and nn.Conv layers only (module hooks); attention "
    "matmuls, norms, softmax, GELU and DPC-kNN not counted; joint-pooling AdaptiveAvgPool term not "
    "included (strict Linear+Conv: HoT-MixSTE 167.51 vs the paper's 167.52)"
)

FLIP = "test-time flip runs the model twice per prediction: gflops_flip = 2 x gflops when flip is on"

#: What each counter reports natively, and how it is turned into GFLOPs.
COUNTER_UNITS: dict[str, str] = {
    "fcm": "FLOPs",  # torch FlopCounterMode: 2 per MAC
    "fvcore": "MACs",  # "one fused multiply-add as one flop"
    "ptflops": "MACs",
}

COUNTER_NOTES: dict[str, str] = {
    "fcm": "torch.utils.flop_counter.FlopCounterMode: mm/addmm/bmm/baddbmm/convolution/SDPA (+cdist handle); "
    "no bias, no norms",
    "fvcore": "fvcore FlopCountAnalysis (jit trace, 1 MAC = 1 'flop'), SDPA/cdist/baddbmm handles added; "
    "also counts LayerNorm (5/elem) and BatchNorm; no bias",
    "ptflops": "ptflops backend='aten' (TorchDispatchMode, MACs), CPU-SDPA/baddbmm/cdist hooks added; "
    "counts addmm biases; no norms",
}

#: GEMM-like ops: counted by the canonical figure. A counter that leaves one uncounted has a gap.
MATMUL_OPS: frozenset[str] = frozenset(
    {
        "mm",
        "addmm",
        "bmm",
        "baddbmm",
        "matmul",
        "linear",
        "convolution",
        "_convolution",
        "conv1d",
        "conv2d",
        "einsum",
        "scaled_dot_product_attention",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
        "cdist",
        "_cdist_forward",
        "_euclidean_dist",
    }
)

#: Data movement, layout, selection, comparison and tensor creation: zero FLOPs by convention
#: (the gather/scatter of pruned tokens, DPC-kNN's topk/sort/min, its random tie-break).
ZERO_COST_OPS: frozenset[str] = frozenset(
    {
        # layout and views
        "view",
        "_unsafe_view",
        "reshape",
        "t",
        "transpose",
        "permute",
        "expand",
        "expand_as",
        "contiguous",
        "clone",
        "copy",
        "copy_",
        "_to_copy",
        "to",
        "detach",
        "detach_",
        "alias",
        "diagonal",
        "lift_fresh",
        "lift_fresh_copy",
        "slice",
        "select",
        "unsqueeze",
        "squeeze",
        "flatten",
        "unflatten",
        "as_strided",
        "repeat",
        "tile",
        "flip",
        "roll",
        "cat",
        "stack",
        "split",
        "split_with_sizes",
        "chunk",
        "unbind",
        "narrow",
        "constant_pad_nd",
        "pad",
        # gather / scatter of pruned tokens
        "gather",
        "index",
        "index_select",
        "index_put",
        "index_put_",
        "_index_put_impl_",
        "scatter",
        "scatter_",
        "take_along_dim",
        "masked_fill",
        "masked_fill_",
        "where",
        # selection and comparison (DPC-kNN, seq2frame centre pick)
        "topk",
        "sort",
        "argsort",
        "argmax",
        "argmin",
        "max",
        "min",
        "amax",
        "amin",
        "max_pool1d",
        "max_pool1d_with_indices",
        "max_pool2d",
        "max_pool2d_with_indices",
        "eq",
        "ne",
        "gt",
        "ge",
        "lt",
        "le",
        "any",
        "all",
        "logical_not",
        "logical_and",
        "logical_or",
        "bitwise_not",
        "bitwise_and",
        "bitwise_or",
        "__and__",
        "__or__",
        "searchsorted",
        "clamp",
        "clamp_min",
        "clamp_max",
        # creation and randomness
        "rand",
        "rand_like",
        "randn",
        "randn_like",
        "uniform_",
        "normal_",
        "bernoulli_",
        "zeros",
        "zeros_like",
        "ones",
        "ones_like",
        "empty",
        "empty_like",
        "empty_strided",
        "new_empty",
        "new_empty_strided",
        "new_zeros",
        "new_ones",
        "full",
        "full_like",
        "fill",
        "fill_",
        "zero_",
        "arange",
        "linspace",
        "scalar_tensor",
        "dropout",
        "native_dropout",
        "_local_scalar_dense",
        "item",
        "Int",
        "ScalarImplicit",
        "size",
        "numel",
        "dim",
        "_assert_tensor_metadata",
    }
)


def op_name(op: object) -> str:
    """Bare aten name of an op from any counter: ``aten.addmm`` / ``aten::addmm`` / packet -> ``addmm``."""
    s = str(op)
    for prefix in ("aten::", "aten.", "prim::", "prim."):
        if s.startswith(prefix):
            s = s[len(prefix) :]
            break
    return s.split(".", 1)[0]  # drop an overload suffix (``addmm.default``)


def is_zero_cost(name: str) -> bool:
    """True for ops that move, select, compare or create data (0 FLOPs by convention)."""
    return name in ZERO_COST_OPS


def split_uncounted(ops: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """Split ops a counter did not count into (arithmetic left uncounted, zero-cost by convention)."""
    uncounted: dict[str, int] = {}
    zero: dict[str, int] = {}
    for name, calls in sorted(ops.items()):
        (zero if is_zero_cost(name) else uncounted)[name] = calls
    return uncounted, zero


__all__ = [
    "CANONICAL",
    "COUNTER_NOTES",
    "COUNTER_UNITS",
    "FLIP",
    "FLOPS_PER_MAC",
    "GIGA",
    "MATMUL_OPS",
    "PAPER",
    "UNITS",
    "ZERO_COST_OPS",
    "is_zero_cost",
    "op_name",
    "split_uncounted",
]
