"""The reference classifier behind sample-quality metrics: a LeNet-like CNN per dataset, trained
once on its `train` split and cached in `$VAELAB_HOME/classifiers/` with its test accuracy and the
sha256 of its data. Its 128-d penultimate activations are the features of the Fréchet distance
(comparable only with each other, hence the real-vs-real floor in reports), its softmax the class
histograms and confidence.

Data without labels gets the same network trained label-free (`label_free=True`, cached as
`…-ae.pt`): its last layer predicts the image's C·H·W pixels (BCE, dropout on the features as a
denoiser), and its 128-d penultimate activations are the features instead. On MNIST and
Fashion-MNIST with the labels hidden, its Fréchet distances rank β the way the classifier's do
(benchmarks/bench_label_free.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vaelab.data import TensorLoader, load_arrays
from vaelab.data.store import UNLABELLED, resolve_spec, split_arrays, vaelab_home
from vaelab.errors import DataError, RunError
from vaelab.fsutil import file_lock, sha256_bytes
from vaelab.runtime import progress, stream_seed
from vaelab.train.checkpoint import load_checkpoint, save_checkpoint

VERSION = 1
FEATURES = 128
# name -> (training images (None = whole train split), epochs). `smoke` is a reduced classifier
# for tests and the smoke study (seconds to train, ~97 % on MNIST); reports name the variant.
VARIANTS: dict[str, tuple[int | None, int]] = {"standard": (None, 4), "smoke": (10_000, 2)}


class LeNet(nn.Module):
    """conv5(32)-pool-conv5(64)-pool-fc(128)-fc(classes); input (B, C, H, W) in [0, 1]."""

    def __init__(self, in_channels: int = 1, image_size: int = 28, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(64 * (image_size // 4) ** 2, FEATURES)
        self.fc2 = nn.Linear(FEATURES, classes)
        self.dropout = nn.Dropout(0.3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → penultimate (B, 128) ReLU features."""
        # pool, then ReLU: the same numbers (both take maxima), the ReLU on a quarter of them
        h = F.relu(max_pool2(self.conv1(x)))
        h = F.relu(max_pool2(self.conv2(h)))
        return F.relu(self.fc1(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.features(x)))


