"""`vaelab evaluate`: every number and figure the study uses, for one trained run.

Writes `RUN_DIR/eval.json` (a flat object of namespaced keys, every value a plain number; units
in the README) and `RUN_DIR/figures/*.png`. AE runs get the same metrics except those that need a
posterior (ELBO, KL, active units, IW-NLL); their prior samples are decoded from N(0, I) as in the
study.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab import figures
from vaelab.checkpoint import load_model
from vaelab.config import TrainConfig
from vaelab.data import load_arrays
from vaelab.data.store import split_arrays
from vaelab.errors import ConfigError, RunError
from vaelab.evaluation import classifier as clf
from vaelab.evaluation.estimators import active_units, elbo, iw_log_likelihood
from vaelab.evaluation.frechet import frechet_distance_features
from vaelab.evaluation.interpolation import interpolate, path_smoothness
from vaelab.evaluation.probes import knn_accuracy, linear_probe_accuracy
from vaelab.fsutil import atomic_write_json
from vaelab.losses import bce, kl_per_dim, neg_log_likelihood, sse
from vaelab.models import AutoEncoder
from vaelab.runlog import read_metrics
from vaelab.runtime import resolve_device

DEFAULT_PAIRS = ((5, 8), (4, 8), (1, 7))
GROUPS = ("reconstruction", "likelihood", "samples", "probes", "interpolation")
# What a β-selection trial needs: EvalConfig(groups=SELECTION_GROUPS, figures=False).
SELECTION_GROUPS = ("reconstruction", "samples")


@dataclass
class EvalConfig:
    split: str = "test"
    groups: tuple[str, ...] = GROUPS
    """Metric groups to compute."""
    """Split to evaluate on (probes always fit on `train` codes)."""
    iw_samples: int = 1000
    """K of the importance-weighted NLL (5000 to compare with published numbers)."""
    limit: int | None = None
    """Evaluate on the first N images of the split (default: all)."""
    iw_limit: int | None = None
    """IW-NLL on the first N of those images only (default: all of them)."""
    n_samples: int = 10_000
    """Prior samples for the Fréchet distance and class histogram."""
    probe_train: int | None = None
    """Training codes for the probes (default: the whole train split)."""
    pairs: tuple[tuple[int, int], ...] = DEFAULT_PAIRS
    """Label pairs (from, to) for interpolation."""
    n_pairs: int = 3
    """Image pairs per label pair."""
    steps: int = 5
    """Interpolated codes between the start and end image."""
    seed: int = 0
    checkpoint: str = "best"
    classifier: str = "standard"
    """Reference classifier variant: `standard` (≥ 99 % on MNIST) or `smoke` (tests only)."""
    device: str = "auto"
    figures: bool = True
    log: Callable[[str], None] | None = field(default=None, repr=False)

    def validate(self) -> EvalConfig:
        for name in ("iw_samples", "n_samples", "n_pairs", "steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"invalid evaluate option '{name}': must be >= 1, got {v!r}")
        for name in ("limit", "iw_limit", "probe_train"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ConfigError(f"invalid evaluate option '{name}': must be >= 1, got {v!r}")
        if self.checkpoint not in ("best", "last"):
            raise ConfigError("invalid evaluate option 'checkpoint': best or last")
        return self


@torch.no_grad()
def _batched(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, bs: int = 1000) -> list[Any]:
    return [fn(x[i : i + bs]) for i in range(0, len(x), bs)]


def _images(model: AutoEncoder, z: torch.Tensor) -> torch.Tensor:
    """Decoded image means in [0, 1] (sigmoid of logits) for codes (N, nz), batched."""
    return torch.cat(_batched(lambda b: torch.sigmoid(model.decode(b)), z, 2000))


def _data(
    cfg: TrainConfig,
    split: str,
    limit: int | None,
    seed: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x in [0,1] for reconstruction metrics, x for likelihoods, labels) on `device`.

    Likelihood data: Bernoulli runs score a seeded binarisation of the split; Gaussian runs a
    uniformly dequantised copy ((byte + u)/256), so the density is of continuous data.
    """
    x8, y = split_arrays(load_arrays(cfg.dataset, cfg.data_dir), split)
    x8, y = x8[:limit], y[:limit]
    x = torch.from_numpy(x8).to(device).float() / 255.0
    g = torch.Generator(device="cpu").manual_seed(seed + 7)
    if cfg.likelihood == "bernoulli":
        x_lik = torch.bernoulli(x.cpu(), generator=g).to(device)
        if cfg.binarize != "none":
            x = x_lik
    else:
        x_lik = ((torch.from_numpy(x8).float() + torch.rand(x8.shape, generator=g)) / 256.0).to(
            device
        )
    return x, x_lik, torch.from_numpy(y).to(device)


