"""One arena battle played to the end in headless Chromium, then the leaderboard (real app, real model)."""

import re

import pytest

from tests.browser import chromium_context, chromium_page, open_page, reload, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def page(live_app):
    with chromium_page(live_app, width=1400, height=1100) as page:
        yield page


def test_play_a_battle_vote_and_see_the_leaderboard(page, services):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Arena").click()
    page.click("#arena-new")
    expect(page.locator("#arena-status")).to_contain_text("Two anonymous models were drawn", timeout=120_000)
    vote_a = page.locator("#arena-vote-a")
    expect(vote_a).to_be_disabled()
    page.locator("#arena-prompt textarea").fill("Say hi.")
    page.click("#arena-send")
    expect(page.locator("#arena-status")).to_contain_text("Both answers are in", timeout=120_000)
    expect(vote_a).to_be_enabled()
    for side in "ab":
        expect(page.locator(f"#arena-chat-{side}")).to_contain_text("Say hi.")
    hidden_text = page.locator("#arena-chat-a").inner_text() + page.locator("#arena-chat-b").inner_text()
    hidden_text += page.locator("#arena-status").inner_text()

    vote_a.click()
    status = page.locator("#arena-status")
    expect(status).to_contain_text("Vote saved", timeout=30_000)
    vote = services.store.votes(("arena",))[-1]
    presets = [services.registry.get(name) for name in vote.models]
    for preset in presets:
        expect(status).to_contain_text(preset.display_name)
        assert preset.display_name not in hidden_text and preset.name not in hidden_text
    expect(page.locator("#arena-chat-a")).to_contain_text(f"Model A: {presets[0].display_name}")
    expect(vote_a).to_be_disabled()
    expect(page.locator("#arena-prompt textarea")).to_be_disabled()
    screenshot(page, "arena.png")

    page.get_by_role("tab", name="Leaderboard").click()
    if vote.identity_leaked:  # an answer named its model: counted only when asked for
        page.locator("#lb-include-leaked input").check()
    table = page.locator("#lb-table")
    expect(table).to_contain_text(presets[0].name, timeout=30_000)
    expect(page.locator("#lb-summary")).to_contain_text(re.compile(r"\d+ battles? from \d+ votes?"))
    for plot in ("#lb-ratings", "#lb-winrates"):
        expect(page.locator(f"{plot} .js-plotly-plot")).to_be_visible(timeout=30_000)
    page.wait_for_timeout(500)  # let plotly finish drawing
    screenshot(page, "leaderboard.png")


def test_a_reload_mid_battle_stops_it_and_keeps_it_votable(live_app, services):
    """The page keeps only the battle id: after a reload the battle is shown again and can be voted
    on, and the answers of the page that went away stopped (no side kept generating)."""
    from playwright.sync_api import expect

    poem = "Write a very long poem about the sea, with many verses."
    with chromium_context(1400, 1100) as context:
        page = open_page(context, live_app)
        page.get_by_role("tab", name="Arena").click()
        page.click("#arena-new")
        expect(page.locator("#arena-status")).to_contain_text(
            "Two anonymous models were drawn", timeout=120_000
        )
        box = page.locator("#arena-prompt textarea")
        assert "Enter sends" in box.get_attribute("placeholder")
        box.fill(poem)
        box.press("Enter")
        page.wait_for_function(
            "() => (bots => bots.length == 2 && bots.every(e => e.innerText.trim().length > 3))"
            "([...document.querySelectorAll('#arena-chat-a .bot, #arena-chat-b .bot')])",
            timeout=600_000,
        )
        reload(page)
        page.get_by_role("tab", name="Arena").click()
        for side in "ab":
            expect(page.locator(f"#arena-chat-{side} .user")).to_contain_text(poem, timeout=120_000)
        vote_b = page.locator("#arena-vote-b")
        expect(vote_b).to_be_enabled(timeout=120_000)
        vote_b.click()
        expect(page.locator("#arena-status")).to_contain_text("Vote saved", timeout=30_000)
        assert page.uncaught == []
    vote = services.store.votes(("arena",))[-1]
    turns = services.store.turns(vote.conversation_id)
    assert [t.messages[-1]["content"] for t in turns] == [poem, poem]
    for turn in turns:  # the page went away: both answers stopped, far short of their 256 tokens
        assert turn.finish_reason == "stopped" and turn.completion_tokens < turn.params["max_new_tokens"]