def max_pool2(x: torch.Tensor) -> torch.Tensor:
    """F.max_pool2d(x, 2) without autograd as two elementwise maxima of strided views (rows, then
    columns): 2-4x faster than its CPU kernel on the classifier's activations. The bits differ
    only where a block's maximum is a zero of both signs, which no later layer can see (conv
    outputs carry a bias: features of real images are bitwise max_pool2d's, tested). With
    autograd or odd sizes, max_pool2d itself: it sends a tie's gradient to one input, not split."""
    b, c, h, w = x.shape
    if (x.requires_grad and torch.is_grad_enabled()) or h % 2 or w % 2:
        return F.max_pool2d(x, 2)
    rows = x.reshape(b, c, h // 2, 2 * w)
    pairs = torch.maximum(rows[..., :w], rows[..., w:]).view(b, c, h // 2, w // 2, 2)
    return torch.maximum(pairs[..., 0], pairs[..., 1])


def _path(dataset_key: str, variant: str) -> Path:
    suffix = "" if variant == "standard" else f"-{variant}"
    return vaelab_home() / "classifiers" / f"{dataset_key}-lenet-v{VERSION}{suffix}.pt"


@torch.no_grad()
def accuracy(model: LeNet, x: np.ndarray, y: np.ndarray, device: torch.device) -> float:
    model.eval()
    loader = TensorLoader(x, y, 2000, shuffle=False, device=device)
    correct = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in loader)
    return correct / len(x)


def train_classifier(
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    device: torch.device,
    log: Callable[[str], None],
    label_free: bool,
) -> LeNet:
    """Adam (batches of 128) with a cosine-decayed learning rate; ~99.2 % MNIST test accuracy at
    4 epochs. `label_free`: trained to reproduce the image's pixels instead of its label."""
    seed = stream_seed(0, "classifier")
    torch.manual_seed(seed)
    classes = x[0].size if label_free else max(10, int(y.max()) + 1)
    model = LeNet(x.shape[1], x.shape[2], classes).to(device)
    loader = TensorLoader(x, y, 128, shuffle=True, seed=seed, device=device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=epochs * len(loader))
    for epoch in range(epochs):
        model.train()
        loader.set_epoch(epoch)
        for xb, yb in progress(loader, desc=f"classifier epoch {epoch + 1}/{epochs}"):
            if label_free:
                loss = F.binary_cross_entropy_with_logits(model(xb), xb.flatten(1))
            else:
                loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log(f"classifier epoch {epoch + 1}/{epochs}: last batch loss {loss.item():.4f}")
    return model.eval()


def _load_cached(
    path: Path,
    data_sha: str,
    shape: tuple[int, ...],
    variant: str,
    device: torch.device | str,
    log: Callable[[str], None],
) -> tuple[LeNet, dict] | None:
    """The cached network at `path` when it was trained on these very images, else None."""
    if not path.is_file():
        return None
    try:
        ckpt = load_checkpoint(path, map_location=device)
        if ckpt["meta"]["train_data_sha256"] != data_sha:
            return None
        model = LeNet(shape[0], shape[1], ckpt["meta"]["classes"])
        model.load_state_dict(ckpt["model"])
        return model.to(device).eval(), {"variant": variant, **ckpt["meta"]}
    except (RunError, KeyError, TypeError, ValueError, RuntimeError) as e:
        # a cache, not a result: a damaged copy is rebuilt, never a reason to stop
        log(f"cached classifier {path} is unreadable ({str(e)[:80]}); retraining it")
        return None


def reference_classifier(
    dataset: str,
    data_dir: str | None = None,
    image_size: int | None = None,
    color: str | None = None,
    *,
    variant: str = "standard",
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | None = None,
    label_free: bool = False,
) -> tuple[LeNet, dict]:
    """The cached classifier for `dataset` (trained on first use); returns (model, metadata).
    `label_free`: the pixel-predicting network instead (metadata: test_accuracy None)."""
    if variant not in VARIANTS:
        raise ValueError(f"classifier variant must be one of {', '.join(VARIANTS)}")
    log, device = log or (lambda _: None), torch.device(device)
    key = resolve_spec(dataset, data_dir, image_size, color).name
    path = _path(key + ("-ae" if label_free else ""), variant)
    arrays = load_arrays(dataset, data_dir, image_size, color)
    limit, epochs = VARIANTS[variant]
    x_tr, y_tr = split_arrays(arrays, "train")
    if not label_free and (y_tr == UNLABELLED).any():
        raise DataError(
            f"{data_dir} is a flat folder without labels: the reference classifier and the "
            "metrics built on it need class sub-folders (evaluate with --groups likelihood)"
        )
    x_tr, y_tr = x_tr[:limit], y_tr[:limit]
    x_te, y_te = split_arrays(arrays, "test")
    data_sha = sha256_bytes(x_tr.tobytes() + y_tr.tobytes())
    with file_lock(path.parent / f".{path.name}.lock"):
        cached = _load_cached(path, data_sha, x_tr.shape[1:3], variant, device, log)
        if cached is not None:
            return cached
        log(f"training the {variant} reference classifier for {key} (once; cached in {path})")
        t0 = time.perf_counter()
        model = train_classifier(
            x_tr, y_tr, epochs=epochs, device=device, log=log, label_free=label_free
        )
        meta = {
            "dataset": key,
            "version": VERSION,
            "variant": variant,
            "epochs": epochs,
            "train_images": len(x_tr),
            "classes": model.fc2.out_features,
            "test_accuracy": None if label_free else accuracy(model, x_te, y_te, device),
            "train_data_sha256": data_sha,
            "train_time_s": time.perf_counter() - t0,
        }
        save_checkpoint(path, {"model": model.state_dict(), "meta": meta})
        if not label_free:
            log(
                f"{variant} reference classifier: test accuracy {meta['test_accuracy']:.4f}, "
                f"trained in {meta['train_time_s']:.0f} s"
            )
    return model, meta


@torch.inference_mode()
def classify(
    model: LeNet, images: torch.Tensor, batch_size: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, 128), softmax probabilities (N, classes)) of images in [0, 1]."""
    model.eval()
    feats, probs = [], []
    device = next(model.parameters()).device
    for i in range(0, len(images), batch_size):
        xb = images[i : i + batch_size].to(device).float()
        f = model.features(xb)
        feats.append(f.double().cpu())
        probs.append(F.softmax(model.fc2(f), dim=1).double().cpu())
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()
