"""`vaelab data fetch|verify|info`: obtain, verify and describe datasets."""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial

from vaelab.errors import ConfigError


def check_data_args(args: argparse.Namespace) -> None:
    """--dataset is known and --data-dir, when given, is not empty."""
    from vaelab.data.store import DATASETS

    if args.dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {args.dataset!r}; choose one of {', '.join(DATASETS)}")
    if args.data_dir is not None and not args.data_dir.strip():
        raise ConfigError("--data-dir is empty; give a folder or leave it out")


def cmd_fetch(args: argparse.Namespace) -> int:
    from vaelab.data import store

    check_data_args(args)
    options = {"image_size": args.image_size, "color": args.color}
    log = partial(print, file=sys.stderr)
    manifest = store.fetch(args.dataset, args.data_dir, force=args.force, log=log, **options)
    spec = store.resolve_spec(args.dataset, args.data_dir, **options)
    print(f"{args.dataset}: verified in {store.cache_dir(spec)} (source: {manifest['source']})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from vaelab.data import store

    check_data_args(args)
    spec = store.resolve_spec(args.dataset, args.data_dir, args.image_size, args.color)
    if args.data_dir is not None:
        store.check_named_folder(args.dataset, args.data_dir)
    status = store.check_cache(spec)
    for problem in status.problems:
        print(
            f"vaelab: verify failed: {problem}; repair with `vaelab data fetch --dataset "
            f"{args.dataset}`",
            file=sys.stderr,
        )
    if status.ok:
        print(f"{args.dataset}: all {len(status.manifest['files'])} files match their sha256")  # type: ignore[index]
    return 0 if status.ok else 1


def cmd_info(args: argparse.Namespace) -> int:
    from vaelab.data import store

    check_data_args(args)
    result = store.info(args.dataset, args.data_dir, args.image_size, args.color)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"dataset {result['dataset']}  (source: {result['source']}; cache: {result['cache']})")
    for split, s in result["splits"].items():
        mean = "-" if s["pixel_mean"] is None else f"{s['pixel_mean']:.4f}"
        print(
            f"  {split:<9} {s['count']:>6} images  pixel mean {mean}  sha256 {s['sha256'][:16]}..."
        )
        counts = s["label_counts"] or "none (a flat folder: the images are unlabelled)"
        print(f"            {'x'.join(map(str, s['shape']))} pixels, label counts {counts}")
    if result["classes"]:
        print(f"  classes (label order): {', '.join(result['classes'])}")
    return 0


def add_folder_args(p: argparse.ArgumentParser) -> None:
    """--image-size and --color: how a picture folder (--dataset folder) is imported."""
    p.add_argument(
        "--image-size",
        type=int,
        choices=(28, 32, 64),
        help="--dataset folder: resize the shorter side and centre-crop (default: the pictures' "
        "own size when they share one of 28, 32, 64)",
    )
    p.add_argument(
        "--color",
        choices=("grey", "rgb"),
        help="--dataset folder: grey or rgb (default: rgb when any picture has colour)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="obtain, verify and describe datasets")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    actions = {
        "fetch": (cmd_fetch, "download/convert, verify by sha256 and cache a dataset"),
        "verify": (cmd_verify, "re-hash the cached files; exit 1 on any mismatch"),
        "info": (cmd_info, "per-split counts, label counts, pixel mean, sha256"),
    }
    for name, (func, help_) in actions.items():
        p = data_sub.add_parser(name, help=help_)
        p.add_argument(
            "--dataset", default="mnist", help="mnist, fashion-mnist, idx or folder (default mnist)"
        )
        p.add_argument(
            "--data-dir",
            help="folder with train-/t10k- images/labels IDX files (.gz or not); for mnist and "
            "fashion-mnist it must hold exactly that dataset (checked by sha256); for folder: "
            "pictures in class sub-folders or flat, optionally under train/ and test/",
        )
        add_folder_args(p)
        p.set_defaults(func=func)
    fetch, info = data_sub.choices["fetch"], data_sub.choices["info"]
    fetch.add_argument("--force", action="store_true", help="re-fetch even when the cache verifies")
    info.add_argument("--json", action="store_true", help="print one JSON object")
