"""The bad-input survey: every mistake a user can make gets one line `vaelab: error: ...` with
exit 2 (usage/config) or 1 (runtime), nothing is created before the input is refused, and no
user mistake reaches the generic "unexpected internal error" path.

Cases run in-process through `vaelab.cli.main` (a subprocess each would take minutes on two
cores); signals and pipes, which need a real process, are in test_faults.py; the explorer's HTTP
requests, disconnects, load and damaged folders in test_explore_survey.py. Each case names its
category; `test_survey_size` checks the survey keeps its breadth.
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.bad_inputs import (
    TINY_RUN,
    assert_one_line,
    corrupt_gzip,
    idx_files,
    images,
    labels,
    raw_header,
    run_main,
    write_folder,
)
from tests.sweep_helpers import smoke, to_toml
from vaelab.data.sources import FILES, encode_idx

NO_CUDA = not torch.cuda.is_available()
BIG = str(10**12)
SMOKE_SWEEP = str(Path(__file__).resolve().parents[1] / "examples" / "sweeps" / "smoke.toml")


# --------------------------------------------------------------------------- shared fixtures
@pytest.fixture(scope="module")
def world(tmp_path_factory, session_home):
    """A synthetic IDX folder, a trained AE and VAE run on it, and a regular file."""

    from vaelab.config import TrainConfig
    from vaelab.train.loop import train

    with pytest.MonkeyPatch.context() as mp:  # restored after the module's setup
        mp.setenv("VAELAB_HOME", str(session_home))
        root = tmp_path_factory.mktemp("world")
        data = write_folder(root / "idx", idx_files())
        for kind in ("ae", "vae"):
            train(
                TrainConfig(model=kind, data_dir=str(data), **TINY_RUN),
                root / kind,
                tensorboard=False,
            )
        (root / "file.txt").write_text("not a folder\n")
        return root


def fill(argv: list[str], w: Path, tmp: Path) -> list[str]:
    subs = {
        "{idx}": str(w / "idx"),
        "{ae}": str(w / "ae"),
        "{vae}": str(w / "vae"),
        "{file}": str(w / "file.txt"),
        "{never}": str(tmp / "never"),
        "{tmp}": str(tmp),
    }
    out = []
    for a in argv:
        for k, v in subs.items():
            a = a.replace(k, v)
        out.append(a)
    return out


IDX = ["--dataset", "idx", "--data-dir", "{idx}"]
TRAIN = ["train", *IDX, "--out", "{never}"]

# (category, id, argv, exit code, text the one line must contain)
FLAG_CASES = [
    # ---- train: numbers, types and ranges
    ("flags", "epochs-not-int", [*TRAIN, "--epochs", "x"], 2, "expected an integer"),
    ("flags", "epochs-zero", [*TRAIN, "--epochs", "0"], 2, "'epochs'"),
    ("flags", "epochs-negative", [*TRAIN, "--epochs", "-3"], 2, "'epochs'"),
    ("flags", "epochs-float", [*TRAIN, "--epochs", "1.5"], 2, "expected an integer"),
    ("flags", "epochs-missing-value", [*TRAIN, "--epochs"], 2, "expected one argument"),
    ("flags", "beta-negative", [*TRAIN, "--beta", "-1"], 2, "'beta'"),
    ("flags", "beta-inf", [*TRAIN, "--beta", "inf"], 2, "finite"),
    ("flags", "beta-nan", [*TRAIN, "--beta", "nan"], 2, "finite"),
    ("flags", "beta-word", [*TRAIN, "--beta", "high"], 2, "expected a number"),
    ("flags", "sigma2-inf", [*TRAIN, "--sigma2", "inf"], 2, "'sigma2'"),
    ("flags", "sigma2-nan", [*TRAIN, "--sigma2", "nan"], 2, "'sigma2'"),
    ("flags", "sigma2-zero", [*TRAIN, "--sigma2", "0"], 2, "'sigma2'"),
    ("flags", "sigma2-negative", [*TRAIN, "--sigma2", "-0.5"], 2, "'sigma2'"),
    ("flags", "lr-zero", [*TRAIN, "--lr", "0"], 2, "'lr'"),
    ("flags", "lr-huge", [*TRAIN, "--lr", "100"], 2, "'lr'"),
    ("flags", "lr-nan", [*TRAIN, "--lr", "nan"], 2, "'lr'"),
    ("flags", "lr-inf", [*TRAIN, "--lr", "inf"], 2, "'lr'"),
    ("flags", "latent-zero", [*TRAIN, "--latent-dim", "0"], 2, "'latent_dim'"),
    ("flags", "latent-huge", [*TRAIN, "--latent-dim", BIG], 2, "does not fit"),
    ("flags", "channels-three", [*TRAIN, "--channels", "1,2,3"], 2, "'channels"),
    ("flags", "channels-five", [*TRAIN, "--channels", "1,2,3,4,5"], 2, "'channels"),
    ("flags", "channels-words", [*TRAIN, "--channels", "a,b,c,d"], 2, "expected an integer"),
    ("flags", "channels-zero", [*TRAIN, "--channels", "0,1,1,1"], 2, "'channels"),
    ("flags", "channels-empty", [*TRAIN, "--channels", ""], 2, "expected an integer"),
    ("flags", "channels-huge", [*TRAIN, "--channels", "99999,99999,99999,99999"], 2, "fit"),
    ("flags", "batch-zero", [*TRAIN, "--batch-size", "0"], 2, "'batch_size'"),
    ("flags", "batch-one-with-norm", [*TRAIN, "--batch-size", "1"], 2, "batches of one"),
    ("flags", "model-gan", [*TRAIN, "--model", "gan"], 2, "'model'"),
    ("flags", "likelihood-poisson", [*TRAIN, "--likelihood", "poisson"], 2, "'likelihood'"),
    ("flags", "binarize-maybe", [*TRAIN, "--binarize", "maybe"], 2, "'binarize'"),
    ("flags", "precision-fp16", [*TRAIN, "--precision", "fp16"], 2, "'precision'"),
    ("flags", "dataset-cifar", ["train", "--dataset", "cifar", "--out", "{never}"], 2, "cifar"),
    ("flags", "idx-without-dir", ["train", "--dataset", "idx", "--out", "{never}"], 2, "data_dir"),
    ("flags", "data-dir-empty", ["train", "--data-dir", "", "--out", "{never}"], 2, "empty"),
    ("flags", "device-tpu", [*TRAIN, "--device", "tpu"], 2, "'device'"),
    ("flags", "device-cuda-word", [*TRAIN, "--device", "cuda:x"], 2, "'device'"),
    ("flags", "seed-negative", [*TRAIN, "--seed", "-1"], 2, "'seed'"),
    ("flags", "seed-65-bit", [*TRAIN, "--seed", str(2**64)], 2, "'seed'"),
    ("flags", "seed-word", [*TRAIN, "--seed", "lucky"], 2, "expected an integer"),
    ("flags", "threads-zero", [*TRAIN, "--threads", "0"], 2, "'threads'"),
    ("flags", "threads-too-many", [*TRAIN, "--threads", "10000"], 2, "cores"),
    ("flags", "limit-train-zero", [*TRAIN, "--limit-train", "0"], 2, "'limit_train'"),
    ("flags", "limit-val-negative", [*TRAIN, "--limit-val", "-5"], 2, "'limit_val'"),
    ("flags", "log-every-zero", [*TRAIN, "--log-every", "0"], 2, "'log_every'"),
    ("flags", "warmup-negative", [*TRAIN, "--kl-warmup-steps", "-1"], 2, "kl_warmup_steps"),
    ("flags", "norm-with-value", [*TRAIN, "--norm", "yes"], 2, "unrecognized"),
    ("flags", "unknown-flag", [*TRAIN, "--epoch", "3"], 2, "--epoch"),
    ("flags", "positional-junk", ["train", "extra", "--out", "{never}"], 2, "unrecognized"),
    ("flags", "no-out", ["train"], 2, "--out"),
    ("flags", "unknown-command", ["fly"], 2, "invalid choice"),
    # ---- train: output paths
    ("flags", "out-empty", ["train", *IDX, "--out", ""], 2, "--out is empty"),
    ("flags", "out-is-file", ["train", *IDX, "--out", "{file}"], 2, "existing file"),
    ("flags", "out-below-file", ["train", *IDX, "--out", "{file}/run"], 2, "is a file"),
    ("flags", "out-name-too-long", ["train", *IDX, "--out", "x" * 5000], 1, "too long"),
    ("flags", "out-dangling-link", ["train", *IDX, "--out", "{tmp}/link"], 2, "dangling"),
    ("flags", "out-unwritable", ["train", *IDX, "--out", "/proc/vaelab-run"], 2, "cannot write"),
    ("flags", "resume-nothing", ["train", *IDX, "--out", "{tmp}", "--resume"], 1, "nothing"),
    ("flags", "config-missing", [*TRAIN, "--config", "{tmp}/none.toml"], 2, "not found"),
    ("flags", "config-dir", [*TRAIN, "--config", "{tmp}"], 2, "is a directory"),
    ("flags", "config-empty", [*TRAIN, "--config", ""], 2, "--config is empty"),
    # ---- data
    ("flags", "data-no-action", ["data"], 2, "ACTION"),
    ("flags", "data-bad-action", ["data", "frobnicate"], 2, "invalid choice"),
    ("flags", "data-info-cifar", ["data", "info", "--dataset", "cifar"], 2, "cifar"),
    ("flags", "data-fetch-idx-no-dir", ["data", "fetch", "--dataset", "idx"], 1, "--data-dir"),
    ("flags", "data-verify-empty-dir", ["data", "verify", "--data-dir", ""], 2, "empty"),
    ("flags", "data-info-extra", ["data", "info", "--json", "extra"], 2, "unrecognized"),
    # ---- evaluate
    ("flags", "eval-missing-dir", ["evaluate", "{tmp}/nope"], 1, "does not exist"),
    ("flags", "eval-file", ["evaluate", "{file}"], 1, "is a file"),
    ("flags", "eval-empty-dir", ["evaluate", "{tmp}"], 1, "no checkpoints/best.pt"),
    ("flags", "eval-empty-arg", ["evaluate", ""], 2, "empty"),
    ("flags", "eval-split", ["evaluate", "{ae}", "--split", "dev"], 2, "--split"),
    ("flags", "eval-checkpoint", ["evaluate", "{ae}", "--checkpoint", "mid"], 2, "--checkpoint"),
    ("flags", "eval-classifier", ["evaluate", "{ae}", "--classifier", "big"], 2, "--classifier"),
    ("flags", "eval-device", ["evaluate", "{ae}", "--device", "tpu"], 2, "--device"),
    ("flags", "eval-iw-zero", ["evaluate", "{ae}", "--iw-samples", "0"], 2, "--iw-samples"),
    ("flags", "eval-iw-huge", ["evaluate", "{ae}", "--iw-samples", BIG], 2, "--iw-samples"),
    ("flags", "eval-n-zero", ["evaluate", "{ae}", "--n-samples", "0"], 2, "--n-samples"),
    ("flags", "eval-n-huge", ["evaluate", "{ae}", "--n-samples", BIG], 2, "--n-samples"),
    ("flags", "eval-limit-zero", ["evaluate", "{ae}", "--limit", "0"], 2, "--limit"),
    ("flags", "eval-limit-one", ["evaluate", "{ae}", "--limit", "1"], 2, "covariance"),
    ("flags", "eval-n-one", ["evaluate", "{ae}", "--n-samples", "1"], 2, "covariance"),
    ("flags", "eval-probe-one", ["evaluate", "{ae}", "--probe-train", "1"], 2, "5 neighbours"),
    ("flags", "eval-pairs-beyond-limit", ["evaluate", "{ae}", "--limit", "2"], 2, "first 2 test"),
    ("flags", "eval-iw-limit", ["evaluate", "{ae}", "--iw-limit", "-1"], 2, "--iw-limit"),
    ("flags", "eval-probe", ["evaluate", "{ae}", "--probe-train", "0"], 2, "--probe-train"),
    ("flags", "eval-pairs-dash", ["evaluate", "{ae}", "--pairs", "5-8"], 2, "5:8"),
    ("flags", "eval-pairs-triple", ["evaluate", "{ae}", "--pairs", "5:8:1"], 2, "5:8"),
    ("flags", "eval-pairs-300", ["evaluate", "{ae}", "--pairs", "5:300"], 2, "0..255"),
    ("flags", "eval-pairs-absent", ["evaluate", "{ae}", "--pairs", "5:42"], 2, "label 42"),
    ("flags", "eval-seed", ["evaluate", "{ae}", "--seed", "-1"], 2, "--seed"),
    ("flags", "eval-iw-word", ["evaluate", "{ae}", "--iw-samples", "many"], 2, "invalid int"),
    # ---- sample
    ("flags", "sample-n-zero", ["sample", "{ae}", "-n", "0", "--out", "{tmp}/s.png"], 2, "-n"),
    ("flags", "sample-n-neg", ["sample", "{ae}", "-n", "-5", "--out", "{tmp}/s.png"], 2, "-n"),
    ("flags", "sample-n-huge", ["sample", "{ae}", "-n", BIG, "--out", "{tmp}/s.png"], 2, "-n"),
    (
        "flags",
        "sample-nrow-zero",
        ["sample", "{ae}", "--nrow", "0", "--out", "{tmp}/s.png"],
        2,
        "--nrow 0",
    ),
    (
        "flags",
        "sample-too-tall",
        ["sample", "{ae}", "-n", "10000", "--nrow", "1", "--out", "{tmp}/s.png"],
        2,
        "rows",
    ),
    ("flags", "sample-out-dir", ["sample", "{ae}", "--out", "{tmp}"], 2, "is a folder"),
    ("flags", "sample-out-empty", ["sample", "{ae}", "--out", ""], 2, "--out is empty"),
    ("flags", "sample-out-below-file", ["sample", "{ae}", "--out", "{file}/s.png"], 2, "file"),
    ("flags", "sample-no-out", ["sample", "{ae}"], 2, "--out"),
    (
        "flags",
        "sample-device",
        ["sample", "{ae}", "--device", "cuda:x", "--out", "x.png"],
        2,
        "--device 'cuda:x'",
    ),
    (
        "flags",
        "sample-seed",
        ["sample", "{ae}", "--seed", str(2**40), "--out", "x.png"],
        2,
        f"--seed {2**40}",
    ),
    ("flags", "sample-no-run", ["sample", "{tmp}/nope", "--out", "{tmp}/s.png"], 1, "not exist"),
    ("flags", "sample-no-ckpt", ["sample", "{tmp}", "--out", "{tmp}/s.png"], 1, "best.pt"),
    # ---- interpolate
    *[
        ("flags", f"interp-{name}", ["interpolate", "{ae}", *args, "--out", "{tmp}/i.png"], 2, n)
        for name, args, n in [
            ("steps-zero", ["--from-label", "1", "--to-label", "7", "--steps", "0"], "--steps"),
            ("steps-huge", ["--from-label", "1", "--to-label", "7", "--steps", BIG], "--steps"),
            ("pairs-zero", ["--from-label", "1", "--to-label", "7", "--pairs", "0"], "--pairs"),
            ("pairs-huge", ["--from-label", "1", "--to-label", "7", "--pairs", BIG], "--pairs"),
            ("label-absent", ["--from-label", "42", "--to-label", "7"], "label 42"),
            ("label-negative", ["--from-label", "-1", "--to-label", "7"], "--from-label"),
            ("label-300", ["--from-label", "1", "--to-label", "300"], "--to-label"),
            ("mode", ["--from-label", "1", "--to-label", "7", "--mode", "cubic"], "--mode"),
            ("no-to", ["--from-label", "1"], "--to-label"),
            ("device", ["--from-label", "1", "--to-label", "7", "--device", "tpu"], "--device"),
        ]
    ],
    (
        "flags",
        "interp-out-dir",
        ["interpolate", "{ae}", "--from-label", "1", "--to-label", "7", "--out", "{tmp}"],
        2,
        "is a folder",
    ),
    # ---- study
    ("flags", "study-preset", ["study", "--preset", "huge", "--out", "{never}"], 2, "preset"),
    ("flags", "study-dataset", ["study", "--dataset", "cifar", "--out", "{never}"], 2, "cifar"),
    ("flags", "study-device", ["study", "--device", "tpu", "--out", "{never}"], 2, "--device"),
    ("flags", "study-seed", ["study", "--seed", "-1", "--out", "{never}"], 2, "--seed"),
    ("flags", "study-out-file", ["study", "--out", "{file}"], 2, "existing file"),
    ("flags", "study-out-empty", ["study", "--out", ""], 2, "--out is empty"),
    ("flags", "study-idx-no-dir", ["study", "--dataset", "idx", "--out", "{never}"], 2, "data-dir"),
    (
        "flags",
        "study-mnist-wrong-dir",
        ["study", "--data-dir", "{idx}", "--out", "{never}"],
        1,
        "does not hold mnist",
    ),
    # local processes beyond the cores (each case names the count the message must state)
    ("flags", "study-workers-0", ["study", "--workers", "0", "--out", "{never}"], 2, "got 0"),
    ("flags", "study-workers-cores", ["study", "--workers", BIG, "--out", "{never}"], 2, "cores"),
    (
        "flags",
        "study-workers-threads",
        ["study", "--workers", "2", "--threads", BIG, "--out", "{never}"],
        2,
        "threads >",
    ),
    ("flags", "nproc-cores", [*TRAIN, "--nproc", "4096", "--batch-size", "4096"], 2, "cores"),
    (
        "flags",
        "sweep-workers-cores",
        ["sweep", "run", "--config", SMOKE_SWEEP, "--out", "{never}", "--workers", "4096"],
        2,
        "--workers 4096 > the",
    ),
    (
        "flags",
        "study-heartbeat",
        ["study", "--heartbeat-interval", "0", "--out", "{never}"],
        2,
        "'heartbeat_interval': should be greater than or equal to 1",
    ),
    (
        "flags",
        "study-heartbeat-timestamp",
        ["study", "--heartbeat-interval", str(10**10), "--out", "{never}"],
        2,
        "'heartbeat_interval': should be less than or equal to 86400",
    ),
    (
        "flags",
        "study-grace-timestamp",
        ["study", "--grace-period", str(10**10), "--out", "{never}"],
        2,
        "'grace_period'",
    ),
    ("flags", "study-seed-40-bit", ["study", "--seed", str(2**40), "--out", "{never}"], 2, "seed"),
    (
        "flags",
        "study-grace",
        ["study", "--heartbeat-interval", "5", "--grace-period", "5", "--out", "{never}"],
        2,
        "must exceed heartbeat_interval",
    ),
    (
        "flags",
        "study-worker-no-storage-file",
        ["study", "worker", "--storage", "sqlite:///{never}/search.db", "--out", "{never}"],
        2,
        "no such file",
    ),
]
if NO_CUDA:
    FLAG_CASES += [
        ("flags", "device-cuda-absent", [*TRAIN, "--device", "cuda"], 2, "CUDA is unavailable"),
        ("flags", "eval-cuda-absent", ["evaluate", "{ae}", "--device", "cuda:1"], 2, "CUDA"),
    ]
if not torch.backends.mps.is_available():
    FLAG_CASES += [("flags", "device-mps-absent", [*TRAIN, "--device", "mps"], 2, "MPS")]


@pytest.mark.parametrize(
    "category, argv, code, needle",
    [pytest.param(c, a, code, n, id=i) for c, i, a, code, n in FLAG_CASES],
)
def test_flag_mistakes(world, tmp_path, capsys, category, argv, code, needle):
    (tmp_path / "link").symlink_to(tmp_path / "link")  # a loop: dangling by any reading
    rc, _, err = run_main(fill(argv, world, tmp_path), capsys)
    assert_one_line(rc, err, code, needle)
    assert not (tmp_path / "never").exists()  # refused before any work


def test_last_training_batch_of_one_image(world, tmp_path, capsys):
    """100 training images in batches of 33 leave one image for BatchNorm to train on: the
    loader holds it back for the next epoch, so the run simply works."""
    rc, _, err = run_main(fill([*TRAIN, "--batch-size", "33"], world, tmp_path), capsys)
    assert rc == 0 and "Traceback" not in err, err


# --------------------------------------------------------------------------- TOML files
TOML_CASES = [
    ("bool-as-number", "beta = true", "'beta'"),
    ("string-as-bool", 'norm = "no"', "'norm'"),
    ("int-as-bool", "norm = 0", "'norm'"),
    ("string-as-int", 'epochs = "10"', "'epochs'"),
    ("float-as-int", "epochs = 1.5", "'epochs'"),
    ("bool-as-int", "latent_dim = true", "'latent_dim'"),
    ("string-as-list", 'channels = "32,64,128,256"', "'channels"),
    ("short-list", "channels = [32, 64, 128]", "'channels"),
    ("bool-in-list", "channels = [32, 64, 128, true]", "'channels"),
    ("float-in-list", "channels = [32, 64, 128, 2.5]", "'channels"),
    ("table-as-list", "channels = {a = 1}", "'channels"),
    ("number-as-string", "model = 1", "'model'"),
    ("word-as-float", 'lr = "fast"', "'lr'"),
    ("number-as-device", "device = 0", "'device'"),
    ("seed-negative", "seed = -1", "'seed'"),
    ("seed-63-bit", "seed = 9223372036854775807", "'seed'"),
    ("sigma2-inf", "sigma2 = inf", "'sigma2'"),
    ("beta-nan", "beta = nan", "'beta'"),
    ("lr-neg-inf", "lr = -inf", "'lr'"),
    ("train-not-table", "train = 5", "table"),
    ("unknown-field", "betta = 2", "unknown config field(s) 'betta'; valid: "),
    ("nested-table", "[train.extra]\nx = 1", "unknown config field(s) 'extra'"),
    ("seed-40-bit", f"seed = {2**40}", "'seed': should be less than or equal to 4294967295"),
    ("seed-bool", "seed = true", "'seed': should be an integer, got True"),
    ("norm-list", "norm = [true]", "'norm': should be true or false"),
    ("dataset-date", "dataset = 1979-05-27", "'dataset'"),
    ("data-dir-date", "data_dir = 1979-05-27", "'data_dir': should be a string"),
    ("channels-nested", "channels = [[32], 64, 128, 256]", "'channels::0'"),
    ("adam-beta-one", "adam_beta2 = 1.0", "'adam_beta2': should be less than 1"),
    ("min-lr-ratio-big", "min_lr_ratio = 1.5", "'min_lr_ratio'"),
    ("threads-bool", "threads = true", "'threads'"),
    ("limit-val-string", 'limit_val = "all"', "'limit_val'"),
    ("syntax", "beta = = 2", "not valid TOML"),
    ("limit-zero", "limit_train = 0", "'limit_train'"),
    ("threads-many", "threads = 100000", "'threads'"),
    ("data-dir-number", "data_dir = 5", "'data_dir'"),
    ("idx-no-dir", 'dataset = "idx"', "'data_dir'"),
    ("warmup-negative", "kl_warmup_steps = -5", "'kl_warmup_steps'"),
    ("log-every-zero", "log_every = 0", "'log_every'"),
    ("batch-float", "batch_size = 0.5", "'batch_size'"),
    ("precision-fp64", 'precision = "fp64"', "'precision'"),
    ("binarize-bool", "binarize = false", "'binarize'"),
    ("date-as-int", "epochs = 1979-05-27", "'epochs'"),
    ("array-of-tables", "[[train]]\nbeta = 1", "table"),
    ("latent-huge", "latent_dim = 1000000000000", "does not fit"),
]


@pytest.mark.parametrize("text, needle", [pytest.param(t, n, id=i) for i, t, n in TOML_CASES])
def test_toml_mistakes(world, tmp_path, capsys, text, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text + "\n")
    # flags would override the file's dataset fields, so those cases run without them
    head = ["train"] if "data" in text else TRAIN[:-2]
    argv = fill([*head, "--config", str(cfg), "--out", "{never}"], world, tmp_path)
    rc, _, err = run_main(argv, capsys)
    assert_one_line(rc, err, 2, needle)
    assert not (tmp_path / "never").exists()


def test_toml_not_utf8_or_binary(world, tmp_path, capsys):
    for i, raw in enumerate(
        [b"beta = 0.5 # \xff\xfe\n", b"\x00\x01\x02\x03", b"\xef\xbb\xbfbeta = "]
    ):
        cfg = tmp_path / f"c{i}.toml"
        cfg.write_bytes(raw)
        rc, _, err = run_main(fill([*TRAIN, "--config", str(cfg)], world, tmp_path), capsys)
        assert_one_line(rc, err, 2, str(cfg))


# --------------------------------------------------------------------------- sweep TOML files
# (the smoke sweep with one table changed; each is refused before any trial or storage exists)
SWEEP_CASES = [
    # strict types: a bool is never a number, a string never a bool (each refused before a trial)
    ({"sweep": {"seed": True}}, "'sweep::seed': should be an integer, got True"),
    ({"sweep": {"max_retry": True}}, "'sweep::max_retry': should be an integer"),
    ({"pruner": {"n_warmup_steps": True}}, "'pruner::n_warmup_steps': should be an integer"),
    (
        {"space": {"beta": {"type": "float", "low": 0.1, "high": 1, "log": "false"}}},
        "'space::beta::log': should be true or false",
    ),
    (
        {"space": {"beta": {"type": "float", "low": 0.1, "high": 1, "log": [True]}}},
        "'space::beta::log'",
    ),
    ({"space": {"beta": {"type": "float", "low": True, "high": 1}}}, "'space::beta::low'"),
    ({"space": {"beta": {"type": "grid", "values": [0.1, [1]]}}}, "'space::beta::values::1'"),
    ({"space": {"beta": {"type": "grid", "values": [1], "choices": [2]}}}, "not both"),
    # ranges where the library downstream has one: numpy seeds, heartbeats added to timestamps
    ({"sweep": {"seed": -1}}, "'sweep::seed': should be greater than or equal to 0"),
    ({"sweep": {"seed": 2**40}}, "'sweep::seed': should be less than or equal to 4294967295"),
    ({"sweep": {"heartbeat_interval": 10**10}}, "'sweep::heartbeat_interval'"),
    ({"sweep": {"grace_period": 10**10}}, "'sweep::grace_period'"),
    ({"sweep": {"name": ""}}, "non-empty"),
    ({"sweep": {"name": 5}}, "'sweep::name': should be a string"),
    ({"evaluation": {"device": "cpu"}}, "[evaluation] device"),
    ({"evaluation": {"figures": "no"}}, "'figures': should be true or false"),
    ({"pruner": {"reduction_factor": 1}}, "'pruner::reduction_factor'"),
    ({"objective": []}, "[objective]: missing"),
    ({"objective": {"key": 5}}, "'objective::0::key': should be a string"),
    ({"train": {"epochs": True}}, "'epochs': should be an integer"),
    ({"train": {"seed": -1}}, "'seed': should be greater than or equal to 0"),
    ({"train": {"norm": "false"}}, "'norm': should be true or false"),
    ({"evaluation": {"iw_samples": True}}, "'iw_samples': should be an integer"),
    ({"evaluation": {"seed": 2**40}}, "'seed': should be less than or equal to 4294967295"),
    ({"evaluation": {"split": "dev"}}, "'split': should be 'train', 'val' or 'test'"),
    ({"pruner": {"n_startup_trials": -1}}, "'pruner::n_startup_trials'"),
    ({"pruner": {"min_resource": 1.5}}, "'pruner::min_resource': should be an integer"),
    (
        {"space": {"beta": {"type": "float", "low": 0.1, "high": 1, "step": True}}},
        "'space::beta::step': should be an integer or a number",
    ),
    (
        {"space": {"beta": {"type": "categorical", "choices": [[1], 2]}}},
        "'space::beta::choices::0'",
    ),
    ({"space": {"beta": {"type": "float", "low": "0.1", "high": 1}}}, "'space::beta::low'"),
    ({"sweep": {"sampler": "grid"}}, "'sweep::sampler': should be 'tpe' or 'random'"),
    ({"sweep": {"trials": 2.5}}, "'sweep::trials': should be an integer"),
]


@pytest.mark.parametrize(("change", "needle"), SWEEP_CASES, ids=[n for _, n in SWEEP_CASES])
def test_sweep_toml_mistakes(tmp_path, capsys, change, needle):
    cfg = tmp_path / "s.toml"
    cfg.write_text(to_toml(smoke(**change)))
    rc, _, err = run_main(
        ["sweep", "run", "--config", str(cfg), "--out", str(tmp_path / "o")], capsys
    )
    assert_one_line(rc, err, 2, needle)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("raw", [b"[sweep]\nname = '\xff'\n", b"\x00\x01", b"[sweep\n"])
def test_sweep_toml_not_utf8_or_not_toml(tmp_path, capsys, raw):
    cfg = tmp_path / "s.toml"
    cfg.write_bytes(raw)
    rc, _, err = run_main(
        ["sweep", "run", "--config", str(cfg), "--out", str(tmp_path / "o")], capsys
    )
    assert_one_line(rc, err, 2, str(cfg))


# --------------------------------------------------------------------------- data folders
def _files_with(**replace: bytes) -> dict[str, bytes]:
    files = idx_files()
    for key, value in replace.items():
        files[dict(ti=FILES[0], tl=FILES[1], si=FILES[2], sl=FILES[3])[key]] = value
    return files


# describing odd data is fine (`data info` exits 0); only using it for training is refused
INFO_OK = {
    "non-square",
    "too-small",
    "tiny-1px",
    "sizes-differ",
    "empty-train",
    "val-empty",
    "test-empty",
}
DATA_CASES = [
    ("missing-file", lambda: {k: v for k, v in idx_files().items() if k != FILES[3]}, "not found"),
    ("wrong-magic", lambda: _files_with(ti=raw_header(0x0803FFFF, 1) + b"\0"), "magic"),
    ("header-only", lambda: _files_with(ti=raw_header(0x803, 10, 28, 28)), "truncated"),
    ("body-truncated", lambda: _files_with(ti=idx_files()[FILES[0]][:-100]), "truncated"),
    ("trailing-bytes", lambda: _files_with(ti=idx_files()[FILES[0]] + b"xx"), "trailing"),
    ("empty-file", lambda: _files_with(sl=b""), "too short"),
    ("labels-2d", lambda: _files_with(tl=encode_idx(labels(120).reshape(12, 10))), "1-d"),
    ("images-2d", lambda: _files_with(ti=encode_idx(images(120)[:, 0, :])), "3-d"),
    ("label-count", lambda: _files_with(tl=encode_idx(labels(119))), "labels"),
    ("non-square", lambda: idx_files(train_hw=(28, 30), test_hw=(28, 30)), "square"),
    ("too-small", lambda: idx_files(train_hw=(20, 20)), "too small"),
    ("tiny-1px", lambda: idx_files(train_hw=(1, 1)), "too small"),
    ("sizes-differ", lambda: idx_files(train_hw=(28, 28), test_hw=(32, 32)), "same size"),
    ("empty-train", lambda: idx_files(n_train=0), "empty"),
    ("val-empty", lambda: idx_files(n_train=5), "val split is empty"),
    ("test-empty", lambda: idx_files(n_test=0), "test split is empty"),
]


@pytest.mark.parametrize(
    "case, make, needle", [pytest.param(i, m, n, id=i) for i, m, n in DATA_CASES]
)
@pytest.mark.parametrize("command", ["train", "data-info"])
def test_data_folder_mistakes(world, tmp_path, capsys, case, make, needle, command):
    folder = write_folder(tmp_path / "d", make(), gz=False)
    if command == "train":
        argv = ["train", "--dataset", "idx", "--data-dir", str(folder), "--out", "{never}"]
    else:
        argv = ["data", "info", "--dataset", "idx", "--data-dir", str(folder)]
    rc, _, err = run_main(fill(argv, world, tmp_path), capsys)
    if command == "data-info" and case in INFO_OK:
        assert rc == 0 and "Traceback" not in err and not err.strip(), err
        return
    assert_one_line(rc, err, 1, needle)


MORE_DATA_CASES = [
    ("corrupt-gzip", "corrupt"),
    ("gz-of-nothing", "gz-empty"),
    ("dir-named-like-file", "dir"),
    ("single-train-image-with-norm", "one"),
    ("mnist-dir-with-other-data", "named"),
    ("fashion-dir-with-other-data", "named-fashion"),
    ("data-dir-missing", "missing"),
    ("data-dir-is-file", "file"),
]


@pytest.mark.parametrize("kind", [pytest.param(k, id=i) for i, k in MORE_DATA_CASES])
def test_more_data_folder_mistakes(world, tmp_path, capsys, kind):
    files = idx_files()
    dataset, extra = "idx", []
    folder = tmp_path / "d"
    if kind == "corrupt":
        write_folder(folder, files)
        gz = folder / f"{FILES[0]}.gz"
        gz.write_bytes(corrupt_gzip(files[FILES[0]]))
        needle = "gzip"
    elif kind == "gz-empty":
        write_folder(folder, files)
        (folder / f"{FILES[2]}.gz").write_bytes(gzip.compress(b""))
        needle = "too short"
    elif kind == "dir":
        write_folder(folder, {k: v for k, v in files.items() if k != FILES[1]})
        (folder / FILES[1]).mkdir()
        needle = "not found"
    elif kind == "one":
        write_folder(folder, idx_files(n_train=12))
        extra, needle = ["--limit-train", "1"], "BatchNorm"
    elif kind in ("named", "named-fashion"):
        folder = world / "idx"
        dataset = "mnist" if kind == "named" else "fashion-mnist"
        needle = f"does not hold {dataset} (checksums differ"
    elif kind == "missing":
        folder, needle = tmp_path / "nowhere", "no such directory"
    else:
        folder, needle = world / "file.txt", "no such directory"
    argv = ["train", "--dataset", dataset, "--data-dir", str(folder), *extra, "--out", "{never}"]
    rc, _, err = run_main(fill(argv, world, tmp_path), capsys)
    line = assert_one_line(rc, err, 1, needle)
    assert "pip" not in line and "Fashion-MNIST" not in line  # hints fit a user's own folder


def test_study_refuses_data_without_its_interpolation_labels(world, tmp_path, capsys):
    """The study interpolates 5→8, 4→8 and 1→7: data without those labels is refused up front,
    not after the first stages' minutes of training."""
    files = idx_files()
    files[FILES[3]] = encode_idx((np.arange(30) % 5).astype(np.uint8))  # labels 0..4 only
    folder = write_folder(tmp_path / "d", files)
    argv = ["study", "--dataset", "idx", "--data-dir", str(folder), "--out", str(tmp_path / "s")]
    rc, _, err = run_main(argv, capsys)
    assert_one_line(rc, err, 2, "no image with label 5, 7, 8")
    assert not (tmp_path / "s").exists()


