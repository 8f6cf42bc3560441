"""`vaelab explore`: serve the latent-space explorer for one or more runs (or a study)."""

from __future__ import annotations

import argparse
import sys

from vaelab.errors import ConfigError

BOUNDS = {"port": (0, 65535), "map_points": (10, 10_000), "sliders": (1, 32)}


def cmd_explore(args: argparse.Namespace) -> int:
    from vaelab.explore.server import serve
    from vaelab.explore.session import MAX_RUNS, find_runs, load_explorer

    for name, (low, high) in BOUNDS.items():
        if not low <= (value := getattr(args, name)) <= high:
            flag = name.replace("_", "-")
            raise ConfigError(f"invalid explore option '{flag}': {value} is not in {low}..{high}")
    found = find_runs(args.run_dirs)
    variant = args.classifier or found.classifier or "standard"
    print(
        f"vaelab explore: {len(found.dirs)} run(s) (at most {MAX_RUNS}): "
        + ", ".join(str(d) for d in found.dirs)
        + f"; {variant} classifier",
        file=sys.stderr,
    )
    explorer = load_explorer(
        found.dirs,
        classifier=variant,
        device=args.device,
        map_points=args.map_points,
        sliders=args.sliders,
        log=lambda m: print(f"  {m}", file=sys.stderr),
    )
    return serve(
        explorer, args.host, args.port, open_browser=not args.no_browser, verbose=args.verbose
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explore",
        help="browse trained runs' latent spaces in a local web app",
        description="Serve a local web app that shows the latent map, live decodes, "
        "interpolations, latent sliders, prior samples and a draw-a-digit canvas for each run, "
        "side by side. A study directory stands for its AE and tuned VAE.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run or study directories")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    p.add_argument(
        "--classifier",
        help="reference classifier variant: standard or smoke (default: the study's, else "
        "standard)",
    )
    p.add_argument(
        "--map-points", type=int, default=2000, help="test images on the latent map (default 2000)"
    )
    p.add_argument("--sliders", type=int, default=8, help="latent-dim sliders (default 8)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    p.set_defaults(func=cmd_explore)
