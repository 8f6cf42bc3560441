"""Drive the explorer in headless Chromium: for the browser test, the page-load benchmark and the
screenshot script. Needs `selenium` (the `dev` extra) and Debian's `chromium` and
`chromium-driver`; the driver path is always given, so Selenium Manager never downloads anything.
"""

from __future__ import annotations

import os
import shutil
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

from vaelab.errors import RunError


def chromium_paths() -> tuple[str, str] | None:
    """(chromium, chromedriver) executables, or None when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else None
    )
    return (browser, driver) if browser and driver else None


def start_chromium(width: int = 1500, height: int = 1000) -> Any:
    """A headless Chromium WebDriver that records the page's console (get_log("browser"))."""
    paths = chromium_paths()
    if paths is None:
        raise RunError(
            "chromium and chromedriver are needed; install them with "
            "`apt-get install chromium chromium-driver`"
        )
    # Selenium Manager must stay offline: the driver path is explicit, and these say so too.
    os.environ.setdefault("SE_OFFLINE", "true")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in (
        "--headless=new",
        "--no-sandbox",  # containers often run as root, where the sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=paths[1]), options=options)


def wait_for(driver: Any, script: str, timeout: float = 30.0, what: str = "") -> Any:
    """Poll a JS expression (`return ...`) until it is truthy; its value, or TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"page did not reach: {what or script} within {timeout:g} s")
        time.sleep(0.02)


QUIET = "return document.body.dataset.ready === '1' && document.body.dataset.busy === '0';"


def wait_quiet(driver: Any, timeout: float = 60.0) -> None:
    """Wait until the page has loaded its runs and no API request is pending."""
    wait_for(driver, QUIET, timeout, "ready with no request pending")


def console_errors(driver: Any) -> list[dict[str, Any]]:
    """Console messages of level SEVERE since the last call (errors, failed loads)."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def click_map(driver: Any, run: int, fx: float, fy: float) -> None:
    """Click run `run`'s latent map at fractions (fx, fy) of its width and height."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = driver.find_element(By.CSS_SELECTOR, f"#map-runs [data-run='{run}'] canvas.map")
    w, h = canvas.size["width"], canvas.size["height"]
    ActionChains(driver).move_to_element_with_offset(
        canvas, int((fx - 0.5) * w), int((fy - 0.5) * h)
    ).click().perform()


def draw_stroke(driver: Any, points: list[tuple[float, float]]) -> None:
    """Drag the mouse over the drawing canvas through points given as fractions of its size."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = driver.find_element(By.ID, "draw-canvas")
    w, h = canvas.size["width"], canvas.size["height"]
    px = [(int((fx - 0.5) * w), int((fy - 0.5) * h)) for fx, fy in points]
    chain = ActionChains(driver).move_to_element_with_offset(canvas, *px[0]).click_and_hold()
    for (x0, y0), (x1, y1) in pairwise(px):
        chain.move_by_offset(x1 - x0, y1 - y0)
    chain.release().perform()


def full_page_screenshot(driver: Any, path: str | Path) -> Path:
    """Resize the window to the whole page, then save a PNG of it."""
    width = driver.execute_script("return document.documentElement.scrollWidth;")
    height = driver.execute_script("return document.documentElement.scrollHeight;")
    driver.set_window_size(max(int(width), 1200), int(height) + 120)
    driver.execute_script("window.scrollTo(0, 0);")
    time.sleep(0.3)  # let the resized page lay out before the capture
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(path)):
        raise RunError(f"chromium could not write the screenshot {path}")
    return path


def tour(driver: Any, url: str, runs: int) -> None:
    """The scripted session behind the screenshot: a pinned decode on each map, an interpolation
    between two test images of different labels, prior samples, and a drawn 7."""
    driver.get(url)
    wait_quiet(driver)
    for run in range(runs):
        click_map(driver, run, 0.62, 0.4)
    draw_stroke(driver, [(0.28, 0.25), (0.72, 0.25), (0.55, 0.5), (0.42, 0.8)])
    wait_quiet(driver)
