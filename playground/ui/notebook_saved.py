"""The Notebook tab's evaluation section: saved notebooks, checks, the LLM judge and runs against runs.

Mounted under the grid by ``build_notebook_tab`` on its widgets. 💾 Save makes the tab's prompt set,
template, models and settings, with the checks and judge settings here, a saved notebook; after that
every edit saves itself. A notebook opens from the list or from its link (``?notebook=<id>``); on a
public deployment only the browser that created it (a key kept in its local storage) may change, run
or judge it, others see it read-only and may duplicate it. ▶ Run makes a new version; a version
shows its checks (✅/❌ per cell, pass rates with Wilson intervals, per check), can be judged, and
diffed against another.
"""

from __future__ import annotations

import json
from operator import attrgetter
from pathlib import Path

import gradio as gr

from playground.container import Services
from playground.errors import PlaygroundError
from playground.services.notebook.prompts import records_table
from playground.services.notebook.saved import new_key
from playground.ui.access import Guard
from playground.ui.common import GENERATION, generation_slot, session_key, user_errors
from playground.ui.notebook_eval_view import (
    answer_choices,
    by_check_frame,
    check_marks,
    failures_only,
    judge_markdown,
    pass_rate_frame,
    run_diff_html,
    samples_markdown,
    word_diff_html,
)
from playground.ui.notebook_saved_layout import NotebookWidgets, build_section, document
from playground.ui.notebook_view import progress_html


