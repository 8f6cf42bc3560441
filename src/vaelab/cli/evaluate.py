"""`vaelab evaluate`, `vaelab sample` and `vaelab interpolate`.

Options, the run folder and the output path are all checked before the model runs, so a typo
costs milliseconds instead of the minutes an evaluation takes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vaelab.cli.fields import given_values
from vaelab.config import MAX_SEED, EvalConfig
from vaelab.errors import ConfigError, RunError

HOURS = "more would run for hours on a CPU"
COVARIANCE = "Fréchet distances fit a covariance"
# Each integer option's (low, high or None, why); beyond the highs, figures stop being readable
# and the work runs for hours. The k-NN probe asks for 5 neighbours.
SEED = (0, MAX_SEED, "seeds are 32-bit")
EVALUATE_BOUNDS = {
    "--seed": SEED,
    "--iw-samples": (1, 100_000, HOURS),
    "--n-samples": (2, 100_000, f"{COVARIANCE}; {HOURS}"),
    "--limit": (2, None, COVARIANCE),
    "--iw-limit": (1, None, "at least one image"),
    "--probe-train": (5, None, "the k-NN probe uses 5 neighbours"),
}
MAX_GRID_SIDE = 500
SAMPLE_BOUNDS = {
    "--seed": SEED,
    "-n": (1, 10_000, "a grid of more images is unreadable"),
    "--nrow": (1, MAX_GRID_SIDE, "wider grids are unreadable"),
}
LABEL = (0, 255, "IDX labels are bytes")
INTERPOLATE_BOUNDS = {
    "--seed": SEED,
    "--pairs": (1, 100, "more rows are unreadable"),
    "--steps": (1, 100, "longer strips are unreadable"),
    "--from-label": LABEL,
    "--to-label": LABEL,
}


def _label_pairs(text: str) -> tuple[tuple[int, int], ...]:
    pairs = []
    for item in text.split(","):
        try:
            a, b = (int(v) for v in item.strip().split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"label pairs look like 5:8,4:8,1:7 (FROM:TO, labels 0..255), got {text!r}"
            ) from None
        if not (0 <= a <= 255 and 0 <= b <= 255):
            raise argparse.ArgumentTypeError(f"labels are 0..255, got {a}:{b}")
        pairs.append((a, b))
    return tuple(pairs)


def check_options(
    opts: Any, bounds: Mapping[str, tuple[int, int | None, str]], out_dir: bool = False
) -> None:
    """--device, each integer option within its bounds (None: not given), then --out: a folder
    (`out_dir`) or a file."""
    from vaelab.train.preflight import check_device, check_out_dir, check_out_file

    check_device(opts.device)
    for flag, (low, high, why) in bounds.items():
        value = getattr(opts, flag.lstrip("-").replace("-", "_"))
        if value is not None and not (low <= value and (high is None or value <= high)):
            must = f">= {low}" if high is None else f"in {low}..{high}"
            raise ConfigError(f"invalid option {flag} {value}: must be {must} ({why})")
    if getattr(opts, "out", None) is not None:
        (check_out_dir if out_dir else check_out_file)(opts.out)


def _run_model(run_dir: str, checkpoint: str = "best") -> tuple[Any, Any]:
    """(model on the CPU, config) of the run: its checkpoint loaded (a few MB) before any work."""
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


def check_labels(
    cfg: Any, labels: list[int], split: str = "test", limit: int | None = None, paths: bool = False
):
    """Every label must occur among the images used (the run's dataset, loaded and verified).
    Unlabelled images pass (evaluate and study skip the label pairs' paths) unless `paths`: the
    command draws nothing but those paths."""
    import numpy as np

    from vaelab.data import load_arrays
    from vaelab.data.store import UNLABELLED, split_arrays

    arrays = load_arrays(cfg.dataset, cfg.data_dir, cfg.image_size, cfg.color)
    present = set(np.unique(split_arrays(arrays, split)[1][:limit]).tolist())
    if UNLABELLED in present and not paths:
        return
    if UNLABELLED in present:
        raise ConfigError(
            f"{cfg.data_dir} is a flat folder without labels: interpolate joins images of two "
            "chosen labels; sort the pictures into class sub-folders (one per class)"
        )
    missing = sorted(set(labels) - present)
    if missing:
        where = f"the first {limit} {split} images" if limit else f"the {split} split"
        raise ConfigError(
            f"no image with label {', '.join(map(str, missing))} in {where} of {cfg.dataset}; "
            f"pick labels among {', '.join(map(str, sorted(present)))}"
        )


def cmd_evaluate(args: argparse.Namespace) -> int:
    from vaelab.evaluate import evaluate_run

    # Every option but RUN_DIR is an EvalConfig field; those not given keep its defaults.
    ecfg = EvalConfig(**given_values(args, [f.name for f in dataclasses.fields(EvalConfig)]))
    check_options(ecfg, EVALUATE_BOUNDS)
    cfg = _run_model(args.run_dir, ecfg.checkpoint)[1]
    check_labels(cfg, [label for pair in ecfg.pairs for label in pair], ecfg.split, ecfg.limit)
    m = evaluate_run(args.run_dir, ecfg)
    shown = {k: v for k, v in m.items() if "kl_dim" not in k and "class_frac" not in k}
    print(json.dumps(shown, indent=1))
    print(f"wrote {Path(args.run_dir) / 'eval.json'} and {Path(args.run_dir) / 'figures'}/")
    return 0


def _kind(model: Any, cfg: Any) -> str:
    return f"VAE β={cfg.beta:g}" if model.is_vae else "AE"


def cmd_sample(args: argparse.Namespace) -> int:
    check_options(args, SAMPLE_BOUNDS)
    rows = -(-args.n // min(args.nrow, args.n))
    if rows > MAX_GRID_SIDE:
        raise ConfigError(
            f"-n {args.n} with --nrow {args.nrow} makes {rows} rows (at most {MAX_GRID_SIDE} "
            "fit in one image); raise --nrow"
        )
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
    check_options(args, INTERPOLATE_BOUNDS)
    model, cfg = _run_model(args.run_dir)  # on the CPU until the labels are checked
    check_labels(cfg, [args.from_label, args.to_label], paths=True)

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
    title = f"{_kind(model, cfg)}: {args.mode} {label} (start, {args.steps} codes, end)"
    figures.image_rows(args.out, rows, f"{title}, seed {args.seed}")
    print(f"wrote {args.out}")
    return 0


def _common(p: argparse.ArgumentParser, func: Any, *, out: bool) -> None:
    if out:
        p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=func)


def _literal_flag(p: argparse.ArgumentParser, name: str, help_: str) -> None:
    """--NAME taking one of the values of EvalConfig.NAME's Literal type."""
    values = typing.get_args(typing.get_type_hints(EvalConfig)[name])
    p.add_argument(f"--{name}", choices=values, metavar=name.upper(), help=help_)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="metrics (eval.json) and figures of a trained run")
    p.add_argument("run_dir")
    _literal_flag(p, "split", "test (default), val or train")
    p.add_argument("--iw-samples", type=int, help="K of the IW-NLL (default 1000)")
    p.add_argument("--limit", type=int, help="evaluate on the first N images")
    p.add_argument("--iw-limit", type=int, help="IW-NLL on the first N images only")
    p.add_argument("--n-samples", type=int, help="prior samples (default 10000)")
    p.add_argument("--probe-train", type=int, help="train codes for the probes")
    p.add_argument("--pairs", type=_label_pairs, help="interpolation label pairs, e.g. 5:8,4:8,1:7")
    _literal_flag(p, "checkpoint", "best (default) or last")
    _literal_flag(p, "classifier", "standard (default) or smoke")
    _common(p, cmd_evaluate, out=False)

    p = sub.add_parser("sample", help="a grid of images decoded from z ~ N(0, I)")
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--nrow", type=int, default=8)
    _common(p, cmd_sample, out=True)

    p = sub.add_parser("interpolate", help="decoded paths between test images of two labels")
    p.add_argument("run_dir")
    p.add_argument("--from-label", type=int, required=True)
    p.add_argument("--to-label", type=int, required=True)
    p.add_argument("--pairs", type=int, default=3, help="image pairs (default 3)")
    p.add_argument("--steps", type=int, default=7, help="interpolated codes (default 7)")
    p.add_argument("--mode", choices=("lerp", "slerp"), default="lerp")
    _common(p, cmd_interpolate, out=True)
