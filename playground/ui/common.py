"""Helpers shared by the tabs: error mapping, parameter widgets, chat display."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import gradio as gr

from playground.errors import PlaygroundError
from playground.services.answers.limits import Gate, Visitor
from playground.services.types import GenerationParams, Preset

PARAM_FIELDS = ("temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty", "seed", "do_sample")


def user_errors(fn):
    """Show a ``PlaygroundError`` as a Gradio error with its message (also through the API)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except PlaygroundError as exc:
                raise gr.Error(str(exc)) from None

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PlaygroundError as exc:
            raise gr.Error(str(exc)) from None

    return wrapper


@dataclass
class ParamWidgets:
    temperature: gr.Slider
    top_p: gr.Slider
    top_k: gr.Slider
    max_new_tokens: gr.Slider
    repetition_penalty: gr.Slider
    seed: gr.Number
    do_sample: gr.Checkbox

    def components(self) -> list:
        return [getattr(self, name) for name in PARAM_FIELDS]

    @staticmethod
    def updates(params: GenerationParams) -> list:
        values = params.model_dump()
        return [gr.update(value=values[name]) for name in PARAM_FIELDS]


def param_widgets(params: GenerationParams, key: str) -> ParamWidgets:
    return ParamWidgets(
        temperature=gr.Slider(
            0.0, 2.0, value=params.temperature, step=0.05, label="temperature", key=f"{key}-t"
        ),
        top_p=gr.Slider(0.05, 1.0, value=params.top_p, step=0.01, label="top_p", key=f"{key}-p"),
        top_k=gr.Slider(0, 200, value=params.top_k, step=1, label="top_k (0 = off)", key=f"{key}-k"),
        max_new_tokens=gr.Slider(
            1, 4096, value=params.max_new_tokens, step=1, label="max_new_tokens", key=f"{key}-m"
        ),
        repetition_penalty=gr.Slider(
            0.5, 2.0, value=params.repetition_penalty, step=0.01, label="repetition_penalty", key=f"{key}-r"
        ),
        seed=gr.Number(value=params.seed, label="seed (empty = random)", precision=0, key=f"{key}-s"),
        do_sample=gr.Checkbox(value=params.do_sample, label="do_sample", key=f"{key}-d"),
    )


def params_dict(values) -> dict:
    """Widget values in ``PARAM_FIELDS`` order → a dict for ``parse_params`` (seed blank = random)."""
    params = dict(zip(PARAM_FIELDS, values, strict=True))
    if params["seed"] in ("", None):
        params["seed"] = None
    else:
        params["seed"] = int(params["seed"])
    params["top_k"] = int(params["top_k"])
    params["max_new_tokens"] = int(params["max_new_tokens"])
    return params


def preset_choices(presets) -> list[tuple[str, str]]:
    """Dropdown choices; a preset that cannot run here says so in its label."""
    unavailable = getattr(presets, "unavailable", {})
    return [
        (f"{p.display_name} ⛔ unavailable" if p.name in unavailable else p.display_name, p.name)
        for p in presets
    ]


def card_line(preset: Preset) -> str:
    spec = preset.model
    bits = [f"[{spec.id}]({preset.card_url})" if preset.card_url else spec.id, spec.loader]
    if spec.quantization != "none":
        bits.append(spec.quantization)
    if preset.gated:
        bits.append("🔒 gated")
    line = " · ".join(bits)
    return f"{line}  \n<small>{preset.license_note or preset.license}</small>"


def chat_display(
    history: list[dict], pending_user: str | None = None, pending_answer: str | None = None
) -> list:
    shown = [dict(m) for m in history]
    if pending_user is not None:
        shown.append({"role": "user", "content": pending_user})
    if pending_answer is not None:
        shown.append({"role": "assistant", "content": pending_answer})
    return shown


def visitor(request: gr.Request | None) -> Visitor:
    """Who is asking, for the abuse limits: the Gradio session, and the client address a proxy in front
    of the app (a Space) puts first in ``x-forwarded-for``."""
    headers = getattr(request, "headers", None) or {}
    forwarded = (headers.get("x-forwarded-for") or "").split(",")[0].strip()
    return Visitor(session_id(request), forwarded or None)


def request_in(args, kwargs) -> gr.Request | None:
    """The Gradio request among a handler's arguments (None for a direct call)."""
    return next((a for a in [*args, *kwargs.values()] if isinstance(a, gr.Request)), None)


def generation_slot(gate: Gate):
    """Wrap a streaming handler that takes a ``gr.Request``: it holds one of the visitor's generation
    slots while it streams, and is refused with a message when the visitor has none free."""

    def wrap(fn):
        @functools.wraps(fn)
        def slotted(*args, **kwargs):
            with gate.generating(visitor(request_in(args, kwargs))):
                yield from fn(*args, **kwargs)

        return slotted

    return wrap


GENERATION = "generation"  # the Gradio concurrency group of every generating event: the overall limit


def session_id(request: gr.Request | None) -> str | None:
    """The browser tab's (or API client's) session, which battles and running generations belong to."""
    return getattr(request, "session_hash", None)


def session_key(request: gr.Request | None, scope: str) -> str:
    return f"{scope}:{session_id(request) or 'anonymous'}"


def load_progress(progress: gr.Progress):
    """Adapt a Gradio progress bar to the loader's ``(fraction, description)`` callback."""

    def report(fraction: float, description: str) -> None:
        try:
            progress(fraction, desc=description)
        except Exception:  # noqa: BLE001 - a progress bar must never break a load
            pass

    return report
