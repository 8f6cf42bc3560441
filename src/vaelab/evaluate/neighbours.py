"""Nearest-neighbour distances between feature sets, in chunks of rows.

A full (N, M) distance matrix of 10,000 × 10,000 features is 400 MB in float32; every function
here holds at most `chunk` rows of it at a time. Distances are Euclidean, computed in float64 from
‖a‖² − 2a·b + ‖b‖² (one matrix product per chunk); a point's distance to itself then rounds to
~1e-7 of the feature scale rather than 0, far below any neighbour distance that matters here.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

CHUNK = 1024


def _tensor(a: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def distance_chunks(
    a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, chunk: int = CHUNK
) -> Iterator[tuple[int, torch.Tensor]]:
    """(start row, distances (≤ chunk, M)) between rows of a (N, d) and all rows of b (M, d)."""
    ta, tb = _tensor(a), _tensor(b)
    b_sq = tb.pow(2).sum(1)
    for i in range(0, len(ta), chunk):
        q = ta[i : i + chunk]
        # ‖q − b‖² = ‖q‖² − 2 q·b + ‖b‖², clamped: rounding can make it slightly negative.
        d2 = q.pow(2).sum(1, keepdim=True) - 2 * q @ tb.T + b_sq[None, :]
        yield i, d2.clamp_min_(0).sqrt_()


def kth_neighbour_distance(
    features: np.ndarray | torch.Tensor, k: int | tuple[int, ...], chunk: int = CHUNK
) -> np.ndarray:
    """Distance from each row (N, d) to its k-th nearest *other* row: (N,), or (N, len(k)) for
    a tuple of k, all from one pass over the distances.

    Row i's distance to itself is 0 and comes first, so the k-th other neighbour is the
    (k + 1)-th smallest (ties with duplicates of row i count as neighbours at distance 0).
    """
    n, ks = len(features), (k,) if isinstance(k, int) else k
    if not all(1 <= k_ < n for k_ in ks):
        raise ValueError(f"k must be in [1, {n - 1}] for {n} points, got {k}")
    out = np.empty((n, len(ks)))
    for i, d in distance_chunks(features, features, chunk):
        nearest = d.topk(max(ks) + 1, dim=1, largest=False).values  # (chunk, max k + 1), sorted
        out[i : i + len(d)] = nearest[:, list(ks)].numpy()
    return out[:, 0] if isinstance(k, int) else out


def nearest_distance(
    queries: np.ndarray | torch.Tensor,
    reference: np.ndarray | torch.Tensor,
    exclude: np.ndarray | None = None,
    chunk: int = CHUNK,
) -> np.ndarray:
    """Distance from each query (Q, d) to its nearest reference row (N, d): (Q,).

    exclude: optional (Q, E) reference indices that do not count for query q (e.g. the query's
    own row, for leave-one-out; −1 pads rows that exclude fewer).
    """
    out = np.empty(len(queries))
    ex = None if exclude is None else torch.as_tensor(np.asarray(exclude), dtype=torch.long)
    for i, d in distance_chunks(queries, reference, chunk):
        if ex is not None:
            rows = ex[i : i + len(d)]
            r, c = torch.nonzero(rows >= 0, as_tuple=True)
            d[r, rows[r, c]] = torch.inf
        out[i : i + len(d)] = d.min(1).values.numpy()
    return out
