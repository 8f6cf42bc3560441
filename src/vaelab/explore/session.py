"""The explorer's state and actions: models, test images, latent maps and the reference classifier.

Every action takes a run index and plain tensors that `api` has already checked, and returns
a JSON-ready dict. Model calls hold one lock (the server is threaded and PyTorch modules are not
meant to be called concurrently) and run under `torch.inference_mode`.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab import models
from vaelab.config import TrainConfig
from vaelab.data import load_arrays
from vaelab.data.store import split_arrays
from vaelab.errors import ConfigError
from vaelab.evaluate import classifier as clf
from vaelab.evaluate.interpolation import interpolate
from vaelab.explore.drawing import center_like_mnist
from vaelab.explore.latent import LatentDim, LatentMap, fit_map, informative_dims
from vaelab.models import AutoEncoder
from vaelab.runtime import resolve_device, stream_seed
from vaelab.train.checkpoint import load_model

FASHION_CLASSES = (
    "T-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "boot",
)  # fmt: skip


@dataclass
class LoadedRun:
    name: str
    path: Path
    model: AutoEncoder
    cfg: TrainConfig
    latent_map: LatentMap
    codes: torch.Tensor
    """μ of the map's test images (N, nz), on the model's device."""
    dim_score: str
    dims: list[LatentDim]

    @property
    def kind(self) -> str:
        return f"VAE β={self.cfg.beta:g}" if self.model.is_vae else "AE"


def encode_images(x: torch.Tensor) -> list[str]:
    """(B, C, H, W) in [0, 1] → base64 of each image's uint8 bytes (channel-first, row-major)."""
    b = (x.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
    return [base64.b64encode(img.tobytes()).decode("ascii") for img in b]


def _round(a: torch.Tensor | np.ndarray, digits: int = 4) -> list:
    return np.round(np.asarray(torch.as_tensor(a).detach().cpu().double()), digits).tolist()


@dataclass
class Explorer:
    runs: list[LoadedRun]
    images: torch.Tensor
    """(N, C, H, W) in [0, 1] on `device`: the map's test images."""
    labels: torch.Tensor
    """(N,) int64 on the CPU."""
    classifier: clf.LeNet
    classifier_meta: dict[str, Any]
    device: torch.device
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        _, c, h, w = self.images.shape
        return c, h, w

    # ----------------------------------------------------------------- description
    def info(self) -> dict[str, Any]:
        cfg = self.runs[0].cfg
        return {
            "dataset": cfg.dataset,
            "class_names": list(FASHION_CLASSES) if cfg.dataset == "fashion-mnist" else None,
            "image_shape": list(self.image_shape),
            "test_images": len(self.images),
            "classifier": {
                k: self.classifier_meta.get(k) for k in ("variant", "test_accuracy", "dataset")
            },
            "runs": [self._run_info(i, r) for i, r in enumerate(self.runs)],
        }

    def _run_info(self, i: int, r: LoadedRun) -> dict[str, Any]:
        return {
            "id": i,
            "name": r.name,
            "path": str(r.path),
            "kind": r.kind,
            "model": r.cfg.model,
            "beta": r.cfg.beta if r.model.is_vae else None,
            "latent_dim": r.model.latent_dim,
            "map": {"explained": list(r.latent_map.explained), "exact": r.latent_map.exact},
            "dim_score": r.dim_score,
            "dims": [vars(d) for d in r.dims],
        }

    def map_points(self, run: int) -> dict[str, Any]:
        xy = self.runs[run].latent_map.to_map(self.runs[run].codes)
        return {"x": _round(xy[:, 0]), "y": _round(xy[:, 1]), "labels": self.labels.tolist()}

    # ----------------------------------------------------------------- codes
    def code_of_point(self, run: int, xy: torch.Tensor) -> torch.Tensor:
        return self.runs[run].latent_map.to_code(xy.view(1, 2)).view(-1).to(self.device)

    def code_of_index(self, run: int, index: int) -> torch.Tensor:
        return self.runs[run].codes[index]

    def code_of_image(self, run: int, x: torch.Tensor) -> torch.Tensor:
        with self.lock, torch.inference_mode():
            return self.runs[run].model.encode(x.to(self.device))[0]

    # ----------------------------------------------------------------- actions
    def _decode(self, run: int, z: torch.Tensor) -> torch.Tensor:
        """(B, nz) → images (B, C, H, W) in [0, 1]; caller holds the lock."""
        return torch.sigmoid(self.runs[run].model.decode(z.float().to(self.device)))

    def _readings(self, images: torch.Tensor) -> list[dict[str, Any]]:
        probs = clf.classify(self.classifier, images)[1]
        return [{"label": int(p.argmax()), "confidence": round(float(p.max()), 4)} for p in probs]

    def _points(self, run: int, z: torch.Tensor) -> list:
        return _round(self.runs[run].latent_map.to_map(z.view(-1, z.shape[-1])))

    def _decodes(self, run: int, z: torch.Tensor) -> dict[str, Any]:
        """Codes (B, nz) → images, classifier readings, map points; caller holds the lock."""
        imgs = self._decode(run, z)
        return {
            "images": encode_images(imgs),
            "readings": self._readings(imgs),
            "points": self._points(run, z),
        }

    def decode(self, run: int, z: torch.Tensor) -> dict[str, Any]:
        t0 = time.perf_counter()
        with self.lock, torch.inference_mode():
            img = self._decode(run, z.view(1, -1))
            reading = self._readings(img)[0]
        return {
            "image": encode_images(img)[0],
            "reading": reading,
            "point": self._points(run, z)[0],
            "server_ms": round((time.perf_counter() - t0) * 1000, 3),
        }

    def test_image(self, run: int, index: int) -> dict[str, Any]:
        z = self.code_of_index(run, index)
        with self.lock, torch.inference_mode():
            recon = self._decode(run, z.view(1, -1))
            readings = self._readings(torch.cat([self.images[index : index + 1], recon]))
        return {
            "index": index,
            "label": int(self.labels[index]),
            "image": encode_images(self.images[index : index + 1])[0],
            "reconstruction": encode_images(recon)[0],
            "readings": readings,
            "code": _round(z),
            "point": self._points(run, z)[0],
        }

    def interpolate(self, run: int, a: torch.Tensor, b: torch.Tensor, steps: int) -> dict[str, Any]:
        """Decoded lerp and slerp paths a → b (steps interior codes, ends included)."""
        out: dict[str, Any] = {}
        with self.lock, torch.inference_mode():
            for mode in ("lerp", "slerp"):
                z = interpolate(a.double().cpu(), b.double().cpu(), steps, mode)
                out[mode] = {**self._decodes(run, z), "norms": _round(z.norm(dim=1), 3)}
        return out

    def samples(self, run: int, n: int, seed: int) -> dict[str, Any]:
        """n decodes of z ~ N(0, I), seeded as `vaelab sample` is (same seed, same images)."""
        g = torch.Generator(device="cpu").manual_seed(stream_seed(seed, "user_samples"))
        z = torch.randn(n, self.runs[run].model.latent_dim, generator=g)
        with self.lock, torch.inference_mode():
            return self._decodes(run, z)

    def encode(self, run: int, x: torch.Tensor, center: bool) -> dict[str, Any]:
        """A drawn image (1, C, H, W): what the model sees, its code, map point, reconstruction."""
        seen = center_like_mnist(x) if center else x
        with self.lock, torch.inference_mode():
            z = self.runs[run].model.encode(seen.to(self.device))
            recon = self._decode(run, z)
            readings = self._readings(torch.cat([seen.to(self.device), recon]))
        return {
            "input": encode_images(seen)[0],
            "reconstruction": encode_images(recon)[0],
            "input_reading": readings[0],
            "reconstruction_reading": readings[1],
            "code": _round(z[0]),
            "point": self._points(run, z)[0],
        }


# --------------------------------------------------------------------------------- loading
def _display_names(dirs: list[Path]) -> list[str]:
    names = [d.name for d in dirs]
    if len(set(names)) == len(names):
        return names
    return [str(d) for d in dirs]


@torch.inference_mode()
def _map_run(
    path: Path, name: str, model: AutoEncoder, cfg: TrainConfig, x: torch.Tensor, sliders: int
) -> LoadedRun:
    if tuple(model.image_shape) != tuple(x.shape[1:]):
        raise ConfigError(
            f"{path} was trained on {model.image_shape} images but its dataset's test images are "
            f"{tuple(x.shape[1:])}; was the data folder changed?"
        )
    codes, posterior = models.codes(model, x)
    score, dims = informative_dims(codes, posterior, sliders)
    return LoadedRun(name, path, model, cfg, fit_map(codes), codes, score, dims)


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
    datasets = {(cfg.dataset, cfg.data_dir) for _, cfg in loaded}
    if len(datasets) > 1:
        found = ", ".join(sorted(f"{d}" + (f" ({p})" if p else "") for d, p in datasets))
        raise ConfigError(
            f"the runs use different datasets ({found}); explore runs of one dataset together"
        )
    dataset, data_dir = datasets.pop()
    x8, y = split_arrays(load_arrays(dataset, data_dir), "test")
    x = torch.from_numpy(x8[:map_points]).to(dev).float() / 255.0  # (N, C, H, W)
    runs = []
    for d, name, (model, cfg) in zip(run_dirs, _display_names(run_dirs), loaded, strict=True):
        if log:
            log(f"loading {d}")
        runs.append(_map_run(d, name, model, cfg, x, sliders))
    model, meta = clf.reference_classifier(
        dataset, data_dir, variant=classifier, device=dev, log=log
    )
    return Explorer(runs, x, torch.from_numpy(y[:map_points]), model, meta, dev)
