"""Environment facts recorded next to every timing (device, torch, threads, CPU model, load).

Timings on a shared machine are only comparable within one run (shared/docs/backbones.md §6), so
every speed row carries the environment it was measured in. :func:`environment` is a pure read of
the current process and machine; :func:`env_tag` gives a short file-name-safe tag such as
``cpu-pt2.13.0-t2`` for result files (conventions.md §8).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from functools import lru_cache
from typing import Any

import torch


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        one, five, fifteen = os.getloadavg()
    except (OSError, AttributeError):
        return None
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def device_name(device: str | torch.device = "cpu") -> str:
    """Human name of ``device``: the GPU model for CUDA, the CPU model otherwise."""
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(dev)
    if dev.type == "meta":
        return "meta (no arithmetic)"
    return cpu_model()


@lru_cache(maxsize=1)
def nvidia_driver() -> str | None:
    """The NVIDIA driver version (pynvml, else ``nvidia-smi``), or None where neither answers."""
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        try:
            v = pynvml.nvmlSystemGetDriverVersion()
            return v.decode() if isinstance(v, bytes) else str(v)
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        pass
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.strip().splitlines()
    return first[0].strip() if first else None


def cpu_features() -> dict[str, bool | str]:
    """What reduced-precision CPU inference depends on: the ATen kernel level and bf16/AMX support."""
    feats: dict[str, bool | str] = {"cpu_capability": torch.backends.cpu.get_cpu_capability()}
    for name, probe in (
        ("avx512_bf16", "_is_avx512_bf16_supported"),
        ("amx_tile", "_is_amx_tile_supported"),
        ("amx_fp16", "_is_amx_fp16_supported"),
    ):
        fn = getattr(torch.cpu, probe, None)
        if fn is not None:
            try:
                feats[name] = bool(fn())
            except Exception:
                feats[name] = False
    return feats


#: what a bf16 row on a CPU without native bf16 says instead of presenting its slowdown as the model's
EMULATED_BF16 = "bf16 emulated on this CPU (no AVX512-BF16 or AMX): slower than fp32 here, not a property of the model"


def native_bf16() -> bool:
    """Whether this CPU runs bf16 matmuls natively (AVX512-BF16 or AMX tiles), as torch detects it."""
    feats = cpu_features()
    return bool(feats.get("avx512_bf16") or feats.get("amx_tile"))


def precision_note(precision: str, device: str | torch.device) -> str:
    """The note a timing row at ``precision`` on ``device`` carries ('' for none): bf16 on a CPU that
    only emulates it."""
    if precision == "bf16" and torch.device(device).type == "cpu" and not native_bf16():
        return EMULATED_BF16
    return ""


def environment(device: str | torch.device = "cpu") -> dict[str, Any]:
    """A JSON-ready snapshot of what a timing depends on."""
    dev = torch.device(device)
    info: dict[str, Any] = {
        "device": str(dev),
        "device_name": device_name(dev),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,  # the CUDA runtime torch was built with (None on a CPU build)
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "load_average": load_average(),
        "driver": None,
        **cpu_features(),
        "native_bf16": native_bf16() if dev.type == "cpu" else None,
    }
    if dev.type == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(dev)
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["gpu_capability"] = f"{props.major}.{props.minor}"
        info["cudnn"] = torch.backends.cudnn.version()
        info["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
        info["driver"] = nvidia_driver()
    return info


def env_tag(device: str | torch.device = "cpu", threads: int | None = None) -> str:
    """Short file-name-safe environment tag, e.g. ``cpu-pt2.13.0-t2`` or ``cuda-pt2.13.0-h100``."""
    dev = torch.device(device)
    pt = "pt" + torch.__version__.split("+")[0]
    if dev.type == "cuda":
        gpu = re.sub(r"[^a-z0-9]+", "", device_name(dev).lower().replace("nvidia", ""))[:16]
        return f"cuda-{pt}-{gpu or 'gpu'}"
    t = threads if threads is not None else torch.get_num_threads()
    return f"{dev.type}-{pt}-t{t}"


__all__ = [
    "EMULATED_BF16",
    "cpu_features",
    "cpu_model",
    "device_name",
    "env_tag",
    "environment",
    "load_average",
    "native_bf16",
    "nvidia_driver",
    "precision_note",
]
