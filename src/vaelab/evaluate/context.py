"""What the metric groups of one evaluation share: the evaluated images, and what a group asks
for (codes, reconstructions, classifier features, prior samples, decoded paths), computed once on
first use; what no requested group touches is never computed (a selection evaluation is cheap).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from vaelab.config import EvalConfig, TrainConfig
from vaelab.data import load_split
from vaelab.data.store import UNLABELLED
from vaelab.distributions import DiagonalGaussian
from vaelab.evaluate import classifier as clf
from vaelab.evaluate import memo
from vaelab.evaluate.features import (
    frechet_distance_features,
    kth_neighbour_distance,
    precision_recall,
    realism_ratio,
)
from vaelab.evaluate.interpolation import interpolation_paths, pick_pairs
from vaelab.evaluate.keys import PATH_MODES
from vaelab.models import AutoEncoder, batched, codes, sample_prior
from vaelab.runtime import stream_seed


class EvalData(NamedTuple):
    """x: images in [0, 1] (N, C, H, W) for reconstruction metrics, the classifier and figures;
    x_lik: the same images as the likelihood sees them; y: labels (N,). All on one device."""

    x: torch.Tensor
    x_lik: torch.Tensor
    y: torch.Tensor


def load_eval_data(
    dataset: str,
    split: str = "test",
    *,
    data_dir: str | None = None,
    image_size: int | None = None,
    color: str | None = None,
    limit: int | None = None,
    likelihood: str = "gaussian",
    binarize: str = "none",
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> EvalData:
    """The first `limit` images of `split` as a run with this likelihood and binarisation is
    evaluated. Bernoulli runs score a seeded binarisation (and reconstruct it too when they trained
    on binarised pixels); Gaussian runs a dequantised copy ((byte + u)/256): a density of
    continuous data."""
    x8, y = (a[:limit] for a in load_split(dataset, split, data_dir, image_size, color))
    x = torch.from_numpy(x8).to(device).float() / 255.0
    g = torch.Generator(device="cpu").manual_seed(stream_seed(seed, "eval_binarize"))
    if likelihood == "bernoulli":
        x_lik = torch.bernoulli(x.cpu(), generator=g).to(device)
        if binarize != "none":
            x = x_lik
    else:
        noise = torch.rand(x8.shape, generator=g)
        x_lik = ((torch.from_numpy(x8).float() + noise) / 256.0).to(device)
    return EvalData(x, x_lik, torch.from_numpy(y).to(device))


def eval_data_for(cfg: TrainConfig, split: str = "test", **kw: Any) -> EvalData:
    """load_eval_data (limit, seed, device: `kw`) for the data and likelihood of a run's config."""
    same = ("data_dir", "image_size", "color", "likelihood", "binarize")
    return load_eval_data(cfg.dataset, split, **{k: getattr(cfg, k) for k in same}, **kw)


