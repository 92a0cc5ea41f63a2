"""Debian's headless Chromium for the page tests, phone-sized; skips the module without it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 20


def require_browser() -> Any:
    """selenium's webdriver module; skips the calling test module (with the reason) when absent."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="no selenium: pip install selenium")
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip("no headless browser: apt-get install chromium chromium-driver", allow_module_level=True)
    return webdriver


def chromium(webdriver: Any) -> Iterator[Any]:
    """A phone-sized headless Chromium, quit afterwards (typed Any: selenium may be missing)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=390,844"):  # a phone's screen
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
