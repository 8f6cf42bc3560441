"""The README's and docs' pictures, made from a finished study folder (`make docs-figures`).

    python benchmarks/docs_figures.py [STUDY_DIR] [--out docs/img] [--no-explorer]

Copies the PNGs the study already wrote (its summary panel, rate–distortion plot and 5 → 8
interpolations; the AE's, β = 0's, the tuned VAE's and β = 10's prior samples and
reconstructions) into docs/img/, each quantised to 256 colours and shrunk until it is under
300 KB; takes the explorer's screenshot in headless Chromium (benchmarks/screenshot_explore.py);
and writes docs/img/PROVENANCE.txt, which gives each picture its source and its caption: vaelab
version, date, machine and the command that produced it. In README.md and docs/*.md the line
`<sub>vaelab ...</sub>` under each block of these pictures is rewritten to that caption (added
where missing), so the pages always say where their pictures came from.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 300_000  # bytes per committed picture
# picture in docs/img -> the study's figure it is made from; {name} is a run of MODELS
STUDY_FIGURES = {
    "summary.png": "figures/summary.png",
    "rate_distortion.png": "figures/rate_distortion.png",
    "interpolation.png": "figures/interp_compare_5to8.png",
}
RUN_FIGURES = {
    "samples_{key}.png": "samples.png",
    "reconstructions_{key}.png": "reconstructions.png",
}
MODELS = {"ae": "ae", "beta0": "vae_beta0", "tuned": None, "beta10": "vae_beta10"}  # None: tuned


def optimise(src: Path, dst: Path) -> int:
    """Write `src` to `dst` as a 256-colour optimised PNG, scaled down by 4/5 steps until it
    fits LIMIT; returns its size in bytes."""
    image = Image.open(src).convert("RGB")
    while True:
        small = image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        buf = io.BytesIO()
        small.save(buf, "PNG", optimize=True)
        if buf.tell() <= LIMIT or image.width < 300:
            break
        size = (image.width * 4 // 5, image.height * 4 // 5)
        image = image.resize(size, Image.Resampling.LANCZOS)
    dst.write_bytes(buf.getvalue())
    return buf.tell()


def caption(version: str, date: str, machine: str, command: str) -> str:
    return f"vaelab {version} · {date} · {machine} · `{command}`"


def study_caption(study_dir: Path) -> str:
    """The study's own provenance, from study.json: who wrote it, when, where and how."""
    path = study_dir / "study.json"
    study = json.loads(path.read_text())
    env = study["env"]
    date = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC).date().isoformat()
    hardware = env.get("gpu") or f"{env['cpu_count']}-core {env['processor'] or 'CPU'} CPU"
    argv = env["argv"]
    if "study" in argv:
        command = "vaelab " + " ".join(argv[argv.index("study") :])
    else:  # run through the Python API (e.g. the notebook): the equivalent command
        config = study["config"]
        command = f"vaelab study --preset {config['preset']} --out {study_dir.name}"
    return caption(env["vaelab"], date, f"{hardware}, {env['platform'].split('-')[0]}", command)


def sources(study_dir: Path) -> dict[str, Path]:
    """Picture name in docs/img -> the study's PNG it is made from."""
    out = {name: study_dir / rel for name, rel in STUDY_FIGURES.items()}
    study = json.loads((study_dir / "study.json").read_text())
    for key, run in MODELS.items():
        entry = study["runs"][run or study["tuned"]]
        run_dir = study_dir / entry["dir"]
        for name, figure in RUN_FIGURES.items():
            out[name.format(key=key)] = run_dir / "figures" / figure
    return out


def explorer_screenshot(study_dir: Path, out_dir: Path) -> tuple[Path, str]:
    """The explorer on the study's AE and tuned VAE, in headless Chromium -> (raw PNG, caption)."""
    raw = out_dir / "explorer.raw.png"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "screenshot_explore.py"), str(study_dir)]
    subprocess.run([*cmd, "--out", str(raw)], check=True, cwd=ROOT)
    import vaelab

    machine = f"{os.cpu_count()}-core {platform.machine()} CPU, {platform.system()}"
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    shown = f"python benchmarks/screenshot_explore.py {study_dir} --out docs/img/explorer.png"
    return raw, caption(vaelab.__version__, today, machine, shown)


def update_captions(page: Path, captions: dict[str, str]) -> bool:
    """Put `<sub>caption</sub>` after each block (paragraph or table) of `page` that shows one
    of the pictures, replacing the caption there; returns whether the page changed."""
    old = page.read_text(encoding="utf-8")
    lines, i = old.splitlines(), 0
    while i < len(lines):
        found = re.findall(r"img/([\w.-]+\.png)\)", lines[i])
        name = next((n for n in found if n in captions), None)
        if name is None:
            i += 1
            continue
        end = next((j for j in range(i, len(lines)) if not lines[j].strip()), len(lines))
        line = f"<sub>{captions[name]}</sub>"
        if end + 1 < len(lines) and lines[end + 1].startswith("<sub>vaelab "):
            lines[end + 1] = line
        else:
            lines[end:end] = ["", line]
        i = end + 2
    new = "\n".join(lines) + "\n"
    page.write_text(new, encoding="utf-8")
    return new != old


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("study_dir", nargs="?", default="study", help="a finished study folder")
    p.add_argument("--out", default=str(ROOT / "docs" / "img"), help="folder of the pictures")
    p.add_argument("--no-explorer", action="store_true", help="skip the explorer's screenshot")
    args = p.parse_args()
    study_dir, out_dir = Path(args.study_dir), Path(args.out)
    if not (study_dir / "study.json").is_file():
        sys.exit(f"docs_figures: {study_dir}/study.json not found; run `make study` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    captions, lines = {}, []
    for name, src in sources(study_dir).items():
        size = optimise(src, out_dir / name)
        captions[name] = study_caption(study_dir)
        lines.append(f"{name} ({size // 1024} KB) from {src.relative_to(study_dir)}")
    if not args.no_explorer:
        raw, captions["explorer.png"] = explorer_screenshot(study_dir, out_dir)
        size = optimise(raw, out_dir / "explorer.png")
        raw.unlink()
        lines.append(f"explorer.png ({size // 1024} KB), headless Chromium")
    text = "".join(f"{line}\n  {captions[line.split()[0]]}\n" for line in lines)
    (out_dir / "PROVENANCE.txt").write_text(text, encoding="utf-8")
    print(text, end="")
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if update_captions(page, captions):
            print(f"captions updated in {page.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
