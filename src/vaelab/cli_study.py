"""`vaelab study`."""

from __future__ import annotations

import argparse


def cmd_study(args: argparse.Namespace) -> int:
    from vaelab.study import make_config, run_study

    cfg = make_config(
        args.preset,
        dataset=args.dataset,
        data_dir=args.data_dir,
        out=args.out,
        device=args.device,
        seed=args.seed,
    )
    result = run_study(cfg)
    print(
        f"chosen β = {result['search']['chosen_beta']:g}; report: {args.out}/report.html "
        f"({result['wall_time_s'] / 60:.1f} min)"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="the whole AE / β-VAE study, with its report")
    p.add_argument(
        "--preset",
        default="default",
        help="default (the course-quality study in minutes), course (the course's literal "
        "schedule), smoke (a one-minute check); quick and full are aliases of default and course",
    )
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default="study", help="study directory (default ./study)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_study)
