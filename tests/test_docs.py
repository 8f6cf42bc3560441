"""The front page and the reference pages: the README stays a short front page whose links all
resolve, and the docs site builds with `mkdocs build --strict` (a broken link or anchor, or a page
left out of the navigation, fails the build), offline."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# one page per concern (issue 19); each must exist and be in the navigation
PAGES = [
    "index.md",
    "data.md",
    "training.md",
    "evaluation.md",
    "study.md",
    "sweeps.md",
    "explorer.md",
    "errors.md",
    "benchmarks.md",
    "faq.md",
    "notebook.md",
    "architecture.md",
]
MAX_README_WORDS = 1500
FIRST_SCREEN_LINES = 60

# [text](target) and ![alt](target); the target ends at whitespace or ")"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _nav_pages(nav: list) -> list[str]:
    pages: list[str] = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_docs_site_builds_strictly_and_offline(tmp_path: Path) -> None:
    # no proxy that could reach the internet: a build that tried to fetch (fonts, social cards)
    # would fail or hang here rather than pass on a connected machine only
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_PROXY": "*"}
    env.update({k: "http://127.0.0.1:9" for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")})
    site = tmp_path / "site"
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml")]
    proc = subprocess.run(
        [*cmd, "-d", str(site)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for page in PAGES:
        assert (site / page.replace(".md", ".html")).is_file(), page
    html = "".join(p.read_text(encoding="utf-8") for p in site.glob("*.html"))
    assert "fonts.googleapis.com" not in html  # theme.font: false


def test_every_page_is_in_the_navigation() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["theme"]["font"] is False
    nav = _nav_pages(config["nav"])
    assert nav == PAGES
    on_disk = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))
    assert on_disk == sorted(PAGES)


def test_readme_is_a_short_front_page() -> None:
    text = README.read_text(encoding="utf-8")
    words = len(text.split())  # what `wc -w README.md` counts
    assert words <= MAX_README_WORDS, f"README.md has {words} words; keep it a front page"
    first_screen = text.splitlines()[:FIRST_SCREEN_LINES]
    assert "## Quick start" in first_screen
    start = first_screen.index("## Quick start")
    commands = [line.split("#")[0].strip() for line in first_screen[start:]]
    assert "make study" in commands and "make test" in commands


def test_readme_links_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    targets = [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]
    assert any(t.startswith("docs/") for t in targets)  # it points into the docs
    # the pictures (docs/img/summary.png, docs/img/explorer.png) are committed files too
    missing = [t for t in targets if not (ROOT / t.split("#")[0]).exists()]
    assert not missing, f"README.md links to files that are not in the repository: {missing}"
