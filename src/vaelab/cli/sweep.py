"""`vaelab sweep run` and `vaelab sweep report`."""

from __future__ import annotations

import argparse


def cmd_run(args: argparse.Namespace) -> int:
    from vaelab.tune.sweep import run_sweep
    from vaelab.tune.sweep_config import load_sweep

    cfg = load_sweep(args.config, name=args.name)
    placement = {k: getattr(args, k) for k in ("storage", "trials", "workers", "threads")}
    result = run_sweep(cfg, args.out, **placement)
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(result.counts.items()))
    print(f"study '{result.name}' in {result.storage}: {counts}")
    for b in result.best:
        values = zip(cfg.objectives, b["values"], strict=True)
        shown = ", ".join(f"{o.key} = {v:.6g}" for o, v in values)
        print(f"best trial {b['number']}: {shown}; {b['params']}; {b['run_dir']}")
    where = args.out if not args.storage else f"--storage URL --name {result.name} --out DIR"
    print(f"report: vaelab sweep report {where}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from vaelab.report.sweep import report

    files = report(args.dir, storage=args.storage, name=args.name, report_dir=args.out)
    print(files.table)
    print(f"report: {files.html} ({len(files.figures)} figures), {files.markdown}, {files.csv}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="hyperparameter sweeps on Optuna (SQLite or PostgreSQL)")
    sweep_sub = p.add_subparsers(dest="sweep_command", metavar="ACTION", required=True)
    r = sweep_sub.add_parser(
        "run", help="run, continue or join a sweep until its study has N finished trials"
    )
    r.add_argument("--config", required=True, help="sweep TOML (see examples/sweeps/smoke.toml)")
    r.add_argument("--out", required=True, help="sweep directory: trials/<n>/, logs/, sweep.db")
    r.add_argument(
        "--storage",
        help="study database URL (default sqlite:///OUT/sweep.db); postgresql://user:pw@host/db "
        "lets workers on several machines share one study",
    )
    r.add_argument("--name", help="study name (default [sweep] name or file stem)")
    r.add_argument(
        "--trials",
        type=int,
        help="finished (complete + pruned) trials the study should have; a re-run continues",
    )
    r.add_argument(
        "--workers", type=int, default=1, help="local worker processes (threads = cores / K)"
    )
    r.add_argument(
        "--threads", type=int, help="torch threads per worker (default: cores / workers)"
    )
    r.set_defaults(func=cmd_run)
    rep = sweep_sub.add_parser("report", help="trial table, best trial, figures, HTML page")
    rep.add_argument("dir", nargs="?", help="sweep directory (uses its sweep.db)")
    rep.add_argument("--storage", help="study database URL instead of DIR")
    rep.add_argument("--name", help="study name (default: the storage's only one)")
    rep.add_argument("--out", help="report folder (default DIR/report)")
    rep.set_defaults(func=cmd_report)
