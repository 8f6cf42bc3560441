"""Does a refactor change what vaelab computes? Train and evaluate tiny runs with two source trees
and compare the results bit for bit.

    # once per source tree, each into its own folder (its own VAELAB_HOME, so the reference
    # classifier is trained by that tree too):
    PYTHONPATH=/path/to/old/src python benchmarks/compare_versions.py produce /tmp/cmp/old
    PYTHONPATH=src              python benchmarks/compare_versions.py produce /tmp/cmp/new
    python benchmarks/compare_versions.py compare /tmp/cmp/old /tmp/cmp/new

`produce` trains a tiny Gaussian VAE, AE and Bernoulli VAE on CPU (300 MNIST images, 2 epochs,
seed 0) and evaluates each with a tiny EvalConfig. `compare` checks every tensor of every
checkpoint (the reference classifier's too) with `torch.equal`, every logged training metric and
every eval.json value for equality (wall-clock keys aside), and exits 1 on any difference. It
uses only the public train / evaluate API, so any two versions of the package can be compared.
MNIST is copied from ~/.cache/vaelab when it is there.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

# run name -> TrainConfig fields: the Bernoulli run exercises the binarisation streams.
RUNS: dict[str, dict[str, Any]] = {
    "vae": dict(model="vae"),
    "ae": dict(model="ae"),
    "vae_bernoulli": dict(model="vae", likelihood="bernoulli", binarize="dynamic"),
}
TINY = dict(
    limit_train=300,
    limit_val=100,
    batch_size=32,
    epochs=2,
    log_every=2,
    channels=[8, 16, 32, 64],
    latent_dim=8,
    seed=0,
    device="cpu",
    threads=1,
)
TINY_EVAL = dict(
    limit=200,
    iw_samples=8,
    n_samples=200,
    probe_train=500,
    classifier="smoke",
    n_pairs=2,
    steps=3,
    device="cpu",
    figures=False,
)


def produce(out: Path) -> None:
    home = out / "home"
    user_mnist = Path.home() / ".cache" / "vaelab" / "datasets" / "mnist"
    if user_mnist.is_dir() and not (home / "datasets" / "mnist").exists():
        shutil.copytree(user_mnist, home / "datasets" / "mnist")
    os.environ["VAELAB_HOME"] = str(home)
    os.environ.setdefault("VAELAB_MIRRORS", "none")
    torch.set_num_threads(1)
    from vaelab.config import TrainConfig
    from vaelab.evaluate import EvalConfig, evaluate_run
    from vaelab.train.loop import train

    for name, fields in RUNS.items():
        run_dir = out / name
        train(TrainConfig(**fields, **TINY), run_dir)  # type: ignore[arg-type]
        evaluate_run(run_dir, EvalConfig(**TINY_EVAL))  # type: ignore[arg-type]
        print(f"{name}: trained and evaluated into {run_dir}")


def _tensors(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor of a nested checkpoint dict, by its dotted path."""
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    if isinstance(obj, list | tuple):
        obj = dict(enumerate(obj))
    if not isinstance(obj, dict):
        return {}
    out: dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        out |= _tensors(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def _compare_checkpoints(what: str, old: Path, new: Path) -> int:
    """Every tensor of two checkpoint files compared with torch.equal; the number that differ."""
    a, b = (_tensors(torch.load(p, weights_only=True)) for p in (old, new))
    diff = [k for k in sorted(set(a) | set(b)) if k not in a or k not in b]
    diff += [k for k in sorted(set(a) & set(b)) if not torch.equal(a[k], b[k])]
    print(f"{what}: {len(a)} tensors, {len(diff)} differ {diff[:5] or ''}")
    return len(diff)


def _volatile(key: str) -> bool:
    """Wall-clock values (`eval/time_s`, `images_per_s`, …) differ between any two runs."""
    return key.endswith("_s") or "time" in key


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _compare_values(what: str, old: dict[str, Any], new: dict[str, Any]) -> int:
    bad = 0
    for key in sorted(set(old) | set(new)):
        if _volatile(key):
            continue
        if key not in old or key not in new or not _same(old[key], new[key]):
            print(f"  DIFF {what} {key}: {old.get(key)!r} -> {new.get(key)!r}")
            bad += 1
    return bad


def compare(old: Path, new: Path) -> int:
    bad = 0
    for clf in sorted((old / "home" / "classifiers").glob("*.pt")):
        bad += _compare_checkpoints(f"classifier {clf.name}", clf, new / clf.relative_to(old))
    for model in RUNS:
        for ckpt in ("best", "last"):
            rel = Path(model, "checkpoints", f"{ckpt}.pt")
            bad += _compare_checkpoints(f"{model} {ckpt}.pt", old / rel, new / rel)
        logs = [
            [json.loads(line) for line in (d / model / "metrics.jsonl").read_text().splitlines()]
            for d in (old, new)
        ]
        n_log = 0
        for i, (ra, rb) in enumerate(zip(*logs, strict=True)):
            n_log += _compare_values(f"metrics.jsonl[{i}]", ra, rb)
        bad += n_log
        print(f"{model} metrics.jsonl: {len(logs[0])} records, {n_log} values differ")
        ea, eb = (json.loads((d / model / "eval.json").read_text()) for d in (old, new))
        n_eval = _compare_values("eval.json", ea, eb)
        bad += n_eval
        print(f"{model} eval.json: {len(ea)} keys, {n_eval} differ")
    print("IDENTICAL" if bad == 0 else f"{bad} DIFFERENCES")
    return int(bad > 0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("produce").add_argument("out", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    args = p.parse_args()
    if args.cmd == "produce":
        produce(args.out)
        return 0
    return compare(args.old, args.new)


if __name__ == "__main__":
    sys.exit(main())