def test_named_data_dir_is_read_even_with_a_valid_cache(world, tmp_path, capsys, monkeypatch):
    """With MNIST cached, `--data-dir` naming other data must still be read and refused."""
    from vaelab.data import store

    cached = store.CacheStatus(True, [], {}, {"cached": b""})
    monkeypatch.setattr(store, "check_cache", lambda spec: cached)
    rc, out, err = run_main(
        ["data", "info", "--dataset", "mnist", "--data-dir", str(world / "idx")], capsys
    )
    assert_one_line(rc, err, 1, "does not hold mnist")
    assert out == ""


CACHE_CASES = {
    "manifest-list": lambda c: (c / "manifest.json").write_text("[]"),
    "manifest-junk": lambda c: (c / "manifest.json").write_text("{oops"),
    "manifest-dir": lambda c: ((c / "manifest.json").unlink(), (c / "manifest.json").mkdir()),
    "manifest-no-files": lambda c: (c / "manifest.json").write_text('{"files": {}}'),
    "file-truncated": lambda c: (c / FILES[0]).write_bytes((c / FILES[0]).read_bytes()[:99]),
    "file-is-dir": lambda c: ((c / FILES[2]).unlink(), (c / FILES[2]).mkdir()),
    "file-deleted": lambda c: (c / FILES[3]).unlink(),
    "lock-is-dir": lambda c: (
        (c.parent / f".{c.name}.lock").unlink(),
        (c.parent / f".{c.name}.lock").mkdir(),
    ),
}


