"""The explorer's state and actions: the runs to show, their models, the test images, each run's
2-D latent map (a PCA of its test codes) and most informative dimensions, the classifier.

study.json, DONE, the checkpoints and config.json are read through the validated readers of
`vaelab.study.schema` and `vaelab.train.checkpoint`, so a damaged folder is refused with one line
before the server starts. Actions take a run index and tensors `server` has checked and return
JSON-ready dicts; model calls hold one lock (the server is threaded; PyTorch modules are not meant
to be called concurrently) and run under `torch.inference_mode`.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from vaelab import models
from vaelab.config import TrainConfig
from vaelab.data import load_arrays
from vaelab.data.store import split_arrays
from vaelab.distributions import DiagonalGaussian
from vaelab.errors import ConfigError, RunError
from vaelab.evaluate import classifier as clf
from vaelab.evaluate.interpolation import interpolate
from vaelab.runtime import resolve_device, stream_seed
from vaelab.study.schema import REBUILD, load_study
from vaelab.train.checkpoint import load_model, read_done

MAX_RUNS = 8  # side by side beyond this the panels are too narrow to read
FASHION_CLASSES = (
    "T-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "boot",
)  # fmt: skip
INK = 0.05  # pixels above this count as ink when finding the bounding box


class FoundRuns(NamedTuple):
    dirs: list[Path]  # run directories, each with checkpoints/best.pt, in display order
    classifier: str | None  # the reference classifier a study recorded (None: no study said)


def _is_run(path: Path) -> bool:
    return (path / "checkpoints" / "best.pt").is_file()


def find_runs(paths: list[str | Path]) -> FoundRuns:
    """Resolve command-line paths to run directories. A study directory stands for the AE and
    tuned VAE of its study.json, or (unfinished) for every finished run under its runs/."""
    dirs: list[Path] = []
    variant = None
    for raw in paths:
        path = Path(raw)
        if _is_run(path):
            found = [path]
        elif not ((path / "study.json").is_file() or (path / "runs").is_dir()):
            raise RunError(
                f"{path} is neither a run directory (checkpoints/best.pt) nor a study directory "
                "(study.json or runs/); train a run or run `vaelab study` first"
            )
        elif (path / "study.json").exists():
            result = load_study(path / "study.json")
            for name in ("ae", result.tuned):
                if name not in result.runs or not _is_run(path / result.runs[name].dir):
                    where = path / "study.json"
                    raise RunError(f"{where} names run '{name}', which {path} lacks; {REBUILD}")
            found = [path / result.runs[name].dir for name in ("ae", result.tuned)]
            variant = result.classifier.variant
        else:
            variant = None  # no study said which classifier
            runs = (path / "runs").glob("*")
            found = sorted(d for d in runs if (d / "DONE").is_file() and _is_run(d))
            for d in found:
                read_done(d)  # a damaged DONE is refused here, not halfway through serving
            if not found:
                raise RunError(
                    f"study {path} has no finished runs yet; let `vaelab study --out {path}` "
                    "finish a stage first"
                )
        dirs += [d for d in found if d.resolve() not in {x.resolve() for x in dirs}]
    if len(dirs) > MAX_RUNS:
        names = ", ".join(str(d) for d in dirs)
        raise ConfigError(
            f"explore shows at most {MAX_RUNS} runs side by side, got {len(dirs)} ({names}); "
            "name the run directories you want"
        )
    return FoundRuns(dirs, variant)


@dataclass
class LatentMap:
    """A 2-D view of nz-dimensional codes: xy = (z − mean) · basis, and back z = mean + basis · xy.

    For nz = 2 the basis is the identity and the mean zero, so map coordinates are the codes.
    A map point decodes to the code on the plane through the mean of the test codes spanned by the
    two leading principal axes (the other nz − 2 coordinates sit at their test mean)."""

    mean: torch.Tensor  # (nz,)
    basis: torch.Tensor  # (nz, 2), orthonormal columns
    explained: tuple[float, float]
    """Share of the test codes' variance along each axis (1, 0 for nz = 1; exact when nz = 2)."""
    exact: bool

    def to_map(self, z: torch.Tensor) -> torch.Tensor:
        """(B, nz) codes → (B, 2) map coordinates."""
        return (z.detach().double().cpu() - self.mean) @ self.basis

    def to_code(self, xy: torch.Tensor) -> torch.Tensor:
        """(B, 2) map coordinates → (B, nz) codes (float32)."""
        return (self.mean + xy.double() @ self.basis.T).float()


