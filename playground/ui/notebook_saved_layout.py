"""The layout of the Notebook tab's evaluation section, the tab's widgets it works on, and the
notebook document read from both (no events here; ``notebook_saved`` wires them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from playground.container import Services
from playground.errors import PlaygroundError
from playground.services.notebook.prompts import table_records
from playground.ui.common import preset_choices
from playground.ui.notebook_eval_view import by_check_frame, pass_rate_frame

CHECKS_HELP = (
    'Checks (JSON list), e.g. [{"type": "contains", "value": "{expected}", "case_sensitive": false}, '
    '{"type": "length", "max": 300}]; types: contains, not-contains, equals, starts-with, regex, is-json, '
    "json-schema, length, finish-reason, ttft-under, time-under, python (private deployments only)"
)


@dataclass
class NotebookWidgets:
    """The Notebook tab's components this section reads and writes, and its grid renderer."""

    table: gr.Dataframe
    template: gr.Textbox
    models: gr.Dropdown
    samples: gr.Number
    seed: gr.Number
    max_new: gr.Number
    overrides: gr.Code
    state: gr.State
    grid_table: gr.Dataframe
    progress: gr.HTML
    only_diff: gr.Checkbox
    show_grid: Callable  # (grid, labels, only_differing, marks) -> the grid table's update


def document(
    name, table, template, models, samples, seed, max_new, overrides, checks, threshold, judge, mode, rubric
) -> dict:
    """The widgets' values as a notebook document (validated by the service)."""

    def loads(raw: str, what: str, default):
        try:
            return json.loads(raw) if raw and raw.strip() else default
        except ValueError as exc:
            raise PlaygroundError(f"{what} are not valid JSON: {exc}") from None

    return {
        "name": name,
        "rows": table_records(list(table.columns), table.values.tolist()),
        "template": template,
        "models": list(models or []),
        "params": loads(overrides, "per-model overrides", {}),
        "samples": int(samples or 1),
        "seed": int(seed or 0),
        "max_new_tokens": int(max_new or 0),
        "checks": loads(checks, "the checks", []),
        "threshold": 1.0 if threshold in (None, "") else float(threshold),
        "judge": {"preset": judge or "", "mode": mode or "pairwise", "rubric": rubric or ""},
    }


@dataclass
class Section:
    """The evaluation section's components."""

    key: gr.BrowserState  # this browser's visitor key (who created a notebook, on a public deployment)
    nb: gr.State  # the open notebook: id, editable, versions, the open version, the selected row
    link: gr.State
    name: gr.Textbox
    listed: gr.Dropdown
    save_btn: gr.Button
    dup_btn: gr.Button
    del_btn: gr.Button
    status: gr.Markdown
    checks: gr.Code
    threshold: gr.Number
    upload: gr.File
    run_btn: gr.Button
    failures: gr.Checkbox
    rates: gr.Dataframe
    by_check: gr.Dataframe
    judge: gr.Dropdown
    mode: gr.Radio
    rubric: gr.Textbox
    judge_btn: gr.Button
    judged: gr.Markdown
    version_a: gr.Dropdown
    version_b: gr.Dropdown
    diff_btn: gr.Button
    diffed: gr.HTML
    answer_a: gr.Dropdown
    answer_b: gr.Dropdown
    answer_diff: gr.HTML
    samples_md: gr.Markdown


def build_section(services: Services, labels: dict[str, str]) -> Section:
    key = gr.BrowserState(None, storage_key="playground-notebook-owner")
    nb = gr.State({"id": None, "editable": True, "versions": [], "version": None, "row": None})
    link = gr.State("")
    with gr.Accordion("Saved notebook · checks · judge · runs against runs", open=True, elem_id="nb-saved"):
        with gr.Row():
            name = gr.Textbox("", label="Notebook name", elem_id="nb-name", scale=3)
            listed = gr.Dropdown([], value=None, label="Open a saved notebook", elem_id="nb-list", scale=3)
            save_btn = gr.Button("💾 Save", elem_id="nb-save", scale=0)
            dup_btn = gr.Button("📑 Duplicate", elem_id="nb-duplicate", scale=0)
            del_btn = gr.Button("🗑 Delete", elem_id="nb-delete", scale=0)
        status = gr.Markdown("Not saved yet: 💾 Save makes this a notebook with a link.", elem_id="nb-status")
        with gr.Row(equal_height=False):
            checks = gr.Code("[]", language="json", label=CHECKS_HELP, elem_id="nb-checks", scale=3)
            with gr.Column(scale=1):
                threshold = gr.Number(
                    1.0,
                    label="pass threshold (weighted share of checks)",
                    minimum=0,
                    maximum=1,
                    elem_id="nb-threshold",
                )
                upload = gr.File(
                    label="Import tests: promptfoo .yaml or OpenAI Evals .jsonl",
                    file_types=[".yaml", ".yml", ".jsonl"],
                    elem_id="nb-import",
                    height=110,
                )
        with gr.Row():
            run_btn = gr.Button("▶ Run notebook (a new version)", variant="primary", elem_id="nb-run")
            failures = gr.Checkbox(False, label="failures only", elem_id="nb-failures-only")
        with gr.Row(equal_height=False):
            rates = gr.Dataframe(
                pass_rate_frame(None, labels),
                label="Pass rate per model (95% Wilson interval)",
                interactive=False,
                elem_id="nb-pass-rates",
            )
            by_check = gr.Dataframe(
                by_check_frame(None, labels), label="Per check", interactive=False, elem_id="nb-by-check"
            )
        with gr.Row():
            judge = gr.Dropdown(
                preset_choices(services.presets.all()),
                value=None,
                label="Judge model",
                elem_id="nb-judge-preset",
            )
            mode = gr.Radio(
                ["pairwise", "rubric"], value="pairwise", label="Judging", elem_id="nb-judge-mode"
            )
            rubric = gr.Textbox("", label="Rubric (rubric judging)", elem_id="nb-rubric", lines=1)
            judge_btn = gr.Button("⚖ Judge this version", elem_id="nb-judge")
        judged = gr.Markdown("", elem_id="nb-judge-result")
        with gr.Row():
            version_a = gr.Dropdown([], label="Version A", elem_id="nb-version-a")
            version_b = gr.Dropdown([], label="Version B", elem_id="nb-version-b")
            diff_btn = gr.Button("Diff A → B", elem_id="nb-diff")
        diffed = gr.HTML("", elem_id="nb-diff-out")
        with gr.Row():
            answer_a = gr.Dropdown([], label="Word diff of the selected row: answer A", elem_id="nb-answer-a")
            answer_b = gr.Dropdown([], label="answer B", elem_id="nb-answer-b")
        answer_diff = gr.HTML("", elem_id="nb-answer-diff")
        samples_md = gr.Markdown("", elem_id="nb-samples")

    return Section(
        **{name: value for name, value in locals().items() if name in Section.__dataclass_fields__}
    )
