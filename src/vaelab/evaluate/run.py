"""`vaelab evaluate`: every number and figure the study uses, for one trained run.

Writes `RUN_DIR/eval.json` (a flat object of namespaced keys, every value a plain number; units
in the README), `RUN_DIR/figures/*.png` and what those are drawn from, `RUN_DIR/eval_arrays.npz`
(vaelab.evaluate.arrays). The metrics come in groups (vaelab.evaluate.metrics)
that a caller can request separately, e.g. a cheap β-selection evaluation:
`evaluate_run(run_dir, EvalConfig(groups=SELECTION_GROUPS, figures=False, n_samples=2000))`.
AE runs get the same metrics except those that need a posterior (ELBO, KL, active units, IW-NLL);
their prior samples are decoded from N(0, I) as in the study.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vaelab.config import DEFAULT_PAIRS, GROUPS, SELECTION_GROUPS, EvalConfig, TrainConfig
from vaelab.errors import RunError
from vaelab.evaluate.context import EvalContext
from vaelab.evaluate.data import EvalData, load_eval_data
from vaelab.evaluate.decode import sample_prior
from vaelab.evaluate.figures import write_figures
from vaelab.evaluate.interpolation import interpolation_paths, pick_pairs
from vaelab.evaluate.keys import Group, to_keys
from vaelab.evaluate.metrics import (
    interpolation_metrics,
    likelihood_metrics,
    probe_metrics,
    reconstruction_metrics,
    sample_quality_metrics,
)
from vaelab.fsutil import atomic_write_json
from vaelab.runtime import resolve_device, stream_seed
from vaelab.train.checkpoint import load_model

# Re-exported for the CLI commands and the study, which import them from here.
__all__ = [
    "DEFAULT_PAIRS",
    "GROUPS",
    "SELECTION_GROUPS",
    "EvalConfig",
    "eval_data_for",
    "evaluate_run",
    "interpolation_paths",
    "load_eval_data",
    "pick_pairs",
    "sample_prior",
]

METRIC_GROUPS: dict[str, Callable[[EvalContext], Group | None]] = {
    "reconstruction": reconstruction_metrics,
    "likelihood": likelihood_metrics,
    "samples": sample_quality_metrics,
    "probes": probe_metrics,
    "interpolation": interpolation_metrics,
}

# Groups that cannot run without labels, and why (unlabelled data: eval.json's `skipped/<group>`).
NEED_LABELS = {
    "probes": "probes predict labels from codes",
    "interpolation": "paths join images of two chosen labels and are scored by class confidence",
}


def evaluate_run(
    run_dir: str | Path,
    ecfg: EvalConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
    **kw: Any,
) -> dict[str, float]:
    """Evaluate `run_dir` (see the module docstring); returns the eval.json contents. Progress
    lines go to `log` (default: stderr) and to RUN_DIR/eval.log."""
    ecfg = (ecfg or EvalConfig(**kw)).validate()
    run_dir = Path(run_dir)
    if not (run_dir / "checkpoints" / f"{ecfg.checkpoint}.pt").is_file():
        raise RunError(
            f"{run_dir} has no checkpoints/{ecfg.checkpoint}.pt; train it first "
            "(vaelab train --out RUN_DIR)"
        )
    echo = log or (lambda m: print(m, file=sys.stderr))
    with open(run_dir / "eval.log", "a") as log_file:

        def say(msg: str) -> None:
            echo(msg)
            log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
            log_file.flush()

        return _evaluate(run_dir, ecfg, say)


def _evaluate(run_dir: Path, ecfg: EvalConfig, say: Callable[[str], None]) -> dict[str, float]:
    t_start = time.perf_counter()
    device = resolve_device(ecfg.device)
    model, cfg = load_model(run_dir, ecfg.checkpoint, device)
    # channels_last: measured +20-50 % decoder throughput for no-grad passes on CPU.
    model = model.to(memory_format=torch.channels_last)
    torch.manual_seed(stream_seed(ecfg.seed, "eval_global"))
    data = eval_data_for(cfg, ecfg.split, limit=ecfg.limit, seed=ecfg.seed, device=device)
    ctx = EvalContext(run_dir, model, cfg, ecfg, data, device, say)
    m: dict[str, float] = {"eval/n_images": len(data.x), "eval/seed": ecfg.seed}
    for name in GROUPS:  # in a fixed order, whatever order the caller listed them in
        m[f"eval/group/{name}"] = float(name in ecfg.groups)
        if name in ecfg.groups and name in NEED_LABELS and not ctx.labelled:
            m[f"skipped/{name}"] = 1.0
            say(f"{run_dir.name}: skipped {name}: {NEED_LABELS[name]}, and these images have none")
        elif name in ecfg.groups:
            m |= to_keys(METRIC_GROUPS[name](ctx), ecfg.split)
    m["eval/figures"] = float(ecfg.figures)
    if ecfg.figures:
        write_figures(ctx)
    m["eval/time_s"] = time.perf_counter() - t_start
    atomic_write_json(run_dir / "eval.json", m)
    say(f"{run_dir.name}: wrote eval.json in {m['eval/time_s']:.1f} s")
    return m


def eval_data_for(
    cfg: TrainConfig,
    split: str = "test",
    *,
    limit: int | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> EvalData:
    """load_eval_data for the dataset, likelihood and binarisation of a run's config."""
    return load_eval_data(
        cfg.dataset,
        split,
        data_dir=cfg.data_dir,
        limit=limit,
        likelihood=cfg.likelihood,
        binarize=cfg.binarize,
        seed=seed,
        device=device,
    )
