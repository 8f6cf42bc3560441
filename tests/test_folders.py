"""`--dataset folder`: picture folders read back exactly, cached, re-imported on change, and every
bad folder answered in one line."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.needs import need
from vaelab.data import folder, sources, store
from vaelab.data.sources import FILES, decode_idx
from vaelab.errors import DataError


def _fetch(path: Path, **options) -> tuple[dict, list[str]]:
    lines: list[str] = []
    return store.fetch("folder", path, log=lines.append, **options), lines


def _arrays(path: Path, **options) -> dict[str, np.ndarray]:
    store._VERIFIED.clear()  # a new process: load_arrays checks the folder again
    return store.load_arrays("folder", path, options.get("image_size"), options.get("color"))


def _save(path: Path, a: np.ndarray, mode: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (Image.fromarray(a, mode) if mode else Image.fromarray(a)).save(path, **kw)
    return path


def _grey(seed: int = 0, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)


def _rows(x: np.ndarray, y: np.ndarray) -> list[bytes]:
    """Each (label, image) as bytes, sorted: equal lists mean equal sets, whatever the order."""
    return sorted(bytes([int(lab)]) + img.tobytes() for img, lab in zip(x, y, strict=True))


def test_fashion_mnist_png_class_folders_read_back_equal(tmp_path: Path) -> None:
    need(sources.FASHION_DEBIAN_DIR.is_dir(), "install the Debian package dataset-fashion-mnist")
    files = sources.from_directory(sources.FASHION_DEBIAN_DIR)
    arrays = {n: decode_idx(files[n]) for n in FILES}
    keep = {"train": 1200, "test": 300}  # over the process-pool threshold, quick on 2 cores
    idx = {"train": (FILES[0], FILES[1]), "test": (FILES[2], FILES[3])}
    for split, (xi, yi) in idx.items():
        for i in range(keep[split]):
            label = int(arrays[yi][i])
            _save(tmp_path / "f" / split / f"class{label}" / f"{i:05d}.png", arrays[xi][i])
    got, lines = _fetch(tmp_path / "f")
    assert got["folder"]["classes"] == [f"class{k}" for k in range(10)]
    assert any("train/ 1200, test/ 300" in line for line in lines)
    loaded = _arrays(tmp_path / "f")
    for split, (xi, yi) in idx.items():
        x, y = (
            loaded[FILES[0 if split == "train" else 2]],
            loaded[FILES[1 if split == "train" else 3]],
        )
        assert x.shape == (keep[split], 1, 28, 28)
        assert _rows(x[:, 0], y) == _rows(arrays[xi][: keep[split]], arrays[yi][: keep[split]])


def test_cache_reused_and_changed_folder_reimported(tmp_path: Path) -> None:
    for i in range(14):
        _save(tmp_path / "p" / ("a" if i % 2 else "b") / f"{i}.png", _grey(i))
    first, lines = _fetch(tmp_path / "p")
    assert any("seeded 1 in 7 (2) of the 14 pictures" in line for line in lines)
    again, lines = _fetch(tmp_path / "p")
    assert lines == [] and again == first  # reused, nothing decoded
    _save(tmp_path / "p" / "a" / "new.png", _grey(99))
    changed, lines = _fetch(tmp_path / "p")
    assert any("changed since its import" in line for line in lines)
    assert len(changed["folder"]["listing"]) == 15
    x, _ = store.split_arrays(_arrays(tmp_path / "p"), "train+val")
    assert len(x) + len(store.split_arrays(_arrays(tmp_path / "p"), "test")[0]) == 15
    # a damaged cache is rebuilt from the folder, never used
    cache = store.cache_dir(store.resolve_spec("folder", tmp_path / "p"))
    (cache / FILES[0]).write_bytes(b"damaged")
    assert len(_arrays(tmp_path / "p")[FILES[0]]) == 13


def test_flat_folder_is_unlabelled_and_label_users_say_so(tmp_path: Path) -> None:
    listing, skipped = folder.scan(_save(tmp_path / "flat" / "0.png", _grey()).parent)
    for i in range(1, 8):
        _save(tmp_path / "flat" / f"{i}.png", _grey(i))
    listing, skipped = folder.scan(tmp_path / "flat")
    files, meta = folder.import_folder(tmp_path / "flat", listing, skipped)
    assert meta["labelled"] is False and meta["classes"] == []
    assert len(decode_idx(files[FILES[1]])) == 0  # no labels stored
    x, y = store.split_arrays(_arrays(tmp_path / "flat"), "train")
    assert (y == store.UNLABELLED).all() and len(y) == len(x)
    from vaelab.evaluate.classifier import reference_classifier

    with pytest.raises(DataError, match=r"without labels.*need class sub-folders") as e:
        reference_classifier("folder", str(tmp_path / "flat"))
    assert "\n" not in str(e.value)


def test_data_info_on_a_flat_folder_says_it_is_unlabelled(tmp_path: Path, capsys) -> None:
    from vaelab.cli import main

    for i in range(14):
        _save(tmp_path / "flat" / f"{i}.png", _grey(i, (32, 32)))
    assert main(["data", "info", "--dataset", "folder", "--data-dir", str(tmp_path / "flat")]) == 0
    out = capsys.readouterr().out
    assert "1x32x32 pixels, label counts none (a flat folder" in out and "[0, 0" not in out
    info = store.info("folder", tmp_path / "flat")
    assert info["splits"]["train"]["label_counts"] == [] and info["splits"]["test"]["count"] == 2


def test_data_info_counts_a_folders_own_classes(tmp_path: Path, capsys) -> None:
    """Three class folders give three counts per split (not ten, as digits), named in order."""
    from vaelab.cli import main

    sizes = {"cat": 9, "dog": 6, "owl": 3}
    for name, n in sizes.items():
        for i in range(n):
            _save(tmp_path / "pets" / "train" / name / f"{i}.png", _grey(i))
        _save(tmp_path / "pets" / "test" / name / "0.png", _grey(50))
    info = store.info("folder", tmp_path / "pets")
    assert info["classes"] == ["cat", "dog", "owl"]
    assert info["splits"]["test"]["label_counts"] == [1, 1, 1]
    assert info["splits"]["train+val"]["label_counts"] == [9, 6, 3]
    assert main(["data", "info", "--dataset", "folder", "--data-dir", str(tmp_path / "pets")]) == 0
    assert "classes (label order): cat, dog, owl" in capsys.readouterr().out


def test_default_study_keeps_its_optimizer_steps_on_a_small_folder(tmp_path: Path) -> None:
    """The default preset's epochs are for 50,000 training images; a folder of fewer gets more
    epochs (the same steps), except where the caller set them; MNIST's stay as written."""
    from vaelab.study import make_config
    from vaelab.study.presets import PRESETS, STEP_BUDGET_IMAGES

    for i in range(98):
        _save(tmp_path / "p" / ("a" if i % 2 else "b") / f"{i}.png", _grey(i))
    x, _ = store.split_arrays(_arrays(tmp_path / "p"), "train")
    ratio = round(STEP_BUDGET_IMAGES / len(x))
    d = PRESETS["default"]
    cfg = make_config("default", dataset="folder", data_dir=str(tmp_path / "p"), ae_epochs=5)
    assert cfg.ae_epochs == 5  # given: kept
    assert (cfg.extreme_epochs, cfg.tuned_epochs) == (
        d["extreme_epochs"] * ratio,
        d["tuned_epochs"] * ratio,
    )
    assert cfg.trial_epochs == d["trial_epochs"] * round(d["trial_limit_train"] / len(x))
    mnist = make_config("default")
    assert (mnist.ae_epochs, mnist.tuned_epochs, mnist.trial_epochs) == (4, 6, 1)
    assert make_config("course", dataset="folder", data_dir=str(tmp_path / "p")).ae_epochs == 10