def load_eval_data(
    dataset: str,
    split: str = "test",
    *,
    data_dir: str | None = None,
    limit: int | None = None,
    likelihood: str = "gaussian",
    binarize: str = "none",
    seed: int = 0,
    device: torch.device | str = "cpu",
):
    cfg = TrainConfig(dataset=dataset, data_dir=data_dir, likelihood=likelihood, binarize=binarize)
    return _data(cfg, split, limit, seed, torch.device(device))


def pick_pairs(y: torch.Tensor, a: int, b: int, n: int, seed: int) -> list[tuple[int, int]]:
    """n (index of label a, index of label b) pairs of distinct test images, seeded."""
    g = torch.Generator().manual_seed(seed * 131 + a * 10 + b)
    ia = torch.nonzero(y.cpu() == a).flatten()
    ib = torch.nonzero(y.cpu() == b).flatten()
    if len(ia) == 0 or len(ib) == 0:
        raise ConfigError(
            f"no test images with label {a if len(ia) == 0 else b}; pick other "
            "--from-label/--to-label values"
        )
    ia = ia[torch.randperm(len(ia), generator=g)][:n]
    ib = ib[torch.randperm(len(ib), generator=g)][:n]
    return list(zip(ia.tolist(), ib.tolist(), strict=False))


def interpolation_paths(
    model: AutoEncoder, x: torch.Tensor, pairs: list[tuple[int, int]], steps: int, mode: str
) -> list[torch.Tensor]:
    """Decoded paths (steps + 2, C, H, W) per pair; the ends are the actual input images."""
    with torch.no_grad():
        codes = model.embed(x[[i for p in pairs for i in p]])
        out = []
        for j, (ia, ib) in enumerate(pairs):
            z = interpolate(codes[2 * j], codes[2 * j + 1], steps, mode)
            imgs = torch.sigmoid(model.decode(z))
            imgs[0], imgs[-1] = x[ia], x[ib]
            out.append(imgs)
    return out