def fit_map(mu: torch.Tensor) -> LatentMap:
    """PCA of codes μ (N, nz); axis signs fixed so the same codes always give the same picture."""
    mu = mu.double().cpu()
    nz = mu.shape[1]
    if nz <= 2:
        basis = torch.eye(nz, 2, dtype=torch.float64)
        var = mu.var(0) if len(mu) > 1 else torch.ones(nz, dtype=torch.float64)
        shares = [*(var / var.sum().clamp_min(1e-300)).tolist(), 0.0]
        return LatentMap(torch.zeros(nz, dtype=torch.float64), basis, (shares[0], shares[1]), True)
    mean = mu.mean(0)
    _, s, vh = torch.linalg.svd(mu - mean, full_matrices=False)
    basis = vh[:2].T.clone()  # (nz, 2)
    flip = torch.sign(basis.gather(0, basis.abs().argmax(0, keepdim=True)))
    basis *= torch.where(flip == 0, 1.0, flip)
    total = s.pow(2).sum().clamp_min(1e-300)
    explained = (float(s[0] ** 2 / total), float(s[1] ** 2 / total))
    return LatentMap(mean, basis, explained, False)


def informative_dims(
    mu: torch.Tensor, posterior: DiagonalGaussian | None, k: int
) -> tuple[str, list[dict[str, float]]]:
    """The k dimensions that carry the most: (score name, {index, score, lo, hi} by decreasing
    score). A VAE's score is its mean KL per image in nats, the information its posterior carries
    about the image (collapsed dims have KL ≈ 0 whatever their μ spread); an AE has no posterior,
    so the variance of its codes along each dimension stands in. [lo, hi] is the slider range:
    the test codes' mean ± 3 standard deviations, widened to their min/max."""
    mu = mu.double().cpu()
    if posterior is not None:
        name, score = "KL (nats)", posterior.to("cpu", torch.float64).kl_per_dim().mean(0)
    else:
        name, score = "variance of μ", mu.var(0)
    order = torch.argsort(score, descending=True)[: min(k, mu.shape[1])]
    mean, std = mu.mean(0), mu.std(0)
    lo = torch.minimum(mean - 3 * std, mu.min(0).values)
    hi = torch.maximum(mean + 3 * std, mu.max(0).values)
    dims = [
        {"index": int(d), "score": float(score[d]), "lo": float(lo[d]), "hi": float(hi[d])}
        for d in order
    ]
    return name, dims


