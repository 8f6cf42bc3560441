"""Helpers shared by the bad-input survey, the fault-injection and the property-based tests:
tiny IDX folders (good and malformed), tiny trained runs, and the one-line-error assertion."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from vaelab.cli import EXIT_UNEXPECTED, main
from vaelab.data.sources import FILES, encode_idx

TINY_RUN = dict(
    dataset="idx",
    latent_dim=2,
    channels=[4, 4, 4, 4],
    epochs=1,
    batch_size=32,
    log_every=2,
    threads=1,
)


def images(n: int, h: int = 28, w: int | None = None, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, h, w or h), dtype=np.uint8)


def labels(n: int) -> np.ndarray:
    return (np.arange(n) % 10).astype(np.uint8)


def idx_files(
    n_train: int = 120,
    n_test: int = 30,
    train_hw: tuple[int, int] = (28, 28),
    test_hw: tuple[int, int] | None = None,
) -> dict[str, bytes]:
    test_hw = test_hw or train_hw
    return {
        FILES[0]: encode_idx(images(n_train, *train_hw)),
        FILES[1]: encode_idx(labels(n_train)),
        FILES[2]: encode_idx(images(n_test, *test_hw, seed=1)),
        FILES[3]: encode_idx(labels(n_test)),
    }


def write_folder(d: Path, files: dict[str, bytes], gz: bool = True) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if gz:
            (d / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (d / name).write_bytes(data)
    return d


def raw_header(magic: int, *shape: int) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{len(shape)}I", *shape)


def corrupt_gzip(data: bytes) -> bytes:
    """A gzip member whose header is valid but whose deflate body is garbage."""
    packed = bytearray(gzip.compress(data))
    for i in range(12, min(len(packed) - 8, 60)):
        packed[i] ^= 0x5A
    return bytes(packed)


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line(rc: int, err: str, code: int | None = None, needle: str = "") -> str:
    """Exactly one line `vaelab: error: ...` on stderr, never a traceback or the generic path."""
    assert "Traceback" not in err, err
    assert rc != EXIT_UNEXPECTED, f"reached the generic error path: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vaelab: error: "), err
    if code is not None:
        assert rc == code, (rc, err)
    else:
        assert rc in (1, 2), (rc, err)
    assert needle in lines[0], (needle, lines[0])
    return lines[0]
