"""The Presets tab: every preset's card facts, a prompt inspector, and saving tuned copies."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from playground.container import Services
from playground.errors import PlaygroundError
from playground.services.types import Preset, parse_messages
from playground.ui.access import Guard
from playground.ui.common import ParamWidgets, inline_errors, param_widgets, params_dict, preset_choices

EXAMPLE = "user: What is the capital of France?\nassistant: Paris.\nuser: And of Italy?"


def parse_conversation(text: str) -> list:
    """``role: text`` lines (a line without a prefix continues the previous turn), or a JSON list."""
    text = text.strip()
    if text.startswith("["):
        try:
            return parse_messages(json.loads(text))
        except ValueError as exc:
            raise PlaygroundError(f"the conversation is not valid JSON: {exc}") from None
    turns: list[dict] = []
    for line in text.splitlines():
        role, sep, content = line.partition(":")
        if sep and role.strip().lower() in ("user", "assistant", "system"):
            turns.append({"role": role.strip().lower(), "content": content.strip()})
        elif turns:
            turns[-1]["content"] += "\n" + line
        else:
            raise PlaygroundError("start each turn with 'user:' or 'assistant:' (or paste a JSON list)")
    return parse_messages(turns)


def batching_words(batching: dict | None, preset: Preset, long: bool = False) -> str:
    """How the preset's model is batched here, from the engine's start-up probe."""
    if preset.model.remote:
        return "its server batches" if not long else "served by its server, which batches requests itself"
    if batching is None:
        return (
            "not checked yet"
            if not long
            else "not checked yet: the engine checks it when the model is first used"
        )
    if not long:
        return f"{batching['layout']} ×{batching['rows']}" if batching["batched"] else "one at a time"
    return batching["summary"]


def details(preset: Preset, batching: dict | None = None, source: str = "", quantization: str = "") -> str:
    """The card facts of a preset; ``source`` is its file relative to its presets folder and
    ``quantization`` what the loader applies (``PresetService.list``)."""
    s = preset.model
    template = preset.template
    rows = [
        f"### {preset.display_name}",
        f"[{s.id}]({preset.card_url}) · license: {preset.license or 'see card'}"
        + (" · 🔒 **gated**" if preset.gated else ""),
        f"> {preset.license_note}" if preset.license_note else "",
        f"- loader **{s.loader}**, dtype **{s.dtype}**, quantisation **{quantization or s.quantization}**"
        + (f" (also: {', '.join(s.quantization_choices)})" if s.quantization_choices else ""),
        f"- revision **{s.revision}**" + (f" (also: {', '.join(s.revisions)})" if s.revisions else ""),
        f"- context {s.context_length or 'model default'} tokens"
        + (f", RoPE scaling {s.rope_scaling}" if s.rope_scaling else "")
        + (", trust_remote_code" if s.trust_remote_code else ""),
        f"- stop strings: {', '.join(f'`{x!r}`' for x in preset.stop) or 'none'}",
        f"- batching on this machine: {batching_words(batching, preset, long=True)}",
        f"- file: `{source or Path(preset.source).name}` · sha256 `{preset.file_hash[:16]}…`",
    ]
    if template.kind == "tokenizer":
        rows.append("- template: the tokenizer's own chat template")
    else:
        fields = {
            k: getattr(template, k) for k in ("prefix", "system", "user", "assistant", "generation_prefix")
        }
        rows.append("- template: " + ", ".join(f"{k} `{v!r}`" for k, v in fields.items() if v))
    return "\n".join(r for r in rows if r)


HEADERS = ["preset", "model", "loader", "quantisation", "dtype", "gated", "origin", "batching"]
WIDTHS = ["22%", "20%", "10%", "16%", "8%", "6%", "8%", "10%"]


def table(services: Services) -> list[list]:
    return [
        [
            f"{p['display_name']} ({p['name']})",
            p["model_id"],
            p["loader"],
            p["applied_quantization"],
            p["dtype"],
            "yes" if p["gated"] else "",
            "user" if p["user_preset"] else "built-in",
            batching_words(p["batching"], services.presets.get(p["name"])),
        ]
        for p in services.presets.list()
    ]


def describe(services: Services, name: str) -> str:
    """The details of preset ``name`` as the tab shows them."""
    summary = next(p for p in services.presets.list() if p["name"] == name)
    preset = services.presets.get(name)
    return details(preset, summary["batching"], summary["source"], summary["applied_quantization"])


def build_presets_tab(services: Services, dropdowns: list[gr.Dropdown], shown_on=()) -> None:
    registry = services.presets
    first = registry.get(services.settings.columns[0])
    overview = gr.Dataframe(
        table(services),
        headers=HEADERS,
        column_widths=WIDTHS,
        wrap=True,
        interactive=False,
        elem_id="presets-table",
    )
    with gr.Row():
        with gr.Column(scale=1):
            chosen = gr.Dropdown(
                preset_choices(registry), value=first.name, label="Preset", elem_id="inspect-preset"
            )
            info = gr.Markdown(describe(services, first.name), elem_id="preset-details")
        with gr.Column(scale=1):
            system = gr.Textbox(first.system_prompt, label="System prompt", lines=2)
            conversation = gr.Textbox(
                EXAMPLE,
                label="Conversation (user: / assistant: lines)",
                lines=5,
                elem_id="inspect-conversation",
            )
            inspect = gr.Button("Show the exact prompt", elem_id="inspect")
            count = gr.Markdown("", elem_id="inspect-count")
            rendered = gr.Code(label="What the model receives", language=None, elem_id="inspect-prompt")
    # a user preset is a file every visitor's model lists show: saved only where the app is private
    with gr.Accordion(
        "Save tuned parameters as a new preset", open=False, visible=not services.settings.public
    ):
        params = param_widgets(first.params, key="presets")
        with gr.Row():
            new_name = gr.Textbox(
                label="New preset name", placeholder="e.g. tulu-creative", elem_id="new-preset-name"
            )
            new_display = gr.Textbox(label="Display name (optional)")
            save = gr.Button("Save preset", variant="primary", elem_id="save-preset")
        saved = gr.Markdown("", elem_id="save-status")

    def choose(name: str):
        preset = registry.get(name)
        return [describe(services, name), preset.system_prompt, *ParamWidgets.updates(preset.params)]

    @inline_errors(count)
    def show(name: str, system_prompt: str, text: str):
        result = services.presets.render_prompt(name, parse_conversation(text), system_prompt)
        tokens = f"**{result['tokens']} tokens**" if result["tokens"] is not None else result["note"]
        return (
            f"{tokens} · {len(result['prompt'])} characters · ends with `{result['prompt'][-12:]!r}`",
            result["prompt"],
        )

    @inline_errors(saved)
    def save_preset(base: str, name: str, display: str, system_prompt: str, *values):
        preset = services.presets.save_user_preset(
            base, name.strip(), display.strip(), params_dict(values), system_prompt
        )
        choices = preset_choices(registry)
        return [
            f"✅ Saved `{services.presets.source_label(preset)}`; **{preset.display_name}** is now in every model list.",
            table(services),
            gr.update(choices=choices),
        ] + [gr.update(choices=choices) for _ in dropdowns]

    guard = Guard(services)
    chosen.change(
        guard.anyone(choose), [chosen], [info, system, *params.components()], api_visibility="private"
    )
    for event in shown_on:  # the probe runs when a model is first used: show what it found since
        event(
            guard.anyone(lambda name: (table(services), choose(name)[0])),
            [chosen],
            [overview, info],
            api_visibility="private",
        )
    inspect.click(
        guard.anyone(show), [chosen, system, conversation], [count, rendered], api_visibility="private"
    )
    save.click(
        guard.nobody(save_preset, "saving a user preset"),
        [chosen, new_name, new_display, system, *params.components()],
        [saved, overview, chosen, *dropdowns],
        api_visibility="private",
    )
