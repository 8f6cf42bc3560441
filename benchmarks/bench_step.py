"""The training step's options side by side: eager vs `--channels-last` vs `--fused-adam` vs
both (the `default` study's step) vs `--compile`.

    python benchmarks/bench_step.py [--model vae] [--rounds 5] [--steps 40] [--batch-size 128]

One process builds the reference model once per variant (same seed) and runs the variants in
interleaved rounds of `steps` steps each, so machine load falls on all of them alike; each
variant's rate is its median round. The compiled variant's first step is timed apart: it holds
the compile, and `c / (t·(1 − 1/r))` is the run length in steps that repays it (vaelab.train.loop
`_compiled`). The inductor cache is a fresh temporary folder: the cold compile a first run pays.
The default batch is the `default` study's (128; the course's is 64)."""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time

import torch

from vaelab.config import TrainConfig
from vaelab.models import build_model
from vaelab.train.loop import train_step

VARIANTS = {
    "eager": {},
    "channels-last": {"channels_last": True},
    "fused Adam": {"fused_adam": True},
    "channels-last + fused Adam (default study)": {"channels_last": True, "fused_adam": True},
    "compiled": {"compile": True},
}


def _variant(model: str, batch: int, **options: bool):
    """A step function for one variant, sharing nothing with the others."""
    cfg = TrainConfig(model=model, batch_size=batch, **options)  # type: ignore[arg-type]
    torch.manual_seed(0)
    net = build_model(cfg)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, fused=True if cfg.fused_adam else None)
    step_net = torch.compile(net) if cfg.compile else net
    return lambda x: train_step(step_net, opt, x, cfg.beta, cfg, contextlib.nullcontext())


def run(model: str = "vae", rounds: int = 5, steps: int = 40, batch: int = 128) -> None:
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="inductor"))
    x = torch.rand(batch, 1, 28, 28)
    fns, first = {}, {}
    for name, options in VARIANTS.items():
        fns[name] = _variant(model, batch, **options)
        t0 = time.perf_counter()
        fns[name](x)  # the compiled variant compiles here
        first[name] = time.perf_counter() - t0
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                fn(x)
            rates[name].append(steps * batch / (time.perf_counter() - t0))
    rate = {name: statistics.median(r) for name, r in rates.items()}
    print(f"\n## training step, {model}, batch {batch}, {torch.get_num_threads()} threads")
    print(f"{'variant':<44} {'img/s':>8} {'ratio':>7}")
    for name in VARIANTS:
        print(f"{name:<44} {rate[name]:>8.0f} {rate[name] / rate['eager']:>6.2f}x")
    t, r = batch / rate["eager"], rate["compiled"] / rate["eager"]
    compile_s = first["compiled"] - t
    repay = f"{compile_s / (t * (1 - 1 / r)):,.0f} steps" if r > 1 else "never (not faster)"
    print(f"cold compile {compile_s:.1f} s at {t * 1e3:.1f} ms/step eager: repaid after {repay}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="vae", choices=["ae", "vae"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=128)
    a = ap.parse_args()
    run(a.model, a.rounds, a.steps, a.batch_size)
