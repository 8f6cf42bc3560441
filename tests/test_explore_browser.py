"""The explorer in a real browser: Debian's headless Chromium driven by Selenium through
chromium-driver (never a downloaded driver), against a real server on tiny trained runs."""

from __future__ import annotations

import warnings

import pytest

from vaelab.explore.session import load_explorer

from .browser import (
    chromium_paths,
    click_map,
    console_errors,
    draw_stroke,
    full_page_screenshot,
    start_chromium,
    wait_for,
    wait_quiet,
)
from .explore_helpers import start_background
from .needs import need, need_module

need_module("selenium", "selenium is in the dev extra: pip install -e '.[dev]'")
need(
    chromium_paths(),
    "chromium and chromium-driver are not installed (apt-get install chromium "
    "chromium-driver; .ci/run installs them)",
)

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402


@pytest.fixture(scope="module")
def url(tiny_runs, session_home):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAELAB_HOME", str(session_home))
        explorer = load_explorer(
            [tiny_runs["ae"], tiny_runs["vae"]], classifier="smoke", device="cpu", map_points=300
        )
    server, address = start_background(explorer)
    yield address
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def driver():
    d = start_chromium(1500, 1000)
    yield d
    d.quit()


@pytest.fixture
def loaded_page(driver, url):
    """The app loaded and quiet in the module's driver before a test that works on it, loaded
    again where the page is not the app or is gone (a renderer lost under load), instead of every
    later test failing. No test relies on what an earlier one left on the page."""
    ready = f"return location.href === {url!r} && document.body.dataset.ready === '1';"
    try:
        loaded, why = driver.execute_script(ready), "it was not the app, or not ready"
    except WebDriverException as e:
        loaded, why = False, f"the driver lost it: {type(e).__name__}"
    if not loaded:  # said in the run's warnings summary, so a crash left behind stays visible
        warnings.warn(f"explorer page reloaded before this test: {why}", stacklevel=1)
        driver.get(url)
    wait_quiet(driver)


def pixels_of(driver, css: str) -> str:
    return driver.execute_script("return document.querySelector(arguments[0]).toDataURL();", css)


def version(driver, css: str) -> int:
    v = driver.execute_script("return document.querySelector(arguments[0]).dataset.version;", css)
    return int(v or 0)


def wait_version(driver, css: str, above: int) -> None:
    wait_for(
        driver,
        f"return Number(document.querySelector({css!r}).dataset.version || 0) > {above};",
        30,
        f"{css} repainted",
    )


def test_page_loads_side_by_side_without_console_errors(driver, url):
    driver.get(url)
    wait_quiet(driver)
    assert console_errors(driver) == []
    cols = driver.find_elements(By.CSS_SELECTOR, "#map-runs .run-col")
    assert len(cols) == 2
    assert cols[0].location["y"] == cols[1].location["y"]  # side by side, not stacked
    assert cols[0].location["x"] < cols[1].location["x"]
    assert "VAE β=1" in cols[1].text and "AE" in cols[0].text
    legend = cols[0].find_elements(By.CSS_SELECTOR, ".legend > span")
    assert [e.text for e in legend] == [str(k) for k in range(10)]
    # the panels filled on load: interpolation strips, sliders, prior samples, for both runs
    for run in (0, 1):
        base = f"[data-run='{run}']"
        assert len(driver.find_elements(By.CSS_SELECTOR, f"#interp-runs {base} .strip .cell")) == 20
        assert len(driver.find_elements(By.CSS_SELECTOR, f"#slider-runs {base} input")) == 8
        assert len(driver.find_elements(By.CSS_SELECTOR, f"#samples-runs {base} .cell")) == 16
        assert len(driver.find_elements(By.CSS_SELECTOR, f"#interp-runs {base} canvas.chart")) == 1


