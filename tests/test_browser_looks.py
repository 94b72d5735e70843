"""How the page looks, in headless Chromium on the real app: the Presets tab (no server paths, a table
that fits, the quantisation the loader applies), a 390 px wide phone (model chips wrap between words,
never inside one) and the dark theme (Plotly charts on the page's own dark background, heatmap labels
clear of its title). The screenshots are the README's (docs/*.png are copied from artifacts/)."""

from __future__ import annotations

import pytest

from tests.browser import chromium_context, open_page, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]

OVERFLOW = "(sel) => { const e = document.querySelector(sel); return e.scrollWidth - e.clientWidth; }"


def test_presets_tab_shows_relative_files_and_a_table_that_fits(live_app):
    with chromium_context(1280, 1100) as context:
        page = open_page(context, live_app)
        page.get_by_role("tab", name="Presets").click()
        table = page.locator("#presets-table")
        table.wait_for()
        text = table.inner_text() + page.locator("#preset-details").inner_text()
        assert "/presets/" not in text and "/work/" not in text and "/home/" not in text
        assert "GPTQ" in table.inner_text()  # the GPTQ preset's quantisation as the loader applies it
        page.wait_for_timeout(300)
        assert page.evaluate(OVERFLOW, "#presets-table") <= 1  # no sideways scrolling
        screenshot(page, "presets.png")
        assert page.uncaught == []


def test_a_phone_wide_page_wraps_model_names_between_words(live_app):
    with chromium_context(390, 900) as context:
        page = open_page(context, live_app)
        page.get_by_role("tab", name="Notebook").click()
        chips = page.locator("#notebook-models .token")
        chips.first.wait_for()
        broken = page.evaluate(
            """() => [...document.querySelectorAll('#notebook-models .token')].filter(chip => {
                   const style = getComputedStyle(chip.querySelector('span') || chip);
                   return style.wordBreak === 'break-all' || style.overflowWrap === 'anywhere';
               }).length"""
        )
        assert broken == 0
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390 + 1
        screenshot(page, "notebook-390.png")
        assert page.uncaught == []


def test_the_dark_theme_themes_the_charts(live_app):
    with chromium_context(1400, 1200, dark=True) as context:
        page = open_page(context, f"{live_app}?__theme=dark")
        page.get_by_role("tab", name="Leaderboard").click()
        page.locator("#lb-winrates .js-plotly-plot").wait_for(timeout=60_000)
        page.wait_for_timeout(800)  # plotly finishes drawing
        backgrounds = page.eval_on_selector_all(
            ".js-plotly-plot .main-svg rect.bg, .js-plotly-plot svg.main-svg",
            "els => els.map(e => getComputedStyle(e).fill + '|' + getComputedStyle(e).backgroundColor)",
        )
        assert backgrounds and not any("rgb(255, 255, 255)" in b for b in backgrounds)
        title = page.locator("#lb-winrates .gtitle")
        if title.count():
            title_box = title.bounding_box()
            ticks = page.locator("#lb-winrates .xtick text").all()
            assert all(t.bounding_box()["y"] > title_box["y"] + title_box["height"] for t in ticks)
        screenshot(page, "leaderboard-dark.png")
        page.get_by_role("tab", name="Compare").click()
        page.wait_for_timeout(300)
        screenshot(page, "compare-dark.png")
        assert page.uncaught == []
