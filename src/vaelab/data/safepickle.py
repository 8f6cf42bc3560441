"""A restricted unpickler for the MNIST pickle shipped on PyPI.

Unpickling runs code: a pickle may name any importable callable (`os.system`, ...) and call it.
This unpickler resolves only the three numpy names needed to rebuild plain arrays, so a pickle
that tries anything else fails before a single foreign callable is even looked up.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from vaelab.errors import DataError


def _reconstruct() -> Any:
    try:  # numpy >= 2 moved the array reconstructor; old pickles still name numpy.core.
        from numpy._core.multiarray import _reconstruct as fn  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct as fn  # type: ignore[no-redef]
    return fn


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Accepts tuples, lists, numbers, strings and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name}: only numpy arrays are allowed"
            )
        if name == "_reconstruct":
            return _reconstruct()
        return getattr(np, name)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused persistent id: only numpy arrays are allowed")


def safe_loads(data: bytes, *, name: str = "pickle") -> Any:
    """Unpickle `data` with `NumpyOnlyUnpickler`; any refusal or damage is a `DataError`."""
    try:
        return NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise DataError(f"{name}: unsafe or damaged pickle ({e})") from None
