"""Measures on feature sets (N, d): nearest-neighbour distances, k-NN precision and recall,
realism and the Fréchet distance of classifier features; linear and k-NN probes of codes.

Distances are Euclidean, in float64 from ‖a‖² − 2a·b + ‖b‖², `chunk` query rows at a time: a full
10,000 × 10,000 matrix would be 400 MB. A point's distance to itself then rounds to ~1e-7 of the
feature scale rather than 0, far below any neighbour distance that matters here.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

CHUNK = 1024
Features = np.ndarray | torch.Tensor


def _distance_chunks(a: Features, b: Features, chunk: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(start row, distances (≤ chunk, M)) between rows of a (N, d) and all rows of b (M, d)."""
    ta, tb = (torch.as_tensor(np.asarray(v), dtype=torch.float64) for v in (a, b))
    b_sq = tb.pow(2).sum(1)
    for i in range(0, len(ta), chunk):
        q = ta[i : i + chunk]
        # clamped: rounding can make ‖q − b‖² slightly negative
        d2 = q.pow(2).sum(1, keepdim=True) - 2 * q @ tb.T + b_sq[None, :]
        yield i, d2.clamp_min_(0).sqrt_()


def kth_neighbour_distance(
    features: Features, k: int | tuple[int, ...], chunk: int = CHUNK
) -> np.ndarray:
    """Distance from each row (N, d) to its k-th nearest *other* row: (N,), or (N, len(k)) for a
    tuple of k, all from one pass over the distances. Row i's distance to itself (0) comes first,
    so that is the (k + 1)-th smallest; duplicates count at distance 0."""
    n, ks = len(features), (k,) if isinstance(k, int) else k
    if not all(1 <= k_ < n for k_ in ks):
        raise ValueError(f"k must be in [1, {n - 1}] for {n} points, got {k}")
    out = np.empty((n, len(ks)))
    for i, d in _distance_chunks(features, features, chunk):
        nearest = d.topk(max(ks) + 1, dim=1, largest=False).values  # (chunk, max k + 1), sorted
        out[i : i + len(d)] = nearest[:, list(ks)].numpy()
    return out[:, 0] if isinstance(k, int) else out


def nearest_distance(
    queries: Features, reference: Features, exclude: np.ndarray | None = None, chunk: int = CHUNK
) -> np.ndarray:
    """Distance from each query (Q, d) to its nearest reference row (N, d): (Q,). exclude:
    optional (Q, E) reference indices that do not count for a query (−1 pads shorter rows)."""
    out = np.empty(len(queries))
    ex = None if exclude is None else torch.as_tensor(np.asarray(exclude), dtype=torch.long)
    for i, d in _distance_chunks(queries, reference, chunk):
        if ex is not None:
            rows = ex[i : i + len(d)]
            r, c = torch.nonzero(rows >= 0, as_tuple=True)
            d[r, rows[r, c]] = torch.inf
        out[i : i + len(d)] = d.min(1).values.numpy()
    return out


def precision_recall(
    real: np.ndarray,
    fake: np.ndarray,
    k: int = 3,
    chunk: int = CHUNK,
    real_radii: np.ndarray | None = None,
) -> tuple[float, float]:
    """(precision, recall) of fake (M, d) against real (N, d) features (Kynkäänniemi et al. 2019):
    the share of fake points in the real k-NN manifold (fidelity) and of real points in the fake
    one (coverage), ball boundaries inside. Radii shrink as a set grows: compare equal-sized sets.
    `real_radii`: the real set's, precomputed to reuse across fake sets."""
    real, fake = np.asarray(real), np.asarray(fake)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sets must be (N, d) with the same d: {real.shape}, {fake.shape}")
    if real_radii is None:
        real_radii = kth_neighbour_distance(real, k, chunk)
    if len(real_radii) != len(real):
        raise ValueError(f"{len(real_radii)} radii for {len(real)} real points")
    fake_radii = torch.as_tensor(kth_neighbour_distance(fake, k, chunk))[None, :]
    # One pass over the real × fake distances gives both: a real row is recalled when some fake
    # ball holds it, and a fake column is precise when some real ball holds it.
    recalled, precise = np.empty(len(real), dtype=bool), np.zeros(len(fake), dtype=bool)
    for i, d in _distance_chunks(real, fake, chunk):
        recalled[i : i + len(d)] = (d <= fake_radii).any(1).numpy()
        radii = torch.as_tensor(real_radii[i : i + len(d)], dtype=torch.float64)[:, None]
        precise |= (d <= radii).any(0).numpy()
    return float(precise.mean()), float(recalled.mean())


