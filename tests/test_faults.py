"""Fault injection: a full disk or a failing disk while checkpoints and the dataset cache are
written, signals, and a closed output pipe. Each fault is one line on stderr, and whatever was
written before it stays loadable."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.bad_inputs import assert_one_line, idx_files, run_main, write_folder
from vaelab import fsutil
from vaelab.cli import main
from vaelab.train.checkpoint import load_run_checkpoint
from vaelab.train.runlog import read_metrics


@pytest.fixture
def data(tmp_path) -> Path:
    return write_folder(tmp_path / "idx", idx_files())


def _train_argv(data: Path, out: Path, epochs: int = 1) -> list[str]:
    argv = ["train", "--dataset", "idx", "--data-dir", str(data), "--out", str(out)]
    argv += ["--latent-dim", "2", "--channels", "4,4,4,4", "--batch-size", "32", "--threads", "1"]
    return [*argv, "--epochs", str(epochs)]


def _fail_writes(monkeypatch, code: int, when: str, where: str = "fsync") -> None:
    """Make fsync (or the writes, or replace) fail with `code` for files whose path contains
    `when`."""
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        if when in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    def replace(src, dst) -> None:
        if when in str(dst):
            raise OSError(code, os.strerror(code))
        real_replace(src, dst)

    class FullFile(io.FileIO):  # the disk fills while the bytes are written
        def write(self, data) -> int:
            if when in os.readlink(f"/proc/self/fd/{self.fileno()}"):
                raise OSError(code, os.strerror(code))
            return super().write(data)

    def fdopen(fd: int, mode: str):  # a buffer smaller than the checkpoint, as MBs of weights are
        return io.BufferedWriter(FullFile(fd, mode), buffer_size=512)

    if where == "fsync":
        monkeypatch.setattr(fsutil.os, "fsync", fsync)
    elif where == "write":
        monkeypatch.setattr(fsutil.os, "fdopen", fdopen)
    else:
        monkeypatch.setattr(fsutil.os, "replace", replace)


@pytest.mark.parametrize(
    "code, where, needle",
    [
        (errno.ENOSPC, "fsync", "disk full"),
        (errno.ENOSPC, "write", "disk full"),
        (errno.EIO, "fsync", "input/output error"),
        (errno.ENOSPC, "replace", "disk full"),
        (errno.EDQUOT, "fsync", "quota"),
    ],
)
def test_checkpoint_write_fault_keeps_previous_checkpoint(
    data, tmp_path, capsys, monkeypatch, code, where, needle
):
    run = tmp_path / "run"
    assert run_main(_train_argv(data, run), capsys)[0] == 0
    last = run / "checkpoints" / "last.pt"
    before = last.read_bytes()
    _fail_writes(monkeypatch, code, "last.pt", where)
    rc, _, err = run_main([*_train_argv(data, run, epochs=2), "--resume"], capsys)
    line = assert_one_line(rc, err, 1, needle)
    assert "last.pt" in line and f"vaelab train --out {run} --resume" in line
    assert last.read_bytes() == before  # the previous checkpoint is untouched ...
    assert load_run_checkpoint(last)["epoch"] == 1  # ... and loadable
    assert not list((run / "checkpoints").glob(".*.tmp"))  # no temp files left behind
    monkeypatch.undo()
    assert run_main([*_train_argv(data, run, epochs=2), "--resume"], capsys)[0] == 0
    assert json.loads((run / "DONE").read_text())["epochs"] == 2


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_cache_write_fault_is_one_line_and_leaves_no_partial_cache(
    data, tmp_path, capsys, monkeypatch, code
):
    monkeypatch.setenv("VAELAB_HOME", str(tmp_path / "home"))
    _fail_writes(monkeypatch, code, "t10k-images")
    argv = ["data", "fetch", "--dataset", "idx", "--data-dir", str(data)]
    rc, _, err = run_main(argv, capsys)
    progress = ("trying ", "  unavailable")  # fetch narrates its sources on stderr
    err = "".join(x for x in err.splitlines(True) if not x.startswith(progress))
    line = assert_one_line(rc, err, 1, "cannot write the dataset cache")
    assert os.strerror(code) in line
    assert not list((tmp_path / "home").rglob("*.tmp"))
    assert not list((tmp_path / "home").rglob("manifest.json"))  # not marked as complete
    monkeypatch.undo()
    monkeypatch.setenv("VAELAB_HOME", str(tmp_path / "home"))
    assert run_main(argv, capsys)[0] == 0
    assert run_main(["data", "verify", "--dataset", "idx", "--data-dir", str(data)], capsys)[0] == 0


def _mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()[:80]}); needs root")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_real_full_disk_during_training(data, tmp_path, capsys):
    """A real full file system (a small tmpfs): epoch 1's checkpoints fit, epoch 2's do not."""
    ref = tmp_path / "ref"
    assert run_main(_train_argv(data, ref), capsys)[0] == 0
    size = (ref / "checkpoints" / "last.pt").stat().st_size
    mnt = tmp_path / "small"
    _mount_tmpfs(mnt, f"size={2 * size + 48 * 1024}")
    try:
        run = mnt / "run"
        rc, _, err = run_main([*_train_argv(data, run, epochs=3), "--log-every", "1000"], capsys)
        assert_one_line(rc, err, 1, "disk full")
        ckpt = load_run_checkpoint(run / "checkpoints" / "last.pt")
        assert ckpt["epoch"] >= 1 and not (run / "DONE").exists()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)  # lazy: the log handle is open


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only tmpfs needs root")
def test_read_only_file_system_is_refused_before_work(data, tmp_path, capsys):
    mnt = tmp_path / "ro"
    _mount_tmpfs(mnt, "ro,size=64k")
    try:
        rc, _, err = run_main(_train_argv(data, mnt / "run"), capsys)
        assert_one_line(rc, err, 2, "Read-only file system")
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)  # lazy: the log handle is open


# --------------------------------------------------------------------------- real processes
def _vaelab(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "vaelab", *args], env=env, stderr=subprocess.PIPE, text=True, **kw
    )


def test_sigterm_mid_training_is_one_line_and_resumable(data, tmp_path, capsys):
    """SIGTERM saves at the step it came; resuming from there gives the weights and log of a
    run that was never stopped."""
    run = tmp_path / "run"
    argv = _train_argv(data, run, epochs=10_000)
    proc = _vaelab(*argv[:], "--log-every", "1", stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (run / "checkpoints" / "last.pt").is_file():
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert_one_line(1, err, 1, "stopped by SIGTERM")
    # the checkpoint is the one written at the signal, not the last end-of-epoch one
    stopped_at = int(re.search(r"stopped by SIGTERM at epoch \d+, step (\d+)", err)[1])
    ckpt = load_run_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["step"] == stopped_at
    epochs = str(ckpt["epoch"] + 2)  # the interrupted epoch and one more
    assert main(["train", "--out", str(run), "--resume", "--epochs", epochs]) == 0
    ref = tmp_path / "ref"
    assert main([*_train_argv(data, ref)[:-1], epochs, "--log-every", "1"]) == 0
    capsys.readouterr()
    a, b = (load_run_checkpoint(d / "checkpoints" / "last.pt")["model"] for d in (ref, run))
    assert all(torch.equal(a[k], b[k]) for k in a)
    clock = ("images_per_s", "epoch_time_s")
    logs = [
        [{k: v for k, v in r.items() if k not in clock} for r in read_metrics(d / "metrics.jsonl")]
        for d in (ref, run)
    ]
    assert logs[0] == logs[1] and len(logs[0]) > stopped_at


def test_closed_pipe_is_quiet(data, tmp_path):
    """`vaelab data info --json | head -c 10`: the reader is gone before the writer writes."""
    env = {**os.environ, "VAELAB_HOME": str(tmp_path / "home")}
    read_end, write_end = os.pipe()
    os.close(read_end)
    cmd = [sys.executable, "-m", "vaelab", "data", "info", "--dataset", "idx", "--data-dir"]
    proc = subprocess.run(
        [*cmd, str(data), "--json"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=120,
    )
    os.close(write_end)
    assert proc.stderr == "" and proc.returncode == 141


@pytest.mark.slow
def test_sigkill_at_several_points_of_a_study(smoke_study):
    """SIGKILL mid-training, between stages, mid-evaluation and in the β search (the session's
    smoke study, tests/conftest.py); then the study completes."""
    out = smoke_study.out
    assert "Traceback" not in smoke_study.final_err
    study = json.loads((out / "study.json").read_text())
    assert study["search"]["chosen_beta"] > 0
    for ckpt in out.glob("runs/*/checkpoints/*.pt"):
        load_run_checkpoint(ckpt)
