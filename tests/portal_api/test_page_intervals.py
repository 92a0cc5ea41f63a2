"""The customer page drills from a day's bar into its intervals (real headless Chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from headless import WAIT_S, chromium, require_browser
from portal_world import ALICE, World
from test_interval_consumption import DAYS, energy, interval_rows, publish_intervals

webdriver = require_browser()

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium(webdriver)


def loaded(browser: Any, span: str) -> None:
    WebDriverWait(browser, WAIT_S).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == span)


def test_a_days_bar_drills_into_its_intervals(browser: Any, world: World) -> None:
    for day in DAYS[:2]:
        publish_intervals(world.settings.data_dir, interval_rows(["M-A1", "M-A2"], day))
    world.running.app.state.serving.refresh()
    browser.get(f"{world.url}/?month=2026-10#token={world.customer_token(ALICE)}")
    loaded(browser, "2026-10-01/2026-10-31")
    first = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#chart rect.drill")
                 if r.find_element(By.TAG_NAME, "title").get_attribute("textContent").startswith("1:"))
    first.click()
    loaded(browser, "2026-10-01/2026-10-01")
    # 48 half-hour intervals, each drawn in its band's colour
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart rect.bar")
    assert len(bars) == 48 * 3 and not browser.find_elements(By.CSS_SELECTOR, "#chart rect.drill")
    total_wh = sum(energy(m, DAYS[0], k) for m in ("M-A1", "M-A2") for k in range(48))
    shown = browser.find_element(By.ID, "total").text.replace(".", "").replace(",", ".")
    assert float(shown) == pytest.approx(total_wh / 1000)
    assert browser.find_element(By.ID, "span-label").text == "Ngày 01/10/2026"
    browser.find_element(By.ID, "next").click()
    loaded(browser, "2026-10-02/2026-10-02")
    browser.find_element(By.ID, "view-month").click()
    loaded(browser, "2026-10-01/2026-10-31")
