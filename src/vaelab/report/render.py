"""The one renderer of vaelab's reports (the study's and a sweep's): a list of blocks
(headings, paragraphs, tables, figures, code) written to Markdown and to self-contained HTML.

In the study report, numbers in text are citations of study.json paths (`Doc.cite`, the path
derived from the attributes read, vaelab.study.schema.json_path), rendered as plain text in
Markdown and as `<span class="num" data-key=... data-fmt=...>` in HTML, so a test can check that
each cited number equals the value in study.json.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vaelab.study.schema import StudyResult, json_path, resolve

_TOKEN = re.compile(r"⟦([^|⟧]+)\|([^⟧]*)⟧")


def fmt(value: Any, spec: str) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return format(value, spec)


def _inline(escaped: str) -> str:
    """`code` and **bold** of HTML-escaped text."""
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


# The report's answers are written about MNIST's digits; other data gets its own noun
# (singular, plural), and any dataset not named here is "images".
DATA_NOUNS = {"fashion-mnist": ("garment", "clothes")}
_DIGIT = re.compile(r"\b(an? )?(?:handwritten )?digit(s)?\b")


def data_name(s: StudyResult, quote: str = "") -> str:
    """What the study was run on, for titles: a picture folder or IDX files by their folder's
    name (between `quote`s) and image shape (their source kind alone says little), a named
    dataset by its name."""
    dataset, shape = s.config.train.dataset, s.data.splits["train"].shape
    if dataset not in ("folder", "idx"):
        return dataset
    kind = "the picture folder" if dataset == "folder" else "the IDX files in"
    name = f"{quote}{Path(s.config.train.data_dir or '.').name}/{quote}"
    return f"{kind} {name} ({'×'.join(map(str, shape))})"


def phrase(text: str, dataset: str) -> str:
    """`text` with MNIST's "digit(s)" replaced by the data noun of `dataset` (MNIST: as is)."""
    if dataset == "mnist":
        return text
    one, many = DATA_NOUNS.get(dataset, ("image", "images"))
    article = "an " if one[0] in "aeiou" else "a "
    # code spans (a folder's name, a command) are quoted as they are
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(
        p if i % 2 else _DIGIT.sub(lambda m: (article if m[1] else "") + (many if m[2] else one), p)
        for i, p in enumerate(parts)
    )


