"""A real browser: import a small CSV, run a 2 × 3 grid, rate a cell, download the CSV, screenshot."""

import csv

import pytest

from tests.browser import chromium_page, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_notebook_in_chromium(live_app, services, tmp_path):
    source = tmp_path / "translations.csv"
    source.write_text("lang,text\nFrench,Good morning\nGerman,Thank you\nSpanish,Cheese\n", encoding="utf-8")
    with chromium_page(live_app, height=1400) as page:
        page.get_by_role("tab", name="Notebook").click()
        page.locator("#notebook-upload input[type=file]").set_input_files(str(source))
        page.wait_for_function(
            "() => document.querySelector('#notebook-load-status').innerText.includes('Loaded 3 rows')",
            timeout=30_000,
        )
        page.locator("#notebook-template textarea").fill("Translate to {lang}: {text}")
        page.locator("#notebook-run").click()
        page.wait_for_function(
            "() => document.querySelector('#notebook-progress-text').innerText.includes('6 / 6 cells')",
            timeout=240_000,
        )
        page.wait_for_function(
            "() => document.querySelector('#notebook-progress-text').innerText.includes('finished')",
            timeout=30_000,
        )
        page.locator("#notebook-grid [data-testid=cell-1-3]").click()  # row 2, second model
        page.wait_for_function(
            "() => document.querySelector('#notebook-chosen').innerText.includes('Rating row 2')",
            timeout=30_000,
        )
        detail = page.locator("#notebook-detail").inner_text()
        assert "Translate to German: Thank you" in detail and "<|im_start|>assistant" in detail
        page.locator("#notebook-thumb").get_by_text("👍 good").click()
        page.locator("#notebook-reasons").get_by_text("accurate").click()
        page.locator("#notebook-score").get_by_text("4").click()
        page.locator("#notebook-comment textarea").fill("close enough")
        page.locator("#notebook-rate").click()
        page.wait_for_function(
            "() => document.querySelector('#notebook-rate-status').innerText.includes('Saved for row 2')",
            timeout=30_000,
        )
        with page.expect_download() as download:
            page.locator("#notebook-csv").click()
        saved = tmp_path / "grid.csv"
        download.value.save_as(saved)
        screenshot(page, "notebook.png")
    rows = list(csv.DictReader(saved.open(encoding="utf-8")))
    assert len(rows) == 6 and [r["row.lang"] for r in rows[::2]] == ["French", "German", "Spanish"]
    rated = [r for r in rows if r["rating"]]
    assert [(r["row"], r["model"], r["rating"], r["score"], r["comment"]) for r in rated] == [
        ("2", "smollm2-135m-instruct-greedy", "1", "4", "close enough")
    ]
    turn = next(t for t in services.store.turns() if t.id == int(rated[0]["turn_id"]))
    assert turn.output == rated[0]["output"]
    assert [r.reasons for r in services.store.ratings(turn.id)] == [["accurate"]]