@dataclass
class EvalContext:
    run_dir: Path
    model: AutoEncoder
    cfg: TrainConfig
    ecfg: EvalConfig
    data: EvalData
    device: torch.device
    say: Callable[[str], None]

    # ---- the model on the evaluated images ------------------------------------------------
    @cached_property
    def codes(self) -> tuple[torch.Tensor, DiagonalGaussian | None]:
        """(μ (N, nz), q(z|x) or None for an AE): each evaluated image's code and posterior."""
        return codes(self.model, self.data.x)

    @cached_property
    def recon_logits(self) -> torch.Tensor:
        """Decoder logits of μ (N, C, H, W)."""
        return torch.cat(batched(self.model.decode, self.codes[0]))

    @cached_property
    def recon(self) -> torch.Tensor:
        return torch.sigmoid(self.recon_logits)

    @cached_property
    def samples(self) -> torch.Tensor:
        """`n_samples` decodes of z ~ N(0, I) (the `eval_samples` stream)."""
        seed = stream_seed(self.ecfg.seed, "eval_samples")
        return sample_prior(self.model, self.ecfg.n_samples, seed, self.device)

    # ---- the reference classifier ---------------------------------------------------------
    @cached_property
    def labelled(self) -> bool:
        """Whether the evaluated images have labels; without, the groups and measures that read
        labels or class probabilities are skipped and the features come from the label-free
        network (vaelab.evaluate.classifier)."""
        return bool(len(self.data.y)) and int(self.data.y.min()) != UNLABELLED

    @cached_property
    def classifier(self) -> tuple[clf.LeNet, dict]:
        return clf.reference_classifier(
            self.cfg.dataset,
            self.cfg.data_dir,
            self.cfg.image_size,
            self.cfg.color,
            variant=self.ecfg.classifier,
            device=self.device,
            log=self.say,
            label_free=not self.labelled,
        )

    def classify(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(features (N, 128), class probabilities (N, classes)) of images in [0, 1]."""
        return clf.classify(self.classifier[0], images)

    @cached_property
    def real(self) -> tuple[np.ndarray, np.ndarray]:
        # model-independent, as are the neighbours and the floor: memoised by content
        x = self.data.x
        return memo.memoised("classify", (self.classifier[0], x), lambda: self.classify(x))

    def against_real(self, feats: np.ndarray) -> tuple[float, float, float]:
        """(Fréchet distance, precision, recall) of features against the real images'."""
        real, n, k = self.real[0], self.pr_size, self.ecfg.pr_k
        precision, recall = precision_recall(real[:n], feats[:n], k, real_radii=self.real_radii)
        return frechet_distance_features(feats, real), precision, recall

    @cached_property
    def _real_neighbours(self) -> np.ndarray:
        """(N, 2): each real image's distance to its nearest and its k-th nearest (k = pr_k)
        other real image, from one pass over the real × real distances."""
        feats = self.real[0]
        ks = (1, min(self.ecfg.pr_k, len(feats) - 1))
        return memo.memoised("kth", (feats, ks), lambda: kth_neighbour_distance(feats, ks))

    @cached_property
    def real_radii(self) -> np.ndarray:
        """Each real image's distance to its k-th nearest other real image (k = pr_k), in the
        first `pr_size` real features: the real manifold of precision/recall."""
        if self.pr_size == len(self.real[0]) > self.ecfg.pr_k:
            return self._real_neighbours[:, 1]
        feats, k = self.real[0][: self.pr_size], self.ecfg.pr_k
        return memo.memoised("kth", (feats, k), lambda: kth_neighbour_distance(feats, k))

    @cached_property
    def real_nn_scale(self) -> float:
        """Median distance from a real image to its nearest other real image (realism's unit)."""
        return float(np.median(self._real_neighbours[:, 0]))

    @cached_property
    def pr_size(self) -> int:
        """Set size of every precision/recall: equal-sized sets, as the k-NN radii need."""
        return min(self.ecfg.n_samples, len(self.data.x))

    @cached_property
    def train_images(self) -> tuple[np.ndarray, np.ndarray]:
        """The train split (uint8 images, labels): floor images and probe training codes."""
        c = self.cfg
        return load_split(c.dataset, "train", c.data_dir, c.image_size, c.color)

    @cached_property
    def floor(self) -> tuple[np.ndarray, np.ndarray]:
        """Classifier outputs of real *train* images: what a perfect generator would score."""
        x8 = self.train_images[0][: max(len(self.data.x), 1000)]
        return memo.memoised(
            "classify_bytes",
            (self.classifier[0], x8),
            lambda: self.classify(torch.from_numpy(x8).float() / 255.0),
        )

    # ---- interpolation ----------------------------------------------------------------------
    @cached_property
    def paths(self) -> tuple[np.ndarray, dict[str, list[torch.Tensor]]]:
        """The indices of each path's two end images (P, 2), n_pairs per label pair of `ecfg.pairs`,
        and per mode (lerp, slerp, and the pixel cross-fade baseline) the paths' decoded images
        (steps + 2, C, H, W): the same image pairs in each mode."""
        e = self.ecfg
        ends: list[tuple[int, int]] = []
        out: dict[str, list[torch.Tensor]] = {m: [] for m in PATH_MODES}
        for a, b in e.pairs if self.labelled else ():  # pairs are chosen by label
            picked = pick_pairs(self.data.y, a, b, e.n_pairs, e.seed)
            ends += picked
            for mode in PATH_MODES:
                out[mode] += interpolation_paths(self.model, self.data.x, picked, e.steps, mode)
        return np.array(ends, dtype=np.int64).reshape(-1, 2), out

    @cached_property
    def path_scores(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per mode: the classifier's top probability along every path (P, steps + 2), and the
        realism of every interior decode (P, steps), matched against the real images but its
        path's two ends (a copy of an end image scores ≈ 1, not 0)."""
        (ends, paths), t = self.paths, self.ecfg.steps
        real_feats, scale = self.real[0], self.real_nn_scale
        out = {}
        for mode, images in paths.items():
            conf = [self.classify(p)[1].max(1) for p in images]
            real = [
                realism_ratio(self.classify(p[1:-1])[0], real_feats, scale, np.tile(e, (t, 1)))
                for p, e in zip(images, ends, strict=True)
            ]
            # (0, …) arrays of the usual shapes without paths
            out[mode] = np.array(conf).reshape(-1, t + 2), np.array(real).reshape(-1, t)
        return out