class Doc:
    """Blocks rendered to both Markdown and HTML as they are added; `study` (the study report) is
    what `cite` reads numbers from, `root` the folder the page is written to (figures are checked
    to be there, under the relative paths the page uses)."""

    def __init__(self, study: StudyResult | None = None, root: Path = Path()) -> None:
        self.study, self.root = study, root
        self.data = study.to_dict() if study else {}  # what study.json holds: citations read it
        self.dataset = study.data.dataset if study else "mnist"
        self.md: list[str] = []  # the Markdown of each block
        self.body: list[str] = []  # the HTML of each block

    def cite(self, get: Callable[[StudyResult], object], spec: str = ".3g") -> str:
        """A number of the study for the text: `get` reads it by fields and items,
        e.g. `doc.cite(lambda s: s.baselines.prior_norm)`; rendered from study.json's content."""
        assert self.study is not None, "only a study's Doc cites study.json"
        path = json_path(self.study, get)
        resolve(self.data, path)  # the path is in the file's content, or fail now
        return f"⟦{path}|{spec}⟧"

    def ev(self, run: str, key: str, spec: str = ".3g") -> str:
        """A run's eval.json metric (`key` from vaelab.evaluate.keys)."""
        return self.cite(lambda s: s.runs[run].eval[key], spec)

    def _add(self, md: str, page: str) -> None:
        self.md.append(md)
        self.body.append(page)

    def h(self, level: int, text: str, anchor: str | None = None) -> None:
        anchor = f' id="{anchor}"' if anchor else ""
        self._add(
            f"{'#' * level} {self._md(text)}\n", f"<h{level}{anchor}>{self._html(text)}</h{level}>"
        )

    def p(self, text: str) -> None:
        self._add(self._md(text) + "\n", f"<p>{self._html(text)}</p>")

    def table(self, header: list[str], rows: list[list[str]], classes: Sequence[str] = ()) -> None:
        """`classes`: an HTML class per row (a sweep colours its trials by state)."""
        md = [_md_row(header), "|" + "---|" * len(header)]
        md += [_md_row([self._md(c) for c in r]) for r in rows]
        th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        trs = "".join(
            (f'<tr class="{html.escape(c)}">' if c else "<tr>")
            + "".join(f"<td>{self._html(cell)}</td>" for cell in r)
            + "</tr>"
            for r, c in zip(rows, list(classes) or [""] * len(rows), strict=True)
        )
        page = f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"
        self._add("\n".join(md) + "\n", page)

    def img(self, src: str, caption: str) -> None:
        if not (self.root / src).is_file():
            raise FileNotFoundError(f"report references missing figure {src}")
        alt = phrase(caption, self.dataset)  # the caption, phrased for the data but not cited
        self._add(
            f"![{alt}]({src})\n\n*{self._md(caption)}*\n",
            f'<figure><img src="{html.escape(src)}" alt="{html.escape(alt)}">'
            f"<figcaption>{self._html(caption)}</figcaption></figure>",
        )

    def code(self, text: str, language: str = "") -> None:
        self._add(f"```{language}\n{text}\n```\n", f"<pre>{html.escape(text)}</pre>")

    # ---- rendering ---------------------------------------------------------------------------
    def _md(self, text: str) -> str:
        return _TOKEN.sub(lambda m: fmt(resolve(self.data, m[1]), m[2]), phrase(text, self.dataset))

    def _html(self, text: str) -> str:
        """Escaped text with `code` and **bold**; each citation, escaped with it, a span."""

        def span(m: re.Match[str]) -> str:
            value = fmt(resolve(self.data, html.unescape(m[1])), html.unescape(m[2]))
            return (
                f'<span class="num" data-key="{m[1]}" data-fmt="{m[2]}">{html.escape(value)}</span>'
            )

        return _TOKEN.sub(span, _inline(html.escape(phrase(text, self.dataset))))

    def markdown(self) -> str:
        return "\n".join(self.md)

    def html(self, title: str, self_check: bool = True) -> str:
        """The page; `self_check` adds the script that counts figures that failed to load."""
        body, script = "\n".join(self.body), _SELF_CHECK if self_check else ""
        return _HTML.format(title=html.escape(title), body=body, script=script)


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em;
       line-height: 1.5; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, th:first-child {{ text-align: left; }}
tr.PRUNED td {{ color: #a33; }} tr.FAIL td {{ color: #888; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; border: 1px solid #eee; }}
figcaption {{ font-size: 0.85em; color: #555; }} h1 {{ font-size: 1.6em; margin: 0.3em 0; }}
.num {{ font-weight: 600; }} pre {{ background: #f6f6f6; padding: 0.6em; overflow-x: auto; }}
</style></head><body>
{body}
{script}</body></html>
"""

_SELF_CHECK = """<script>
// Offline self-check: count figures that failed to load (shown in the page and read by tests).
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const broken = imgs.filter((i) => !(i.complete && i.naturalWidth > 0));
  document.body.dataset.imagesTotal = imgs.length;
  document.body.dataset.brokenImages = broken.length;
  broken.forEach((i) => { i.alt = "MISSING FIGURE: " + i.getAttribute("src"); });
  // Where the first figure lands: a test checks it is the summary panel, on the first screen.
  if (imgs.length) {
    const r = imgs[0].getBoundingClientRect();
    document.body.dataset.firstImage = imgs[0].getAttribute("src");
    document.body.dataset.firstImageTop = Math.round(r.top);
    document.body.dataset.firstImageBottom = Math.round(r.bottom);
    document.body.dataset.viewport = window.innerWidth + "x" + window.innerHeight;
  }
});
</script>
"""
