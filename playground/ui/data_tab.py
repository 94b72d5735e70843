"""The Data tab and ``/replay``: stored conversations out as files, and any stored answer re-run.

Exports are written row by row by ``services/data/export.py`` into a temporary file, then offered as
a download; arena battles without a vote are left out (their names are still secret) unless the
options ask for them, the same rule as the CLI's ``--include-unvoted``. The Export button's event is
also the ``/export`` endpoint (format, since, mode, options → the file and a status line).
All of it is offered only with ``open_data`` (off on a Space or a share link: an export holds every
visitor's conversations).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import gradio as gr

from playground.container import Services
from playground.errors import PlaygroundError
from playground.services.answers.replay import ReplayResult
from playground.services.data.export import (
    EXTENSIONS,
    FORMATS,
    MODES,
    ExportFilter,
    check_format,
)
from playground.ui.access import Guard
from playground.ui.common import GENERATION, generation_slot, inline_errors, user_errors

CLOSED = "data export and replay are turned off on this public deployment (start the app with --open-data)"
OFF = "data export and replay"  # what the access rule names when it refuses


def register_data_api(services: Services) -> None:
    @user_errors
    @generation_slot(services.gate)
    def replay(turn_id: int, request: gr.Request = None) -> Iterator[dict]:
        """Re-run a stored answer exactly (preset, revision, prompt, params, seed); says whether the
        text matches the stored one (and whether the preset file or the weights changed since)."""
        if not services.settings.open_data:
            raise PlaygroundError(CLOSED)
        yield services.replay.replay(int(turn_id)).as_json()

    limit = services.settings.limits.total_generations
    gr.api(
        Guard(services).nobody(replay, OFF, unless="open_data"),
        api_name="replay",
        concurrency_id=GENERATION,
        concurrency_limit=limit,
    )


def replay_text(result: ReplayResult) -> str:
    if result.match:
        verdict = "✅ **same text**"
    elif result.first_difference is not None:
        verdict = f"❌ **different text** (from character {result.first_difference})"
    else:
        verdict = "❌ **no text to compare**"
    lines = [f"{verdict} · answer {result.turn_id} · `{result.preset}` · seed {result.seed}"]
    lines += [f"⚠️ {n}" for n in result.notes]
    if result.error:
        lines.append(f"⚠️ the replay failed: {result.error}")
    lines += ["**Stored:**", _quote(result.stored_output), "**Replayed:**", _quote(result.replayed_output)]
    return "\n\n".join(lines)


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" for line in (text or "(empty)").splitlines()) or "> (empty)"


OPTIONS = {  # the Data tab's export options → ExportFilter fields (the CLI's flags of the same names)
    "include unvoted battles": {"include_unvoted": True},
    "include incomplete answers (sharegpt)": {"include_incomplete": True},
    "conversational DPO": {"dpo_format": "conversational"},
}


def export_options(chosen: list[str] | None) -> dict:
    fields = {}
    for option in chosen or []:
        if option not in OPTIONS:
            raise PlaygroundError(f"unknown export option {option!r}; choose from {', '.join(OPTIONS)}")
        fields.update(OPTIONS[option])
    return fields


EXPORTS = Path(tempfile.gettempdir()) / "playground-exports"
KEEP_S = 3600  # an export file stays for an hour (Gradio serves its own copy once the handler returns)


def _export_folder() -> Path:
    """A new folder for one export; folders of exports older than ``KEEP_S`` are removed."""
    EXPORTS.mkdir(parents=True, exist_ok=True)
    for old in EXPORTS.iterdir():
        try:
            if time.time() - old.stat().st_mtime > KEEP_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    return Path(tempfile.mkdtemp(dir=EXPORTS))


def build_data_tab(services: Services) -> None:
    gr.Markdown(
        "Every stored conversation (rated or not), out as files: **jsonl** (a conversation per line "
        "with its answers, ratings, scores and votes), **csv** (an answer per row with its "
        "reproducibility fields), **dpo** (chosen/rejected pairs from votes and 👍/👎) or **sharegpt** "
        "(complete answers). Arena battles without a vote are left out unless asked for. The same from "
        "the shell: `python app.py export --format jsonl --out data.jsonl` (`--include-unvoted`, "
        "`--include-incomplete`, `--dpo-format conversational`)."
    )
    with gr.Row():
        fmt = gr.Dropdown(list(FORMATS), value="jsonl", label="Format", elem_id="data-format")
        since = gr.Textbox(label="Since (YYYY-MM-DD, optional)", elem_id="data-since")
        mode = gr.Dropdown(["all", *MODES], value="all", label="Conversations", elem_id="data-mode")
        export_btn = gr.Button("⬇ Export", variant="primary", elem_id="data-export")
    options = gr.CheckboxGroup(list(OPTIONS), value=[], label="Options", elem_id="data-options")
    download = gr.File(label="Export file", interactive=False, elem_id="data-file")
    export_status = gr.Markdown("", elem_id="data-export-status")
    gr.Markdown("### Replay an answer\nRe-run a stored answer exactly and compare the text.")
    with gr.Row():
        turn = gr.Number(label="Answer (turn) id", precision=0, elem_id="data-turn")
        replay_btn = gr.Button("🔁 Replay", elem_id="data-replay")
    replayed = gr.Markdown("", elem_id="data-replay-result")

    @user_errors
    def export(format_: str, since_: str, mode_: str, options_: list[str] | None = None):
        """Export the stored conversations (format jsonl, csv, dpo or sharegpt; since YYYY-MM-DD or empty;
        mode all, compare, arena, notebook or api; options: see OPTIONS) as a file; arena battles without
        a vote are left out unless the options include them."""
        format_ = check_format(format_)
        flt = ExportFilter.parse(since_, mode_, **export_options(options_))
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        path = _export_folder() / f"playground-{format_}-{stamp}.{EXTENSIONS[format_]}"
        n = services.data.export(format_, path, flt)
        return str(path), f"✅ {n} record(s) in `{path.name}`"

    @inline_errors(replayed)
    @generation_slot(services.gate)
    def replay(turn_id, request: gr.Request):
        if turn_id is None:
            raise PlaygroundError(
                "enter the id of a stored answer (shown in exports and in the API's turn_id)"
            )
        yield "Replaying…"
        yield replay_text(services.replay.replay(int(turn_id)))

    guard = Guard(services)
    export_btn.click(
        guard.nobody(export, OFF, unless="open_data"),
        [fmt, since, mode, options],
        [download, export_status],
        api_name="export",
    )
    replay_btn.click(
        guard.nobody(replay, OFF, unless="open_data"),
        [turn],
        [replayed],
        api_visibility="private",
        concurrency_id=GENERATION,
        concurrency_limit=services.settings.limits.total_generations,
    )
