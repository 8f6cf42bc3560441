"""The IDX file format of MNIST-like datasets (LeCun et al.), read and written with numpy.

Layout: a big-endian header `0x00 0x00 <dtype code> <ndim>` followed by `ndim` uint32 sizes,
then the array body in C order. vaelab handles the unsigned-byte type (code 0x08), which is what
MNIST, Fashion-MNIST, KMNIST and EMNIST use: magic 0x00000803 for images, 0x00000801 for labels.
"""

from __future__ import annotations

import struct

import numpy as np

from vaelab.errors import DataError

UBYTE = 0x08


def encode_idx(array: np.ndarray) -> bytes:
    """Serialise a uint8 array (any rank 1..4) to IDX bytes."""
    if array.dtype != np.uint8:
        raise ValueError(f"IDX writer supports uint8 only, got {array.dtype}")
    if not 1 <= array.ndim <= 4:
        raise ValueError(f"IDX arrays have 1 to 4 dimensions, got {array.ndim}")
    header = struct.pack(">BBBB", 0, 0, UBYTE, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def decode_idx(
    data: bytes, *, name: str = "IDX data", expect_ndim: int | None = None
) -> np.ndarray:
    """Parse IDX bytes into a uint8 array; every malformation raises a one-line `DataError`."""
    if len(data) < 4:
        raise DataError(f"{name}: file too short for an IDX header ({len(data)} bytes)")
    zero0, zero1, dtype, ndim = struct.unpack(">BBBB", data[:4])
    if zero0 != 0 or zero1 != 0 or dtype != UBYTE or not 1 <= ndim <= 4:
        magic = int.from_bytes(data[:4], "big")
        raise DataError(
            f"{name}: wrong magic number 0x{magic:08X} (expected 0x00000801 for labels or "
            "0x00000803 for images); is this an IDX file, and is it decompressed?"
        )
    if expect_ndim is not None and ndim != expect_ndim:
        raise DataError(f"{name}: expected a {expect_ndim}-d IDX array, the header says {ndim}-d")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{name}: truncated header ({len(data)} of {header_len} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    expected = header_len + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(
            f"{name}: body {what}: header declares shape {tuple(shape)} = {expected} bytes, "
            f"file has {len(data)}; re-download the file"
        )
    # A writable copy: torch refuses to wrap read-only buffers without a warning.
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape).copy()
