"""torchrun data parallelism on CPU (gloo): 2 processes at global batch B train like 1 process at
batch B, rank 0 alone writes, and a run resumes under another world size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

from vaelab.train.ddp import GlobalBatchNorm2d, global_batch_norm

ARGS = [
    "train",
    "--model", "ae", "--dataset", "idx", "--batch-size", "16", "--limit-train", "96",
    "--channels", "8,16,32,32", "--log-every", "2", "--device", "cpu",
]  # fmt: skip


def _vaelab(args: list[str], env: dict[str, str], nproc: int = 1) -> subprocess.CompletedProcess:
    launch = [sys.executable, "-m", "vaelab"]
    if nproc > 1:
        launch = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "vaelab",
        ]
    return subprocess.run(
        [*launch, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]


def _mean_free(run: Path) -> set[str]:
    """Parameters whose gradient is zero in exact arithmetic: biases feeding a BatchNorm (which
    subtracts any constant). Adam turns their round-off gradients into steps of size lr, so
    their values are noise on any run; so are the BatchNorm running means that absorb them
    (which the comparison skips)."""
    from vaelab.losses import objective
    from vaelab.train.checkpoint import load_model

    model, cfg = load_model(run, "last")
    model = model.double().train()
    x = torch.rand(16, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    objective(model(x), x, 0.0, cfg.likelihood, cfg.sigma2).total.backward()
    return {n for n, p in model.named_parameters() if p.grad.abs().max() < 1e-9}


def _assert_same_model(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    noise = _mean_free(a)
    assert wa.keys() == wb.keys() and all(k.endswith(".bias") for k in noise)
    for k in wa:
        if k in noise or k.endswith("running_mean"):
            continue
        if wa[k].is_floating_point():
            torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5, msg=k)
        else:
            assert torch.equal(wa[k], wb[k]), k


@pytest.fixture(scope="module")
def runs(tmp_path_factory, idx_dir_module):
    root = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VAELAB_MIRRORS": "none"}
    env["VAELAB_HOME"] = str(root / "home")
    args = [*ARGS, "--data-dir", str(idx_dir_module)]
    out = {}
    for name, nproc, epochs in (("one", 1, 2), ("two", 2, 2), ("resumed", 2, 1)):
        r = _vaelab([*args, "--epochs", str(epochs), "--out", str(root / name)], env, nproc)
        assert r.returncode == 0, r.stderr[-3000:]
        out[name] = root / name
    # `vaelab train --nproc 2`: the same job as torchrun's 2 processes, started by vaelab
    r = _vaelab([*args, "--epochs", "2", "--out", str(root / "nproc"), "--nproc", "2"], env)
    assert r.returncode == 0 and r.stderr == "", r.stderr[-3000:]
    assert r.stdout.startswith(f"done: {root / 'nproc'} (2 epochs, val/loss ")
    out["nproc"] = root / "nproc"
    # resume the 2-process run in ONE process (another world size) to the same 2 epochs
    r = _vaelab([*args, "--epochs", "2", "--out", str(root / "resumed"), "--resume"], env, 1)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def idx_dir_module(tmp_path_factory):
    import gzip

    from .conftest import synthetic_idx_files

    d = tmp_path_factory.mktemp("idx")
    for name, data in synthetic_idx_files().items():
        (d / f"{name}.gz").write_bytes(gzip.compress(data))
    return d


def test_two_processes_train_like_one_at_the_same_global_batch(runs):
    _assert_same_model(runs["one"], runs["two"])
    one = json.loads((runs["one"] / "DONE").read_text())
    two = json.loads((runs["two"] / "DONE").read_text())
    assert one["steps"] == two["steps"] == 12  # 96 images / global batch 16 × 2 epochs
    # eval-mode BatchNorm uses running means, which absorb the noise biases above: ≈, not =
    assert two["val/loss"] == pytest.approx(one["val/loss"], rel=1e-2)


def test_only_rank_zero_writes(runs):
    one = (runs["one"] / "metrics.jsonl").read_text().splitlines()
    two = (runs["two"] / "metrics.jsonl").read_text().splitlines()
    assert len(one) == len(two)  # no record written twice
    assert sorted(p.name for p in (runs["two"] / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    log = (runs["two"] / "train.log").read_text()
    assert log.count("epoch 2/2") == 1


def test_nproc_trains_like_torchrun_and_keeps_the_rank_logs(runs):
    _assert_same_model(runs["one"], runs["nproc"])
    assert json.loads((runs["nproc"] / "DONE").read_text())["steps"] == 12
    (launch,) = (runs["nproc"] / "ranks").iterdir()
    logs = sorted(p.parent.name for p in launch.glob("*/attempt_0/*/stderr.log"))
    assert logs == ["0", "1"] and (launch / "launcher.log").is_file()


@pytest.mark.parametrize(
    ("flags", "env", "needle"),
    [
        (["--nproc", "0"], {}, "--nproc must be an integer >= 1, got 0"),
        (["--nproc", "two"], {}, "argument --nproc: invalid int value: 'two'"),
        (["--nproc", "3"], {}, "16 is not divisible by the 3 processes"),
        (["--nproc", "2"], {"WORLD_SIZE": "2"}, "leave it out under torchrun"),
    ],
)
def test_a_bad_nproc_is_one_line_and_starts_nothing(
    flags, env, needle, tmp_path, idx_dir_module, monkeypatch, capsys
):
    from tests.bad_inputs import assert_one_line, run_main

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "run"
    argv = [*ARGS, "--data-dir", str(idx_dir_module), "--out", str(out), *flags]
    rc, _, err = run_main(argv, capsys)
    assert_one_line(rc, err, 2, needle)
    assert not out.exists()


def test_nproc_above_the_cores_is_refused(tmp_path, idx_dir_module, monkeypatch, capsys):
    """Oversubscribed processes only slow each other down: refused, like --threads."""
    from tests.bad_inputs import assert_one_line, run_main
    from vaelab.train import preflight

    monkeypatch.setattr(preflight, "available_cores", lambda: 2)  # where the check reads it
    argv = [*ARGS, "--data-dir", str(idx_dir_module), "--out", str(tmp_path / "r")]
    rc, _, err = run_main([*argv, "--nproc", "4"], capsys)
    assert_one_line(rc, err, 2, "--nproc 4 > the 2 cores available here")
    rc, _, err = run_main([*argv, "--nproc", "2", "--threads", "2"], capsys)
    assert_one_line(rc, err, 2, "--nproc 2 × --threads 2 = 4 threads > the 2 cores")


def test_resume_under_another_world_size(runs):
    _assert_same_model(runs["one"], runs["resumed"])
    done = json.loads((runs["resumed"] / "DONE").read_text())
    assert done["epochs"] == 2 and done["steps"] == 12


def _bn_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    x = torch.randn(8, 3, 5, 5, requires_grad=True)
    bn = global_batch_norm(nn.Sequential(nn.BatchNorm2d(3)))
    y = bn(x[rank * 4 : (rank + 1) * 4])
    (y * torch.arange(75.0).view(1, 3, 5, 5)).sum().backward()
    torch.save({"y": y.detach(), "grad": x.grad, "bn": bn.state_dict()}, f"{out}.{rank}")
    # The backward all_reduce's work is freed by a gloo thread that needs the GIL; if this
    # process reached interpreter shutdown first, that thread aborted it (SIGABRT, about 1 run
    # in 10 on a busy machine; core dump: ~AsyncWork -> gil_scoped_acquire -> pthread_exit).
    # A last collective and dropping the graph let gloo finish before the interpreter exits.
    del x, y, bn
    dist.barrier()
    dist.destroy_process_group()


def test_global_batch_norm_equals_batch_norm_over_the_whole_batch(tmp_path):
    """Forward, input gradients and running statistics match nn.BatchNorm2d on the global batch."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_bn_worker, args=(2, port, str(tmp_path / "r")), nprocs=2)
    torch.manual_seed(0)
    x = torch.randn(8, 3, 5, 5, requires_grad=True)
    ref = nn.BatchNorm2d(3)
    y = ref(x)
    (y * torch.arange(75.0).view(1, 3, 5, 5)).sum().backward()
    parts = [torch.load(tmp_path / f"r.{r}", weights_only=True) for r in range(2)]
    torch.testing.assert_close(torch.cat([p["y"] for p in parts]), y.detach(), atol=1e-5, rtol=1e-5)
    grad = parts[0]["grad"] + parts[1]["grad"]  # each rank's x.grad covers its own slice
    torch.testing.assert_close(grad, x.grad, atol=1e-4, rtol=1e-4)
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(parts[0]["bn"][f"0.{k}"], v, atol=1e-6, rtol=1e-5)
    assert isinstance(global_batch_norm(nn.BatchNorm2d(2)), GlobalBatchNorm2d)


