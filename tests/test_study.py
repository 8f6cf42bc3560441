"""`vaelab study --preset smoke` end to end: interrupted and resumed, then the report checked
against study.json and rendered in headless Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys

import matplotlib.image as mpimg
import pytest

from vaelab.report.render import fmt
from vaelab.study.schema import StudyResult, resolve
from vaelab.tune.halving import next_decades, refinement, select_beta

from .needs import need
from .study_keys import OPTIONAL, STUDY_JSON_KEYS, key_tree


@pytest.fixture(scope="module")
def study_dir(smoke_study):
    """The session's smoke study, killed four times and then completed (tests/conftest.py)."""
    return smoke_study.out


def test_study_json_has_every_run_and_the_choice(study_dir):
    s = json.loads((study_dir / "study.json").read_text())
    search, chosen = s["search"], s["search"]["chosen_beta"]
    rung_runs = {n for r in search["rungs"] for n in r["runs"].values()}
    tuned = f"beta_{chosen:g}_tuned"
    assert set(s["runs"]) == {"ae", "vae_beta0", "vae_beta10", tuned} | rung_runs
    assert s["runs"]["ae"]["reused"] is True and s["tuned"] == tuned
    assert {0.1, 1.0, 10.0} <= set(search["trials"]) and len(search["trials"]) == 5
    # successive halving, η = 2: ⌊5/2⌋ = 2 β go to rung 1, the better one to the final run
    r0, r1 = search["rungs"]
    assert len(r0["promoted"]) == 2 and sorted(r1["runs"]) == sorted(
        f"{b:g}" for b in r0["promoted"]
    )
    loss = r1["selection_loss"]
    assert r1["promoted"] == [chosen] and loss[f"{chosen:g}"] == min(loss.values())
    assert r1["epochs"] == 2 * r0["epochs"]
    assert s["runs"][tuned]["epochs"] == s["config"]["tuned_epochs"]
    assert s["runs"][tuned]["train"]["steps"] * 64 >= 1024 * s["config"]["tuned_epochs"] - 64
    for name, r in s["runs"].items():
        assert "samples/fd" in r["eval"] and "val/loss" in r["train"]
        full = name in ("ae", "vae_beta0", "vae_beta10", tuned)
        assert r["evaluation"] == ("full" if full else "selection"), name
        assert ("probe/linear_acc" in r["eval"]) == full, name
    assert set(s["stage_order"]) == {
        "data",
        "ae",
        "extremes",
        "search",
        "tuned",
        "interpolation",
        "representation",
    }


def test_study_json_has_the_pinned_keys_and_reads_back(study_dir):
    """The runner's typed result writes the key tree study.json always had, and the schema
    reads the file back to the same content."""
    s = json.loads((study_dir / "study.json").read_text())
    assert key_tree(s) - OPTIONAL == STUDY_JSON_KEYS
    assert StudyResult.from_dict(s).to_dict() == s


def test_report_cites_study_json_and_references_existing_figures(study_dir):
    s = json.loads((study_dir / "study.json").read_text())
    page = (study_dir / "report.html").read_text()
    md = (study_dir / "report.md").read_text()
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) >= 25
    for src in srcs:
        assert not src.startswith(("/", "http")), src  # relative: opens from any folder
        assert (study_dir / html.unescape(src)).is_file(), src
    cited = re.findall(r'data-key="([^"]+)" data-fmt="([^"]*)">([^<]*)<', page)
    assert len(cited) >= 80
    for key, spec, shown in cited:
        key, spec, shown = (html.unescape(t) for t in (key, spec, shown))
        assert fmt(resolve(s, key), spec) == shown, key
    chosen = s["search"]["chosen_beta"]
    assert re.search(rf"Chosen β = <span [^>]*>{chosen:g}</span>", page)
    assert f"Chosen β = {chosen:g}" in md
    for q in (
        "Why do AE prior samples",
        "What does β = 0 do",
        "What does β = 10 do",
        "which β was chosen",
        "How do AE and VAE interpolations differ",
    ):
        assert q in page and q in md
    assert "Selection criterion:" in page and "How to reproduce" in page
    assert "Units and FAQ" in page and "Units and FAQ" in md


def test_report_leads_with_the_summary_panel(study_dir):
    """The first figure of both pages is the summary panel, before any paragraph of prose."""
    page = (study_dir / "report.html").read_text()
    md = (study_dir / "report.md").read_text()
    body = page.split("<body>", 1)[1]
    assert re.findall(r'<img src="([^"]+)"', body)[0] == "figures/summary.png"
    assert body.index("<img") < body.index("<p>")  # pictures first, the argument under them
    assert re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)[0] == "figures/summary.png"
    panel = mpimg.imread(study_dir / "figures" / "summary.png")
    h, w = panel.shape[:2]
    assert w / h > 1.7 and panel.std() > 0.1  # wide enough for one screen; not blank
    s = json.loads((study_dir / "study.json").read_text())
    for r in s["runs"].values():  # the measures the panel and the answers cite
        for key in ("samples/precision", "samples/recall", "floor/recall"):
            assert 0.0 <= r["eval"][key] <= 1.0, key
        # interpolations are part of the full evaluation only (not of the β-search trials')
        assert ("interp/lerp/realism_median" in r["eval"]) == (r["evaluation"] == "full")
    assert (study_dir / "figures" / "beta_precision_recall.png").is_file()
    assert "realism" in page.split("How do AE and VAE interpolations differ", 1)[1][:3000]