@pytest.mark.parametrize("damage", sorted(CACHE_CASES))
def test_damaged_dataset_cache_is_rebuilt_or_one_line(world, tmp_path, capsys, monkeypatch, damage):
    """A damaged cache is repaired from the named folder, or refused in one line."""
    from vaelab.data import store

    monkeypatch.setenv("VAELAB_HOME", str(tmp_path / "home"))
    argv = ["data", "fetch", "--dataset", "idx", "--data-dir", str(world / "idx")]
    assert run_main(argv, capsys)[0] == 0
    cache = next((tmp_path / "home" / "datasets").glob("idx-*"))
    CACHE_CASES[damage](cache)
    store._VERIFIED.clear()  # as a new process would
    rc, _, err = run_main(
        ["data", "info", "--dataset", "idx", "--data-dir", str(world / "idx")], capsys
    )
    if rc == 0:
        assert "Traceback" not in err
        verify = ["data", "verify", "--dataset", "idx", "--data-dir", str(world / "idx")]
        assert run_main(verify, capsys)[0] == 0  # repaired, not just read around
    else:
        assert_one_line(rc, err, 1, str(cache))


def test_damaged_classifier_cache_is_retrained(world, tmp_path, capsys):
    """The reference classifier is a cache: a damaged copy is rebuilt, not a failure."""
    run = _copy_run(world, tmp_path)
    argv = ["evaluate", str(run), "--classifier", "smoke", "--limit", "20", "--n-samples", "8"]
    argv += ["--iw-samples", "2", "--probe-train", "20", "--device", "cpu"]
    assert run_main(argv, capsys)[0] == 0
    for damage in (b"junk", b""):
        for cached in Path(os.environ["VAELAB_HOME"]).glob("classifiers/*smoke*.pt"):
            cached.write_bytes(damage)
        rc, _, err = run_main(argv, capsys)
        assert rc == 0 and "unreadable" in err and "Traceback" not in err, err


