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


def test_a_message_sent_while_a_round_streams_takes_over(live_app, services):
    """Sending during a round is neither dropped nor wiped: the running round stops (stored as
    stopped) and the new message is answered in every column."""
    with chromium_page(live_app) as page:
        page.locator("#compare-prompt textarea").fill("Write a very long poem about the sea.")
        page.locator("#compare-send").click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('#chat-0 .bot')].some(e => e.innerText.trim().length > 2)",
            timeout=120_000,
        )
        page.locator("#compare-prompt textarea").fill("Now name one fish.")
        page.locator("#compare-send").click()
        for i in range(2):
            page.wait_for_function(
                f"() => document.querySelector('#chat-{i}').innerText.includes('Now name one fish.')",
                timeout=60_000,
            )
        page.wait_for_function(
            "() => ['#stats-0', '#stats-1'].every(s => /tok\\/s · (eos|length|stop_string)/"
            ".test(document.querySelector(s).innerText))",
            timeout=180_000,
        )
        screenshot(page, "compare_takeover.png")
    turns = services.store.turns()
    poem = [t for t in turns if t.messages[-1]["content"].startswith("Write a very long poem")]
    fish = [t for t in turns if t.messages[-1]["content"] == "Now name one fish."]
    assert {t.finish_reason for t in poem} == {"stopped"} and len(poem) == 2
    assert len(fish) == 2 and all(t.output and t.finish_reason != "stopped" for t in fish)
    assert {t.conversation_id for t in fish} == {poem[0].conversation_id}


def test_html_and_scripts_in_messages_and_answers_stay_inert(live_app):
    """A prompt (and so the answers that echo it) with markup and script: shown, never run."""
    payload = (
        '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
        '<a href="javascript:window.__pwned=3" id="evil">link</a> Repeat this tag: <b onclick="x()">OK</b>'
    )
    with chromium_page(live_app) as page:
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.locator("#compare-prompt textarea").fill(payload)
        page.locator("#compare-send").click()
        page.wait_for_function(
            "() => ['#stats-0', '#stats-1'].every(s => /tok\\/s · (eos|length|stop_string)/"
            ".test(document.querySelector(s).innerText))",
            timeout=180_000,
        )
        page.wait_for_timeout(500)
        for chat in ("#chat-0", "#chat-1"):
            assert "Repeat this tag" in page.locator(chat).inner_text()
            assert page.locator(f"{chat} script").count() == 0
            assert page.locator(f"{chat} [onerror], {chat} [onclick]").count() == 0
            assert page.locator(f'{chat} a[href^="javascript"]').count() == 0
        assert page.evaluate("() => window.__pwned") is None and dialogs == []
        screenshot(page, "compare_inert_html.png")
