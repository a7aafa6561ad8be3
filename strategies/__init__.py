"""Token pruning and recovery strategies, and the hourglass plug-in that applies them to any backbone.

    from backbones import create_backbone
    from strategies import apply_hourglass, list_pruners, list_recoverers

    model = create_backbone("mixste")                                    # HoT w. MixSTE:
    apply_hourglass(model, pruner="cluster", recoverer="attention", tokens=81, depths=3)
    apply_hourglass(model, pruner="uniform", recoverer="interpolation",  # H2OT-style hierarchy
                    tokens=[121, 81, 41], depths=[2, 4, 6])

Pruners (HoT's TPM; H2OT's TPC / TPA / TPMo / TPS): ``cluster``, ``uniform``, ``attention``, ``motion``,
``random`` and ``none``. Recoverers (TRM): ``attention`` (TRA), ``interpolation`` (TRI) and ``none``
(TPC form). Add one with a file under ``strategies/pruners/`` or ``strategies/recoverers/``, a
``@register_pruner`` / ``@register_recoverer`` decorator and an import in that package's ``__init__``.
"""

from strategies import pruners as _pruners  # noqa: F401  (registers)
from strategies import recoverers as _recoverers  # noqa: F401  (registers)
from strategies._registry import (
    RegistryError,
    create_pruner,
    create_recoverer,
    get_pruner_class,
    get_recoverer_class,
    list_pruners,
    list_recoverers,
    register_pruner,
    register_recoverer,
)
from strategies.base import PruneContext, Pruner, Recoverer, check_selection, force_required, topk_keep
from strategies.hourglass import (
    Hourglass,
    HourglassError,
    apply_hourglass,
    block_tokens,
    default_recoverer,
    remove_hourglass,
)
from strategies.schedule import Schedule, ScheduleError, parse_axis, parse_schedule, tokens_per_block

__all__ = [
    "Hourglass",
    "HourglassError",
    "PruneContext",
    "Pruner",
    "Recoverer",
    "RegistryError",
    "Schedule",
    "ScheduleError",
    "apply_hourglass",
    "block_tokens",
    "check_selection",
    "create_pruner",
    "create_recoverer",
    "default_recoverer",
    "force_required",
    "get_pruner_class",
    "get_recoverer_class",
    "list_pruners",
    "list_recoverers",
    "parse_axis",
    "parse_schedule",
    "register_pruner",
    "register_recoverer",
    "remove_hourglass",
    "tokens_per_block",
    "topk_keep",
]