# --------------------------------------------------------------------------- environment
ENV_CASES = [
    ("home-is-file", {"VAELAB_HOME": "{file}"}, "is a file"),
    ("home-below-file", {"VAELAB_HOME": "{file}/home"}, "is below the file"),
    ("home-unwritable", {"VAELAB_HOME": "/proc/vaelab-home"}, "VAELAB_HOME"),
    ("timeout-word", {"VAELAB_MIRROR_TIMEOUT": "soon"}, "VAELAB_MIRROR_TIMEOUT"),
    ("timeout-negative", {"VAELAB_MIRROR_TIMEOUT": "-5"}, "VAELAB_MIRROR_TIMEOUT"),
    ("timeout-nan", {"VAELAB_MIRROR_TIMEOUT": "nan"}, "VAELAB_MIRROR_TIMEOUT"),
    ("timeout-inf", {"VAELAB_MIRROR_TIMEOUT": "inf"}, "VAELAB_MIRROR_TIMEOUT"),
]


@pytest.mark.parametrize("env, needle", [pytest.param(e, n, id=i) for i, e, n in ENV_CASES])
def test_environment_mistakes(world, tmp_path, capsys, monkeypatch, env, needle):
    for key, value in env.items():
        monkeypatch.setenv(key, fill([value], world, tmp_path)[0])
    if "VAELAB_HOME" not in env:
        monkeypatch.setenv("VAELAB_HOME", str(tmp_path / "fresh-home"))
    argv = ["data", "fetch", "--dataset", "mnist"]
    if "VAELAB_HOME" in env:
        argv = ["data", "fetch", "--dataset", "idx", "--data-dir", str(world / "idx")]
    rc, _, err = run_main(argv, capsys)
    assert_one_line(rc, err, None, needle)


