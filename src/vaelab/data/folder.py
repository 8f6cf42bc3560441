"""Folders of pictures as a dataset (`--dataset folder --data-dir DIR`).

Layouts: class sub-folders (the ImageFolder convention: sorted folder names are the labels) or a
flat folder (unlabelled), either one optionally under `train/` + `test/`; without them a seeded
1 in 7 of the pictures is the test split. PNG, JPEG, WebP, BMP and GIF (first frame) are decoded
by Pillow in parallel processes into uint8 arrays (N, C, H, W). The result is returned as the four
IDX files of the MNIST family (4-d images), so the cache in `store` verifies, stores and loads it
like any other dataset; the manifest adds the file listing that tells when the folder changed.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from vaelab.data.sources import FILES, encode_idx
from vaelab.errors import DataError

SIZES = (28, 32, 64)
PICTURES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}
TEST_EVERY = 7  # without train/ + test/: 1 in 7 pictures is the test split (MNIST's 10k in 70k)
SPLIT_SEED = 0
Listing = list[list[Any]]  # [relative path, bytes, mtime_ns] per picture, sorted


def scan(root: str | Path) -> tuple[Listing, list[tuple[str, str]]]:
    """(the pictures under `root` with size and mtime, the other files with why they are
    skipped), following folder links once (a link loop is skipped); a missing or picture-less
    folder is a one-line `DataError`. Strings, not Paths: a reload re-lists the whole folder, and
    60,000 Path objects cost more than the rest of it (measured: 1.1 s of a 60,000-picture
    reload)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--data-dir {root}: no such folder; give the folder of your pictures")
    listing: Listing = []
    skipped: list[tuple[str, str]] = []
    seen: set[tuple[int, int]] = set()
    start = len(os.path.join(str(root), ""))  # a path relative to root: what follows its "/"
    for top, dirs, files in os.walk(
        str(root),
        followlinks=True,
        onerror=lambda e: skipped.append((str(e.filename), f"unreadable folder ({e.strerror})")),
    ):
        st = os.stat(top)
        if (st.st_dev, st.st_ino) in seen:
            skipped.append((top, "folder link loop"))
            dirs.clear()
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs.sort()
        for name in sorted(files):
            path = top + os.sep + name  # os.path.join's checks cost a fifth of a reload
            rel = path[start:]
            suffix = os.path.splitext(name)[1]
            suffix = "" if suffix == "." else suffix  # as Path.suffix: "name." has none
            if suffix.lower() not in PICTURES:
                skipped.append((rel, f"not a picture ({suffix or 'no extension'})"))
                continue
            try:
                st = os.stat(path)
            except OSError as e:
                skipped.append((rel, f"unreadable ({e.strerror})"))
                continue
            listing.append([rel, st.st_size, st.st_mtime_ns])
    if not listing:
        why = f" ({len(skipped)} other files)" if skipped else ""
        raise DataError(
            f"{root} holds no pictures{why}; vaelab reads {', '.join(sorted(PICTURES))} "
            "in class sub-folders or a flat folder"
        )
    return listing, skipped


