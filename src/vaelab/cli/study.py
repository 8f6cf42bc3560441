"""`vaelab study`: the whole AE / β-VAE study, with its report."""

from __future__ import annotations

import argparse


def cmd_study(args: argparse.Namespace) -> int:
    from vaelab import preflight as pf
    from vaelab.cli.data import check_data_args
    from vaelab.config import MAX_SEED
    from vaelab.study import make_config, run_study

    check_data_args(args)
    pf.check_device(args.device)
    pf.check_int_range("--seed", args.seed, 0, MAX_SEED, "seeds are 32-bit")
    pf.check_out_dir(args.out)
    cfg = make_config(
        args.preset,
        dataset=args.dataset,
        data_dir=args.data_dir,
        out=args.out,
        device=args.device,
        seed=args.seed,
    )
    _check_study_data(cfg)
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


def _check_study_data(cfg) -> None:
    """The data every stage needs, checked before the first of them: splits, sizes, memory and
    the interpolation labels of the evaluations."""
    from vaelab import preflight as pf
    from vaelab.cli.evaluate import check_labels
    from vaelab.data import load_arrays
    from vaelab.data.sources import FILES
    from vaelab.data.store import split_arrays
    from vaelab.evaluation.run import DEFAULT_PAIRS

    run = cfg.train_config("ae", 0.0, 1)
    arrays = load_arrays(cfg.dataset, cfg.data_dir)
    pf.check_splits(arrays, run, cfg.data_dir or cfg.dataset)
    side = arrays[FILES[0]].shape[1]
    pf.check_model_fits(
        run, (1, side, side), len(split_arrays(arrays, "train")[0][: run.limit_train])
    )
    check_labels(run, [label for pair in DEFAULT_PAIRS for label in pair], "test", cfg.eval_limit)