# --------------------------------------------------------------------------- run folders
def _copy_run(world: Path, tmp: Path, kind: str = "ae") -> Path:
    run = tmp / "run"
    shutil.copytree(world / kind, run, ignore=shutil.ignore_patterns(".lock"))
    return run


def _edit_config(run: Path, **changes) -> None:
    cfg = json.loads((run / "config.json").read_text())
    cfg.update(changes)
    (run / "config.json").write_text(json.dumps(cfg))


def _strip_key(path: Path, key: str) -> None:
    ckpt = torch.load(path, weights_only=True)
    del ckpt[key]
    torch.save(ckpt, path)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


RUN_CASES = {
    "config-invalid-json": (lambda r, w: (r / "config.json").write_text("{oops"), "not valid JSON"),
    "config-list": (lambda r, w: (r / "config.json").write_text("[1, 2]"), "JSON list"),
    "config-dir": (
        lambda r, w: ((r / "config.json").unlink(), (r / "config.json").mkdir()),
        "is a directory",
    ),
    "config-not-utf8": (lambda r, w: (r / "config.json").write_bytes(b"\xff\xfe"), "JSON"),
    "config-changed-size": (lambda r, w: _edit_config(r, latent_dim=3), "another model"),
    "config-changed-kind": (lambda r, w: _edit_config(r, model="vae"), "another model"),
    "config-unknown-field": (lambda r, w: _edit_config(r, colour="red"), "unknown config"),
    "config-bad-type": (lambda r, w: _edit_config(r, beta="x"), "'beta'"),
    "config-bad-value": (lambda r, w: _edit_config(r, epochs=-1), "'epochs'"),
    "done-junk": (lambda r, w: (r / "DONE").write_text("garbage"), "DONE"),
    "done-list": (lambda r, w: (r / "DONE").write_text("[]"), "DONE"),
    "done-epochs-string": (lambda r, w: (r / "DONE").write_text('{"epochs": "1"}'), "DONE"),
    "done-epochs-bool": (lambda r, w: (r / "DONE").write_text('{"epochs": true}'), "'epochs'"),
    "done-epochs-negative": (lambda r, w: (r / "DONE").write_text('{"epochs": -1}'), "'epochs'"),
    "done-no-epochs": (lambda r, w: (r / "DONE").write_text("{}"), "'epochs' is missing"),
    "done-val-string": (
        lambda r, w: (r / "DONE").write_text('{"epochs": 1, "val/loss": "low"}'),
        "'val::val/loss'",
    ),
    "done-unknown": (
        lambda r, w: (r / "DONE").write_text('{"epochs": 1, "colour": 1}'),
        "unknown field(s) 'colour'",
    ),
    "config-seed-bool": (lambda r, w: _edit_config(r, seed=True), "'seed'"),
    "config-seed-40-bit": (lambda r, w: _edit_config(r, seed=2**40), "'seed'"),
    "last-truncated": (
        lambda r, w: (r / "checkpoints/last.pt").write_bytes(
            (r / "checkpoints/last.pt").read_bytes()[:500]
        ),
        "damaged or truncated",
    ),
    "last-missing-keys": (lambda r, w: _strip_key(r / "checkpoints/last.pt", "optimizer"), "lacks"),
    "last-other-kind": (
        lambda r, w: shutil.copy(w / "vae/checkpoints/last.pt", r / "checkpoints/last.pt"),
        "another model",
    ),
    "last-empty": (lambda r, w: (r / "checkpoints/last.pt").write_bytes(b""), "damaged"),
    "last-not-vaelab": (
        lambda r, w: torch.save({"weights": torch.zeros(1)}, r / "checkpoints/last.pt"),
        "not a vaelab",
    ),
}


