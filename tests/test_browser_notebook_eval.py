"""A real browser walks the evaluation notebook: import tests → save → reload → reopen by link → run →
failures only → judge → run again → diff two versions; screenshots of the notebook with its checks and
of the judge's ranking on the Leaderboard."""

import re

import pytest

from tests.browser import ARTIFACTS, chromium_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

TESTS = """\
prompts:
  - "Answer in one word: what is the capital of {{country}}?"
defaultTest:
  assert:
    - {type: icontains, value: "{{expected}}", metric: right city, weight: 0}
tests:
  - vars: {country: France, expected: Paris}
    assert:
      - {type: not-icontains, value: "zzzz"}
  - vars: {country: Peru, expected: Lima}
    assert:
      - {type: equals, value: "zzzz"}
"""


def text_of(page, selector: str) -> str:
    return page.locator(selector).inner_text()


def wait_text(page, selector: str, needle: str, timeout: int = 60_000) -> None:
    page.wait_for_function(
        "([s, n]) => (document.querySelector(s)?.innerText || '').includes(n)",
        arg=[selector, needle],
        timeout=timeout,
    )


def pick(page, selector: str, option: str) -> None:
    page.locator(f"{selector} input").click()
    page.locator(selector).get_by_role("option", name=option, exact=True).click()


def test_the_evaluation_notebook_in_chromium(live_app, services, tmp_path):
    source = tmp_path / "capitals.yaml"
    source.write_text(TESTS, encoding="utf-8")
    with chromium_page(live_app, height=2400) as page:
        page.get_by_role("tab", name="Notebook").click()
        page.locator("#nb-import input[type=file]").set_input_files(str(source))
        wait_text(page, "#nb-status", "Imported 2 rows and 3 checks from capitals.yaml")
        assert page.locator("#notebook-template textarea").input_value() == (
            "Answer in one word: what is the capital of {country}?"
        )
        page.get_by_label("max_new_tokens (0 = each preset's)").fill("8")
        page.locator("#nb-name textarea").fill("capitals")
        page.locator("#nb-save").click()
        wait_text(page, "#nb-status", "Saved.")
        notebook_id = re.search(r"\?notebook=([0-9a-f]{32})", text_of(page, "#nb-status")).group(1)

        page.reload()  # the page forgets everything; the notebook is in the database
        page.wait_for_selector("#compare-prompt", timeout=60_000)
        page.goto(f"{live_app}?notebook={notebook_id}")
        page.get_by_role("tab", name="Notebook").click()
        wait_text(page, "#nb-status", "Opened from its link.")
        assert page.locator("#nb-name textarea").input_value() == "capitals"
        assert (
            "Peru" in text_of(page, "#notebook-table")
            and "right city" in page.locator("#nb-checks").inner_text()
        )

        page.locator("#nb-run").click()
        wait_text(page, "#nb-status", "Ran version 1", timeout=600_000)
        version = services.saved.version(notebook_id, 1)
        assert all(c.status == "done" for c in version.grid.cells)
        rates = text_of(page, "#nb-pass-rates")
        for rate in version.scores.models:
            assert f"{rate.passed} / {rate.n}" in rates
        assert "right city" in text_of(page, "#nb-by-check")
        grid = text_of(page, "#notebook-grid")
        assert grid.count("✅ pass") + grid.count("❌ fail") == 4

        page.locator("#nb-failures-only input").check()  # row 1 passes its checks, row 2 cannot
        assert version.scores.failed_rows() == {1}
        page.wait_for_function(
            "() => !document.querySelector('#notebook-grid').innerText.includes('France')", timeout=30_000
        )
        assert "Peru" in text_of(page, "#notebook-grid")
        page.locator("#nb-failures-only input").uncheck()

        pick(page, "#nb-judge-preset", services.registry.get("smollm2-135m-instruct-greedy").display_name)
        page.locator("#nb-judge").click()
        wait_text(page, "#nb-judge-result", "Pairwise judge", timeout=600_000)
        verdicts = services.saved.verdicts(notebook_id, 1)
        assert len(verdicts) == 2 and all(len(v["calls"]) == 2 for v in verdicts)
        assert "row 1:" in text_of(page, "#nb-judge-result")
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#nb-saved").screenshot(path=str(ARTIFACTS / "notebook-eval.png"))

        page.get_by_label("seed (sample k uses seed + k)").fill("5")
        page.get_by_label("seed (sample k uses seed + k)").press("Tab")
        page.locator("#nb-run").click()
        wait_text(page, "#nb-status", "Ran version 2", timeout=600_000)
        assert services.saved.open(notebook_id, None).document.seed == 5  # saved as it was edited
        pick(page, "#nb-version-a", "1")
        pick(page, "#nb-version-b", "2")
        page.locator("#nb-diff").click()
        wait_text(page, "#nb-diff-out", "Version 1 → version 2")
        diff = services.saved.diff(notebook_id, 1, 2)
        assert f"{len(diff.changed)} changed text" in text_of(page, "#nb-diff-out")

        page.locator(
            "#notebook-grid [data-testid=cell-1-2]"
        ).click()  # row 2: a word diff of two of its answers
        page.wait_for_selector("#nb-answer-diff .nb-word-diff", timeout=30_000)
        latest = services.saved.version(notebook_id, 2).grid
        words = services.saved.answer_diff(
            notebook_id,
            1,
            {"version": 2, "model": latest.presets[0]},
            {"version": 2, "model": latest.presets[1]},
        )
        shown = page.locator("#nb-answer-diff .nb-word-diff").inner_text()
        assert shown.strip() == "".join(t for _op, t in words).strip()
        page.get_by_role("tab", name="Leaderboard").click()
        wait_text(page, "#lb-judge-summary", "pairwise verdicts", timeout=60_000)
        assert "SmolLM2" in text_of(page, "#lb-judge-table")
        page.locator("#lb-judge-board").screenshot(path=str(ARTIFACTS / "leaderboard-judge.png"))
