"""A content-keyed, in-process memo of what an evaluation computes without the model (classifier
outputs on the real and train-floor images, real × real neighbour distances, the floor's measures):
a study evaluates a dozen runs on the same images with the same classifier in one process.

A key is the sha256 of everything the value is a function of (arrays by dtype, shape and bytes;
modules by their state; the device; plain parameters by repr), so a hit returns exactly what the
computation would. Values are copied in and out: a caller editing its arrays cannot change a later
evaluation's numbers.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import torch

T = TypeVar("T")
MAX_ENTRIES = 16
"""Least recently used values beyond this many are dropped: ~15 MB each for 10,000 images."""

_memo: OrderedDict[str, Any] = OrderedDict()
_enabled = True


def _update(h: Any, part: object) -> None:
    if isinstance(part, torch.nn.Module):
        for name, t in part.state_dict().items():
            h.update(name.encode())
            _update(h, t)
    elif isinstance(part, torch.Tensor):
        # the device too: the same images on a GPU give (slightly) different features
        h.update(f"tensor {part.device} ".encode())
        _update(h, part.detach().cpu().numpy())
    elif isinstance(part, np.ndarray):
        a = np.ascontiguousarray(part)
        h.update(f"array {a.dtype.str} {a.shape} ".encode())
        h.update(a.data)
    elif isinstance(part, tuple | list):
        h.update(f"seq {len(part)} ".encode())
        for p in part:
            _update(h, p)
    elif part is None or isinstance(part, str | int | float | bool):
        h.update(f"{type(part).__name__} {part!r} ".encode())
    else:
        raise TypeError(f"cannot key a memo on a {type(part).__name__}")


def content_key(name: str, *parts: object) -> str:
    """sha256 of `name` and the contents of `parts` (modules, tensors, arrays, plain values)."""
    h = hashlib.sha256(f"{name} torch {torch.__version__} ".encode())
    for p in parts:
        _update(h, p)
    return h.hexdigest()


def memoised(name: str, parts: tuple[object, ...], compute: Callable[[], T]) -> T:
    """compute(), or a copy of its value for the same `name` and contents of `parts`."""
    if not _enabled:
        return compute()
    key = content_key(name, *parts)
    if key in _memo:
        _memo.move_to_end(key)
        return copy.deepcopy(_memo[key])
    value = compute()
    _memo[key] = copy.deepcopy(value)
    while len(_memo) > MAX_ENTRIES:
        _memo.popitem(last=False)
    return value


clear = _memo.clear
"""Forget every memoised value."""


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Compute everything afresh inside the block (what the memo saves is measured this way)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before
