"""Read ``.npz`` / ``.npy`` files that hold pickled object arrays without executing code.

VideoPose3D's Human3.6M files store 0-d object arrays wrapping pickled dicts, and the
official loaders open them with ``np.load(allow_pickle=True)``, which runs whatever the
pickle asks for. This module parses the ``.npy`` header itself (``numpy.lib.format``) and
unpickles object payloads with :class:`RestrictedUnpickler`, whose ``find_class`` only
resolves the few numpy callables needed to rebuild arrays, dtypes and scalars. Dicts,
lists, tuples, strings and numbers are pickle opcodes, not classes, so they need nothing.
Any other global (``os.system``, ``builtins.eval``, a user class...) raises
:class:`UnsafeFileError` before anything is called.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import zipfile
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from bench.errors import UserError

__all__ = ["RestrictedUnpickler", "UnsafeFileError", "load_npy_safely", "load_npz_safely"]


class UnsafeFileError(UserError, ValueError):
    """A data file asked the unpickler for something other than plain numpy data."""


def _numpy_core_attr(submodule: str, name: str) -> Callable[..., Any]:
    # numpy >= 2 keeps these in numpy._core; numpy 1.x in numpy.core. Files written by
    # either version name either module, so both spellings resolve to whichever exists.
    for package in ("numpy._core", "numpy.core"):
        try:
            mod = importlib.import_module(f"{package}.{submodule}")
        except ImportError:
            continue
        obj = getattr(mod, name, None)
        if obj is not None:
            return obj  # type: ignore[no-any-return]
    raise ImportError(f"numpy has no {submodule}.{name}")


# (module, name) pairs a pickled numpy array / dtype / scalar needs, under both numpy
# 1.x and 2.x module names.
_ALLOWED: frozenset[tuple[str, str]] = frozenset(
    [(f"{pkg}.multiarray", "_reconstruct") for pkg in ("numpy.core", "numpy._core")]
    + [(f"{pkg}.multiarray", "scalar") for pkg in ("numpy.core", "numpy._core")]
    + [(f"{pkg}.numeric", "_frombuffer") for pkg in ("numpy.core", "numpy._core")]
    + [("numpy", "ndarray"), ("numpy", "dtype")]
)


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` that only resolves numpy array/dtype/scalar builders.

    Allowed globals: ``numpy.ndarray``, ``numpy.dtype``,
    ``numpy.core.multiarray._reconstruct``, ``numpy.core.multiarray.scalar`` and
    ``numpy.core.numeric._frombuffer`` (and their ``numpy._core`` spellings). Everything
    else raises :class:`UnsafeFileError`. Persistent ids are refused as well.
    """

    def __init__(self, file: IO[bytes], source: str = "<bytes>") -> None:
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise UnsafeFileError(
                f"{self._source}: refusing to unpickle global {module}.{name} "
                "(only numpy arrays, dtypes, scalars, dicts, lists and plain values are allowed)"
            )
        if module == "numpy":
            return getattr(np, name)
        submodule = module.rsplit(".", 1)[1]
        return _numpy_core_attr(submodule, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeFileError(f"{self._source}: refusing pickle persistent id {pid!r}")


def safe_loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (raises :class:`UnsafeFileError`)."""
    return RestrictedUnpickler(io.BytesIO(data), source).load()


def _read_npy(fp: IO[bytes], source: str) -> np.ndarray:
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fp)
    else:
        raise ValueError(f"{source}: unsupported .npy format version {version}")
    if not dtype.hasobject:
        count = int(np.prod(shape, dtype=np.int64))
        raw = fp.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise ValueError(f"{source}: truncated array data")
        arr = np.frombuffer(raw, dtype=dtype, count=count).copy()
        if fortran_order:
            return arr.reshape(tuple(shape)[::-1]).T
        return arr.reshape(tuple(shape))
    try:
        obj = RestrictedUnpickler(fp, source).load()
    except UnsafeFileError:
        raise
    except Exception as exc:  # corrupt pickle: a plain ValueError, never code execution
        raise ValueError(f"{source}: unreadable object array ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, np.ndarray):
        raise ValueError(f"{source}: object payload is a {type(obj).__name__}, not an ndarray")
    if obj.shape != tuple(shape):
        raise ValueError(f"{source}: object array shape {obj.shape} != header shape {shape}")
    return obj


def load_npy_safely(path: str | os.PathLike[str]) -> np.ndarray:
    """Load one ``.npy`` file; object arrays are unpickled with :class:`RestrictedUnpickler`."""
    with open(path, "rb") as fp:
        return _read_npy(fp, os.fspath(path))


def load_npz_safely(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` archive without executing code.

    Returns:
        ``{key: ndarray}`` (key = member name without ``.npy``), like ``np.load(...)[key]``
        with ``allow_pickle=True`` but restricted to plain numpy data.

    Raises:
        UnsafeFileError: a pickle asks for a disallowed global (nothing is executed).
        ValueError: not a zip archive, or a malformed member.
        OSError: the file cannot be opened.
    """
    source = os.fspath(path)
    out: dict[str, np.ndarray] = {}
    try:
        zf = zipfile.ZipFile(source)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{source}: not an .npz (zip) archive") from exc
    with zf:
        for member in zf.namelist():
            if not member.endswith(".npy"):
                continue
            key = member[: -len(".npy")]
            with zf.open(member) as fp:
                out[key] = _read_npy(fp, f"{source}[{key}]")
    return out
