"""FLOP counting with declared units and coverage (issue 4; conventions.md §9).

    from bench.config import ModelConfig
    from bench.measure.flops import count_flops
    report = count_flops(ModelConfig.create("mixste", "paper"))
    print(report.format_text())          # or report.to_dict() for json

Three real counters run on the ``meta`` device (no arithmetic): torch's ``FlopCounterMode`` (the
canonical all-matmul figure), fvcore and ptflops' ``aten`` backend, each with handles for the ops
our models use (fused SDPA, cdist) and a list of the ops it left uncounted. The HoT papers'
convention (2 x Linear/Conv MACs) is counted beside it with module hooks. See
:mod:`bench.measure.flops.convention` for the exact definitions and units.
"""

from bench.measure.flops.closed_form import (
    attention_flops,
    block_flops,
    cross_attention_flops,
    depth_flops_per_frame,
    linear_flops,
    matmul_flops,
    mlp_flops,
    spatio_temporal_paper_flops,
)
from bench.measure.flops.convention import CANONICAL, PAPER, UNITS
from bench.measure.flops.core import count_canonical, count_flops
from bench.measure.flops.counters import COUNTERS, CounterResult
from bench.measure.flops.report import FlopReport

__all__ = [
    "CANONICAL",
    "COUNTERS",
    "PAPER",
    "UNITS",
    "CounterResult",
    "FlopReport",
    "attention_flops",
    "block_flops",
    "count_canonical",
    "count_flops",
    "cross_attention_flops",
    "depth_flops_per_frame",
    "linear_flops",
    "matmul_flops",
    "mlp_flops",
    "spatio_temporal_paper_flops",
]