def _interrupt_after_first_checkpoint(
    launcher: list[str], args: list[str], out: Path, env: dict[str, str]
) -> tuple[int, str]:
    """Start a 2-process training in its own process group (a terminal job), send the group
    SIGINT (a terminal's Ctrl-C) once rank 0 has written its first checkpoint; (exit code,
    stderr)."""
    import signal
    import time

    proc = subprocess.Popen(
        [*launcher, "-m", "vaelab", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "checkpoints" / "last.pt").is_file():
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _long_run(tmp_path: Path, idx_dir: Path) -> tuple[list[str], Path, dict[str, str]]:
    """A 400-epoch run that a test interrupts: (train args, run dir, environment)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VAELAB_HOME": str(tmp_path / "home")}
    out = tmp_path / "run"
    return [*ARGS, "--data-dir", str(idx_dir), "--epochs", "400", "--out", str(out)], out, env


def test_ctrl_c_stops_every_rank_with_a_checkpoint(tmp_path, idx_dir_module):
    """SIGINT to the whole job (as a terminal's Ctrl-C does) → all ranks stop at one step, rank 0
    saves last.pt, and the run resumes to completion."""
    args, out, env = _long_run(tmp_path, idx_dir_module)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    code, err = _interrupt_after_first_checkpoint(torchrun, args, out, env)
    assert code != 0
    assert "forcefully exiting" not in err  # every rank left by itself, none killed at 30 s
    assert "progress saved" in err and "Traceback" not in err.split("progress saved")[0][-400:]
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert 0 < ckpt["step"] < 400 * 6
    r = _vaelab(
        [*args[:-4], "--epochs", str(ckpt["epoch"] + 1), "--out", str(out), "--resume"], env
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((out / "DONE").read_text())["epochs"] == ckpt["epoch"] + 1


def test_nproc_ctrl_c_stops_every_rank_and_exits_130_with_the_hint(tmp_path, idx_dir_module):
    """Ctrl-C at a terminal signals `vaelab train --nproc 2`'s process group: it passes the
    signal to the launcher once, every rank stops at one step, rank 0 saves, and the command
    prints rank 0's one line with a resume hint for 2 processes."""
    args, out, env = _long_run(tmp_path, idx_dir_module)
    code, err = _interrupt_after_first_checkpoint(
        [sys.executable], [*args, "--nproc", "2"], out, env
    )
    assert code == 130, err
    assert err.startswith("vaelab: error: stopped by SIGINT") and err.count("\n") == 1, err
    assert err.rstrip().endswith(f"resume with: vaelab train --out {out} --resume --nproc 2")
    step = int(err.split(", step ")[1].split(";")[0])
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"] == step
    launch = next((out / "ranks").iterdir())
    # every rank exited by itself: none hung at exit until the launcher killed it after 30 s
    assert "forcefully exiting" not in (launch / "launcher.log").read_text()
    for rank in "01":  # every rank stopped by the signal itself, at the same step
        (log,) = launch.glob(f"*/attempt_0/{rank}/stderr.log")
        text = log.read_text()
        assert "stopped by SIGINT at epoch " in text and f", step {step};" in text, text


def test_a_failing_rank_is_one_line_with_its_exit_code(tmp_path):
    """Through torch's real launcher, with ranks that fail at once: the launcher's report (a
    traceback and a table) stays in its log; the error is the first failing rank's own line."""
    from vaelab.errors import RunError
    from vaelab.train.ddp import launch

    with pytest.raises(RunError) as e:
        launch(2, ["train", "--out=x", "--no-such-flag"], tmp_path / "run", threads=1)
    msg = str(e.value)
    assert msg.startswith("rank ") and " of 2 failed: unrecognized arguments: --no-such-flag" in msg
    assert e.value.exit_code == 2 and "\n" not in msg  # the rank's own usage-error code
    (launch_dir,) = (tmp_path / "run" / "ranks").iterdir()
    assert f"(rank logs: {launch_dir})" in msg
    assert "ChildFailedError" in (launch_dir / "launcher.log").read_text()
