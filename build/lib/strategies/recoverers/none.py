"""The ``none`` recoverer: HoT's TPC form. No recovery; the kept frames are the output rows.

On a seq2seq backbone (e.g. TPC w. MixSTE) the hourglass then keeps the centre frame at every
pruning stage, and the model's prediction for it is the output (``PoseBackbone.forward`` returns
the centre row; ``forward_all`` returns the n kept rows with their frame index). Seq2frame
backbones always use it.
"""

from __future__ import annotations

from strategies._registry import register_recoverer
from strategies.base import Recoverer


@register_recoverer("none")
class NoRecovery(Recoverer):
    """No Token Recovering Module (TPC variants)."""

    stage = "none"
