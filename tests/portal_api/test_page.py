"""The customer page in a real headless Chromium (Debian's), phone-sized."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from headless import WAIT_S, chromium, require_browser
from portal_world import ALICE, BOB, World

webdriver = require_browser()

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    yield from chromium(webdriver)


def _open(browser: webdriver.Chrome, world: World, code: str, query: str = "") -> None:
    browser.get(f"{world.url}/{query}#token={world.customer_token(code)}")
    WebDriverWait(browser, WAIT_S).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")
        or d.find_element(By.ID, "message").is_displayed()
    )


def test_page_shows_month_chart_tou_and_bills_in_vietnamese_then_english(
    browser: webdriver.Chrome, world: World
) -> None:
    _open(browser, world, ALICE)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "vi"
    assert browser.find_element(By.ID, "title").text == "Tiêu thụ điện của bạn"
    assert "#token" not in browser.current_url  # the token left the address bar
    # Opens on the latest bill's month (2026-10): 31 days, each split three ways.
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "2026-10-01/2026-10-31"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart rect.bar-peak")) == 31
    tou_rows = browser.find_elements(By.CSS_SELECTOR, "#tou tbody tr")
    names = [r.find_elements(By.TAG_NAME, "td")[0].text for r in tou_rows]
    assert names == ["Thấp điểm", "Bình thường", "Cao điểm"]
    bills = browser.find_elements(By.CSS_SELECTOR, "#bills tbody tr.bill")
    assert [b.find_elements(By.TAG_NAME, "td")[0].text for b in bills] == ["2026-10", "2026-09"]
    assert bills[0].find_element(By.CSS_SELECTOR, "a.pdf").get_attribute("data-href").endswith("/pdf")
    # Usable on a phone: nothing wider than the screen.
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    browser.find_element(By.ID, "lang").click()
    assert browser.find_element(By.ID, "title").text == "Your electricity use"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert "Off-peak" in browser.find_element(By.ID, "tou").text
    # Months of the year.
    browser.find_element(By.ID, "view-year").click()
    WebDriverWait(browser, WAIT_S).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "2026-01-01/2026-12-31")
    # M-A1 runs from 2026-09-25 to 2026-11-03: September, October and November.
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart rect.bar-peak")) == 3


def test_register_only_customer_sees_no_tou_split(browser: webdriver.Chrome, world: World) -> None:
    _open(browser, world, BOB)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart rect.bar-total")) == 31
    assert browser.find_element(By.ID, "tou-none").is_displayed()


def test_expired_link_says_so(browser: webdriver.Chrome, world: World) -> None:
    browser.get(f"{world.url}/#token=not-a-token")
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.ID, "message").is_displayed())
    assert "hết hạn" in browser.find_element(By.ID, "message").text
