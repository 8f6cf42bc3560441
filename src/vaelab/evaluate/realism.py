"""How much a decoded image looks like a real one: its nearest-real-image distance ratio.

For an image with classifier features f, realism = (distance from f to the nearest real image's
features) / (median over real images of the distance to their nearest *other* real image). A real
image held out of the reference set scores about 1; an image off the data manifold (an overlay of
two digits, a smudge) scores above 1, however confidently a classifier names it. Unlike the
classifier's max-softmax confidence, this measures distance to the data, not decisiveness.
"""

from __future__ import annotations

import numpy as np

from vaelab.evaluate.neighbours import CHUNK, kth_neighbour_distance, nearest_distance


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
    """Nearest-real distance of each query (Q, d) divided by `scale` (default: real_nn_scale).

    exclude: (Q, E) indices of real rows a query may not match, e.g. the two real images a path
    starts and ends at, so that a decode that copies an end image scores like a held-out real
    image (≈ 1) rather than 0.
    """
    scale = real_nn_scale(real, chunk) if scale is None else scale
    if scale <= 0:
        raise ValueError("real features have duplicate nearest neighbours only: scale is 0")
    return nearest_distance(queries, real, exclude, chunk) / scale