def _bad_folders(root: Path) -> dict[str, tuple[Path, dict, str]]:
    """name: (folder, import options, what its one line says)."""
    out = {}
    (root / "empty").mkdir()
    out["empty folder"] = (root / "empty", {}, "holds no pictures")
    (root / "text").mkdir()
    (root / "text" / "readme.md").write_text("no pictures")
    out["no images"] = (root / "text", {}, r"holds no pictures \(1 other files\)")
    d = root / "mixed-sizes"
    _save(d / "a.png", _grey(0, (28, 28)))
    _save(d / "b.png", _grey(1, (40, 30)))
    out["mixed sizes"] = (d, {}, "pass --image-size 28, 32 or 64")
    d = root / "odd-size"
    _save(d / "a.png", _grey(0, (50, 50)))
    out["unsupported own size"] = (d, {}, "50x50 .*pass --image-size")
    d = root / "loose-and-folders"
    _save(d / "a.png", _grey(0))
    _save(d / "cls" / "b.png", _grey(1))
    out["pictures beside class folders"] = (d, {}, "both in sub-folders and at the top")
    d = root / "all-corrupt"
    d.mkdir()
    (d / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out["only corrupt files"] = (d, {}, "none of 1 pictures could be read")
    out["no such folder"] = (root / "missing", {}, "no such folder")
    return out


def test_bad_folders_give_one_line(tmp_path: Path) -> None:
    for name, (path, options, says) in _bad_folders(tmp_path).items():
        with pytest.raises(DataError, match=says) as e:
            _fetch(path, **options)
        assert "\n" not in str(e.value), name


def test_odd_pictures_are_imported_or_skipped_with_their_reason(tmp_path: Path) -> None:
    d = tmp_path / "odd"
    g = _grey(0)
    _save(d / "a" / "grey.png", g)
    _save(d / "a" / "sixteen.png", g.astype(np.uint16) * 257)  # 16-bit grey
    Image.fromarray(g, "L").convert("P").save(d / "a" / "palette.png")
    Image.fromarray(np.stack([g] * 4, -1), "CMYK").save(d / "a" / "cmyk.jpg", quality=100)
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 255, 0  # white but fully transparent: black after compositing
    _save(d / "a" / "clear.png", rgba, "RGBA")
    _save(d / "a" / "frames.gif", g)
    _save(d / "b" / "only.webp", g, lossless=True)
    (d / "a" / "notes.txt").write_text("x")
    (d / "a" / "cut.png").write_bytes(_save(d / "c.png", g).read_bytes()[:60])
    (d / "c.png").unlink()
    (d / "a" / "loop").symlink_to(d / "a", target_is_directory=True)
    if os.getuid() != 0:  # root reads every file, whatever its mode
        _save(d / "a" / "locked.png", g).chmod(0)
    manifest, lines = _fetch(d, color="grey")
    x = np.concatenate([_arrays(d, color="grey")[FILES[i]] for i in (0, 2)])
    assert x.shape[1:] == (1, 28, 28)
    assert len(x) == 7  # grey, 16-bit, palette, CMYK, transparent, GIF, WebP
    skipped = dict(map(tuple, manifest["folder"]["skipped"]))
    assert skipped["a/notes.txt"].startswith("not a picture")
    assert skipped["a/cut.png"].startswith("corrupt")
    assert any("link loop" in why for why in skipped.values())
    if os.getuid() != 0:
        assert skipped["a/locked.png"].startswith("unreadable")
    assert any(line.startswith("skipped ") for line in lines)
    assert any("b hold a single picture" in line for line in lines)
    rows = [img.tobytes() for img in x[:, 0]]
    assert rows.count(g.tobytes()) >= 3  # grey, 16-bit (top byte) and palette: exact
    assert np.zeros((28, 28), np.uint8).tobytes() in rows  # transparent: black


def test_mixed_modes_become_rgb_and_sizes_fit(tmp_path: Path) -> None:
    d = tmp_path / "mixed"
    _save(d / "grey.png", _grey(0, (40, 60)))
    _save(d / "rgb.png", np.random.default_rng(1).integers(0, 256, (64, 48, 3), dtype=np.uint8))
    _fetch(d, image_size=32)
    x = np.concatenate([_arrays(d, image_size=32)[FILES[i]] for i in (0, 2)])
    assert x.shape == (2, 3, 32, 32)
    greyish = [img for img in x if (img[0] == img[1]).all() and (img[1] == img[2]).all()]
    assert len(greyish) == 1  # the grey picture, repeated into three equal channels


@pytest.mark.slow
def test_many_tiny_files(tmp_path: Path) -> None:
    """100,000 one-pixel pictures: listed, decoded in parallel, refused in one line (their size
    is none of 28, 32, 64), without running out of anything."""
    d = tmp_path / "tiny"
    png = _save(tmp_path / "one.png", np.zeros((1, 1), np.uint8)).read_bytes()
    for k in range(100):
        sub = d / f"{k:03d}"
        sub.mkdir(parents=True)
        for i in range(1000):
            (sub / f"{i}.png").write_bytes(png)
    with pytest.raises(DataError, match=r"1x1 \(100000\).*--image-size") as e:
        _fetch(d)
    assert "\n" not in str(e.value)


def test_three_class_folder_scales_the_class_entropy_threshold(tmp_path: Path) -> None:
    """Sample class entropy is judged against the same share of the uniform entropy ln K for a
    folder of K = 3 classes (2.0 × ln 3 / ln 10 ≈ 0.954 nats), and the criterion says so; ten
    classes keep the setting exactly."""
    from vaelab.study.presets import make_config
    from vaelab.study.runs import RunBook
    from vaelab.study.search import BetaSearch
    from vaelab.tune.halving import class_entropy_threshold, criterion_text

    for split, n in (("train", 4), ("test", 2)):
        for k in range(3):
            for i in range(n):
                _save(tmp_path / "f" / split / f"kind{k}" / f"{i}.png", _grey(10 * k + i))
    _arrays(tmp_path / "f")
    cfg = make_config(
        "smoke", dataset="folder", data_dir=str(tmp_path / "f"), out=str(tmp_path / "study")
    )
    assert cfg.min_class_entropy == 2.0
    assert BetaSearch(RunBook(cfg)).min_class_entropy == pytest.approx(0.95424, abs=1e-5)
    counts = store.info("folder", str(tmp_path / "f"))["splits"]["train"]["label_counts"]
    assert sum(1 for n in counts if n) == 3  # what the report counts (StudyResult.classes)
    text = criterion_text(0.8, 2.0, classes=3)
    assert "≥ 0.95 nats = 2.00 × ln 3 / ln 10" in text and "ln 10 ≈ 2.30 being" not in text
    assert class_entropy_threshold(2.3, 10) == 2.3  # MNIST: unchanged
    assert "ln 10 ≈ 2.30 being uniform" in criterion_text(0.8, 2.0)
