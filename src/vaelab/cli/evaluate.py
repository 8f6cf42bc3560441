"""`vaelab evaluate`, `vaelab sample` and `vaelab interpolate`.

Options, the run folder and the output path are all checked before the model runs, so a typo
costs milliseconds instead of the minutes an evaluation takes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vaelab.errors import ConfigError, RunError

# Beyond these, figures stop being readable and the work runs for hours; the reasons are in
# the messages.
MAX_SAMPLES = 10_000
MAX_GRID_SIDE = 500
MAX_STEPS = 100
MAX_PAIRS = 100
MAX_IW_SAMPLES = 100_000
MAX_PRIOR_SAMPLES = 100_000
# Fréchet distances fit a covariance (>= 2 images); the k-NN probe asks for 5 neighbours.
MIN_FD_IMAGES = 2
MIN_PROBE_TRAIN = 5


def _label_pairs(text: str) -> tuple[tuple[int, int], ...]:
    pairs = []
    for item in text.split(","):
        parts = item.strip().split(":")
        try:
            a, b = (int(v) for v in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"label pairs look like 5:8,4:8,1:7 (FROM:TO, labels 0..255), got {text!r}"
            ) from None
        if not (0 <= a <= 255 and 0 <= b <= 255):
            raise argparse.ArgumentTypeError(f"labels are 0..255, got {a}:{b}")
        pairs.append((a, b))
    return tuple(pairs)


def _check_device_seed_out(args: argparse.Namespace) -> None:
    """--device and --seed, and --out when the command writes a file."""
    from vaelab.config import MAX_SEED
    from vaelab.train.preflight import check_device, check_int_range, check_out_file

    check_device(args.device)
    check_int_range("--seed", args.seed, 0, MAX_SEED, "seeds are 32-bit")
    if getattr(args, "out", None) is not None:
        check_out_file(args.out)


def _run_model(run_dir: str, checkpoint: str = "best") -> tuple[Any, Any]:
    """(model on the CPU, validated config) of the run, after checking that the folder holds a
    checkpoint that loads into the model its config describes (a few MB, before any work)."""
    from vaelab.train.checkpoint import load_model

    path = Path(run_dir)
    if not str(run_dir).strip():
        raise ConfigError("RUN_DIR is empty; give the folder of a trained run")
    if not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        raise RunError(f"{run_dir} {what}; give the folder of a trained run (vaelab train --out)")
    if not (path / "checkpoints" / f"{checkpoint}.pt").is_file():
        raise RunError(
            f"{run_dir} has no checkpoints/{checkpoint}.pt; train it first "
            "(vaelab train --out RUN_DIR)"
        )
    return load_model(path, checkpoint, "cpu")


def check_labels(cfg: Any, labels: list[int], split: str = "test", limit: int | None = None):
    """Every label must occur among the images used (the run's dataset, loaded and verified)."""
    import numpy as np

    from vaelab.data import load_arrays
    from vaelab.data.store import split_arrays

    y = split_arrays(load_arrays(cfg.dataset, cfg.data_dir), split)[1][:limit]
    present = set(np.unique(y).tolist())
    missing = sorted(set(labels) - present)
    if missing:
        where = f"the first {limit} {split} images" if limit else f"the {split} split"
        raise ConfigError(
            f"no image with label {', '.join(map(str, missing))} in {where} of {cfg.dataset}; "
            f"pick labels among {', '.join(map(str, sorted(present)))}"
        )


def _check_evaluate(args: argparse.Namespace) -> Any:
    from vaelab.evaluate.classifier import VARIANTS
    from vaelab.train.preflight import check_int_range

    if args.split not in ("train", "val", "test"):
        raise ConfigError(f"invalid --split {args.split!r}: train, val or test")
    if args.checkpoint not in ("best", "last"):
        raise ConfigError(f"invalid --checkpoint {args.checkpoint!r}: best or last")
    if args.classifier not in VARIANTS:
        raise ConfigError(f"invalid --classifier {args.classifier!r}: {' or '.join(VARIANTS)}")
    _check_device_seed_out(args)
    why = "more would run for hours on a CPU"
    check_int_range("--iw-samples", args.iw_samples, 1, MAX_IW_SAMPLES, why)
    check_int_range("--n-samples", args.n_samples, 1, MAX_PRIOR_SAMPLES, why)
    floors = {
        "limit": (MIN_FD_IMAGES, "Fréchet distances fit a covariance"),
        "iw_limit": (1, "at least one image"),
        "probe_train": (MIN_PROBE_TRAIN, "the k-NN probe uses 5 neighbours"),
    }
    for name, (low, why) in floors.items():
        value = getattr(args, name)
        if value is not None and value < low:
            raise ConfigError(
                f"invalid --{name.replace('_', '-')} {value}: must be >= {low} ({why})"
            )
    if args.n_samples < MIN_FD_IMAGES:
        raise ConfigError(
            f"invalid --n-samples {args.n_samples}: must be >= {MIN_FD_IMAGES} (Fréchet "
            "distances fit a covariance)"
        )
    from vaelab.config import DEFAULT_PAIRS

    cfg = _run_model(args.run_dir, args.checkpoint)[1]
    labels = [label for pair in args.pairs or DEFAULT_PAIRS for label in pair]
    check_labels(cfg, labels, args.split, args.limit)
    return cfg


def cmd_evaluate(args: argparse.Namespace) -> int:
    _check_evaluate(args)
    from vaelab.evaluate import EvalConfig, evaluate_run

    ecfg = EvalConfig(
        split=args.split,
        iw_samples=args.iw_samples,
        limit=args.limit,
        iw_limit=args.iw_limit,
        n_samples=args.n_samples,
        seed=args.seed,
        probe_train=args.probe_train,
        checkpoint=args.checkpoint,
        classifier=args.classifier,
        device=args.device,
        **({"pairs": args.pairs} if args.pairs else {}),
    )
    m = evaluate_run(args.run_dir, ecfg)
    shown = {k: v for k, v in m.items() if "kl_dim" not in k and "class_frac" not in k}
    print(json.dumps(shown, indent=1))
    print(f"wrote {Path(args.run_dir) / 'eval.json'} and {Path(args.run_dir) / 'figures'}/")
    return 0


def _kind(model: Any, cfg: Any) -> str:
    return f"VAE β={cfg.beta:g}" if model.is_vae else "AE"


def cmd_sample(args: argparse.Namespace) -> int:
    from vaelab.train.preflight import check_int_range

    check_int_range("-n", args.n, 1, MAX_SAMPLES, "a grid of more images is unreadable")
    check_int_range("--nrow", args.nrow, 1, MAX_GRID_SIDE, "wider grids are unreadable")
    rows = -(-args.n // min(args.nrow, args.n))
    if rows > MAX_GRID_SIDE:
        raise ConfigError(
            f"-n {args.n} with --nrow {args.nrow} makes {rows} rows (at most {MAX_GRID_SIDE} "
            "fit in one image); raise --nrow"
        )
    _check_device_seed_out(args)
    model, cfg = _run_model(args.run_dir)

    from vaelab.models import sample_prior
    from vaelab.report import figures
    from vaelab.runtime import resolve_device, stream_seed

    dev = resolve_device(args.device)
    model = model.to(dev)
    images = sample_prior(model, args.n, stream_seed(args.seed, "user_samples"), dev)
    title = f"{_kind(model, cfg)}: {args.n} samples from N(0, I), seed {args.seed}"
    figures.image_grid(args.out, images.cpu().numpy(), title, nrow=min(args.nrow, args.n))
    print(f"wrote {args.out}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from vaelab.train.preflight import check_int_range

    check_int_range("--pairs", args.pairs, 1, MAX_PAIRS, "more rows are unreadable")
    check_int_range("--steps", args.steps, 1, MAX_STEPS, "longer strips are unreadable")
    for flag, label in (("--from-label", args.from_label), ("--to-label", args.to_label)):
        check_int_range(flag, label, 0, 255, "IDX labels are bytes")
    _check_device_seed_out(args)
    model, cfg = _run_model(args.run_dir)
    check_labels(cfg, [args.from_label, args.to_label])

    from vaelab.evaluate.context import eval_data_for
    from vaelab.evaluate.interpolation import interpolation_paths, pick_pairs
    from vaelab.report import figures
    from vaelab.runtime import resolve_device

    dev = resolve_device(args.device)
    model = model.to(dev)
    # The test images as the run saw them, loaded as `vaelab evaluate` loads them (binarised
    # Bernoulli runs: the same seeded binarisation draw).
    x, _, y = eval_data_for(cfg, "test", seed=args.seed, device=dev)
    pairs = pick_pairs(y, args.from_label, args.to_label, args.pairs, args.seed)
    paths = interpolation_paths(model, x, pairs, args.steps, args.mode)
    label = f"{args.from_label}→{args.to_label}"
    rows = [(f"{label} #{i + 1}", p.cpu().numpy()) for i, p in enumerate(paths)]
    figures.image_rows(
        args.out,
        rows,
        f"{_kind(model, cfg)}: {args.mode} {args.from_label}→{args.to_label} "
        f"(start, {args.steps} codes, end), seed {args.seed}",
    )
    print(f"wrote {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="metrics (eval.json) and figures of a trained run")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test", help="test (default), val or train")
    p.add_argument("--iw-samples", type=int, default=1000, help="K of the IW-NLL (default 1000)")
    p.add_argument("--limit", type=int, default=None, help="evaluate on the first N images")
    p.add_argument("--iw-limit", type=int, default=None, help="IW-NLL on the first N images only")
    p.add_argument("--n-samples", type=int, default=10_000, help="prior samples (default 10000)")
    p.add_argument("--probe-train", type=int, default=None, help="train codes for the probes")
    p.add_argument(
        "--pairs",
        type=_label_pairs,
        default=None,
        help="interpolation label pairs, e.g. 5:8,4:8,1:7",
    )
    p.add_argument("--checkpoint", default="best", help="best (default) or last")
    p.add_argument("--classifier", default="standard", help="standard (default) or smoke")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("sample", help="a grid of images decoded from z ~ N(0, I)")
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--nrow", type=int, default=8)
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("interpolate", help="decoded paths between test images of two labels")
    p.add_argument("run_dir")
    p.add_argument("--from-label", type=int, required=True)
    p.add_argument("--to-label", type=int, required=True)
    p.add_argument("--pairs", type=int, default=3, help="image pairs (default 3)")
    p.add_argument("--steps", type=int, default=7, help="interpolated codes (default 7)")
    p.add_argument("--mode", choices=("lerp", "slerp"), default="lerp")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_interpolate)
