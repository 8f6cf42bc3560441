"""`vaelab study`: the whole AE / β-VAE study, with its report."""

from __future__ import annotations

import argparse


def cmd_study(args: argparse.Namespace) -> int:
    from vaelab.cli.data import check_data_args
    from vaelab.cli.evaluate import SEED, check_labels, check_options
    from vaelab.config import DEFAULT_PAIRS
    from vaelab.study import make_config, run_study
    from vaelab.study.search import SearchPlacement
    from vaelab.train.preflight import check_data, check_processes

    check_data_args(args)
    check_options(args, {"--seed": SEED}, out_dir=True)
    check_processes("--workers", args.workers, args.threads)
    cfg = make_config(
        args.preset,
        dataset=args.dataset,
        data_dir=args.data_dir,
        image_size=args.image_size,
        color=args.color,
        out=args.out,
        device=args.device,
        seed=args.seed,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
    )
    # The data every stage needs (splits, sizes, memory, interpolation labels), checked first.
    run = cfg.run_config("ae", 0.0, 1)
    check_data(run)
    check_labels(run, [label for pair in DEFAULT_PAIRS for label in pair], "test", cfg.eval.limit)
    placement = SearchPlacement(args.storage, args.name, args.workers, args.threads)
    result = run_study(cfg, placement)
    print(
        f"chosen β = {result.search.chosen_beta:g}; report: {args.out}/report.html "
        f"({result.wall_time_s / 60:.1f} min)"
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from vaelab.cli.evaluate import check_options
    from vaelab.study.search import WorkerArgs, run_worker
    from vaelab.train.preflight import check_processes

    check_options(args, {}, out_dir=True)
    check_processes("--workers", 1, args.threads)
    run_worker(
        WorkerArgs(args.storage, args.name, args.out, args.device, args.data_dir, args.threads)
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from vaelab.cli.data import add_folder_args

    p = sub.add_parser("study", help="the whole AE / β-VAE study, with its report")
    p.add_argument(
        "--preset",
        default="default",
        help="default (the course-quality study in minutes), course (the course's literal "
        "schedule), smoke (a one-minute check); quick and full are aliases of default and course",
    )
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir")
    add_folder_args(p)
    p.add_argument("--out", default="study", help="study directory (default ./study)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--storage",
        help="β-search study database URL (default sqlite:///OUT/search.db); postgresql://user:"
        "pw@host/db lets `vaelab study worker` on other machines train its trials",
    )
    p.add_argument(
        "--name",
        help="study name in the storage (default <preset>-<hash of the study's definition>)",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="torch threads per process during the β search (default: cores / workers)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes on this machine training β-search trials, this one included",
    )
    p.add_argument(
        "--heartbeat-interval",
        type=int,
        help="seconds between a running trial's heartbeats (default 10)",
    )
    p.add_argument(
        "--grace-period",
        type=int,
        help="seconds without a heartbeat before a trial's worker counts as dead and the "
        "trial is retried (default 60)",
    )
    p.set_defaults(func=cmd_study)
    actions = p.add_subparsers(dest="study_command", metavar="[worker]")
    w = actions.add_parser(
        "worker",
        help="join a β search (any machine) and train its queued trials until it is finished",
    )
    w.add_argument(
        "--storage", required=True, help="β-search study database URL (the coordinator's --storage)"
    )
    w.add_argument("--name", help="study name (default: the storage's only study)")
    w.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    w.add_argument("--out", required=True, help="directory of this worker's runs and logs")
    w.add_argument("--device", default="auto")
    w.add_argument("--data-dir", help="where this machine keeps the dataset")
    w.set_defaults(func=cmd_worker)
