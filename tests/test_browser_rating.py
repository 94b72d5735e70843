"""A real browser: 👍 under a Compare answer, then reasons and a comment, stored as that answer's
rating (the like and the reasons are access-ruled events of the page's own session)."""

import pytest

from tests.browser import chromium_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_a_like_under_an_answer_is_stored_with_its_reasons(live_app, services):
    before = len(services.store.ratings())
    with chromium_page(live_app) as page:
        for column in range(2):  # short answers
            page.get_by_text("Generation settings").nth(column).click()
            tokens = page.locator("input[aria-label='number input for max_new_tokens']").nth(column)
            tokens.fill("6")
            tokens.press("Enter")
        page.locator("#compare-prompt textarea").fill("Name a fruit.")
        page.locator("#compare-send").click()
        # both answers finished and the round's event over (its progress tracker gone): stored, likeable
        page.wait_for_function(
            "() => ['#stats-0', '#stats-1'].every(s => /^TTFT[^\\n]*tok\\/s · (eos|length|stop_string)$/"
            ".test(document.querySelector(s).innerText.trim()))",
            timeout=300_000,
        )
        page.locator("#chat-0 button[aria-label='Like']").last.click()
        page.locator("#compare-reasons").get_by_text("accurate").click()
        page.locator("#compare-comment textarea").fill("short and right")
        page.locator("#compare-save-reasons").click()
        page.locator("#compare-reasons").wait_for(state="hidden", timeout=60_000)  # saved: the panel closes
    [rating] = services.store.ratings()[before:]
    assert (rating.value, rating.reasons, rating.comment) == (1, ["accurate"], "short and right")
    turn = next(t for t in services.store.turns() if t.id == rating.turn_id)
    conversation = services.store.conversation(turn.conversation_id)
    assert (conversation.mode, turn.column) == ("compare", 0) and conversation.session_id
