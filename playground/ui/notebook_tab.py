"""The Notebook tab: a prompt set × 1–N models, run as batches, looked at, rated and exported.

The page keeps the id of its last grid run in browser storage; a reload (or a second tab of the
same browser) reads that run back from the database and shows it again.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from playground.container import Services
from playground.errors import PlaygroundError
from playground.services.answers.feedback import reasons_for
from playground.services.notebook.grid import MAX_SAMPLES, NotebookRequest
from playground.services.notebook.prompts import (
    DEFAULT_TEMPLATE,
    PASTE_FORMATS,
    build_rows,
    check_records,
    load_file,
    parse_pasted,
    records_table,
    table_records,
)
from playground.ui.access import Guard
from playground.ui.common import (
    GENERATION,
    BrowserStorage,
    generation_slot,
    inline_errors,
    owner,
    preset_choices,
    session_key,
)
from playground.ui.notebook_saved import mount_saved_notebooks
from playground.ui.notebook_saved_layout import NotebookWidgets
from playground.ui.notebook_view import feedback_mark, grid_frame, progress_html, row_detail

EXAMPLE = [
    ["Name three uses of a paperclip."],
    ["Explain what a prime number is to a child."],
    ["Write a haiku about autumn."],
]
THUMBS = {"👍 good": 1, "👎 bad": -1, "no thumb": 0}


@dataclass
class NotebookTab:
    models: gr.Dropdown  # the Presets tab refreshes its choices
    on_load: tuple  # (fn, inputs, outputs) for the page's load event: show this browser's last grid


def new_state(source: str = "prompt table") -> dict:
    """The page's own: the grid shown, its cells' rating marks, the chosen cell, the export folder,
    and where the prompt table came from (named by errors)."""
    return {"grid": None, "marks": {}, "selected": None, "files": None, "source": source}


def template_warning(records: list[dict], template: str, source: str) -> str:
    """ "⚠️ cause" when the template does not fit the rows (file, row and column named), else ""."""
    try:
        build_rows(records, template or DEFAULT_TEMPLATE, source=source)
    except PlaygroundError as exc:
        return f"⚠️ {exc}"
    return ""


def show_grid(grid, labels: dict[str, str], only_differing: bool = False, marks: dict | None = None):
    """The grid table, with widths that keep every model's column on the screen."""
    frame = grid_frame(grid, labels, only_differing, marks)
    models = max(len(frame.columns) - 2, 1)
    share = f"{72 / models:.1f}%"
    return gr.update(value=frame, column_widths=["4%", "24%", *[share] * models][: len(frame.columns)])