@pytest.mark.parametrize("damage", sorted(RUN_CASES))
def test_damaged_run_folder_on_resume(world, tmp_path, capsys, damage):
    run = _copy_run(world, tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    edit, needle = RUN_CASES[damage]
    edit(run, world)
    rc, _, err = run_main(["train", "--out", str(run), "--resume", "--epochs", "2"], capsys)
    line = assert_one_line(rc, err, 1, needle)
    assert str(run) in line  # names the file
    after_files = {p for p in run.rglob("*") if p.is_file()}
    for p in before:  # nothing that was intact got rewritten or lost
        if p in after_files and "last.pt" not in p.name and p.name not in ("config.json", "DONE"):
            assert p.read_bytes() == before[p], p


EVAL_CASES = {
    "best-missing-keys": (lambda r, w: _strip_key(r / "checkpoints/best.pt", "model"), "lacks"),
    "best-other-kind": (
        lambda r, w: shutil.copy(w / "vae/checkpoints/best.pt", r / "checkpoints/best.pt"),
        "another model",
    ),
    "best-truncated": (
        lambda r, w: (r / "checkpoints/best.pt").write_bytes(b"PK\x03\x04 broken"),
        "copy checkpoints/last.pt over it",
    ),
    "best-malicious": (
        lambda r, w: torch.save({"x": _Evil()}, r / "checkpoints/best.pt"),
        "damaged",
    ),
    "best-is-dir": (
        lambda r, w: ((r / "checkpoints/best.pt").unlink(), (r / "checkpoints/best.pt").mkdir()),
        "no checkpoints/best.pt",
    ),
    "best-wrong-weights": (lambda r, w: _swap_weights(r / "checkpoints/best.pt"), "do not fit"),
    "best-config-edited": (lambda r, w: _edit_ckpt_config(r / "checkpoints/best.pt"), "'model'"),
    "config-json-edited": (lambda r, w: _edit_config(r, channels=[8, 8, 8, 8]), "another model"),
}


def _swap_weights(path: Path) -> None:
    ckpt = torch.load(path, weights_only=True)
    key = next(iter(ckpt["model"]))
    ckpt["model"][key] = torch.zeros(3, 3)
    torch.save(ckpt, path)


def _edit_ckpt_config(path: Path) -> None:
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["model"] = "gan"
    torch.save(ckpt, path)


@pytest.mark.parametrize("damage", sorted(EVAL_CASES))
@pytest.mark.parametrize("command", ["sample", "evaluate"])
def test_damaged_run_folder_on_read(world, tmp_path, capsys, damage, command):
    run = _copy_run(world, tmp_path)
    edit, needle = EVAL_CASES[damage]
    edit(run, world)
    argv = ["sample", str(run), "-n", "4", "--out", str(tmp_path / "s.png"), "--device", "cpu"]
    if command == "evaluate":  # options that keep a (wrongly accepted) evaluation short
        argv = ["evaluate", str(run), "--classifier", "smoke", "--limit", "20", "--n-samples", "8"]
        argv += ["--iw-samples", "2", "--probe-train", "20", "--device", "cpu"]
    rc, _, err = run_main(argv, capsys)
    line = assert_one_line(rc, err, 1, needle)
    assert "copy checkpoints/best.pt over it" not in line or "last.pt" in line
    assert not (tmp_path / "s.png").exists() and not (run / "eval.json").exists()


def test_metrics_junk_lines_are_skipped_on_resume(world, tmp_path, capsys):
    """Junk in metrics.jsonl (evidence, not state) is skipped: the run resumes and extends."""
    run = _copy_run(world, tmp_path)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('garbage\n[1, 2]\n{"step": "x"}\n5\n\xff\n{"step": 1, "train/recon": "x"}\n')
    (run / "DONE").unlink()
    rc, _, err = run_main(["train", "--out", str(run), "--resume", "--epochs", "2"], capsys)
    assert rc == 0 and "Traceback" not in err, err
    assert json.loads((run / "DONE").read_text())["epochs"] == 2
    with open(run / "metrics.jsonl", "a") as f:  # resuming dropped them; add them again
        f.write('{"step": 1, "train/recon": "x"}\n{"val/recon": 1}\n[]\n')
    argv = ["evaluate", str(run), "--classifier", "smoke", "--limit", "16", "--n-samples", "16"]
    rc, _, err = run_main([*argv, "--probe-train", "40", "--device", "cpu"], capsys)
    assert rc == 0 and "Traceback" not in err, err  # the curves figure skips the junk too


def test_malicious_checkpoint_prints_no_torch_warning(world, tmp_path, capsys):
    run = _copy_run(world, tmp_path)
    torch.save({"x": _Evil()}, run / "checkpoints" / "best.pt")
    rc, _, err = run_main(["sample", str(run), "--out", str(tmp_path / "s.png")], capsys)
    assert_one_line(rc, err, 1, "damaged")
    assert "UserWarning" not in err and "pwned" not in err


# --------------------------------------------------------------------------- the boundary itself
@pytest.mark.parametrize(
    "exc, code, needle",
    [
        (KeyboardInterrupt(), 130, "interrupted"),
        (MemoryError(), 1, "out of memory"),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), 1, "out of memory"),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: 10 GB"), 1, "out of memory"),
        (OSError(28, "No space left on device", "/x/last.pt"), 1, "disk full on /x/last.pt"),
        (OSError(5, "Input/output error", "/x/y"), 1, "input/output error on /x/y"),
        (PermissionError(13, "Permission denied", "/x"), 1, "permission denied on /x"),
        (OSError(30, "Read-only file system", "/ro"), 1, "read-only file system"),
        (IsADirectoryError(21, "Is a directory", "/d"), 1, "is a directory"),
        (NotADirectoryError(20, "Not a directory", "/f/x"), 1, "part of the path is a file"),
        (FileNotFoundError(2, "No such file or directory", "/nope"), 1, "/nope"),
        (OSError(122, "Disk quota exceeded", "/q"), 1, "quota"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None,
)
def test_boundary_maps_expected_failures(monkeypatch, capsys, exc, code, needle):
    from vaelab.cli import data as cli_data

    def boom(args):
        raise exc

    monkeypatch.setattr(cli_data, "cmd_info", boom)
    rc, _, err = run_main(["data", "info"], capsys)
    assert_one_line(rc, err, code, needle)


def test_unexpected_error_is_one_line_with_debug_hint(monkeypatch, capsys):
    from vaelab.cli import data as cli_data

    monkeypatch.setattr(cli_data, "cmd_info", lambda args: 1 / 0)
    rc, _, err = run_main(["data", "info"], capsys)
    assert rc == 3 and "Traceback" not in err
    assert err.strip().splitlines() == [
        "vaelab: error: unexpected internal error: ZeroDivisionError: division by zero (a bug "
        "in vaelab: please report it; run with --debug (or VAELAB_DEBUG=1) for the traceback)"
    ]
    with pytest.raises(ZeroDivisionError):
        run_main(["data", "info", "--debug"], capsys)
    monkeypatch.setenv("VAELAB_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        run_main(["data", "info"], capsys)


# --------------------------------------------------------------------------- study storages
# `--storage` of `sweep run`, `study` and `study worker`: one line naming the URL (password
# hidden) and the fix, and nothing created before the refusal.
STORAGE_COMMANDS = {
    "sweep": ["sweep", "run", "--config", SMOKE_SWEEP, "--out", "{never}", "--storage"],
    "study": ["study", *IDX, "--out", "{never}", "--storage"],
    "worker": ["study", "worker", "--out", "{never}", "--storage"],
}
BOTH = ("sweep", "study", "worker")
WRITERS = ("sweep", "study")  # a worker only joins an existing storage
# (id, URL, commands, exit code, text the one line must contain)
STORAGE_CASES = [
    ("sqlite-not-a-database", "sqlite:///{file}", BOTH, 1, "(file is not a database); name a"),
    ("sqlite-folder", "sqlite:///{tmp}", BOTH, 2, "names a folder; name a database file in it"),
    ("sqlite-no-path", "sqlite:///", BOTH, 2, "sqlite:/// names no database file; write"),
    ("sqlite-no-folder", "sqlite:////proc/vaelab/x.db", WRITERS, 1, "cannot make the folder"),
    ("sqlite-unwritable", "sqlite:////proc/vaelab.db", WRITERS, 1, "this user can create"),
    ("postgres-refused", "postgresql://u:pw@127.0.0.1:1/db", BOTH, 1, "refused); start the"),
]


@pytest.mark.parametrize(
    "argv, code, needle",
    [
        pytest.param([*STORAGE_COMMANDS[c], url], code, n, id=f"{c}-{i}")
        for i, url, commands, code, n in STORAGE_CASES
        for c in commands
    ],
)
def test_storage_mistakes(world, tmp_path, capsys, argv, code, needle):
    rc, _, err = run_main(fill(argv, world, tmp_path), capsys)
    line = assert_one_line(rc, err, code, needle)
    assert fill([argv[-1]], world, tmp_path)[0].replace(":pw@", ":***@") in line  # the URL
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("command", BOTH)
def test_locked_sqlite_storage(world, tmp_path, capsys, monkeypatch, command):
    """Another program holds the database's write lock past SQLite's busy timeout."""
    import sqlite3

    from vaelab.tune import storage

    monkeypatch.setattr(storage, "SQLITE_BUSY_S", 0.1)
    db = tmp_path / "locked.db"
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN EXCLUSIVE")
        argv = fill([*STORAGE_COMMANDS[command], f"sqlite:///{db}"], world, tmp_path)
        rc, _, err = run_main(argv, capsys)
    finally:
        holder.close()
    assert_one_line(rc, err, 1, f"sqlite:///{db} (database is locked); another program holds")


@pytest.mark.parametrize("command", BOTH)
@pytest.mark.parametrize("case", ["auth", "missing-database"])
def test_postgresql_storage_mistakes(world, tmp_path, capsys, postgres_url, command, case):
    """A real server (tests/pg.py): an unknown user, then a database that does not exist."""
    server, _ = postgres_url.rsplit("/", 1)
    url = {
        "auth": server.replace("postgres@", "nobody:secret@") + "/vaelab",
        "missing-database": server.replace("postgres@", "postgres:secret@") + "/nodb",
    }[case]
    rc, _, err = run_main(fill([*STORAGE_COMMANDS[command], url], world, tmp_path), capsys)
    needle = {
        "auth": 'role "nobody" does not exist); check the user name and password in the URL',
        "missing-database": 'database "nodb" does not exist); create the database',
    }[case]
    line = assert_one_line(rc, err, 1, needle)
    assert url.replace(":secret@", ":***@") in line and "secret" not in line
    assert not (tmp_path / "never").exists()


# --------------------------------------------------------------------------- breadth
def test_survey_size(request):
    """The survey runs at least 150 bad inputs: the cases pytest collects from this module
    (whatever -k selects), each a test that fails on a traceback or a wrong acceptance."""
    cases = [i for i in request.node.parent.collect() if i.name != request.node.name]
    assert all(isinstance(i, pytest.Function) for i in cases)
    print(collections.Counter(i.originalname for i in cases), len(cases))
    assert len(cases) >= 150
