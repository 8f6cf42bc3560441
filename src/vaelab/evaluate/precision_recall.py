"""Precision and recall of a generated set against a real one (Kynkäänniemi et al. 2019).

Each set's manifold is the union of balls around its points, each ball's radius the distance to
that point's k-th nearest neighbour in the same set. Precision is the share of generated points
inside the real manifold (fidelity: are samples realistic?); recall the share of real points
inside the generated manifold (coverage: is every kind of real image produced?). A point on a
ball's boundary counts as inside (`≤`, as in the paper's code). Both sets should have the same
size: the radii shrink as a set grows, so the evaluation compares equal-sized sets and reports
the same measure between real train and real test images as the floor.

torch-fidelity and piq implement this but require torchvision, and prdc builds the full distance
matrix with scikit-learn; this version works on precomputed features in row chunks.
"""

from __future__ import annotations

import numpy as np
import torch

from vaelab.evaluate.neighbours import CHUNK, distance_chunks, kth_neighbour_distance

DEFAULT_K = 3


def precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = DEFAULT_K, chunk: int = CHUNK
) -> tuple[float, float]:
    """(precision, recall) of fake (M, d) features against real (N, d) features."""
    return precision_recall_radii(real, fake, kth_neighbour_distance(real, k, chunk), k, chunk)


def precision_recall_radii(
    real: np.ndarray,
    fake: np.ndarray,
    real_radii: np.ndarray,
    k: int = DEFAULT_K,
    chunk: int = CHUNK,
) -> tuple[float, float]:
    """precision_recall with the real set's k-NN radii precomputed (reused across fake sets)."""
    real, fake = np.asarray(real), np.asarray(fake)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sets must be (N, d) with the same d: {real.shape}, {fake.shape}")
    if len(real_radii) != len(real):
        raise ValueError(f"{len(real_radii)} radii for {len(real)} real points")
    fake_radii = torch.as_tensor(kth_neighbour_distance(fake, k, chunk))[None, :]
    # One pass over the real × fake distances gives both: a real row is recalled when some fake
    # ball holds it, and a fake column is precise when some real ball holds it.
    recalled, precise = np.empty(len(real), dtype=bool), np.zeros(len(fake), dtype=bool)
    for i, d in distance_chunks(real, fake, chunk):
        recalled[i : i + len(d)] = (d <= fake_radii).any(1).numpy()
        radii = torch.as_tensor(real_radii[i : i + len(d)], dtype=torch.float64)[:, None]
        precise |= (d <= radii).any(0).numpy()
    return float(precise.mean()), float(recalled.mean())
