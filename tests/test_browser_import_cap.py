"""A real browser: a prompt-set file over the import cap is refused with the cap named, and the table
keeps what it had."""

import pytest

from tests.browser import chromium_page, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_an_upload_over_the_cap_is_refused_naming_the_cap(live_app, tmp_path):
    big = tmp_path / "big.csv"
    big.write_bytes(b"prompt\n" + (b"y" * 999 + b"\n") * 6000)  # 5.7 MB
    with chromium_page(live_app) as page:
        page.get_by_role("tab", name="Notebook").click()
        page.locator("#notebook-upload input[type=file]").set_input_files(str(big))
        message = "big.csv is 5.7 MB; an import takes at most 5 MB"
        page.wait_for_function(f"() => document.body.innerText.includes({message!r})", timeout=60_000)
        screenshot(page, "notebook_import_cap.png")
        assert "Name three uses of a paperclip." in page.locator("#notebook-table").inner_text()
        assert "Loaded" not in page.locator("#notebook-load-status").inner_text()
