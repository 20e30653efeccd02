"""The monitor's web page in headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
driven by Selenium): the graph is drawn, and its live counters change without a reload."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from clusterkit import Running, split_graph, wait_until, write_plan
from monitorkit import Monitor, Publishing

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


def _browser():
    """A headless Chromium under Selenium; skips (fails under CI) when either is missing."""
    why = None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        why = "selenium is not installed (pip install -e '.[test]')"
    if why is None and (CHROMIUM is None or CHROMEDRIVER is None):
        why = "chromium or chromedriver is missing (apt-get install chromium chromium-driver; scripts/test does)"
    if why is not None:
        if os.environ.get("MANYFOLD_REQUIRE_QEMU") == "1":
            pytest.fail(f"{why}; CI installs them, so this run would hide the web view")
        pytest.skip(why)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def test_the_page_draws_the_graph_and_its_counters_change_live(tmp_path):
    """The page shows the manifest's SVG with every node online and a counter on link ab; events
    published at ingest change that counter and the links table without a reload; a screenshot
    is saved."""
    if shutil.which("dot") is None:
        pytest.skip("the page draws the graph with Graphviz's dot (apt-get install graphviz; scripts/test does)")
    driver = _browser()
    plan_path = write_plan(tmp_path, split_graph(device=False, python=False), 44600)
    shot = tmp_path / "monitor.png"
    try:
        with Running(plan_path) as running, Monitor("--cluster", str(plan_path), "--interval", "0.3", "--http", "127.0.0.1:0") as monitor:
            wait_until(running.links_up, what="every link up")
            url = monitor.next()["http"]
            driver.get(url)

            def text(css: str) -> str | None:
                # One script reads it: the page replaces its table rows at every snapshot.
                return driver.execute_script("const e = document.querySelector(arguments[0]); return e && e.textContent", css)

            counter = 'svg text.mf-counter[data-link="ab"][data-line="0"]'
            cell = 'td[data-node="ingest"][data-link="ab"][data-field="events_tx"]'
            try:
                wait_until(lambda: text(cell) is not None and text(counter) not in (None, "no status"), 15, "the counters drawn")
                assert text('svg text.mf-overlay[data-partition="ingest"]') == "node ingest: online"
                before = (text(cell), text(counter))
                reload_marker = driver.execute_script("return window.performance.timeOrigin")

                with Publishing(running.admin["ingest"]):
                    wait_until(lambda: text(cell) != before[0] and text(counter) != before[1], 15, "the counters of link ab changed in the page")
                    wait_until(lambda: "/s" in (text(counter) or "") and " 0.0/s" not in text(counter), 15, "a rate on link ab in the page")
                    driver.save_screenshot(str(shot))
                after = (text(cell), text(counter))
                assert int(after[0]) > int(before[0]), f"{before} -> {after}"
                assert driver.execute_script("return window.performance.timeOrigin") == reload_marker, "the page reloaded"
                assert "3 online" in text("#summary")
            except AssertionError as failed:
                driver.save_screenshot(str(shot))
                raise AssertionError(f"{failed}; the page: {shot}") from None
    finally:
        driver.quit()
    assert shot.stat().st_size > 10_000, f"screenshot {shot}"
    keep = os.environ.get("MANYFOLD_MONITOR_SCREENSHOT")
    if keep:  # docs/images/monitor.png is made this way
        shutil.copyfile(shot, Path(keep))
