"""Headless Debian Chromium through Playwright (``playwright install`` cannot download browsers here).

One Chromium per test process, started at the first page and closed at exit: every ``chromium_page``
is a fresh browser context (its own cookies and local storage, as a new browser profile), so tests
stay apart without paying a browser launch each.

Every page records what went wrong in the browser: ``page.uncaught`` holds uncaught exceptions
(``pageerror``) and errors logged to the console, except those a page logs while it is being left
(``reload``: Gradio's client aborts its open streams then and says so).
"""

from __future__ import annotations

import atexit
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


_SHARED: dict = {}  # the process's one Playwright and Chromium


def shared_browser():
    if "browser" not in _SHARED:
        from playwright.sync_api import sync_playwright

        if not Path(CHROMIUM).exists():
            raise RuntimeError(
                f"{CHROMIUM} is missing: `apt-get install -y chromium` (the Makefile's test target does it)"
            )
        playwright = sync_playwright().start()
        _SHARED["playwright"] = playwright
        _SHARED["browser"] = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        atexit.register(_close)
    return _SHARED["browser"]


def _close() -> None:
    browser, playwright = _SHARED.pop("browser", None), _SHARED.pop("playwright", None)
    if browser is not None:
        browser.close()
    if playwright is not None:
        playwright.stop()


def watch_console(page) -> None:
    """Collect the page's uncaught exceptions and console errors in ``page.uncaught``."""
    page.uncaught, page.leaving = [], False
    page.on("pageerror", lambda error: page.uncaught.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda message: (
            page.uncaught.append(f"console.error: {message.text}")
            if message.type == "error" and not page.leaving
            else None
        ),
    )


def open_page(context, url: str):
    page = context.new_page()
    watch_console(page)
    page.goto(url)
    page.wait_for_selector("#compare-prompt", timeout=60_000)
    return page


def reload(page) -> None:
    """Reload the page as a person would (F5), then wait for the app."""
    page.leaving = True
    page.reload()
    page.wait_for_selector("#compare-prompt", timeout=60_000)
    page.leaving = False


@contextmanager
def chromium_context(width: int = 1600, height: int = 1000, dark: bool = False):
    """A fresh browser context (one browser profile: its tabs share local storage)."""
    context = shared_browser().new_context(
        viewport={"width": width, "height": height}, color_scheme="dark" if dark else "light"
    )
    try:
        yield context
    finally:
        context.close()


@contextmanager
def chromium_page(url: str, width: int = 1600, height: int = 1000, dark: bool = False):
    with chromium_context(width, height, dark) as context:
        yield open_page(context, f"{url}?__theme=dark" if dark else url)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