def mount_saved_notebooks(services: Services, w: NotebookWidgets) -> None:
    """Build the section under the tab's grid and wire it to the tab's widgets ``w``."""
    saved = services.saved
    labels = {p.name: p.display_name for p in services.presets.all()}
    ui = build_section(services, labels)
    key, nb, link, name, listed, status, checks, threshold = attrgetter(
        "key", "nb", "link", "name", "listed", "status", "checks", "threshold"
    )(ui)
    failures, rates, by_check, judge, mode, rubric, judged = attrgetter(
        "failures", "rates", "by_check", "judge", "mode", "rubric", "judged"
    )(ui)
    version_a, version_b, answer_a, answer_b, samples_md = attrgetter(
        "version_a", "version_b", "answer_a", "answer_b", "samples_md"
    )(ui)
    doc_widgets = [
        name,
        w.table,
        w.template,
        w.models,
        w.samples,
        w.seed,
        w.max_new,
        w.overrides,
        checks,
        threshold,
        judge,
        mode,
        rubric,
    ]
    version_widgets = [w.state, w.grid_table, w.progress, rates, by_check, judged]
    shown = [nb, *doc_widgets, status, *version_widgets, version_a, version_b, listed]

    def status_line(st: dict, message: str = "") -> str:
        if not st["id"]:
            return message or "Not saved yet: 💾 Save makes this a notebook with a link."
        access = (
            "editable; edits save themselves"
            if st["editable"]
            else "🔒 read-only here (📑 Duplicate it to make your own)"
        )
        return f"{message} Link: <code id='nb-link'>?notebook={st['id']}</code> · {access}".strip()

    def listing(visitor: str | None, chosen: str | None = None):
        return gr.update(choices=[(n["name"], n["id"]) for n in saved.listed(visitor)], value=chosen)

    def version_view(st: dict, diff_only: bool, only_failures: bool) -> dict:
        """The tab's grid, progress line, pass rates, per-check table and judge verdicts of the open version."""
        current = st["version"]
        if current is None:
            return {
                w.state: {"grid": None, "marks": {}, "selected": None, "files": None},
                w.grid_table: w.show_grid(None, labels),
                w.progress: progress_html(None),
                rates: pass_rate_frame(None, labels),
                by_check: by_check_frame(None, labels),
                judged: "",
            }
        grid, scores = current.grid, current.scores
        marks = check_marks(grid, scores)
        return {
            w.state: {"grid": grid, "marks": marks, "selected": None, "files": None},
            w.grid_table: w.show_grid(failures_only(grid, scores) if only_failures else grid, labels, diff_only, marks),
            w.progress: progress_html(grid, f"version {current.version}"),
            rates: pass_rate_frame(scores, labels),
            by_check: by_check_frame(scores, labels),
            judged: judge_markdown(saved.verdicts(st["id"], current.version), labels),
        }  # fmt: skip

    def show(notebook, visitor: str | None, diff_only: bool, only_failures: bool, message: str) -> dict:
        """Every widget of the section and the tab for an opened notebook and its latest version."""
        d = notebook.document
        versions = [r.version for r in notebook.runs]
        st = {"id": notebook.id, "editable": notebook.editable, "versions": versions, "row": None}
        st["version"] = saved.version(notebook.id) if versions else None
        headers, values = records_table(d.rows) if d.rows else (["prompt"], [[""]])
        doc = [d.name, gr.update(value=values, headers=headers), d.template, d.models, d.samples, d.seed, d.max_new_tokens,
               json.dumps(d.params), json.dumps(d.checks, indent=1, ensure_ascii=False), d.threshold, d.judge.preset or None,
               d.judge.mode, d.judge.rubric]  # fmt: skip
        return {
            nb: st,
            **dict(zip(doc_widgets, doc, strict=True)),
            status: status_line(st, message),
            **version_view(st, diff_only, only_failures),
            version_a: gr.update(choices=versions, value=versions[-2] if len(versions) > 1 else None),
            version_b: gr.update(choices=versions, value=versions[-1] if versions else None),
            listed: listing(visitor, notebook.id),
        }

    def read_link(request: gr.Request) -> str:
        return (getattr(request, "query_params", None) or {}).get("notebook", "")

    @user_errors
    def open_link(visitor, notebook_id: str, diff_only: bool, only_failures: bool):
        visitor = visitor or new_key()  # this browser's key, kept in its local storage
        if not notebook_id:
            return {key: visitor, listed: listing(visitor)}
        return {
            key: visitor,
            **show(
                saved.open(notebook_id, visitor), visitor, diff_only, only_failures, "Opened from its link."
            ),
        }

    @user_errors
    def open_listed(visitor, notebook_id: str, diff_only: bool, only_failures: bool):
        if not notebook_id:
            return {}
        return show(saved.open(notebook_id, visitor), visitor, diff_only, only_failures, "Opened.")

    @user_errors
    def save(visitor, st: dict, diff_only: bool, only_failures: bool, *values):
        data = document(*values)
        if st["id"] and not st["editable"]:
            raise PlaygroundError("this notebook is read-only for you; 📑 Duplicate it to make your own copy")
        notebook = saved.save(st["id"], data, visitor) if st["id"] else saved.create(data, visitor)
        return show(notebook, visitor, diff_only, only_failures, "✅ Saved.")

    def autosave(visitor, st: dict, *values):
        if not st["id"] or not st["editable"]:
            return gr.skip()
        try:
            saved.save(st["id"], document(*values), visitor)
        except PlaygroundError as exc:
            return status_line(st, f"⚠️ Not saved: {exc}.")
        return status_line(st, "✅ Saved.")

    @user_errors
    def duplicate(visitor, st: dict, diff_only: bool, only_failures: bool):
        if not st["id"]:
            raise PlaygroundError("save the notebook first; then it can be duplicated")
        return show(
            saved.duplicate(st["id"], visitor),
            visitor,
            diff_only,
            only_failures,
            "📑 Duplicated: this copy is yours.",
        )

    @user_errors
    def delete(visitor, st: dict):
        if not st["id"]:
            raise PlaygroundError("this notebook is not saved")
        saved.delete(st["id"], visitor)
        cleared = {"id": None, "editable": True, "versions": [], "version": None, "row": None}
        return {
            nb: cleared,
            status: "🗑 Deleted (its runs' answers stay in the database).",
            listed: listing(visitor),
        }

    @user_errors
    def import_file(file):
        if not file:
            return {}
        path = Path(file if isinstance(file, str) else file.name)
        imported = saved.import_file(path)
        headers, values = records_table(imported.rows)
        notes = "".join(f" {n}." for n in imported.notes)
        return {
            w.table: gr.update(value=values, headers=headers),
            w.template: imported.template,
            checks: json.dumps(imported.checks, indent=1, ensure_ascii=False),
            status: f"Imported {len(values)} rows and {len(imported.checks)} checks from {path.name}.{notes} 💾 Save to keep them.",
        }

    @user_errors
    @generation_slot(services.gate)
    def run(request: gr.Request, visitor, st: dict, diff_only: bool, only_failures: bool, *values):
        if st["id"] and not st["editable"]:
            raise PlaygroundError(
                "this notebook is read-only for you: only the session that created it may run it; 📑 Duplicate it to run your own copy"
            )
        data = document(*values)
        notebook = saved.save(st["id"], data, visitor) if st["id"] else saved.create(data, visitor)
        with services.runs.run(session_key(request, "notebook")) as cancel:  # the tab's ⏹ Stop stops it too
            for current in saved.run(notebook.id, visitor, request.session_hash, cancel):
                yield {
                    w.grid_table: w.show_grid(current.grid, labels, diff_only),
                    w.progress: progress_html(current.grid),
                }
        yield show(
            saved.open(notebook.id, visitor),
            visitor,
            diff_only,
            only_failures,
            f"▶ Ran version {current.version}.",
        )

    def refilter(st: dict, diff_only: bool, only_failures: bool):
        return version_view(st, diff_only, only_failures) if st.get("version") else {}

    @user_errors
    @generation_slot(services.gate)
    def judge_version(request: gr.Request, visitor, st: dict, preset, how, text):
        if not st["id"] or st.get("version") is None:
            raise PlaygroundError("run the notebook first: the judge looks at a version's answers")
        settings = {"preset": preset or "", "mode": how, "rubric": text or ""}
        with services.runs.run(session_key(request, "notebook")) as cancel:
            for progress in saved.judge(st["id"], visitor, st["version"].version, settings, cancel):
                yield f"⚖ Judging: {progress.done} / {progress.total} judge answers…"
        yield judge_markdown(saved.verdicts(st["id"], st["version"].version), labels)

    @user_errors
    def diff(st: dict, a, b):
        if not st["id"] or a in (None, "") or b in (None, ""):
            raise PlaygroundError("pick two versions to compare (run the notebook twice to have two)")
        return run_diff_html(saved.diff(st["id"], int(a), int(b)), labels)

    def select_row(st: dict, evt: gr.SelectData):
        current = st.get("version")
        if current is None or evt.row_value is None:
            return {}
        st["row"] = int(evt.row_value[0]) - 1
        picks = answer_choices(current.grid, st["versions"], current.version, labels)
        second = picks[1][1] if len(picks) > 1 else None
        return {
            nb: st,
            answer_a: gr.update(choices=picks, value=picks[0][1] if picks else None),
            answer_b: gr.update(choices=picks, value=second),
            samples_md: samples_markdown(current.grid, st["row"], labels),
        }

    @user_errors
    def words(st: dict, a: str | None, b: str | None):
        if not st.get("id") or st.get("row") is None or not a or not b:
            return ""
        sides = [dict(zip(("version", "model", "sample"), pick.split("|"), strict=True)) for pick in (a, b)]
        return word_diff_html(saved.answer_diff(st["id"], st["row"], *sides))

    flags = [w.only_diff, failures]
    # The openers take a notebook's id, which is its share link (an unknown one is refused by the
    # service); every other event acts on the tab's own notebook, and the service lets only the
    # browser key that created it change it on a public deployment.
    guard = Guard(services)
    gr.on(None, guard.anyone(read_link), None, [link], api_visibility="private").then(
        guard.anyone(open_link), [key, link, *flags], [key, *shown], api_visibility="private"
    )
    listed.input(guard.anyone(open_listed), [key, listed, *flags], shown, api_visibility="private")
    ui.save_btn.click(guard.owner(save), [key, nb, *flags, *doc_widgets], shown, api_visibility="private")
    ui.dup_btn.click(guard.owner(duplicate), [key, nb, *flags], shown, api_visibility="private")
    ui.del_btn.click(guard.owner(delete), [key, nb], [nb, status, listed], api_visibility="private")
    ui.upload.upload(
        guard.anyone(import_file),
        [ui.upload],
        [w.table, w.template, checks, status],
        api_visibility="private",
    )
    for widget in doc_widgets:
        widget.input(
            guard.owner(autosave),
            [key, nb, *doc_widgets],
            [status],
            api_visibility="private",
            trigger_mode="always_last",
        )
    ui.run_btn.click(
        guard.owner(run),
        [key, nb, *flags, *doc_widgets],
        shown,
        api_visibility="private",
        show_progress="hidden",
        concurrency_id=GENERATION,
        concurrency_limit=services.settings.limits.total_generations,
    )
    failures.change(guard.owner(refilter), [nb, *flags], version_widgets, api_visibility="private")
    ui.judge_btn.click(
        guard.owner(judge_version),
        [key, nb, judge, mode, rubric],
        [judged],
        api_visibility="private",
        concurrency_id=GENERATION,
        concurrency_limit=services.settings.limits.total_generations,
    )
    ui.diff_btn.click(guard.owner(diff), [nb, version_a, version_b], [ui.diffed], api_visibility="private")
    w.grid_table.select(
        guard.owner(select_row), [nb], [nb, answer_a, answer_b, samples_md], api_visibility="private"
    )
    gr.on(
        [answer_a.change, answer_b.change],
        guard.owner(words),
        [nb, answer_a, answer_b],
        [ui.answer_diff],
        api_visibility="private",
    )
