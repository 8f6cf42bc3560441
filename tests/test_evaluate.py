"""`vaelab evaluate` end to end on tiny runs; the reference classifier; sample and interpolate."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vaelab.cli import main
from vaelab.config import TrainConfig
from vaelab.data.store import split_arrays
from vaelab.errors import ConfigError
from vaelab.evaluate import GROUPS, SELECTION_GROUPS, EvalConfig, evaluate_run, memo
from vaelab.evaluate import classifier as clf
from vaelab.evaluate.arrays import ARRAYS_FILE, EvalArrays
from vaelab.evaluate.keys import eval_keys, key_requirement
from vaelab.train.checkpoint import load_checkpoint
from vaelab.train.loop import train

from .conftest import EARLY, USER_HOME

EVAL_PAGE = Path(__file__).resolve().parents[1] / "docs" / "evaluation.md"
TINY = dict(limit_train=512, limit_val=128, batch_size=32, log_every=4, channels=[8, 16, 16, 32])
FAST_EVAL = dict(
    limit=400,
    iw_samples=16,
    n_samples=400,
    probe_train=1000,
    classifier="smoke",
    n_pairs=2,
    steps=3,
)


def readme_keys() -> tuple[list[str], list[str]]:
    """(eval.json keys, figure files) documented on the evaluation page of the docs (up to its
    "What the likelihood numbers mean" section)."""
    text = EVAL_PAGE.read_text().split("\n## What the likelihood numbers mean", 1)[0]
    keys, figs = [], re.findall(r"`([a-z_0-9]+\.png)`", text)
    for row in re.findall(r"^\| (`.+?) \|", text, flags=re.M):
        keys += [k for k in re.findall(r"`([a-z_]+/[a-z_0-9/]+)`", row)]
    return sorted(set(keys)), sorted(set(figs))


VAE_ONLY = ("elbo", "kl", "active_units", "iw_", "neg_elbo", "kl_per_dim")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_arrays):
    root = tmp_path_factory.mktemp("runs")
    train(TrainConfig(model="vae", beta=1.0, epochs=1, **TINY), root / "vae")
    train(TrainConfig(model="ae", epochs=1, **TINY), root / "ae")
    return root


def test_docs_document_keys_and_figures():
    keys, figs = readme_keys()
    assert "test/iw_nll" in keys and "samples/fd" in keys and "interp/slerp/min_conf" in keys
    assert {"samples/precision", "floor/recall", "interp/lerp/realism_median"} <= set(keys)
    assert "samples.png" in figs and "interp_5to8.png" in figs and len(figs) >= 10


def test_evaluate_vae_writes_every_documented_key_and_figure(runs):
    m = evaluate_run(runs / "vae", **FAST_EVAL)
    on_disk = json.loads((runs / "vae" / "eval.json").read_text())
    assert on_disk == pytest.approx(m)
    assert all(isinstance(v, (int, float)) for v in on_disk.values())
    keys, figs = readme_keys()
    for key in keys:
        assert key in on_disk, key
    for fig in figs:
        assert (runs / "vae" / "figures" / fig).is_file(), fig
    # sanity of the numbers themselves
    assert m["test/iw_nll"] <= -m["test/elbo"] + 1.0  # IW bound at least as tight (noise aside)
    # standard errors of means over 400 images: positive and a small fraction of the estimate
    for est in ("sse", "elbo", "iw_nll"):
        assert 0 < m[f"test/{est}_se"] < 0.1 * abs(m[f"test/{est}"]), est
    # the class fractions are argmax counts over the 400 samples, the entropy is theirs
    fracs = np.array([m[f"samples/class_frac_{c}"] for c in range(10)])
    np.testing.assert_allclose(fracs * 400, np.round(fracs * 400), atol=1e-9)
    nz = fracs[fracs > 0]
    assert m["samples/class_entropy"] == pytest.approx(-(nz * np.log(nz)).sum(), abs=1e-12)
    assert m["test/mse"] == pytest.approx(m["test/sse"] / 784)
    assert m["floor/fd_train_vs_test"] < m["samples/fd"]  # an untrained-ish VAE is not real
    assert m["test/iw_k"] == 16 and m["eval/n_images"] == 400
    assert m["test/kl"] == pytest.approx(sum(m[f"test/kl_dim_{i:02d}"] for i in range(64)))
    assert all(m[f"eval/group/{g}"] == 1.0 for g in GROUPS) and m["eval/figures"] == 1.0
    # precision/recall: real train vs test covers the test set; this 1-epoch VAE decodes nearly
    # one blob whatever z is (class entropy ≈ 0), so its samples cover almost nothing
    assert m["floor/precision"] > 0.6 and m["floor/recall"] > 0.6
    assert m["samples/recall"] < 0.1 < m["floor/recall"]
    assert m["samples/pr_n"] == 400 and m["samples/pr_k"] == 3
    # realism: the pixel cross-fade is an overlay of two digits half-way, the least real point
    mid = m["interp/pixel/realism_step_2"]
    assert mid > max(m["interp/pixel/realism_step_1"], m["interp/pixel/realism_step_3"])
    assert m["interp/lerp/realism_worst"] >= m["interp/lerp/realism_median"]
    assert all(f"interp/slerp/realism_step_{i}" in m for i in (1, 2, 3))
    assert set(m) == eval_keys(is_vae=True, latent_dim=64, steps=3)  # the published schema
    # what the figures (and a study's report) are drawn from, stored once: the same paths and
    # curves the interpolation metrics were measured on
    a = EvalArrays.load(runs / "vae")
    assert a.paths["lerp"].shape == (3 * 2, 3 + 2, 1, 28, 28) and a.samples.shape[0] == 64
    assert np.median(a.realism["lerp"]) == pytest.approx(m["interp/lerp/realism_median"])
    assert a.confidence["slerp"][:, 1:-1].mean() == pytest.approx(m["interp/slerp/mean_conf"])
    assert a.realism["pixel"].shape == (6, 3) and a.traversals.shape[:2] == (6, 9)
    assert a.kl_per_dim is not None and a.kl_per_dim[0] == a.kl_per_dim.max()


def test_key_requirement_names_the_group_each_key_needs():
    assert key_requirement("eval/time_s") == ""
    assert key_requirement("test/sse") == "reconstruction"
    assert key_requirement("test/kl_dim_17") == key_requirement("test/kl") == "vae+reconstruction"
    assert key_requirement("test/iw_nll") == "vae+likelihood"
    assert key_requirement("samples/class_frac_7") == key_requirement("samples/recall") == "samples"
    assert key_requirement("probe/knn_acc") == "probes"
    assert key_requirement("interp/pixel/realism_step_4") == "interpolation"
    assert key_requirement("val/sse", split="val") == "reconstruction"
    assert key_requirement("val/sse") is None and key_requirement("samples/fid") is None


def test_selection_groups_compute_only_what_they_need(runs, tmp_path):
    """The cheap β-selection evaluation: same numbers as the full one for what it computes,
    nothing else, no figures."""
    full = evaluate_run(runs / "vae", **FAST_EVAL)
    run = tmp_path / "vae"
    shutil.copytree(runs / "vae", run, ignore=shutil.ignore_patterns("figures", "eval*"))
    m = evaluate_run(run, EvalConfig(groups=SELECTION_GROUPS, figures=False, **FAST_EVAL))
    for key in ("recon/classifier_accuracy", "samples/fd", "samples/class_entropy", "test/kl"):
        assert m[key] == pytest.approx(full[key], rel=1e-9), key
    assert m["eval/group/likelihood"] == m["eval/group/probes"] == m["eval/figures"] == 0.0
    assert not any(k.startswith(("probe/", "interp/", "test/iw", "test/elbo")) for k in m)
    assert not (run / "figures").exists() and not (run / ARRAYS_FILE).exists()
    assert set(m) == eval_keys(is_vae=True, latent_dim=64, groups=SELECTION_GROUPS)
    with pytest.raises(ConfigError, match="groups"):
        evaluate_run(run, EvalConfig(groups=["samples", "fid"]))


@pytest.mark.parametrize("n_samples", [400, 300])  # radii from the one neighbour pass, or not
def test_memoised_evaluations_are_bitwise_the_uncached_ones(runs, n_samples, monkeypatch):
    """The model-independent parts (real and floor features, neighbours, floor measures) come
    from the memo on a second evaluation, with exactly the numbers of a fresh computation."""
    ecfg = EvalConfig(figures=False, **(FAST_EVAL | {"n_samples": n_samples}))
    timing = ("eval/time_s", "test/iw_time_s")
    calls: list[str] = []
    classify = clf.classify
    monkeypatch.setattr(clf, "classify", lambda *a, **k: calls.append("") or classify(*a, **k))
    with memo.disabled():
        fresh = evaluate_run(runs / "vae", ecfg)
    n_fresh = len(calls)
    memo.clear()
    first = evaluate_run(runs / "vae", ecfg)
    calls.clear()
    again = evaluate_run(runs / "vae", ecfg)
    for m in (first, again):
        assert {k: v for k, v in m.items() if k not in timing} == {
            k: v for k, v in fresh.items() if k not in timing
        }
    assert len(calls) == n_fresh - 2  # neither the real nor the floor images classified again


def test_memo_keys_on_content_and_hands_out_copies():
    calls = []

    def compute(a):
        calls.append(1)
        return a * 2, float(a.sum())

    a = np.arange(6.0)
    memo.clear()
    x, s = memo.memoised("t", (a, 3), lambda: compute(a))
    x[:] = -1  # a caller editing its copy changes nothing memoised
    y, t = memo.memoised("t", (a.copy(), 3), lambda: compute(a))
    assert len(calls) == 1 and (y == a * 2).all() and t == s
    memo.memoised("t", (a, 4), lambda: compute(a))
    memo.memoised("t", (a.astype(np.float32), 3), lambda: compute(a))
    memo.memoised("t", (torch.from_numpy(a), 3), lambda: compute(a))
    assert len(calls) == 4
    with memo.disabled():
        memo.memoised("t", (a, 3), lambda: compute(a))
    assert len(calls) == 5
    with pytest.raises(TypeError, match="cannot key"):
        memo.content_key("t", object())


def test_evaluate_ae_skips_posterior_metrics(runs):
    m = evaluate_run(runs / "ae", **FAST_EVAL)
    assert set(m) == eval_keys(is_vae=False, latent_dim=64, steps=3)
    keys, figs = readme_keys()
    for key in keys:
        if any(part in key for part in VAE_ONLY):
            assert key not in m, key
        else:
            assert key in m, key
    for fig in figs:
        assert (runs / "ae" / "figures" / fig).is_file() == (fig != "kl_per_dim.png"), fig
    assert EvalArrays.load(runs / "ae").kl_per_dim is None


def test_reduced_classifier_trains_and_the_standard_one_reaches_99_percent(mnist_arrays):
    model, meta = clf.reference_classifier("mnist", variant="smoke")
    assert meta["test_accuracy"] >= 0.96, meta  # 10k images, 2 epochs
    again, _ = clf.reference_classifier("mnist", variant="smoke")  # from the cache
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )
    # The standard classifier: the user's cached one when `make study` trained it; else the one
    # conftest began training with the first test (a serial session); else trained here (about
    # 75 s on 2 cores) into the tests' private home. So the gate always runs.
    standard = USER_HOME / "classifiers" / clf._path("mnist", "standard").name
    early = EARLY.get("standard_classifier")
    if early is not None:
        assert early.proc.wait(timeout=900) == 0, early.log.read_text()[-3000:]
        standard = early.home / "classifiers" / standard.name
    if standard.is_file():
        net = clf.LeNet()
        net.load_state_dict(load_checkpoint(standard)["model"])
    else:
        net, _ = clf.reference_classifier("mnist", variant="standard")
    x, y = split_arrays(mnist_arrays, "test")
    assert clf.accuracy(net, x, y, torch.device("cpu")) >= 0.99  # re-measured, not trusted


def test_sample_and_interpolate_are_deterministic(runs, tmp_path, capsys):
    out = [tmp_path / f"{n}.png" for n in ("a", "b", "c")]
    for path, seed in zip(out, (1, 1, 2), strict=True):
        assert (
            main(["sample", str(runs / "vae"), "-n", "16", "--out", str(path), "--seed", str(seed)])
            == 0
        )
    assert out[0].read_bytes() == out[1].read_bytes() != out[2].read_bytes()
    i1, i2 = tmp_path / "i1.png", tmp_path / "i2.png"
    for p in (i1, i2):
        assert (
            main(
                [
                    "interpolate",
                    str(runs / "ae"),
                    "--from-label",
                    "5",
                    "--to-label",
                    "8",
                    "--pairs",
                    "2",
                    "--steps",
                    "4",
                    "--mode",
                    "slerp",
                    "--out",
                    str(p),
                ]
            )
            == 0
        )
    assert i1.read_bytes() == i2.read_bytes()
    assert main(["sample", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 1
    assert "no checkpoints/best.pt" in capsys.readouterr().err


def test_classifier_max_pool_is_max_pool2d(mnist_arrays):
    """The classifier's inference pooling: the values of F.max_pool2d(x, 2), ties and NaN
    included (signed zeros compare equal), and the very bits of its features of real images;
    with autograd, max_pool2d's gradient (one input per block)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, 8, 6, generator=g).round()  # many ties
    x[1, 1, 0, 0] = torch.nan
    with torch.no_grad():
        for t in (x, x.contiguous(memory_format=torch.channels_last), x[..., :5]):
            ref, got = torch.nn.functional.max_pool2d(t, 2), clf.max_pool2(t)
            assert got.shape == ref.shape and torch.equal(got.nan_to_num(), ref.nan_to_num())
            assert torch.equal(got.isnan(), ref.isnan())
    w = x.nan_to_num().requires_grad_()
    clf.max_pool2(w).sum().backward()
    assert w.grad is not None and w.grad.sum() == 5 * 3 * 4 * 3
    model, _ = clf.reference_classifier("mnist", variant="smoke")
    images = torch.from_numpy(split_arrays(mnist_arrays, "test")[0][:500]).float() / 255.0
    feats, probs = clf.classify(model, images, batch_size=250)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(clf, "max_pool2", lambda t: torch.nn.functional.max_pool2d(t, 2))
        ref_feats, ref_probs = clf.classify(model, images, batch_size=250)
    assert feats.tobytes() == ref_feats.tobytes() and probs.tobytes() == ref_probs.tobytes()
