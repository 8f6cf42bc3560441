"""A full-page screenshot of `vaelab explore` after a short scripted session.

    python benchmarks/screenshot_explore.py study/ --out study/figures/explore.png

Starts `vaelab explore PATHS` (a study directory stands for its AE and tuned VAE), opens it in
headless Chromium, pins a decode on every map, lets the page's first interpolation, sliders and
prior samples load, draws a 7, and saves the whole page as a PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/browser.py

from bench_explore import launch, stop


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("paths", nargs="+", help="run or study directories, as for vaelab explore")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--classifier", default=None, help="passed to vaelab explore")
    p.add_argument("--map-points", default=None, help="passed to vaelab explore")
    p.add_argument("--width", type=int, default=1500, help="browser width in pixels")
    args = p.parse_args()
    from tests.browser import console_errors, full_page_screenshot, start_chromium, tour

    extra = ["--classifier", args.classifier] if args.classifier else []
    extra += ["--map-points", args.map_points] if args.map_points else []
    proc, url = launch(args.paths, extra)
    try:
        with urllib.request.urlopen(url + "api/runs", timeout=30) as resp:
            runs = len(json.loads(resp.read())["runs"])
        driver = start_chromium(args.width, 1000)
        try:
            tour(driver, url, runs)
            errors = console_errors(driver)
            path = full_page_screenshot(driver, args.out)
        finally:
            driver.quit()
    finally:
        stop(proc)
    print(f"wrote {path} ({runs} runs side by side; console errors: {len(errors)})")
    if errors:
        sys.exit(f"screenshot_explore: the page logged errors: {errors}")


if __name__ == "__main__":
    main()
