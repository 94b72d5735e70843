"""A real browser: type a prompt, send, both columns stream text, vote, screenshot."""

import pytest

from tests.browser import chromium_page, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_compare_in_chromium(live_app, services):
    votes_before = len(services.store.votes())
    with chromium_page(live_app) as page:
        page.locator("#compare-prompt textarea").fill("Name a color.")
        page.locator("#compare-send").click()
        for i in range(2):
            page.wait_for_function(
                f"() => [...document.querySelectorAll('#chat-{i} .bot')].some(e => e.innerText.trim().length > 2)",
                timeout=120_000,
            )
        page.wait_for_function(
            "() => ['#stats-0', '#stats-1'].every(s => /tok\\/s · (eos|length|stop_string)/"
            ".test(document.querySelector(s).innerText))",
            timeout=120_000,
        )
        page.locator("#vote-0").click()
        page.wait_for_function(
            "() => document.querySelector('#vote-status').innerText.includes('Vote saved')", timeout=30_000
        )
        screenshot(page, "compare.png")
    assert len(services.store.votes()) == votes_before + 1