def center_like_mnist(x: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) in [0, 1] → the drawing preprocessed as MNIST digits were (LeCun et al.):
    its bounding box scaled to 20×20 of 28×28 (aspect kept, same proportions for other sizes),
    its centre of mass at the centre. A small, off-centre drawing otherwise lands far from the
    test codes for reasons that have nothing to do with its shape. An empty one is unchanged."""
    h, w = x.shape[2:]
    ink = x[0].mean(0)  # (H, W)
    rows = torch.nonzero(ink.amax(1) > INK).flatten()
    cols = torch.nonzero(ink.amax(0) > INK).flatten()
    if len(rows) == 0:
        return x
    crop = x[:, :, int(rows[0]) : int(rows[-1]) + 1, int(cols[0]) : int(cols[-1]) + 1]
    scale = round(20 / 28 * min(h, w)) / max(crop.shape[2:])  # the longer side fills the box
    size = (max(1, round(crop.shape[2] * scale)), max(1, round(crop.shape[3] * scale)))
    small = F.interpolate(crop, size=size, mode="bilinear", antialias=True, align_corners=False)
    small = small.clamp(0, 1)  # (1, C, h', w')
    mass = small[0].mean(0)
    total = mass.sum().clamp_min(1e-12)
    cy = float((mass.sum(1) * torch.arange(size[0], dtype=mass.dtype)).sum() / total)
    cx = float((mass.sum(0) * torch.arange(size[1], dtype=mass.dtype)).sum() / total)
    # MNIST's centres of mass sit at pixel index ≈ 14 (= H/2), measured on its test set.
    top = min(max(round(h / 2 - cy), 0), h - size[0])
    left = min(max(round(w / 2 - cx), 0), w - size[1])
    out = torch.zeros_like(x)
    out[:, :, top : top + size[0], left : left + size[1]] = small
    return out


class LoadedRun(NamedTuple):
    model: models.AutoEncoder
    latent_map: LatentMap
    codes: torch.Tensor  # μ of the map's test images (N, nz), on the model's device
    about: dict[str, Any]  # its entry in /api/runs, less its id


def _load_run(
    path: Path,
    name: str,
    model: models.AutoEncoder,
    cfg: TrainConfig,
    x: torch.Tensor,
    sliders: int,
) -> LoadedRun:
    """The run's codes of the test images x, its latent map and slider dimensions."""
    if tuple(model.image_shape) != tuple(x.shape[1:]):
        raise ConfigError(
            f"{path} was trained on {model.image_shape} images but its dataset's test images "
            f"are {tuple(x.shape[1:])}; was the data folder changed?"
        )
    with torch.inference_mode():
        codes, posterior = models.codes(model, x)
        score, dims = informative_dims(codes, posterior, sliders)
        latent_map = fit_map(codes)
    about = {
        "name": name,
        "path": str(path),
        "kind": f"VAE β={cfg.beta:g}" if model.is_vae else "AE",
        "model": cfg.model,
        "beta": cfg.beta if model.is_vae else None,
        "latent_dim": model.latent_dim,
        "map": {"explained": list(latent_map.explained), "exact": latent_map.exact},
        "dim_score": score,
        "dims": dims,
    }
    return LoadedRun(model, latent_map, codes, about)


