"""`vaelab train --nproc N`: N local processes of one data-parallel training.

It runs the job `torchrun --standalone --nproc_per_node N -m vaelab train …` runs (torch's own
launcher, `python -m torch.distributed.run`, with a private rendezvous on localhost; each rank
then trains as `vaelab.train.ddp` describes), and makes it behave like one `vaelab train`:

- N is checked here first, with the config: N >= 1, not already under torchrun, the global batch
  splits evenly, one core per process on CPU (oversubscribed cores cost more than a process
  gains, as with --threads) and one GPU per process on CUDA;
- the launcher and every rank write to files in RUN_DIR/ranks/<launch>/, not to the terminal
  (the launcher alone prints dozens of lines, a traceback among them, when any rank fails), and
  the outcome is one line: the failing rank's own error, or the interruption with its resume
  hint;
- Ctrl-C, SIGTERM and SIGHUP reach the launcher exactly once (it runs in its own session, so a
  terminal's Ctrl-C does not also hit it directly), and the launcher passes the signal to every
  rank: all stop at the same step, rank 0 saves a checkpoint, and the command exits 130.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from vaelab.config import TrainConfig, available_cores
from vaelab.errors import ConfigError, RunError
from vaelab.train.ddp import check_batch_split
from vaelab.train.preflight import check_processes, threads_per_process

ERROR_PREFIX = "vaelab: error: "
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def check_nproc(nproc: int, cfg: TrainConfig) -> None:
    """Refuse an N that cannot run here, before any process starts."""
    if "RANK" in os.environ or "WORLD_SIZE" in os.environ:
        raise ConfigError(
            "--nproc starts its own processes; leave it out under torchrun (RANK/WORLD_SIZE "
            "are set), or unset them"
        )
    if nproc < 1:
        raise ConfigError(f"--nproc must be an integer >= 1, got {nproc}")
    if nproc == 1:
        return
    check_batch_split(cfg.batch_size, nproc)
    from vaelab.runtime import resolve_device

    device = resolve_device(cfg.device)
    if device.type == "cuda":
        import torch

        gpus = torch.cuda.device_count()
        if nproc > gpus:
            raise ConfigError(
                f"--nproc {nproc} > the {gpus} visible GPUs; each process trains on a GPU of "
                f"its own: use 1..{gpus}"
            )
    elif device.type != "cpu":
        raise ConfigError(f"--nproc needs --device cpu or cuda (no process group on {device})")
    else:
        check_processes("--nproc", nproc, cfg.threads)


def launch(nproc: int, vaelab_argv: list[str], run_dir: Path, threads: int | None) -> None:
    """Run `vaelab *vaelab_argv` as `nproc` ranks; return once all finished.

    Raises `TrainingInterrupted` (exit 130) after a forwarded signal and `RunError` when a rank
    fails, each with one line; the rank logs stay in RUN_DIR/ranks/."""
    from vaelab.train.loop import TrainingInterrupted

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "ranks").mkdir(exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=run_dir / "ranks"))
    cmd = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone"),
        f"--nproc_per_node={nproc}",
        f"--log-dir={log_dir}",
        "--redirects=3",  # stdout and stderr of every rank to its own files
        *("-m", "vaelab", *vaelab_argv),
    ]
    env = dict(os.environ)
    # torchrun would set 1 thread per rank (with a warning); give each rank its share of cores
    # (assigned, not defaulted: an inherited OMP_NUM_THREADS must not oversubscribe the cores
    # that check_processes counted)
    env["OMP_NUM_THREADS"] = str(threads_per_process(nproc, threads) or available_cores())
    with open(log_dir / "launcher.log", "wb") as log:
        code, received = _run_forwarding_signals(cmd, env, log)
    if code == 0:
        return
    errors = rank_errors(log_dir)
    if received is not None:
        raise TrainingInterrupted(_interrupted(errors, received, nproc, log_dir))
    raise _failed(errors, nproc, log_dir)


def _run_forwarding_signals(
    cmd: list[str], env: dict[str, str], log: Any
) -> tuple[int, signal.Signals | None]:
    """Run the launcher to its end; (its exit code, the first signal passed on to it)."""
    received: list[signal.Signals] = []
    procs: list[subprocess.Popen] = []

    def pass_on(signum: int) -> None:
        # SIGHUP (the terminal closed) becomes SIGTERM: the ranks save and stop
        with contextlib.suppress(ProcessLookupError):
            procs[0].send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    def forward(signum: int, frame: Any) -> None:
        received.append(signal.Signals(signum))
        if procs:
            pass_on(signum)

    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        old = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        procs.append(
            subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        if received:  # a signal that came before the launcher existed
            pass_on(received[0])
        code = procs[0].wait()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return code, received[0] if received else None


def rank_errors(log_dir: Path) -> dict[int, str]:
    """Each rank's error: its last `vaelab: error:` line, else (under --debug) the last line
    of its traceback. Ranks that reported nothing are absent."""
    errors: dict[int, str] = {}
    for path in sorted(log_dir.glob("*/attempt_*/*/stderr.log")):
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        ours = [ln.removeprefix(ERROR_PREFIX) for ln in lines if ln.startswith(ERROR_PREFIX)]
        if ours or "Traceback (most recent call last):" in lines:
            errors[int(path.parent.name)] = (ours or lines)[-1]
    return errors


def _interrupted(errors: dict[int, str], sig: signal.Signals, nproc: int, log_dir: Path) -> str:
    msg = errors.get(0) or next(iter(errors.values()), "")
    if not msg:
        return f"stopped by {sig.name} before training started (rank logs: {log_dir})"
    if msg.endswith("--resume"):  # rank 0's hint names a one-process resume
        msg += f" --nproc {nproc}"
    return msg


def _failed(errors: dict[int, str], nproc: int, log_dir: Path) -> RunError:
    """One line for the rank that failed first, with its own exit code where it has one."""
    launcher = (log_dir / "launcher.log").read_text(errors="replace")
    # the launcher's report names the first failure: the others are its consequences (it stops
    # the remaining ranks, or they lose their peer in a collective)
    root = re.search(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", launcher, re.S)
    rank = int(root[1]) if root else min(errors, default=None)
    if root and rank not in errors and int(root[2]) < 0:  # a negative code: killed by a signal
        name = signal.Signals(-int(root[2])).name
        return RunError(
            f"rank {rank} of {nproc} was killed by {name} (out of memory?); rank logs: {log_dir}"
        )
    if rank is None or rank not in errors:
        return RunError(
            f"the {nproc} training processes failed without an error message (a rank killed by "
            f"the system, e.g. out of memory?); see {log_dir / 'launcher.log'}"
        )
    err = RunError(f"rank {rank} of {nproc} failed: {errors[rank]} (rank logs: {log_dir})")
    if root and int(root[2]) in (1, 2, 3):  # vaelab's own exit codes (see cli.boundary)
        err.exit_code = int(root[2])
    return err
