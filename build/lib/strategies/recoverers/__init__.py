"""Token Recovering Modules, one file each; importing this package registers them all."""

from strategies.recoverers import attention as _attention  # noqa: F401
from strategies.recoverers import interpolation as _interpolation  # noqa: F401
from strategies.recoverers import none as _none  # noqa: F401
from strategies.recoverers.attention import TokenRecoveringAttention
from strategies.recoverers.interpolation import TokenRecoveringInterpolation, interpolate_frames
from strategies.recoverers.none import NoRecovery

__all__ = ["NoRecovery", "TokenRecoveringAttention", "TokenRecoveringInterpolation", "interpolate_frames"]