def sample_prior(model: AutoEncoder, n: int, seed: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(n, model.latent_dim, generator=g).to(device)
    with torch.no_grad():
        return _images(model, z)


def evaluate_run(
    run_dir: str | Path, ecfg: EvalConfig | None = None, **kw: Any
) -> dict[str, float]:
    """Evaluate `run_dir` (see the module docstring); returns the eval.json contents."""
    ecfg = (ecfg or EvalConfig(**kw)).validate()
    run_dir = Path(run_dir)
    if not (run_dir / "checkpoints" / f"{ecfg.checkpoint}.pt").is_file():
        raise RunError(
            f"{run_dir} has no checkpoints/{ecfg.checkpoint}.pt; train it first "
            "(vaelab train --out RUN_DIR)"
        )
    echo = ecfg.log or (lambda m: print(m, file=sys.stderr))
    with open(run_dir / "eval.log", "a") as log_file:

        def say(msg: str) -> None:
            echo(msg)
            log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
            log_file.flush()

        return _evaluate(run_dir, ecfg, say)


def _evaluate(run_dir: Path, ecfg: EvalConfig, say: Callable[[str], None]) -> dict[str, float]:
    t_start = time.perf_counter()
    device = resolve_device(ecfg.device)
    model, cfg = load_model(run_dir, ecfg.checkpoint, device)
    # channels_last: measured +20-50 % decoder throughput for no-grad passes on CPU.
    model = model.to(memory_format=torch.channels_last)
    torch.manual_seed(ecfg.seed)
    x, x_lik, y = _data(cfg, ecfg.split, ecfg.limit, ecfg.seed, device)
    m: dict[str, float] = {"eval/n_images": len(x), "eval/seed": ecfg.seed}
    split = ecfg.split
    fig_dir = run_dir / "figures"

    # ---- reconstructions from μ ------------------------------------------------------------
    with torch.no_grad():
        if model.is_vae:
            post = _batched(model.posterior, x)
            mu = torch.cat([p[0] for p in post])
            log_sigma = torch.cat([p[1] for p in post])
        else:
            mu, log_sigma = torch.cat(_batched(model.encode, x)), None
        logits = torch.cat(_batched(model.decode, mu))
    recon = torch.sigmoid(logits)
    sse_img = sse(logits, x)
    m[f"{split}/sse"] = float(sse_img.double().mean())
    m[f"{split}/mse"] = m[f"{split}/sse"] / x[0].numel()
    m[f"{split}/bce"] = float(bce(logits, x).double().mean())
    say(f"{run_dir.name}: reconstruction SSE {m[f'{split}/sse']:.3f} per image")

    # ---- likelihood bounds (VAE) -------------------------------------------------------------
    n_au = None
    if model.is_vae:
        assert log_sigma is not None

        def log_lik(xb: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
            return -neg_log_likelihood(model.decode(z), xb, cfg.likelihood, cfg.sigma2)

        g = torch.Generator(device=device).manual_seed(ecfg.seed + 11)
        el, kl = (
            torch.cat(t)
            for t in zip(
                *_batched(lambda b: elbo(model.posterior, log_lik, b, generator=g), x_lik, 500),
                strict=True,
            )
        )
        d = x[0].numel()
        m[f"{split}/elbo"] = float(el.mean())
        m[f"{split}/kl"] = float(kl.mean())
        kl_dim = kl_per_dim(mu, log_sigma).double().mean(0)
        for i, v in enumerate(kl_dim.tolist()):
            m[f"{split}/kl_dim_{i:02d}"] = v
        n_au, _ = active_units(mu)
        m[f"{split}/active_units"] = n_au
    if model.is_vae and "likelihood" in ecfg.groups:
        x_iw = x_lik[: ecfg.iw_limit]
        t0 = time.perf_counter()
        say(f"{run_dir.name}: IW-NLL with K={ecfg.iw_samples} on {len(x_iw)} images")
        # ~1000 decoder passes per forward: larger batches measured slower on CPU (the
        # allocator maps and faults in 100+ MB activation buffers on every forward).
        chunk = min(ecfg.iw_samples, 1000)
        bs = max(1, 1000 // chunk)
        lp = torch.cat(
            _batched(
                lambda b: iw_log_likelihood(
                    model.posterior,
                    log_lik,
                    b,
                    ecfg.iw_samples,
                    chunk=chunk,
                    generator=g,
                ),
                x_iw,
                bs,
            )
        )
        m[f"{split}/iw_nll"] = float(-lp.mean())
        m[f"{split}/iw_bits_per_dim"] = m[f"{split}/iw_nll"] / (d * math.log(2)) + (
            8.0 if cfg.likelihood == "gaussian" else 0.0
        )
        m[f"{split}/iw_k"] = ecfg.iw_samples
        m[f"{split}/iw_n_images"] = len(x_iw)
        m[f"{split}/iw_time_s"] = time.perf_counter() - t0
        m[f"{split}/neg_elbo_same_images"] = float(-el[: len(x_iw)].mean())

    # ---- sample quality with the reference classifier --------------------------------------
    classifier, meta = clf.reference_classifier(
        cfg.dataset, cfg.data_dir, variant=ecfg.classifier, device=device, log=say
    )
    m["classifier/test_accuracy"] = meta["test_accuracy"]
    feats_real, probs_real = clf.classify(classifier, x)
    x_tr8, y_tr = split_arrays(load_arrays(cfg.dataset, cfg.data_dir), "train")
    n_floor = min(len(x_tr8), max(len(x), 1000))
    floor_imgs = torch.from_numpy(x_tr8[:n_floor]).float() / 255.0
    feats_floor, _ = clf.classify(classifier, floor_imgs)
    samples = sample_prior(model, ecfg.n_samples, ecfg.seed + 1, device)
    feats_s, probs_s = clf.classify(classifier, samples)
    feats_r, probs_r = clf.classify(classifier, recon)
    m["samples/fd"] = frechet_distance_features(feats_s, feats_real)
    m["recon/fd"] = frechet_distance_features(feats_r, feats_real)
    m["floor/fd_train_vs_test"] = frechet_distance_features(feats_floor, feats_real)
    hist = np.bincount(probs_s.argmax(1), minlength=probs_s.shape[1]) / len(probs_s)
    nz_hist = hist[hist > 0]
    m["samples/class_entropy"] = float(-(nz_hist * np.log(nz_hist)).sum()) + 0.0  # no -0.0
    m["samples/confidence"] = float(probs_s.max(1).mean())
    m["real/confidence"] = float(probs_real.max(1).mean())
    m["recon/classifier_accuracy"] = float((probs_r.argmax(1) == y.cpu().numpy()).mean())
    for c, v in enumerate(hist.tolist()):
        m[f"samples/class_frac_{c}"] = v
    curves: dict[str, list[np.ndarray]] = {"lerp": [], "slerp": []}
    strips: dict[tuple[int, int], list[tuple[str, torch.Tensor]]] = {}
    say(
        f"{run_dir.name}: sample FD {m['samples/fd']:.2f} (floor "
        f"{m['floor/fd_train_vs_test']:.2f}), class entropy {m['samples/class_entropy']:.3f}"
    )

    # ---- representation probes --------------------------------------------------------------
    if "probes" in ecfg.groups:
        _probes(m, model, x_tr8, y_tr, mu, y, ecfg, device, say)
    if "interpolation" in ecfg.groups:
        _interp(m, model, classifier, x, y, ecfg, strips, curves)
    if ecfg.figures:
        _figs(
            m,
            model,
            cfg,
            x,
            recon,
            samples,
            mu,
            log_sigma,
            y,
            run_dir,
            ecfg,
            strips,
            curves,
            fig_dir,
            split,
        )
    m["eval/time_s"] = time.perf_counter() - t_start
    atomic_write_json(run_dir / "eval.json", m)
    say(f"{run_dir.name}: wrote eval.json in {m['eval/time_s']:.1f} s")
    return m


def _probes(m, model, x_tr8, y_tr, mu, y, ecfg, device, say):
    x_ptr = torch.from_numpy(x_tr8[: ecfg.probe_train]).to(device).float() / 255.0
    with torch.no_grad():
        z_tr = torch.cat(_batched(model.embed, x_ptr)).cpu()
    y_tr_t = torch.from_numpy(y_tr[: ecfg.probe_train])
    m["probe/linear_acc"] = linear_probe_accuracy(z_tr, y_tr_t, mu.cpu(), y.cpu())
    m["probe/knn_acc"] = knn_accuracy(z_tr, y_tr_t, mu.cpu(), y.cpu(), k=5)
    m["probe/n_train"] = len(z_tr)
    say(f"linear probe {m['probe/linear_acc']:.4f}, 5-NN {m['probe/knn_acc']:.4f}")


def _interp(m, model, classifier, x, y, ecfg, strips, curves):
    for mode in ("lerp", "slerp"):
        smooth = []
        for a, b in ecfg.pairs:
            pairs = pick_pairs(y, a, b, ecfg.n_pairs, ecfg.seed)
            for j, path in enumerate(interpolation_paths(model, x, pairs, ecfg.steps, mode)):
                _, probs = clf.classify(classifier, path)
                curves[mode].append(probs.max(1))
                smooth.append(path_smoothness(path))
                strips.setdefault((a, b), []).append((f"{a}→{b} #{j + 1} {mode}", path))
        inner = np.stack(curves[mode])[:, 1:-1]
        m[f"interp/{mode}/mean_conf"] = float(inner.mean())
        m[f"interp/{mode}/min_conf"] = float(inner.min(1).mean())
        m[f"interp/{mode}/path_length_ratio"] = float(
            np.mean([s["path_length_ratio"] for s in smooth])
        )
        m[f"interp/{mode}/max_step_fraction"] = float(
            np.mean([s["max_step_fraction"] for s in smooth])
        )


def _figs(
    m,
    model,
    cfg,
    x,
    recon,
    samples,
    mu,
    log_sigma,
    y,
    run_dir,
    ecfg,
    strips,
    curves,
    fig_dir,
    split,
):
    if True:
        kind = f"{'VAE β=' + format(cfg.beta, 'g') if model.is_vae else 'AE'}"
        n_show = min(16, len(x))
        figures.reconstructions(
            fig_dir / "reconstructions.png",
            x[:n_show],
            recon[:n_show],
            f"{kind}: first {n_show} {split} images (top) and reconstructions from μ (bottom)",
        )
        figures.image_grid(
            fig_dir / "samples.png", samples[:64], f"{kind}: 64 samples decoded from z ~ N(0, I)"
        )
        records = read_metrics(run_dir / "metrics.jsonl")
        if records:
            figures.training_curves(fig_dir / "curves.png", records, f"{kind}: training curves")
        for (a, b), rows in strips.items():
            figures.interpolation_strips(
                fig_dir / f"interp_{a}to{b}.png",
                [r[1] for r in rows],
                [r[0] for r in rows],
                f"{kind}: interpolation {a}→{b} (start, {ecfg.steps} decoded codes, end)",
            )
        figures.confidence_curves(
            fig_dir / "interp_confidence.png",
            {k: np.stack(v) for k, v in curves.items()},
            f"{kind}: classifier confidence along paths (mean, min–max)",
        )
        _latent_figures(model, mu, log_sigma, y, fig_dir, kind)


def _latent_figures(
    model: AutoEncoder,
    mu: torch.Tensor,
    log_sigma: torch.Tensor | None,
    y: torch.Tensor,
    fig_dir: Path,
    kind: str,
) -> None:
    mu_c = mu.double().cpu()
    mu_c = mu_c - mu_c.mean(0)
    _, s, v = torch.linalg.svd(mu_c, full_matrices=False)
    xy = (mu_c @ v[:2].T).numpy()
    explained = (s[:2] ** 2 / (s**2).sum()).tolist()
    figures.latent_map(
        fig_dir / "latent_map.png",
        xy,
        y.cpu().numpy(),
        f"{kind}: test codes μ, PCA ({explained[0]:.0%} + {explained[1]:.0%} of variance)",
    )
    var = mu.double().var(0).cpu()
    if log_sigma is not None:
        score = kl_per_dim(mu, log_sigma).double().mean(0)
        order = torch.argsort(score.cpu(), descending=True)
        figures.bars(
            fig_dir / "kl_per_dim.png",
            score.cpu()[order].numpy(),
            f"{kind}: KL per latent dimension",
            "KL (nats per image)",
        )
    else:
        order = torch.argsort(var, descending=True)
    figures.bars(
        fig_dir / "activity.png",
        var[order].numpy(),
        f"{kind}: Cov_x(E[z_u|x]) per dimension (active if > 0.01)",
        "variance of μ over test images",
        threshold=1e-2,
    )
    dims = order[:6].tolist()
    base = mu.mean(0)
    values = np.linspace(-3, 3, 9)
    which = "informative (KL)" if log_sigma is not None else "variable"
    rows = []
    with torch.no_grad():
        for d in dims:
            z = base.repeat(len(values), 1)
            z[:, d] = base[d] + torch.as_tensor(values, dtype=z.dtype) * var[d].sqrt().to(z)
            rows.append(torch.sigmoid(model.decode(z)))
    figures.traversals(
        fig_dir / "traversals.png",
        rows,
        dims,
        values,
        f"{kind}: the 6 most {which} dims, mean code ± k·std",
    )
