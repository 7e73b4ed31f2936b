"""The leaderboard web page in a real browser: headless Chromium from Debian's packages (``apt-get install chromium
chromium-driver``; .ci/run installs them) driven by Selenium through /usr/bin/chromedriver, never a driver that
Selenium Manager would download. Skipped, with the reason, where they are not installed.

The page is made from the committed reference tracks (the README's joined leaderboard); the screenshot goes to
the test's temp folder, and with ``OCRBENCH_SCREENSHOT=PATH`` also to PATH (docs/img/leaderboard-page.png is the
README's, taken this way).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from ocrbench.report.html import write_site
from ocrbench.report.leaderboard import folder_reports

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[2]
TRACKS = ["results/real", "results/real-efficiency", "results/quick", "results/quick-zero-shot"]
PLOTS = {"plot": "results/leaderboard.png", "learning_curve": "results/learning_curve.png"}

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason=f"no browser: {CHROMIUM} and {CHROMEDRIVER} are Debian's chromium and chromium-driver "
           "(apt-get install chromium chromium-driver; .ci/run installs them)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    folders = [os.path.relpath(REPO / t) for t in TRACKS]  # shown on the page: results/real, not /home/...
    write_site(folder_reports(folders), out, plots={k: REPO / v for k, v in PLOTS.items()})
    return out / "index.html"


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager stays offline even if something asks it
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def cer_column(driver, table) -> list[float]:
    """The CER of each visible row of ``table``, in the order the DOM has them now."""
    headers = [th.text for th in table.find_elements("css selector", "thead th")]
    column = headers.index("CER")
    rows = table.find_elements("css selector", "tbody tr")
    return [float(r.find_elements("css selector", "td")[column].text) for r in rows if r.is_displayed()]


def test_the_page_sorts_filters_and_shows_no_console_error(site, browser):
    start = time.perf_counter()
    browser.get(site.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    assert browser.title == "ocrbench leaderboard"

    # sort: the first leaderboard (the real track) by CER, ascending then descending, read back from the DOM
    table = browser.find_element("css selector", "table.leaderboard")
    before = cer_column(browser, table)
    assert len(before) >= 3 and len(set(before)) > 1
    header = next(th for th in table.find_elements("css selector", "thead th") if th.text == "CER")
    header.click()
    assert cer_column(browser, table) == sorted(before) and header.get_attribute("aria-sort") == "ascending"
    header.click()
    descending = cer_column(browser, table)
    assert descending == sorted(before, reverse=True) and descending != before

    # filter: one decoder hides the others' rows in every leaderboard, and their points in the charts
    rows = browser.find_elements("css selector", "tr[data-family]")
    decoders = {r.get_attribute("data-decoder") for r in rows}
    assert {"greedy", "beam+lm"} <= decoders
    browser.find_element("css selector", "select[data-filter='decoder'] option[value='beam+lm']").click()
    shown = [r for r in rows if r.is_displayed()]
    assert 0 < len(shown) < len(rows)
    assert {r.get_attribute("data-decoder") for r in shown} == {"beam+lm"}
    assert browser.find_element("id", "shown").text == f"{len(shown)} of {len(rows)} rows"
    hidden = next(r for r in rows if not r.is_displayed())
    assert all(not p.is_displayed() for p in browser.find_elements(
        "css selector", f"[data-row='{hidden.get_attribute('id')}'] circle"))
    browser.find_element("css selector", "select[data-filter='decoder'] option[value='']").click()
    assert all(r.is_displayed() for r in rows)

    # hover: a chart's point lights up its row
    point = browser.find_element("css selector", "g.pt[data-row]")
    webdriver.ActionChains(browser).move_to_element(point).perform()
    assert "lit" in browser.find_element("id", point.get_attribute("data-row")).get_attribute("class")

    # the row's record page opens, with its curve
    link = browser.find_element("css selector", "tr[data-family] a").get_attribute("href")
    browser.get(link)
    assert "Training curve" in browser.page_source and browser.find_elements("css selector", "svg.chart")
    assert not [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert time.perf_counter() - start < 60


def test_screenshot(site, browser, tmp_path):
    """The real track's first leaderboard under the filter bar, one chart point hovered (its row lit)."""
    browser.get(site.as_uri())
    browser.set_window_size(1400, 1000)
    browser.execute_script("window.scrollTo(0, document.getElementById('real').offsetTop - 60)")
    point = browser.find_elements("css selector", "g.pt[data-row] circle")[2]
    webdriver.ActionChains(browser).move_to_element(point).perform()
    path = tmp_path / "leaderboard-page.png"
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 10_000
    if os.environ.get("OCRBENCH_SCREENSHOT"):
        shutil.copyfile(path, os.environ["OCRBENCH_SCREENSHOT"])