def _to_array(path: str, size: int | None, color: str | None) -> np.ndarray | str:
    """One picture as uint8 (H, W) grey or (H, W, 3) RGB, or the reason it cannot be read.
    16-bit grey keeps its top byte; transparency is composited onto black (the background of
    the MNIST family); `color` None keeps grey pictures grey."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as opened:
            opened.seek(0)  # a GIF's first frame
            opened.load()
            im: Image.Image = opened
            if im.mode.startswith("I"):  # 16/32-bit integer grey
                im = Image.fromarray((np.asarray(im, np.uint32) >> 8).clip(0, 255).astype(np.uint8))
            if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                rgba = im.convert("RGBA")
                im = Image.alpha_composite(Image.new("RGBA", im.size, (0, 0, 0, 255)), rgba)
            im = im.convert("L" if color == "grey" else "RGB")
            if size is not None:  # shorter side to `size`, then the centre square
                im = ImageOps.fit(im, (size, size), Image.Resampling.LANCZOS)
            a = np.asarray(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        what = "unreadable" if isinstance(e, PermissionError) else "corrupt or not a picture"
        return f"{what} ({str(e)[:60]})"
    if color is None and (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all():
        return a[..., 0].copy()
    return a


def _decode_all(
    root: Path, listing: Listing, size: int | None, color: str | None
) -> list[np.ndarray | str]:
    paths = [str(root / rel) for rel, _, _ in listing]
    decode = partial(_to_array, size=size, color=color)
    workers = len(os.sched_getaffinity(0))
    if len(paths) < 500 or workers < 2:  # a process pool costs more than it saves
        return list(map(decode, paths))
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(decode, paths, chunksize=256))


def _stack(pictures: list[np.ndarray], size: int | None, root: Path) -> np.ndarray:
    """(N, C, H, W): grey pictures repeat to RGB when any is colour; sizes must agree."""
    shapes = Counter(p.shape[:2] for p in pictures)
    if size is None and list(shapes) not in ([(s, s)] for s in SIZES):
        found = ", ".join(f"{h}x{w} ({n})" for (h, w), n in shapes.most_common(4))
        raise DataError(
            f"{root}: pictures are {found}, not one size of {'/'.join(map(str, SIZES))}; "
            "pass --image-size 28, 32 or 64 (shorter side resized, centre cropped)"
        )
    rgb = any(p.ndim == 3 for p in pictures)
    out = [np.repeat(p[..., None], 3, 2) if rgb and p.ndim == 2 else p for p in pictures]
    x = np.stack(out)  # (N, H, W) or (N, H, W, 3)
    return x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2).copy()


def _labels(root: Path, rels: list[str]) -> tuple[bool, list[str], np.ndarray]:
    """(train/ + test/ given, class names, labels): a picture's label is its first folder below
    the root (below train/ or test/ when split), names sorted; no names: a flat folder."""
    parts = [Path(rel).parts for rel in rels]
    split = {p[0] for p in parts} == {"train", "test"}
    parts = [p[1:] if split else p for p in parts]
    labelled = all(len(p) > 1 for p in parts)
    if not labelled and any(len(p) > 1 for p in parts):
        raise DataError(
            f"{root}: pictures both in sub-folders and at the top; use class sub-folders only "
            "(labelled) or a flat folder (unlabelled)"
        )
    classes = sorted({p[0] for p in parts}) if labelled else []
    if len(classes) > 256:
        raise DataError(f"{root}: {len(classes)} class folders; vaelab handles at most 256")
    y = np.array([classes.index(p[0]) for p in parts] if labelled else [0] * len(parts), np.uint8)
    return split, classes, y


def _split_indices(
    rels: list[str], split: bool, say: Callable[[str], None]
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: the train/ and test/ folders when given, else a seeded 1 in
    TEST_EVERY; each shuffled with SPLIT_SEED and stated."""
    rng = np.random.default_rng(SPLIT_SEED)
    if split:
        is_test = np.array([rel.split(os.sep)[0] == "test" for rel in rels])
        train = rng.permutation(np.flatnonzero(~is_test))
        test = rng.permutation(np.flatnonzero(is_test))
        say(f"splits: train/ {len(train)}, test/ {len(test)} pictures")
        return train, test
    perm = rng.permutation(len(rels))
    test, train = perm[: len(rels) // TEST_EVERY], perm[len(rels) // TEST_EVERY :]
    say(
        f"no train/ + test/ folders: a seeded 1 in {TEST_EVERY} ({len(test)}) of the "
        f"{len(rels)} pictures is the test split, {len(train)} train"
    )
    return train, test


def import_folder(
    root: str | Path,
    listing: Listing,
    skipped: list[tuple[str, str]],
    *,
    image_size: int | None = None,
    color: str | None = None,
    say: Callable[[str], None] = lambda msg: None,
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Decode the listed pictures; (the four IDX files, the manifest's `folder` entry). Labels as
    `_labels` finds them; a flat folder is unlabelled and stores empty label arrays."""
    root = Path(root)
    say(f"importing {len(listing)} pictures from {root} (once; cached)")
    kept: list[tuple[str, np.ndarray]] = []
    skipped = list(skipped)
    for (rel, _, _), a in zip(listing, _decode_all(root, listing, image_size, color), strict=True):
        if isinstance(a, str):
            skipped.append((rel, a))
        else:
            kept.append((rel, a))
    if not kept:
        raise DataError(f"{root}: none of {len(listing)} pictures could be read: {skipped[0][1]}")
    rels = [rel for rel, _ in kept]
    split, classes, y = _labels(root, rels)
    x = _stack([a for _, a in kept], image_size, root)
    train, test = _split_indices(rels, split, say)
    if skipped:
        reasons = Counter(why.split(" (")[0] for _, why in skipped)
        say(
            f"skipped {len(skipped)} files: "
            + "; ".join(f"{n} {r}" for r, n in reasons.items())
            + f" (first: {skipped[0][0]}: {skipped[0][1]})"
        )
    small = [classes[c] for c, n in Counter(y.tolist()).items() if n < 2] if classes else []
    if small:
        say(f"note: class folder(s) {', '.join(small)} hold a single picture")
    no_labels = np.zeros(0, np.uint8)
    halves = [(x[i], y[i] if classes else no_labels) for i in (train, test)]
    files = dict(zip(FILES, [encode_idx(a) for half in halves for a in half], strict=True))
    meta = {
        "root": str(root.resolve()),
        "settings": {"image_size": image_size, "color": color},
        "classes": classes,
        "labelled": bool(classes),
        "listing": listing,
        "skipped": skipped,
    }
    return files, meta