RERENDER = """
import sys
sys.modules["torch"] = None  # any import of torch now fails: the report must not need it
from pathlib import Path
from vaelab.report.sections import write_report
from vaelab.study.schema import load_study
root = Path(sys.argv[1])
write_report(root, load_study(root / "study.json"))
"""


def test_report_rerenders_from_stored_files_without_torch(study_dir, tmp_path):
    """The report is a function of study.json and what the evaluations stored: re-rendered with
    torch unimportable it has the same text. A folder evaluated before evaluations stored their
    arrays keeps its figures; one that lacks a figure too is refused in one line."""
    copy = tmp_path / "s"
    shutil.copytree(study_dir, copy)

    def rerender() -> subprocess.CompletedProcess:
        (copy / "report.md").unlink(missing_ok=True)
        cmd = [sys.executable, "-c", RERENDER, str(copy)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    for arrays in (True, False):
        if not arrays:
            for npz in copy.glob("runs/*/eval_arrays.npz"):
                npz.unlink()
        r = rerender()
        assert r.returncode == 0, r.stderr[-2000:]
        assert (copy / "report.md").read_text() == (study_dir / "report.md").read_text()
    (copy / "figures" / "summary.png").unlink()
    r = rerender()
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 1 and "lacks figures/summary.png" in last and "re-run" in last, last


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium(study_dir, tmp_path):
    exe = _chromium()
    need(exe, "Chromium is not installed here (.ci/run installs Debian's `chromium`)")
    flags = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
    ]
    url = (study_dir / "report.html").as_uri()
    dom = subprocess.run(
        [*flags, "--window-size=1280,800", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    total = re.search(r'data-images-total="(\d+)"', dom)
    broken = re.search(r'data-broken-images="(\d+)"', dom)
    assert total and broken, dom[-500:]
    assert int(total.group(1)) >= 25 and int(broken.group(1)) == 0
    # On a 1280×800 screen the first figure is the summary panel, wholly on the first screen.
    first = re.search(r'data-first-image="([^"]+)"', dom)
    bottom = re.search(r'data-first-image-bottom="(-?\d+)"', dom)
    viewport = re.search(r'data-viewport="(\d+)x(\d+)"', dom)
    assert first and bottom and viewport, dom[-500:]
    assert first.group(1) == "figures/summary.png"
    assert int(bottom.group(1)) <= int(viewport.group(2)) <= 800, (bottom.group(1), viewport)
    top = subprocess.run(
        [*flags, f"--screenshot={study_dir / 'report_top.png'}", "--window-size=1280,800", url],
        capture_output=True,
        timeout=120,
    )
    assert top.returncode == 0, top.stderr[-500:]
    first_screen = mpimg.imread(study_dir / "report_top.png")
    assert first_screen.shape[:2] == (800, 1280) and first_screen[150:700].std() > 0.1
    shot = study_dir / "report_screenshot.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,3000", url],
        capture_output=True,
        timeout=120,
    )
    img = mpimg.imread(shot)
    assert img.shape[:2] == (3000, 1200) and img.std() > 0.05  # a real page, not blank


def test_selection_rule_and_grid_steps():
    def m(acc, ent, fd):
        return {"recon/classifier_accuracy": acc, "samples/class_entropy": ent, "samples/fd": fd}

    trials = {
        0.1: m(0.99, 1.5, 50.0),
        1.0: m(0.95, 2.2, 20.0),
        3.0: m(0.92, 2.25, 15.0),
        10.0: m(0.3, 2.3, 5.0),
    }
    choice = select_beta(trials, 0.9, 2.0)
    assert choice.beta == 3.0 and choice.eligible == [1.0, 3.0] and not choice.fallback
    fallback = select_beta({1.0: m(0.1, 0.1, 9.0), 2.0: m(0.1, 0.1, 3.0)}, 0.9, 2.0)
    assert fallback.beta == 2.0 and fallback.fallback and "no β met" in fallback.reason
    assert next_decades([0.01, 0.1, 1.0, 10.0], 10.0) == [100.0]
    assert next_decades([0.01, 0.1, 1.0, 10.0], 0.01) == [0.001]
    assert next_decades([0.01, 0.1, 1.0, 10.0], 1.0) == []
    assert refinement(1.0) == [0.316, 3.16]


def test_a_figure_that_fails_is_closed(study_dir, tmp_path):
    """pyplot keeps every open figure: one whose data fails after it was opened must not stay
    behind in a long-lived process (a notebook re-rendering reports)."""
    import matplotlib.pyplot as plt

    from vaelab.evaluate import keys
    from vaelab.report.study_figures import write_study_figures
    from vaelab.study.schema import load_study

    s = load_study(study_dir / "study.json")
    assert len(s.search.trials) > 1
    del s.runs[s.search.trial_run(s.search.trials[-1])].eval[keys.SAMPLES_FD]  # read in-figure
    before = plt.get_fignums()
    with pytest.raises(KeyError):
        write_study_figures(tmp_path, s)
    assert (tmp_path / "figures" / "rate_distortion.png").is_file()  # drawn before the failure
    assert plt.get_fignums() == before
