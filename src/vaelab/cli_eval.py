"""`vaelab evaluate`, `vaelab sample` and `vaelab interpolate`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vaelab.errors import ConfigError, RunError


def _label_pairs(text: str) -> tuple[tuple[int, int], ...]:
    try:
        return tuple(tuple(int(v) for v in p.split(":")) for p in text.split(","))  # type: ignore[misc]
    except ValueError:
        raise argparse.ArgumentTypeError("label pairs look like 5:8,4:8,1:7") from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from vaelab.evaluation import EvalConfig, evaluate_run

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
    if args.split not in ("train", "val", "test"):
        raise ConfigError("invalid evaluate option 'split': train, val or test")
    m = evaluate_run(args.run_dir, ecfg)
    shown = {k: v for k, v in m.items() if "kl_dim" not in k and "class_frac" not in k}
    print(json.dumps(shown, indent=1))
    print(f"wrote {Path(args.run_dir) / 'eval.json'} and {Path(args.run_dir) / 'figures'}/")
    return 0


def _load(run_dir: str, device: str):
    from vaelab.checkpoint import load_model
    from vaelab.runtime import resolve_device

    if not (Path(run_dir) / "checkpoints" / "best.pt").is_file():
        raise RunError(f"{run_dir} has no checkpoints/best.pt; train it first")
    dev = resolve_device(device)
    model, cfg = load_model(run_dir, "best", dev)
    return model, cfg, dev


def cmd_sample(args: argparse.Namespace) -> int:
    from vaelab import figures
    from vaelab.evaluation.run import sample_prior

    if args.n < 1:
        raise ConfigError("invalid sample option 'n': must be >= 1")
    model, cfg, dev = _load(args.run_dir, args.device)
    images = sample_prior(model, args.n, args.seed, dev)
    kind = f"VAE β={cfg.beta:g}" if model.is_vae else "AE"
    figures.image_grid(
        args.out,
        images,
        f"{kind}: {args.n} samples from N(0, I), seed {args.seed}",
        nrow=min(args.nrow, args.n),
    )
    print(f"wrote {args.out}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from vaelab import figures
    from vaelab.evaluation.run import eval_data_for, interpolation_paths, pick_pairs

    if args.pairs < 1 or args.steps < 1:
        raise ConfigError("invalid interpolate option: --pairs and --steps must be >= 1")
    model, cfg, dev = _load(args.run_dir, args.device)
    x, _, y = eval_data_for(cfg, "test", seed=args.seed, device=dev)
    pairs = pick_pairs(y, args.from_label, args.to_label, args.pairs, args.seed)
    paths = interpolation_paths(model, x, pairs, args.steps, args.mode)
    kind = f"VAE β={cfg.beta:g}" if model.is_vae else "AE"
    labels = [f"{args.from_label}→{args.to_label} #{i + 1}" for i in range(len(paths))]
    figures.interpolation_strips(
        args.out,
        paths,
        labels,
        f"{kind}: {args.mode} {args.from_label}→{args.to_label} "
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
