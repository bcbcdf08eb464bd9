"""Every page of the three services in a real browser: no console error, no failed request, no dead link.

Headless Chromium from Debian (``chromium`` and ``chromium-driver``,
installed by ``make system-deps``) is driven by Selenium over ``make run``'s
stack with its demo seeded. From each service's start pages it follows
every link to the same service, and on each page reads Chromium's own
records: the console (no errors) and the network (every request answered
below 400, none failed). With ``JANITOR_SCREENSHOTS=DIR`` it also saves the
main pages' screenshots there (how ``docs/screenshots/`` was made).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from janitor_dev.seed import DemoStack

MAX_PAGES = 60


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.fail("chromium and chromium-driver are needed (make system-deps installs them)")
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    with webdriver.Chrome(options=options, service=Service(driver)) as chrome:
        chrome.set_page_load_timeout(60)
        yield chrome


def log_of(chrome: webdriver.Chrome, kind: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = chrome.get_log(kind)  # type: ignore[no-untyped-call]  # selenium leaves it untyped
    return entries


def problems_of_last_load(chrome: webdriver.Chrome) -> list[str]:
    """Console errors and failed or refused requests since the last call."""
    found = [f"console: {e['message']}" for e in log_of(chrome, "browser") if e["level"] == "SEVERE"]
    for entry in log_of(chrome, "performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.responseReceived":
            response = params["response"]
            if response["status"] >= 400:
                found.append(f"{response['status']} for {response['url']}")
        elif message["method"] == "Network.loadingFailed" and not params.get("canceled"):
            found.append(f"failed: {params.get('errorText')} ({params.get('type')})")
    return found


def crawl(chrome: webdriver.Chrome, starts: list[str]) -> dict[str, list[str]]:
    """Visit the start pages and every same-origin link from them; problems by page."""
    origin = urlsplit(starts[0]).netloc
    todo, seen, report = list(starts), set(starts), {}
    while todo and len(seen) <= MAX_PAGES:
        url = todo.pop(0)
        chrome.get(url)
        report[url] = problems_of_last_load(chrome)
        for anchor in chrome.find_elements(By.CSS_SELECTOR, "a[href]"):
            link = urldefrag(anchor.get_attribute("href") or "")[0]
            if urlsplit(link).netloc == origin and urlsplit(link).scheme in ("http", "https") and link not in seen:
                seen.add(link)
                todo.append(link)
    assert len(seen) <= MAX_PAGES, f"more than {MAX_PAGES} pages from {starts}: a link loop?"
    return report


def screenshot(chrome: webdriver.Chrome, url: str, name: str) -> None:
    target = os.environ.get("JANITOR_SCREENSHOTS")
    if target:
        chrome.get(url)
        Path(target).mkdir(parents=True, exist_ok=True)
        chrome.save_screenshot(str(Path(target) / f"{name}.png"))


def test_every_page_loads_cleanly_and_every_link_works(demo_stack: DemoStack, browser: webdriver.Chrome) -> None:
    pair = demo_stack.pairs[0]
    bzr_public, differ = demo_stack.bzr_url, demo_stack.differ_url
    bzr_admin = "http://127.0.0.1:9929"
    upload = "http://127.0.0.1:9933"
    debdiff = f"{differ}/debdiff/{pair['old']}/{pair['new']}"
    diffoscope = f"{differ}/diffoscope/{pair['old']}/{pair['new']}"
    branch = f"{bzr_public}/bzr/demo/lintian-fixes/main/"
    sites = {
        "bzr-store public": [f"{bzr_public}/"],
        "bzr-store admin": [f"{bzr_admin}/", f"{bzr_admin}/docs", f"{bzr_admin}/redoc"],
        "differ": [debdiff, diffoscope, f"{differ}/docs", f"{differ}/redoc"],
        "auto-upload": [f"{upload}/docs", f"{upload}/redoc"],
    }
    visited: dict[str, list[str]] = {}
    for starts in sites.values():
        visited.update(crawl(browser, starts))
    bad = {url: found for url, found in visited.items() if found}
    assert not bad, json.dumps(bad, indent=2)
    # The crawl reached the pages the store's links lead to, and a revision's diff.
    assert f"{bzr_public}/bzr/demo/" in visited and branch in visited
    assert any("?revision=" in url for url in visited), sorted(visited)

    browser.get(diffoscope)
    assert browser.title == "diffoscope: janitor-demo-hello 1.0~jan+unchanged1 → 1.0~jan+lint1"
    browser.get(debdiff)
    assert browser.title == "debdiff: janitor-demo-hello 1.0~jan+unchanged1 → 1.0~jan+lint1"
    assert "Priority" in browser.find_element(By.TAG_NAME, "main").text
    # What the platform's site fetches to embed in its own page stays a fragment.
    fragment = httpx.get(debdiff, headers={"Accept": "text/html"}, timeout=30)
    assert fragment.status_code == 200 and "<h4>" in fragment.text and "<html" not in fragment.text
    browser.get(branch)
    command = browser.find_element(By.CSS_SELECTOR, "code.command").text
    assert command == "brz branch bzr+http://127.0.0.1:9930/bzr/demo/lintian-fixes/main"
    browser.get(f"{differ}/docs")
    # Rendered by Swagger UI's script, loaded from the service itself.
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info"))

    for name, url in (
        ("bzr-store-codebase", f"{bzr_public}/bzr/demo/"),
        ("bzr-store-branch", f"{branch}?revision=2"),
        ("differ-debdiff", debdiff),
        ("differ-diffoscope", diffoscope),
        ("differ-docs", f"{differ}/docs"),
    ):
        screenshot(browser, url, name)