def build_notebook_tab(services: Services, stored: BrowserStorage) -> NotebookTab:
    registry, notebook = services.presets, services.notebook
    labels = {p.name: p.display_name for p in registry.all()}
    state = gr.State(new_state())
    browser, last_grid = stored.key, stored.notebook  # the browser's key, the last run's id
    gr.Markdown(
        "Run a set of prompts through several models at once. Each model uses its own card's template, "
        "stop strings and parameters; its rows run as batches. A prompt may use `{column}` variables "
        "filled from each row."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            template = gr.Textbox(
                DEFAULT_TEMPLATE, label="Prompt template", elem_id="notebook-template", lines=1
            )
            template_status = gr.Markdown("", elem_id="notebook-template-status")
            table = gr.Dataframe(
                value=[r[:] for r in EXAMPLE],
                headers=["prompt"],
                interactive=True,
                wrap=True,
                label="Prompt set (columns: variables; optional `system` and `history`)",
                elem_id="notebook-table",
                max_height=300,
            )
        with gr.Column(scale=2):
            upload = gr.File(
                label="Import CSV or JSONL",
                file_types=[".csv", ".tsv", ".jsonl", ".ndjson", ".json"],
                elem_id="notebook-upload",
                height=110,
            )
            with gr.Accordion("Paste rows", open=False):
                pasted = gr.Textbox(lines=4, show_label=False, elem_id="notebook-paste")
                paste_kind = gr.Radio(list(PASTE_FORMATS), value="one prompt per line", show_label=False)
                paste_btn = gr.Button("Use pasted rows", size="sm")
            load_error = gr.Markdown("", elem_id="notebook-load-error")
            load_status = gr.Markdown("", elem_id="notebook-load-status")
    with gr.Row():
        models = gr.Dropdown(
            preset_choices(registry),
            value=list(services.settings.columns),
            multiselect=True,
            label="Models",
            elem_id="notebook-models",
            scale=4,
        )
        samples = gr.Number(1, label="samples per cell", precision=0, minimum=1, maximum=MAX_SAMPLES, scale=1)
        seed = gr.Number(0, label="seed (sample k uses seed + k)", precision=0, minimum=0, scale=1)
        max_new = gr.Number(
            0,
            label="max_new_tokens (0 = each preset's)",
            precision=0,
            minimum=0,
            scale=1,
            elem_id="notebook-max-new",
        )
    with gr.Accordion("Per-model parameter overrides (JSON)", open=False):
        overrides = gr.Code(
            "{}",
            language="json",
            label='e.g. {"smollm2-135m-instruct": {"temperature": 0.9, "top_p": 0.95}}',
            elem_id="notebook-overrides",
        )
    with gr.Row():
        run_btn = gr.Button("▶ Run grid", variant="primary", elem_id="notebook-run")
        stop_btn = gr.Button("⏹ Stop", elem_id="notebook-stop")
    run_status = gr.Markdown("", elem_id="notebook-run-status")
    progress = gr.HTML(progress_html(None), elem_id="notebook-progress")
    only_diff = gr.Checkbox(False, label="show only rows where models differ", elem_id="notebook-only-diff")
    grid_table = gr.Dataframe(
        value=grid_frame(None, labels),
        interactive=False,
        wrap=True,
        label="Grid (click a cell for the row's prompts and to rate it)",
        elem_id="notebook-grid",
        max_height=700,
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            detail = gr.Markdown("", elem_id="notebook-detail")
        with gr.Column(scale=2):
            with gr.Group():
                chosen = gr.Markdown(
                    "Click a model's cell in the grid to rate it.", elem_id="notebook-chosen"
                )
                sample_pick = gr.Radio(["1"], value="1", label="sample", visible=False)
                thumb = gr.Radio(list(THUMBS), value="no thumb", label="Thumb", elem_id="notebook-thumb")
                reasons = gr.CheckboxGroup([], label="Why?", elem_id="notebook-reasons")
                score = gr.Radio(
                    ["1", "2", "3", "4", "5"], value=None, label="Score (1–5)", elem_id="notebook-score"
                )
                comment = gr.Textbox(label="Comment (optional)", lines=1, elem_id="notebook-comment")
                rate_btn = gr.Button("Save rating", size="sm", elem_id="notebook-rate")
                rate_status = gr.Markdown("", elem_id="notebook-rate-status")
            with gr.Row():
                csv_btn = gr.DownloadButton("⬇ CSV", value=None, elem_id="notebook-csv", interactive=False)
                jsonl_btn = gr.DownloadButton(
                    "⬇ JSONL", value=None, elem_id="notebook-jsonl", interactive=False
                )

    def show_records(records: list[dict], source: str, tpl: str, st: dict) -> dict:
        """Checked rows into the table; the template is checked against them at once."""
        check_records(records, source)
        headers, values = records_table(records)
        st = {**st, "source": source}
        return {
            table: gr.update(value=values, headers=headers),
            load_status: f"Loaded {len(values)} rows from {source} (columns: {', '.join(headers)}).",
            load_error: "",
            template_status: template_warning(records, tpl, source),
            state: st,
        }

    def on_upload(file, tpl: str, st: dict):
        if not file:
            return {}
        path = Path(file if isinstance(file, str) else file.name)
        try:  # the drop zone is emptied either way, ready for the next file; the status names this one
            return {**show_records(load_file(path), path.name, tpl, st), upload: None}
        except PlaygroundError as exc:  # the table and its status stay as they were
            return {load_error: f"⚠️ {exc}", upload: None}

    @inline_errors(load_error)
    def on_paste(text: str, kind: str, tpl: str, st: dict):
        records = parse_pasted(text, kind)
        if not records:
            raise PlaygroundError("nothing to use: paste at least one row")
        return show_records(records, f"pasted {kind}", tpl, st)

    def recheck(tbl, tpl: str, st: dict) -> str:
        records = table_records(list(tbl.columns), tbl.values.tolist())
        return template_warning(records, tpl, st.get("source") or "prompt table") if records else ""

    def export_files(st: dict) -> list:
        grid = st["grid"]
        folder = Path(st["files"] or tempfile.mkdtemp(prefix="notebook-"))
        st["files"] = str(folder)
        paths = [
            services.notebook.export(
                grid.conversation_id,
                fmt,
                folder / f"notebook-{grid.conversation_id[:8]}.{fmt}",
            )
            for fmt in ("csv", "jsonl")
        ]
        return [gr.update(value=str(p), interactive=True) for p in paths]

    @inline_errors(run_status)
    @generation_slot(services.gate)
    def run(request: gr.Request, tbl, tpl, chosen_models, n, sd, mx, ov, diff_only, st, key):
        source = st.get("source") or "prompt table"
        records = table_records(list(tbl.columns), tbl.values.tolist())
        grid_request = NotebookRequest.parse(chosen_models, records, tpl, ov, n, sd, mx, source=source)
        st = new_state(source)
        with services.runs.run(session_key(request, "notebook")) as cancel:
            for grid in notebook.run(grid_request, owner(key, request), cancel):
                st["grid"] = grid
                shown = {grid_table: show_grid(grid, labels, diff_only), progress: progress_html(grid)}
                yield {**shown, state: st, last_grid: grid.conversation_id, run_status: ""}
        yield {grid_table: show_grid(grid, labels, diff_only), progress: progress_html(grid), state: st}
        yield dict(zip([csv_btn, jsonl_btn], export_files(st), strict=True))

    def stop(request: gr.Request):
        services.runs.cancel(session_key(request, "notebook"))

    def restore(gid: str | None, key: str | None, diff_only: bool, request: gr.Request):
        """On page load: the browser's last grid run, read back from the database (a page opened on a
        saved notebook's link shows that notebook instead: notebook_saved.py opens it)."""
        if (getattr(request, "query_params", None) or {}).get("notebook"):
            return {}
        grid = notebook.load(gid, owner(key, request))
        if grid is None:
            return {last_grid: None}
        marks = {t: feedback_mark(v, s) for t, (v, s) in notebook.ratings_of(grid).items() if v or s}
        st = {**new_state(), "grid": grid, "marks": marks}
        shown = {grid_table: show_grid(grid, labels, diff_only, marks), progress: progress_html(grid)}
        return {**shown, state: st, **dict(zip([csv_btn, jsonl_btn], export_files(st), strict=True))}

    def refilter(diff_only: bool, st: dict):
        return show_grid(st["grid"], labels, diff_only, st["marks"])

    def select(st: dict, evt: gr.SelectData):
        grid = st["grid"]
        if grid is None or evt.row_value is None:
            return gr.skip(), gr.skip(), gr.skip(), st
        row = grid.rows[int(evt.row_value[0]) - 1]
        model = evt.index[1] - 2 if isinstance(evt.index, list | tuple) else -1
        text = row_detail(grid, row, labels)
        if not 0 <= model < len(grid.presets):
            st["selected"] = None
            return text, "Click a model's cell (not the prompt) to rate it.", gr.update(visible=False), st
        st["selected"] = (row.index, model)
        name = labels.get(grid.presets[model], grid.presets[model])
        choices = [str(k + 1) for k in range(grid.samples)]
        return (
            text,
            f"Rating row {row.index + 1} · **{name}**",
            gr.update(choices=choices, value="1", visible=grid.samples > 1),
            st,
        )

    def thumb_reasons(choice: str):
        value = THUMBS[choice]
        return gr.update(choices=reasons_for(value) if value else [], value=[])

    @inline_errors(rate_status)
    def rate(
        st: dict,
        sample: str,
        thumb_choice: str,
        chosen_reasons,
        score_choice,
        text: str,
        diff_only: bool,
        request: gr.Request,
    ):
        grid = st["grid"]
        if grid is None or st["selected"] is None:
            raise PlaygroundError("click a model's cell in the grid first")
        row, model = st["selected"]
        cell = grid.cell(row, model, int(sample or 1) - 1)
        if cell.turn_id is None:
            raise PlaygroundError("this cell has no stored answer yet; run the grid first")
        value, points = THUMBS[thumb_choice], int(score_choice) if score_choice else None
        notebook.rate(cell.turn_id, value, points, chosen_reasons or [], text)
        mark = feedback_mark(value, points)
        st["marks"][cell.turn_id] = mark
        return (
            f"✅ Saved for row {row + 1}: {mark}",
            show_grid(grid, labels, diff_only, st["marks"]),
            st,
            *export_files(st),
        )

    # access rules (ui/access.py); the grid is this page's own state, its stored run this browser's
    # key's (``owner``: the run is stored under it, and ``restore`` reads back only the key's runs)
    guard = Guard(services)
    run_btn.click(
        guard.anyone(run),
        [table, template, models, samples, seed, max_new, overrides, only_diff, state, browser],
        [grid_table, progress, state, last_grid, run_status, csv_btn, jsonl_btn],
        api_visibility="private",
        show_progress="hidden",
        concurrency_id=GENERATION,
        concurrency_limit=services.settings.limits.total_generations,
    )
    # Stop sets the run's cancel event (no ``cancels=``): the run ends itself, stores what finished and
    # the stopped cells, and still delivers the export files.
    stop_btn.click(guard.owner(stop), None, None, api_visibility="private")
    loaded = [table, load_status, load_error, template_status, state]
    upload.upload(
        guard.anyone(on_upload), [upload, template, state], [*loaded, upload], api_visibility="private"
    )
    paste_btn.click(
        guard.anyone(on_paste), [pasted, paste_kind, template, state], loaded, api_visibility="private"
    )
    for changed in (template.change, table.change):
        changed(guard.anyone(recheck), [table, template, state], [template_status], api_visibility="private")
    only_diff.change(guard.anyone(refilter), [only_diff, state], [grid_table], api_visibility="private")
    grid_table.select(
        guard.anyone(select), [state], [detail, chosen, sample_pick, state], api_visibility="private"
    )
    thumb.change(guard.anyone(thumb_reasons), [thumb], [reasons], api_visibility="private")
    rate_btn.click(
        guard.owner(rate, spends="ratings"),
        [state, sample_pick, thumb, reasons, score, comment, only_diff],
        [rate_status, grid_table, state, csv_btn, jsonl_btn],
        api_visibility="private",
    )
    # saved notebooks, checks, the judge and run diffs (notebook_saved.py), on this tab's widgets
    widgets = (
        table,
        template,
        models,
        samples,
        seed,
        max_new,
        overrides,
        state,
        grid_table,
        progress,
        only_diff,
    )
    mount_saved_notebooks(services, NotebookWidgets(*widgets, show_grid=show_grid))
    restored = [grid_table, progress, state, csv_btn, jsonl_btn, last_grid]
    return NotebookTab(models, (restore, [last_grid, browser, only_diff], restored))