@pytest.mark.usefixtures("loaded_page")
def test_clicks_on_the_map_decode_different_images(driver, url):
    decoded = "#map-runs [data-run='1'] .decode-panel canvas"
    v = version(driver, decoded)
    click_map(driver, 1, 0.25, 0.3)
    wait_version(driver, decoded, v)
    wait_quiet(driver)
    first = pixels_of(driver, decoded)
    text = driver.find_element(By.CSS_SELECTOR, "#map-runs [data-run='1'] .decode-panel").text
    assert "reads as" in text and "pinned" in text and "ms (server" in text
    v = version(driver, decoded)
    click_map(driver, 1, 0.8, 0.75)
    wait_version(driver, decoded, v)
    wait_quiet(driver)
    assert pixels_of(driver, decoded) != first
    assert console_errors(driver) == []


@pytest.mark.usefixtures("loaded_page")
def test_points_picked_on_a_map_interpolate_on_every_run(driver, url):
    driver.find_element(By.CSS_SELECTOR, "input[name=click-mode][value=a]").click()
    click_map(driver, 0, 0.985, 0.015)  # a corner, beyond the codes: nothing to snap to
    wait_quiet(driver)
    assert driver.find_element(By.CSS_SELECTOR, "input[name=click-mode][value=b]").is_selected()
    click_map(driver, 0, 0.015, 0.985)
    wait_quiet(driver)
    ends = driver.find_element(By.ID, "interp-ends").text
    assert ends.count("a point on ae's map") == 2
    for run in (0, 1):  # the VAE gets the AE's decoded ends as images
        cells = driver.find_elements(By.CSS_SELECTOR, f"#interp-runs [data-run='{run}'] .cell")
        assert len(cells) == 20
    assert console_errors(driver) == []


@pytest.mark.usefixtures("loaded_page")
def test_a_slider_moves_the_decode(driver, url):
    canvases = driver.find_elements(By.CSS_SELECTOR, "#slider-runs [data-run='1'] canvas.digit")
    driver.execute_script("arguments[0].id = 'slider-decode-1';", canvases[1])
    decoded = "#slider-decode-1"
    before, v = pixels_of(driver, decoded), version(driver, decoded)
    slider = driver.find_element(By.CSS_SELECTOR, "#slider-runs [data-run='1'] input[type=range]")
    start = float(slider.get_attribute("value"))
    slider.send_keys(Keys.END)  # the keyboard, as a user would: to the top of its range
    wait_version(driver, decoded, v)
    wait_quiet(driver)
    assert float(slider.get_attribute("value")) > start
    assert pixels_of(driver, decoded) != before
    assert console_errors(driver) == []


@pytest.mark.usefixtures("loaded_page")
def test_drawing_a_stroke_is_encoded_and_reconstructed(driver, url, tmp_path):
    draw_stroke(driver, [(0.3, 0.25), (0.7, 0.25), (0.55, 0.55), (0.45, 0.85)])
    for run in (0, 1):
        recon = f"#draw-runs [data-run='{run}'] canvas.recon"
        wait_for(driver, f"return document.querySelector({recon!r}) !== null;", 30, recon)
        wait_version(driver, recon, 0)
    wait_quiet(driver)
    blank = driver.execute_script(
        "const c = document.createElement('canvas'); c.width = 112; c.height = 112;"
        "return c.toDataURL();"
    )
    for run in (0, 1):
        col = driver.find_element(By.CSS_SELECTOR, f"#draw-runs [data-run='{run}']")
        assert "drawing reads as" in col.text and "reconstruction reads as" in col.text
        assert "lands at (" in col.text
        assert pixels_of(driver, f"#draw-runs [data-run='{run}'] canvas.recon") != blank
    drawn = driver.execute_script(
        "const c = document.getElementById('draw-canvas');"
        "return Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)"
        ".filter((v, i) => i % 4 === 0 && v > 0).length;"
    )
    assert drawn > 20  # the stroke left ink on the 28×28 canvas
    assert console_errors(driver) == []
    shot = full_page_screenshot(driver, tmp_path / "explore.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")
