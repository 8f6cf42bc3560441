"""What an evaluation's figures are drawn from (decoded images, curves, the latent map), stored
once as `RUN_DIR/eval_arrays.npz` so that figures and reports never load a model. No torch here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vaelab.errors import RunError
from vaelab.fsutil import atomic_write

ARRAYS_FILE = "eval_arrays.npz"


@dataclass
class EvalArrays:
    """Images are float32 (N, C, H, W) in [0, 1]; paths are in EvalConfig.pairs order, n_pairs
    paths per label pair, the same image pairs in every mode."""

    kind: str
    """How figures name the model: `AE` or `VAE β=…`."""
    split: str
    steps: int
    """Decoded codes between the start and the end image of each path."""
    inputs: np.ndarray
    """The first (up to 16) evaluated images."""
    recon: np.ndarray
    """Their reconstructions, decoded from μ."""
    samples: np.ndarray
    """The first (up to 64) prior samples the sample metrics were measured on."""
    path_pairs: np.ndarray
    """(P, 2): the label pair of each path."""
    paths: dict[str, np.ndarray]
    """lerp, slerp -> (P, steps + 2, C, H, W): decoded paths whose ends are the real images."""
    confidence: dict[str, np.ndarray]
    """lerp, slerp -> (P, steps + 2): the classifier's top probability along each path."""
    realism: dict[str, np.ndarray]
    """lerp, slerp, pixel (the cross-fade baseline) -> (P, steps): realism of each decode."""
    codes_2d: np.ndarray
    """(N, 2): the codes μ of the evaluated images on their first two principal components."""
    labels: np.ndarray
    """(N,): the labels of the evaluated images."""
    explained: np.ndarray
    """(2,): the share of the codes' variance on those two components."""
    activity: np.ndarray
    """Variance of μ over the evaluated images per latent dimension, in `dims` order."""
    kl_per_dim: np.ndarray | None
    """VAE only: mean KL per latent dimension, in `dims` order (most informative first)."""
    dims: np.ndarray
    """The latent dimensions, most informative (VAE: KL; AE: variance of μ) first."""
    traversal_values: np.ndarray
    """(V,): the offsets, in standard deviations of μ, of each traversal column."""
    traversals: np.ndarray
    """(6, V, C, H, W): decodes of the mean code moved along each of the first six `dims`."""

    def save(self, run_dir: Path) -> Path:
        """Write RUN_DIR/eval_arrays.npz atomically (dict fields as `field/key` entries)."""
        flat: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                flat |= {f"{f.name}/{k}": np.asarray(v) for k, v in value.items()}
            elif value is not None:
                flat[f.name] = np.asarray(value)
        return atomic_write(run_dir / ARRAYS_FILE, lambda out: np.savez_compressed(out, **flat))

    @classmethod
    def load(cls, run_dir: Path) -> EvalArrays:
        """Read RUN_DIR/eval_arrays.npz (no pickles), or fail in one line naming the fix."""
        path = run_dir / ARRAYS_FILE
        try:
            with np.load(path, allow_pickle=False) as z:
                flat = {k: z[k] for k in z.files}
            values: dict[str, Any] = {}
            for f in dataclasses.fields(cls):
                prefix = f"{f.name}/"
                if str(f.type).startswith("dict"):
                    values[f.name] = {
                        k.removeprefix(prefix): v for k, v in flat.items() if k.startswith(prefix)
                    }
                elif f.type in ("str", "int"):
                    values[f.name] = flat[f.name].item()
                else:
                    values[f.name] = flat.get(f.name) if "None" in str(f.type) else flat[f.name]
            return cls(**values)
        except (OSError, ValueError, KeyError) as e:
            raise RunError(
                f"{path} is missing or unreadable ({type(e).__name__}: {e}); re-evaluate the run "
                f"(vaelab evaluate {run_dir})"
            ) from None
