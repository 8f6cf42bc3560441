"""The `vaelab` command line: thin argparse wrappers over the Python API.

Every user-facing failure is a `VaelabError`, printed as one line `vaelab: error: ...` (problem and
fix) with its exit code: 2 for invalid configuration, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from vaelab import __version__
from vaelab.errors import VaelabError


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


# ----------------------------------------------------------------------------- data
def _data_fetch(args: argparse.Namespace) -> int:
    from vaelab.data import store

    manifest = store.fetch(args.dataset, args.data_dir, force=args.force, log=_log)
    spec = store.resolve_spec(args.dataset, args.data_dir)
    print(f"{args.dataset}: verified in {store.cache_dir(spec)} (source: {manifest['source']})")
    return 0


def _data_verify(args: argparse.Namespace) -> int:
    from vaelab.data import store

    spec = store.resolve_spec(args.dataset, args.data_dir)
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


def _data_info(args: argparse.Namespace) -> int:
    from vaelab.data import store

    result = store.info(args.dataset, args.data_dir)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"dataset {result['dataset']}  (source: {result['source']}; cache: {result['cache']})")
    for split, s in result["splits"].items():
        print(
            f"  {split:<9} {s['count']:>6} images  pixel mean {s['pixel_mean']:.4f}  "
            f"sha256 {s['sha256'][:16]}..."
        )
        print(f"            label counts {s['label_counts']}")
    return 0


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist or idx (default mnist)")
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder with train-/t10k- images/labels IDX files (.gz or not)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaelab",
        description="Train, evaluate and explain auto-encoders and beta-VAEs on MNIST-like images.",
    )
    parser.add_argument("--version", action="version", version=f"vaelab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    data = sub.add_parser("data", help="obtain, verify and describe datasets")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = data_sub.add_parser("fetch", help="download/convert, verify by sha256 and cache a dataset")
    _add_data_args(p)
    p.add_argument("--force", action="store_true", help="re-fetch even when the cache verifies")
    p.set_defaults(func=_data_fetch)
    p = data_sub.add_parser("verify", help="re-hash the cached files; exit 1 on any mismatch")
    _add_data_args(p)
    p.set_defaults(func=_data_verify)
    p = data_sub.add_parser("info", help="per-split counts, label counts, pixel mean, sha256")
    _add_data_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_data_info)

    for register in _COMMANDS:
        register(sub)
    return parser


def _commands() -> list:
    from vaelab import cli_eval, cli_explore, cli_study, cli_sweep, cli_train

    return [
        cli_train.register,
        cli_eval.register,
        cli_study.register,
        cli_explore.register,
        cli_sweep.register,
    ]


_COMMANDS: list = _commands()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except VaelabError as e:
        print(f"vaelab: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("vaelab: interrupted", file=sys.stderr)
        return 130
