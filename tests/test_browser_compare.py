"""A real browser: type a prompt, send, both columns stream text, vote, screenshot."""

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser import chromium_context, chromium_page, open_page, reload, screenshot

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


ROUND_DONE = "() => ['#stats-0', '#stats-1'].every(s => /· (eos|length|stop_string)$/.test(document.querySelector(s).innerText.trim()))"


def asked(page, column: int) -> list[str]:
    """The user messages a column shows, in order."""
    return page.locator(f"#chat-{column} .user").all_inner_texts()


def set_max_new_tokens(page, value: int) -> None:
    """Type the value into both columns' field. While the page is still starting (its load events
    restore what the browser keeps), a field can be drawn again and lose what was typed: type again
    until it holds."""
    for i in range(2):
        field = page.locator(f"#col{i}-max_new_tokens input[type=number]")
        held = (
            f"() => document.querySelector('#col{i}-max_new_tokens input[type=number]').value === '{value}'"
        )
        for _attempt in range(12):
            if not field.is_visible():
                page.locator(f"#settings-{i}").get_by_text("Generation settings").click()
            field.fill(str(value))
            field.press("Enter")
            try:
                page.wait_for_function(held, timeout=5_000)
                break
            except PlaywrightTimeout:
                continue
        page.wait_for_function(held)


def test_send_stop_regenerate_undo_send_keeps_the_conversation(live_app, services):
    """Stop, Regenerate and Undo keep the conversation: the stopped round stays (marked stopped),
    Regenerate re-runs it, Undo removes exactly one round, the next message carries the whole
    history with the next turn index; Enter sends, Shift+Enter adds a line; a reload shows it all
    again; nothing goes wrong in the browser."""
    with chromium_context() as context:
        page = open_page(context, live_app)
        set_max_new_tokens(page, 12)
        box = page.locator("#compare-prompt textarea")
        assert "Enter sends" in box.get_attribute("placeholder")
        box.fill("first line")
        box.press("Shift+Enter")
        box.type("second line")
        assert box.input_value() == "first line\nsecond line" and asked(page, 0) == []
        box.fill("Name a color.")
        box.press("Enter")  # Enter sends
        page.wait_for_function(ROUND_DONE, timeout=900_000)  # the first answer loads and probes the model
        assert asked(page, 0) == asked(page, 1) == ["Name a color."] and box.input_value() == ""
        expect_vote = page.locator("#vote-0")
        assert expect_vote.is_enabled()

        set_max_new_tokens(page, 400)
        box.fill("Write a very long story about a dragon.")
        page.locator("#compare-send").click()
        page.wait_for_function(  # both columns are streaming this round: tokens counted, no finish reason yet
            "() => ['#chat-0', '#chat-1'].every(c => document.querySelectorAll(`${c} .bot`).length == 2) &&"
            " ['#stats-0', '#stats-1'].every(s => / tokens · [0-9.]+ tok\\/s$/.test(document.querySelector(s).innerText.trim()))",
            timeout=300_000,
        )
        page.locator("#compare-stop").click()
        page.wait_for_function(
            "() => ['#stats-0', '#stats-1'].every(s => /· stopped$/.test(document.querySelector(s).innerText.trim()))",
            timeout=120_000,
        )
        story = "Write a very long story about a dragon."
        assert asked(page, 0) == asked(page, 1) == ["Name a color.", story]  # the stopped round stays
        assert page.get_by_text("Error", exact=True).count() == 0
        stopped_text = page.locator("#chat-0 .bot").nth(1).inner_text().strip()
        screenshot(page, "compare_stopped.png")

        set_max_new_tokens(page, 12)
        page.locator("#compare-regenerate").click()
        page.wait_for_function(ROUND_DONE, timeout=300_000)
        assert asked(page, 0) == ["Name a color.", story]
        assert page.locator("#chat-0 .bot").nth(1).inner_text().strip() != stopped_text

        page.locator("#compare-undo").click()
        page.wait_for_function("() => document.querySelectorAll('#chat-0 .user').length == 1", timeout=30_000)
        assert asked(page, 1) == ["Name a color."] and expect_vote.is_enabled()
        assert "· stopped" not in page.locator("#stats-0").inner_text()

        box.fill("Name a fruit.")
        page.locator("#compare-send").click()
        page.wait_for_function(
            f"() => document.querySelectorAll('#chat-0 .user').length == 2 && {ROUND_DONE[6:]}",
            timeout=300_000,
        )
        page.locator("#vote-1").click()
        page.wait_for_function(
            "() => document.querySelector('#vote-status').innerText.includes('Vote saved')"
        )
        page.wait_for_function("() => document.querySelector('#vote-0').disabled")

        conversation = next(
            t for t in reversed(services.store.turns()) if t.messages[-1]["content"] == "Name a fruit."
        )
        turns = [t for t in services.store.turns(conversation.conversation_id) if t.column == 0]
        assert [(t.turn_index, t.finish_reason == "stopped", t.messages[-1]["content"]) for t in turns] == [
            (0, False, "Name a color."),
            (1, True, story),
            (1, False, story),
            (1, False, "Name a fruit."),
        ]
        assert [m["content"] for m in turns[-1].messages if m["role"] == "user"] == [
            "Name a color.",
            "Name a fruit.",
        ]
        assert turns[-1].messages[1]["content"] == turns[0].output.strip()
        assert len({t.seed for t in turns}) == 4  # an empty seed box means a random seed (not 0)

        reload(page)
        page.wait_for_function("() => document.querySelectorAll('#chat-1 .user').length == 2", timeout=60_000)
        assert asked(page, 0) == ["Name a color.", "Name a fruit."]
        assert not page.locator("#vote-0").is_enabled()  # the round was voted on
        second = open_page(context, live_app)  # a second tab of the same browser
        second.wait_for_function(
            "() => document.querySelectorAll('#chat-0 .user').length == 2", timeout=60_000
        )
        screenshot(page, "compare_restored.png")
        assert page.uncaught == [] and second.uncaught == []
