"""Picture-folder import: 60,000 PNGs (28×28, Fashion-MNIST's training images in class folders)
imported once into the cache, then reloaded from it. Targets on 2 cores: import ≤ 60 s, reload
≤ 1 s (a reload re-lists the folder, re-hashes the cached arrays and parses them)."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from PIL import Image

from vaelab.data import sources, store
from vaelab.data.sources import decode_idx


def run(limit: int = 60_000) -> dict[str, float]:
    files = sources.from_directory(sources.FASHION_DEBIAN_DIR)
    x = decode_idx(files[sources.TRAIN_IMAGES])[:limit]
    y = decode_idx(files[sources.TRAIN_LABELS])[:limit]
    with tempfile.TemporaryDirectory(prefix="vaelab-bench-folder-") as tmp:
        os.environ["VAELAB_HOME"] = str(Path(tmp) / "home")
        pics = Path(tmp) / "pics"
        for k in range(10):
            (pics / f"class{k}").mkdir(parents=True)
        for i, (img, lab) in enumerate(zip(x, y, strict=True)):
            Image.fromarray(img).save(pics / f"class{lab}" / f"{i:05d}.png")
        t0 = time.perf_counter()
        store.fetch("folder", pics)
        imported = time.perf_counter() - t0
        store._VERIFIED.clear()  # as a new process would: list, verify, parse
        t0 = time.perf_counter()
        store.load_arrays("folder", pics)
        reloaded = time.perf_counter() - t0
    print(f"\n## picture folder ({limit} PNGs, {len(os.sched_getaffinity(0))} cores)")
    print(f"import {imported:.1f} s (target <= 60 s)   reload from cache {reloaded:.2f} s (<= 1 s)")
    return {"import_s": imported, "reload_s": reloaded}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--limit", type=int, default=60_000, help="pictures to import")
    run(p.parse_args().limit)
