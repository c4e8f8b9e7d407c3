"""The web page in a real browser: Debian's chromium, headless, driven by Selenium through the
system chromedriver (``apt-get install chromium chromium-driver``; .ci/run installs them).

It opens the page, walks the demo's thread, diffs two checkpoints, restores one, sees the refusal
while a run holds the thread, and checks the page at 360 px. With KEEPUP_UPDATE_SCREENSHOTS=1 it
also writes the screenshots of docs/http-api.md into docs/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from keepup import open_runtime
from keepup.demo import DemoReport, last_good_checkpoint

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DOCS = Path(__file__).resolve().parents[3] / "docs"

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    if os.environ.get("CI") == "true":
        pytest.fail(
            "chromium and chromium-driver must be installed in CI (.ci/run installs them)", pytrace=False
        )
    pytest.skip(
        "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT = 20


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: WebDriver, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert driver.save_screenshot(str(path))
    if os.environ.get("KEEPUP_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(path, DOCS / name)


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, WAIT)


def visible(driver: WebDriver, css: str) -> Any:
    return wait(driver).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def banner_text(driver: WebDriver, contains: str) -> str:
    wait(driver).until(ec.text_to_be_present_in_element((By.ID, "banner"), contains))
    return str(driver.find_element(By.ID, "banner").text)


def confirm(driver: WebDriver) -> None:
    visible(driver, "#confirm-dialog[open]")
    driver.find_element(By.ID, "confirm-yes").click()


def open_checkpoint(driver: WebDriver, checkpoint_id: str) -> None:
    driver.execute_script(f"location.hash = '#/checkpoint/{checkpoint_id}'")
    wait(driver).until(ec.text_to_be_present_in_element((By.ID, "checkpoint-meta"), checkpoint_id))


def test_walk_diff_restore_and_see_the_refusal(
    browser: WebDriver, demo_server: Any, demo_home: tuple[Path, DemoReport], hold: Any, tmp_path: Path
) -> None:
    home, report = demo_home
    good = last_good_checkpoint(report.checkpoints)
    failed = report.checkpoints[-1]
    assert good is not None

    # 1. open the page (the token comes in the fragment and leaves the address bar)
    browser.get(f"{demo_server.url}/#token={demo_server.token}")
    item = visible(browser, f'.thread-item[data-id="{report.thread_id}"]')
    assert "token" not in browser.current_url
    assert browser.get_cookies() == []

    # 2. walk the demo's thread: its timeline, then a checkpoint's conversation
    item.click()
    visible(browser, f'.cp-row[data-id="{failed.id}"]')
    rows = browser.find_elements(By.CSS_SELECTOR, ".cp-row")
    assert len(rows) == len(report.checkpoints)
    assert "head" in browser.find_element(By.CSS_SELECTOR, f'.cp-row[data-id="{failed.id}"]').get_attribute(
        "class"
    )
    browser.find_element(By.CSS_SELECTOR, f'.cp-row[data-id="{good.id}"] .body').click()
    visible(browser, "#conversation li")
    assert good.id in browser.find_element(By.ID, "checkpoint-meta").text
    assert browser.find_elements(By.CSS_SELECTOR, "#artifacts a.download")

    # 3. diff two checkpoints (side by side), then restore the good one with its files
    browser.back()
    visible(browser, f'.cp-row[data-id="{good.id}"]')
    browser.find_element(By.CSS_SELECTOR, f'.cp-row[data-id="{good.id}"] .cp-select').click()
    browser.find_element(By.CSS_SELECTOR, f'.cp-row[data-id="{failed.id}"] .cp-select').click()
    browser.find_element(By.ID, "diff-button").click()
    visible(browser, "#diff-files .file-name")
    assert browser.find_elements(By.CSS_SELECTOR, "#diff-state .old")
    assert browser.find_elements(By.CSS_SELECTOR, "#diff-files .sxs .new")
    shot(browser, tmp_path, "screenshot-diff.png")

    open_checkpoint(browser, good.id)
    assert browser.find_element(By.ID, "restore-files").is_selected()
    browser.find_element(By.ID, "restore-button").click()
    confirm(browser)
    assert "Restored: new head" in banner_text(browser, "Restored")
    with open_runtime(home=home) as runtime:
        head = runtime.checkpoints.latest(report.thread_id)
    assert head is not None and head.source.value == "restore" and head.state == good.state
    visible(browser, f'.cp-row.head[data-id="{head.id}"]')  # the timeline shows the new head

    # fork from the good checkpoint: the new thread says where it came from, and the demo's
    # timeline draws the branch where it leaves
    open_checkpoint(browser, good.id)
    browser.find_element(By.ID, "fork-button").click()
    confirm(browser)
    assert "Forked into thread" in banner_text(browser, "Forked")
    visible(browser, ".timeline .origin")
    browser.execute_script(f"location.hash = '#/thread/{report.thread_id}'")
    branch = visible(browser, ".timeline .branch")
    assert "forked into" in branch.text
    following = browser.find_element(By.CSS_SELECTOR, f'.cp-row[data-id="{good.id}"] + .branch')
    assert following == branch  # drawn right below the checkpoint it starts from
    shot(browser, tmp_path, "screenshot-timeline.png")

    # 4. while a run holds the thread, the restore is refused and the page says which run
    with hold(home, report.thread_id) as run:
        open_checkpoint(browser, failed.id)
        browser.find_element(By.ID, "restore-button").click()
        confirm(browser)
        text = banner_text(browser, "Refused")
        assert run.id in text
        shot(browser, tmp_path, "screenshot-refused.png")
    with open_runtime(home=home) as runtime:
        still = runtime.checkpoints.latest(report.thread_id)
    assert still is not None and still.id == head.id  # nothing was written

    # usable at 360 px: nothing wider than the screen
    browser.set_window_size(360, 800)
    browser.execute_script(f"location.hash = '#/thread/{report.thread_id}'")
    visible(browser, f'.cp-row[data-id="{good.id}"]')
    width = browser.execute_script("return document.documentElement.scrollWidth")
    inner = browser.execute_script("return window.innerWidth")
    assert width <= inner, f"the page is {width}px wide in a {inner}px window"
    shot(browser, tmp_path, "screenshot-narrow.png")
