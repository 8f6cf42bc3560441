import struct

import numpy as np
import pytest

from vaelab.data.sources import decode_idx, encode_idx
from vaelab.errors import DataError


def test_round_trip_images_and_labels():
    x = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    y = np.arange(5, dtype=np.uint8)
    raw = encode_idx(x)
    assert raw[:4] == b"\x00\x00\x08\x03"
    np.testing.assert_array_equal(decode_idx(raw), x)
    np.testing.assert_array_equal(decode_idx(encode_idx(y)), y)


def test_wrong_magic_is_a_clear_error():
    raw = bytearray(encode_idx(np.zeros((2, 3, 3), np.uint8)))
    raw[2] = 0x0D  # float32 type code
    with pytest.raises(DataError, match="wrong magic number 0x00000D03"):
        decode_idx(bytes(raw))


def test_truncated_body_is_a_clear_error():
    raw = encode_idx(np.zeros((10, 28, 28), np.uint8))
    with pytest.raises(DataError, match="truncated"):
        decode_idx(raw[:-100])


def test_header_size_mismatch_is_a_clear_error():
    raw = struct.pack(">BBBBIII", 0, 0, 8, 3, 4, 28, 28) + bytes(3 * 28 * 28 + 7)
    with pytest.raises(DataError, match=r"shape \(4, 28, 28\)"):
        decode_idx(raw)
    with pytest.raises(DataError, match="trailing bytes"):
        decode_idx(encode_idx(np.zeros(3, np.uint8)) + b"x")


def test_expected_rank_is_checked():
    with pytest.raises(DataError, match="expected a 3-d"):
        decode_idx(encode_idx(np.zeros(3, np.uint8)), expect_ndim=3)