def encode_images(x: torch.Tensor) -> list[str]:
    """(B, C, H, W) in [0, 1] → base64 of each image's uint8 bytes (channel-first, row-major)."""
    b = (x.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
    return [base64.b64encode(img.tobytes()).decode("ascii") for img in b]


def _round(a: torch.Tensor | np.ndarray, digits: int = 4) -> list:
    return np.round(np.asarray(torch.as_tensor(a).detach().cpu().double()), digits).tolist()


@dataclass
class Explorer:
    runs: list[LoadedRun]
    images: torch.Tensor  # (N, C, H, W) in [0, 1] on `device`: the map's test images
    labels: torch.Tensor  # (N,) int64 on the CPU
    classifier: clf.LeNet
    info: dict[str, Any]  # the answer to /api/runs
    device: torch.device
    lock: threading.Lock = field(default_factory=threading.Lock)

    def map_points(self, run: int) -> dict[str, Any]:
        xy = self.runs[run].latent_map.to_map(self.runs[run].codes)
        return {"x": _round(xy[:, 0]), "y": _round(xy[:, 1]), "labels": self.labels.tolist()}

    def code_of_image(self, run: int, x: torch.Tensor) -> torch.Tensor:
        with self.lock, torch.inference_mode():
            return self.runs[run].model.encode(x.to(self.device))[0]

    def _decodes(self, run: int, z: torch.Tensor, shown: torch.Tensor | None = None) -> dict:
        """Codes (B, nz) → images, map points and classifier readings (of the `shown` images, then
        the decoded ones)."""
        with self.lock, torch.inference_mode():
            imgs = torch.sigmoid(self.runs[run].model.decode(z.float().to(self.device)))
            seen = imgs if shown is None else torch.cat([shown.to(self.device), imgs])
            probs = clf.classify(self.classifier, seen)[1]
            return {
                "images": encode_images(imgs),
                "readings": [
                    {"label": int(p.argmax()), "confidence": round(float(p.max()), 4)}
                    for p in probs
                ],
                "points": _round(self.runs[run].latent_map.to_map(z.view(-1, z.shape[-1]))),
            }

    def decode(self, run: int, z: torch.Tensor) -> dict[str, Any]:
        t0 = time.perf_counter()
        out = self._decodes(run, z.view(1, -1))
        return {
            "image": out["images"][0],
            "reading": out["readings"][0],
            "point": out["points"][0],
            "server_ms": round((time.perf_counter() - t0) * 1000, 3),
        }

    def test_image(self, run: int, index: int) -> dict[str, Any]:
        x, z = self.images[index : index + 1], self.runs[run].codes[index]
        out = self._decodes(run, z.view(1, -1), x)
        return {
            "index": index,
            "label": int(self.labels[index]),
            "image": encode_images(x)[0],
            "reconstruction": out["images"][0],
            "readings": out["readings"],
            "code": _round(z),
            "point": out["points"][0],
        }

    def interpolate(self, run: int, a: torch.Tensor, b: torch.Tensor, steps: int) -> dict[str, Any]:
        """Decoded lerp and slerp paths a → b (steps interior codes, ends included)."""
        out: dict[str, Any] = {}
        for mode in ("lerp", "slerp"):
            z = interpolate(a.double().cpu(), b.double().cpu(), steps, mode)
            out[mode] = {**self._decodes(run, z), "norms": _round(z.norm(dim=1), 3)}
        return out

    def samples(self, run: int, n: int, seed: int) -> dict[str, Any]:
        """n decodes of z ~ N(0, I), seeded as `vaelab sample` is (same seed, same images)."""
        g = torch.Generator(device="cpu").manual_seed(stream_seed(seed, "user_samples"))
        return self._decodes(run, torch.randn(n, self.runs[run].model.latent_dim, generator=g))

    def encode(self, run: int, x: torch.Tensor, center: bool) -> dict[str, Any]:
        """A drawn image (1, C, H, W): what the model sees, its code, map point, reconstruction."""
        seen = center_like_mnist(x) if center else x
        z = self.code_of_image(run, seen)
        out = self._decodes(run, z.view(1, -1), seen)
        return {
            "input": encode_images(seen)[0],
            "reconstruction": out["images"][0],
            "input_reading": out["readings"][0],
            "reconstruction_reading": out["readings"][1],
            "code": _round(z),
            "point": out["points"][0],
        }


def load_explorer(
    run_dirs: list[Path],
    *,
    classifier: str = "standard",
    device: str = "auto",
    map_points: int = 2000,
    sliders: int = 8,
    log: Callable[[str], None] | None = None,
) -> Explorer:
    """Load every run, the first `map_points` test images of their dataset, and the classifier."""
    if classifier not in clf.VARIANTS:
        raise ConfigError(
            f"invalid explore option 'classifier': {classifier!r} is not one of "
            f"{', '.join(clf.VARIANTS)}"
        )
    dev = resolve_device(device)
    loaded = [load_model(d, "best", dev) for d in run_dirs]  # checked against their run folders
    datasets = {(cfg.dataset, cfg.data_dir, cfg.image_size, cfg.color) for _, cfg in loaded}
    if len(datasets) > 1:
        found = ", ".join(sorted(f"{d}" + (f" ({p})" if p else "") for d, p, *_ in datasets))
        raise ConfigError(
            f"the runs use different datasets ({found}); explore runs of one dataset together"
        )
    spec = datasets.pop()
    x8, y = split_arrays(load_arrays(*spec), "test")
    x = torch.from_numpy(x8[:map_points]).to(dev).float() / 255.0  # (N, C, H, W)
    names = [d.name for d in run_dirs]
    if len(set(names)) < len(names):  # same-named runs of different folders: show the paths
        names = [str(d) for d in run_dirs]
    runs = []
    for path, name, (model, cfg) in zip(run_dirs, names, loaded, strict=True):
        if log:
            log(f"loading {path}")
        runs.append(_load_run(path, name, model, cfg, x, sliders))
    model, meta = clf.reference_classifier(*spec, variant=classifier, device=dev, log=log)
    info = {
        "dataset": spec[0],
        "class_names": list(FASHION_CLASSES) if spec[0] == "fashion-mnist" else None,
        "image_shape": list(x.shape[1:]),
        "test_images": len(x),
        "classifier": {k: meta.get(k) for k in ("variant", "test_accuracy", "dataset")},
        "runs": [{"id": i, **r.about} for i, r in enumerate(runs)],
    }
    return Explorer(runs, x, torch.from_numpy(y[:map_points]), model, info, dev)
