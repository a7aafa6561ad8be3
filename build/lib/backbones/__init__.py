"""Video pose transformer backbones, faithful to the official code, in a timm-style registry.

    from backbones import list_backbones, create_backbone
    model = create_backbone("mixste", preset="tiny")

Every backbone subclasses :class:`backbones.base.PoseBackbone` (the uniform block/frame-token view
that ``strategies.apply_hourglass`` plugs into).
"""

from backbones import mhformer as _mhformer  # noqa: F401  (registers)
from backbones import mixste as _mixste  # noqa: F401  (registers)
from backbones import motionbert as _motionbert  # noqa: F401  (registers)
from backbones import strided as _strided  # noqa: F401  (registers)
from backbones._checkpoint import (
    CheckpointError,
    clean_state_dict,
    load_official_checkpoint,
    load_state_dict_strict,
    save_checkpoint,
)
from backbones._registry import (
    REQUIRED_PRESETS,
    BackboneSpec,
    HourglassVariant,
    Objective,
    PaperResult,
    PresetSpec,
    RegistryError,
    TrainRecipe,
    create_backbone,
    get_backbone_spec,
    list_backbones,
    register_backbone,
)
from backbones.base import PoseBackbone, PoseOutput, TokenState, select_frame

__all__ = [
    "REQUIRED_PRESETS",
    "BackboneSpec",
    "CheckpointError",
    "HourglassVariant",
    "Objective",
    "PaperResult",
    "PoseBackbone",
    "PoseOutput",
    "PresetSpec",
    "RegistryError",
    "TokenState",
    "TrainRecipe",
    "clean_state_dict",
    "create_backbone",
    "get_backbone_spec",
    "list_backbones",
    "load_official_checkpoint",
    "load_state_dict_strict",
    "register_backbone",
    "save_checkpoint",
    "select_frame",
]