def real_nn_scale(real: np.ndarray, chunk: int = CHUNK) -> float:
    """Median leave-one-out nearest-neighbour distance among real features (N, d)."""
    return float(np.median(kth_neighbour_distance(real, 1, chunk)))


def realism_ratio(
    queries: np.ndarray,
    real: np.ndarray,
    scale: float | None = None,
    exclude: np.ndarray | None = None,
    chunk: int = CHUNK,
) -> np.ndarray:
    """Nearest-real distance of each query (Q, d) over `scale` (default real_nn_scale): ≈ 1 for a
    held-out real image, above 1 off the data (an overlay of two digits), however confidently a
    classifier names it. exclude: (Q, E) real rows a query may not match (a path's two ends)."""
    scale = real_nn_scale(real, chunk) if scale is None else scale
    if scale <= 0:
        raise ValueError("real features have duplicate nearest neighbours only: scale is 0")
    return nearest_distance(queries, real, exclude, chunk) / scale


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½) (Heusel et al. 2017, 'FID'). The trace
    comes from the eigenvalues of the symmetric PSD Σ₁^½ Σ₂ Σ₁^½, stable where scipy's sqrtm of
    the non-symmetric Σ₁Σ₂ can return complex noise."""
    w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    s1_half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = s1_half @ sigma2 @ s1_half
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_sqrt)


def frechet_distance_features(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance of Gaussians fitted (float64) to two feature sets (N, d), (M, d)."""
    fa, fb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return frechet_distance(
        fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False)
    )


def _standardise(
    train: torch.Tensor, test: torch.Tensor, y_train: torch.Tensor, y_test: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The codes standardised by the train codes' mean and SD, and the number of classes."""
    mean, std = train.mean(0), train.std(0).clamp_min(1e-8)
    return (train - mean) / std, (test - mean) / std, int(max(y_train.max(), y_test.max())) + 1


def linear_probe_accuracy(
    z_train: torch.Tensor,
    y_train: torch.Tensor,
    z_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    l2: float = 1e-4,
    max_iter: int = 200,
) -> float:
    """Multinomial logistic regression on standardised codes, fit by full-batch L-BFGS
    (a convex problem: the result does not depend on a learning rate or seed)."""
    xtr, xte, classes = _standardise(z_train.double(), z_test.double(), y_train, y_test)
    w = torch.zeros(xtr.shape[1], classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(xtr @ w + b, y_train) + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((xte @ w + b).argmax(1) == y_test).double().mean())


@torch.no_grad()
def knn_accuracy(
    z_train: torch.Tensor,
    y_train: torch.Tensor,
    z_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    k: int = 5,
    chunk: int = 1024,
) -> float:
    """k-NN (Euclidean on standardised codes, majority vote) accuracy, float32, chunked."""
    xtr, xte, classes = _standardise(z_train.float(), z_test.float(), y_train, y_test)
    tr_sq = xtr.pow(2).sum(1)
    correct = 0
    for i in range(0, len(xte), chunk):
        q = xte[i : i + chunk]
        d = tr_sq[None, :] - 2 * q @ xtr.T  # ‖q‖² is constant per row: irrelevant to ranking
        idx = d.topk(k, dim=1, largest=False).indices
        votes = F.one_hot(y_train[idx], classes).sum(1)
        correct += int((votes.argmax(1) == y_test[i : i + chunk]).sum())
    return correct / len(xte)
