"""`vaelab explore` latency: decode round trips over HTTP and page load time in Chromium.

    python benchmarks/bench_explore.py study/ [--requests 1000] [--page-loads 5] [--json out.json]

Starts `vaelab explore RUN...` as its own process (so the client never shares the server's GIL),
then, for each run, sends `--requests` POST /api/decode requests for map points drawn uniformly
over that run's map, one after another on one keep-alive connection (as a browser does), and
reports the median and p99 round trip and the server-side time. Page load: headless Chromium
opens the page `--page-loads` times and reports the navigation timing's load event, the moment
the maps are drawn (`readyMs`) and the moment every first panel has its answers (`settledMs`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]  # tests/browser.py drives Chromium


def launch(paths: list[str], extra: list[str]) -> tuple[subprocess.Popen, str]:
    """`vaelab explore PATHS --port 0 --no-browser EXTRA` in a child process; (process, url)."""
    cmd = [sys.executable, "-m", "vaelab", "explore", *paths, "--port", "0", "--no-browser"]
    proc = subprocess.Popen(cmd + extra, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    line = proc.stdout.readline()  # type: ignore[union-attr]
    if " at http://" not in line:
        proc.kill()
        sys.exit(f"bench_explore: the server did not start (exit {proc.wait()}); see above")
    return proc, line.split(" at ")[1].split()[0]


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


def decode_latency(url: str, run: int, requests: int, seed: int) -> dict[str, float]:
    host, port = url.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def call(method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = json.loads(resp.read())
        if resp.status != 200:
            sys.exit(f"bench_explore: {path} answered {resp.status}: {data}")
        return data

    m = call("GET", f"/api/map?run={run}")
    rng = np.random.default_rng(seed)
    xs = rng.uniform(min(m["x"]), max(m["x"]), requests + 20)
    ys = rng.uniform(min(m["y"]), max(m["y"]), requests + 20)
    rtt, server = [], []
    for k in range(requests + 20):  # the first 20 warm up allocator and caches, untimed
        body = json.dumps({"run": run, "point": [float(xs[k]), float(ys[k])]}).encode()
        t0 = time.perf_counter()
        r = call("POST", "/api/decode", body)
        if k >= 20:
            rtt.append((time.perf_counter() - t0) * 1000)
            server.append(r["server_ms"])
    conn.close()
    return {
        "requests": requests,
        "median_ms": statistics.median(rtt),
        "p99_ms": float(np.percentile(rtt, 99)),
        "mean_ms": statistics.fmean(rtt),
        "max_ms": max(rtt),
        "server_median_ms": statistics.median(server),
        "server_p99_ms": float(np.percentile(server, 99)),
    }


def page_load(url: str, loads: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.browser import console_errors, start_chromium, wait_quiet

    driver = start_chromium()
    rows = []
    try:
        for _ in range(loads):
            driver.get(url)
            wait_quiet(driver, timeout=120)
            rows.append(
                driver.execute_script(
                    "const n = performance.getEntriesByType('navigation')[0];"
                    "return {load_event_ms: n.loadEventEnd,"
                    " ready_ms: Number(document.body.dataset.readyMs),"
                    " settled_ms: Number(document.body.dataset.settledMs)};"
                )
            )
        errors = console_errors(driver)
    finally:
        driver.quit()
    out: dict[str, Any] = {"loads": loads, "console_errors": len(errors)}
    for key in rows[0]:
        out[f"median_{key}"] = statistics.median(r[key] for r in rows)
        out[f"first_{key}"] = rows[0][key]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("paths", nargs="+", help="run or study directories, as for vaelab explore")
    p.add_argument("--requests", type=int, default=1000, help="decodes per run (default 1000)")
    p.add_argument("--page-loads", type=int, default=5, help="page loads (0 skips; default 5)")
    p.add_argument("--classifier", default=None, help="passed to vaelab explore")
    p.add_argument("--map-points", default=None, help="passed to vaelab explore")
    p.add_argument("--device", default="cpu", help="passed to vaelab explore (default cpu)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args()
    extra = ["--device", args.device]
    extra += ["--classifier", args.classifier] if args.classifier else []
    extra += ["--map-points", args.map_points] if args.map_points else []
    proc, url = launch(args.paths, extra)
    try:
        host, port = url.split("//")[1].rstrip("/").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/api/runs")
        info = json.loads(conn.getresponse().read())
        conn.close()
        result: dict[str, Any] = {"url": url, "decode": {}}
        for r in info["runs"]:
            result["decode"][f"{r['name']} ({r['kind']})"] = decode_latency(
                url, r["id"], args.requests, args.seed
            )
        if args.page_loads > 0:
            result["page"] = page_load(url, args.page_loads)
    finally:
        stop(proc)
    print(f"\n## vaelab explore latency ({args.requests} decodes per run, keep-alive HTTP)")
    print(f"{'run':<32} {'median ms':>10} {'p99 ms':>8} {'server median':>14} {'server p99':>11}")
    for name, d in result["decode"].items():
        print(
            f"{name:<32} {d['median_ms']:>10.2f} {d['p99_ms']:>8.2f} "
            f"{d['server_median_ms']:>14.2f} {d['server_p99_ms']:>11.2f}"
        )
    if "page" in result:
        pg = result["page"]
        print(
            f"page load (median of {pg['loads']}): load event {pg['median_load_event_ms']:.0f} ms, "
            f"maps drawn {pg['median_ready_ms']:.0f} ms, all first panels "
            f"{pg['median_settled_ms']:.0f} ms; console errors: {pg['console_errors']}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
