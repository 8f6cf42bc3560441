"""Data layer: MNIST-family datasets obtained, verified and cached; fast tensor-resident batches."""

from vaelab.data.loader import ImageDataset, TensorLoader
from vaelab.data.store import (
    DATASETS,
    SPLITS,
    fetch,
    info,
    load_arrays,
    load_split,
    register_arrays,
)

__all__ = [
    "DATASETS",
    "SPLITS",
    "ImageDataset",
    "TensorLoader",
    "fetch",
    "info",
    "load_arrays",
    "load_split",
    "register_arrays",
]
