"""A real browser: import a small CSV, run a 2 × 3 grid, rate a cell, download the CSV, screenshot."""

import csv

import pytest

from tests.browser import chromium_context, chromium_page, open_page, reload, screenshot

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


def progress_text(page) -> str:
    return page.locator("#notebook-progress-text").inner_text()


def test_stop_shows_honest_counts_and_a_reload_shows_the_grid_again(live_app, services):
    """Stop mid-batch: the line counts what was done, stopped and never run (not "8 / 8 finished"),
    the bar is not full, the running batch showed its tokens; a reload reads the grid back."""
    prompts = [
        "Write a long story about a cat.",
        "Write a long story about a dog.",
        "Write a long story about a fox.",
    ]
    with chromium_context(height=1400) as context:
        page = open_page(context, live_app)
        page.get_by_role("tab", name="Notebook").click()
        page.get_by_text("Paste rows").click()
        page.locator("#notebook-paste textarea").fill("\n".join(prompts))
        page.get_by_text("Use pasted rows").click()
        page.wait_for_function(
            "() => document.querySelector('#notebook-load-status').innerText.includes('Loaded 3 rows')"
        )
        page.locator("#notebook-max-new input").fill("300")
        page.locator("#notebook-run").click()
        page.wait_for_function(  # inside the first batch: tokens so far and a speed, before any cell ends
            "() => /[0-9,]+ tokens · [0-9.]+ tok\\/s/.test(document.querySelector('#notebook-progress-text').innerText)",
            timeout=900_000,
        )
        during = progress_text(page)
        assert "0 / 6 cells" in during and "running" in during and "generating 3 cells" in during
        page.locator("#notebook-stop").click()
        page.wait_for_function(
            "() => document.querySelector('#notebook-progress-text').innerText.includes('stopped after')",
            timeout=120_000,
        )
        stopped = progress_text(page)
        screenshot(page, "notebook_stopped.png")
        cells = services.store.notebook_cells(
            services.store.turns()[-1].conversation_id
        )  # the run's stored cells: the first model's three, stopped; the second model never ran
        assert [turn.finish_reason for _, turn in cells] == ["stopped"] * 3
        assert stopped.startswith("0 / 6 cells · 3 stopped · 3 not run")
        widths = page.eval_on_selector_all(
            "#notebook-progress-bar span", "spans => spans.map(s => [s.className, parseFloat(s.style.width)])"
        )
        assert widths == [["nb-stopped", 50], ["nb-not-run", 50]]  # no green: nothing was done
        grid_before = page.locator("#notebook-grid").inner_text()
        assert "(not run)" in grid_before and "stopped" in grid_before

        reload(page)
        page.get_by_role("tab", name="Notebook").click()
        page.wait_for_function(
            "() => document.querySelector('#notebook-progress-text').innerText.includes('stopped after')",
            timeout=60_000,
        )
        assert progress_text(page).startswith("0 / 6 cells · 3 stopped · 3 not run")
        restored = page.locator("#notebook-grid").inner_text()
        assert all(p in restored for p in prompts) and restored.count("(not run)") == 3
        assert page.uncaught == []


def test_a_bad_upload_keeps_the_previous_table_and_names_the_file(live_app, tmp_path):
    good = tmp_path / "translations.csv"
    good.write_text("lang,text\nFrench,Good morning\nGerman,Thank you\nSpanish,Cheese\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"prompt\nabc\xff\n")
    with chromium_context(height=1400) as context:
        page = open_page(context, live_app)
        page.get_by_role("tab", name="Notebook").click()
        upload = page.locator("#notebook-upload input[type=file]")
        upload.set_input_files(str(good))
        page.wait_for_function(
            "() => document.querySelector('#notebook-load-status').innerText.includes('Loaded 3 rows')",
            timeout=30_000,
        )
        template_status = page.locator("#notebook-template-status")
        page.wait_for_function(  # checked at upload, naming the file, the row and the column
            "() => document.querySelector('#notebook-template-status').innerText.includes("
            "\"translations.csv, row 1: the template uses {prompt} but there is no column 'prompt'\")",
            timeout=30_000,
        )
        upload.set_input_files(str(bad))
        page.wait_for_function(
            "() => document.querySelector('#notebook-load-error').innerText.includes("
            "'bad.csv: not UTF-8 text (invalid byte 0xff at offset 10)')",
            timeout=30_000,
        )
        assert "Loaded 3 rows from translations.csv" in page.locator("#notebook-load-status").inner_text()
        assert "German" in page.locator("#notebook-table").inner_text()
        assert page.get_by_text("Error", exact=True).count() == 0
        page.locator("#notebook-template textarea").fill("Translate to {lang}: {text}")
        page.wait_for_function(
            "() => document.querySelector('#notebook-template-status').innerText.trim() === ''"
        )
        assert template_status.inner_text().strip() == ""
        screenshot(page, "notebook_bad_upload.png")
        assert page.uncaught == []
