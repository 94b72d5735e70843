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


def _catching(fn, handle):
    """``fn`` (a function or a generator function) with a ``PlaygroundError`` given to ``handle``,
    which raises or returns what the event shows instead."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except PlaygroundError as exc:
                yield handle(exc)

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PlaygroundError as exc:
            return handle(exc)

    return wrapper


def _as_gradio_error(exc: PlaygroundError):
    raise gr.Error(str(exc)) from None


def user_errors(fn):
    """Raise a ``PlaygroundError`` as a Gradio error with its message: for the API endpoints, whose
    clients get it as the exception (the page's own handlers show theirs inline, ``inline_errors``)."""
    return _catching(fn, _as_gradio_error)


def inline_errors(target: gr.components.Component):
    """Show a ``PlaygroundError`` as "⚠️ cause" in ``target`` (a Markdown next to what it concerns) and
    leave every other output as it was: no error overlay covers the page's content."""
    return lambda fn: _catching(fn, lambda exc: {target: f"⚠️ {exc}"})


@dataclass
class ParamWidgets:
    temperature: gr.Slider
    top_p: gr.Slider
    top_k: gr.Slider
    max_new_tokens: gr.Slider
    repetition_penalty: gr.Slider
    seed: gr.Textbox  # text, so that empty (random) is not read as 0 (a Number shows and sends 0)
    do_sample: gr.Checkbox

    def components(self) -> list:
        return [getattr(self, name) for name in PARAM_FIELDS]

    @staticmethod
    def updates(params: GenerationParams) -> list:
        values = params.model_dump()
        values["seed"] = "" if values["seed"] is None else str(values["seed"])
        return [gr.update(value=values[name]) for name in PARAM_FIELDS]


def param_widgets(params: GenerationParams, key: str) -> ParamWidgets:
    """The parameter widgets, each with the element id ``{key}-{parameter}`` (e.g. ``col0-seed``)."""

    def ids(name: str) -> dict:
        return {"key": f"{key}-{name}", "elem_id": f"{key}-{name}"}

    return ParamWidgets(
        temperature=gr.Slider(
            0.0, 2.0, value=params.temperature, step=0.05, label="temperature", **ids("temperature")
        ),
        top_p=gr.Slider(0.05, 1.0, value=params.top_p, step=0.01, label="top_p", **ids("top_p")),
        top_k=gr.Slider(0, 200, value=params.top_k, step=1, label="top_k (0 = off)", **ids("top_k")),
        max_new_tokens=gr.Slider(
            1, 4096, value=params.max_new_tokens, step=1, label="max_new_tokens", **ids("max_new_tokens")
        ),
        repetition_penalty=gr.Slider(
            0.5,
            2.0,
            value=params.repetition_penalty,
            step=0.01,
            label="repetition_penalty",
            **ids("repetition_penalty"),
        ),
        seed=gr.Textbox(
            "" if params.seed is None else str(params.seed),
            label="seed (empty = random)",
            placeholder="random",
            max_lines=1,
            **ids("seed"),
        ),
        do_sample=gr.Checkbox(value=params.do_sample, label="do_sample", **ids("do_sample")),
    )


def params_dict(values) -> dict:
    """Widget values in ``PARAM_FIELDS`` order → a dict for ``parse_params`` (seed blank = random)."""
    params = dict(zip(PARAM_FIELDS, values, strict=True))
    seed = str(params["seed"] if params["seed"] is not None else "").strip()
    try:
        params["seed"] = int(float(seed)) if seed else None
    except ValueError:
        raise PlaygroundError(f"seed must be a whole number or empty (random), got {seed!r}") from None
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


def session_key(request: gr.Request | None, scope: str) -> tuple[str, str]:
    """The key of a running generation of this tab or client in ``scope`` (see ``RunRegistry``)."""
    return (scope, session_id(request) or "anonymous")


@dataclass
class BrowserStorage:
    """What the browser keeps in its local storage to be recognised after a reload or in a second tab:
    its key (its first page's session id, see ``owner``) and the id of its Compare conversation, Arena
    battle and last Notebook grid, nothing else.

    Made outside the tabs (``browser_storage``): a component inside a tab that is not shown when the
    page loads is not mounted yet, so its stored value would read as empty at load."""

    key: gr.BrowserState
    compare: gr.BrowserState
    arena: gr.BrowserState
    notebook: gr.BrowserState


def browser_storage() -> BrowserStorage:
    return BrowserStorage(
        key=gr.BrowserState(None, storage_key="playground-browser"),
        compare=gr.BrowserState(None, storage_key="compare-conversation"),
        arena=gr.BrowserState(None, storage_key="arena-battle"),
        notebook=gr.BrowserState(None, storage_key="notebook-grid"),
    )


def owner(key: str | None, request: gr.Request | None) -> str | None:
    """Who a page's conversations, battles and grids belong to: the browser's key, or this page's
    session before the browser has one (the key becomes that same session id, ``remember_browser``)."""
    return key if isinstance(key, str) and 8 <= len(key) <= 64 else session_id(request)


def remember_browser(key: str | None, request: gr.Request) -> str | None:
    """On page load: keep the browser's key, or make this page's session id the key."""
    return owner(key, request)


def load_progress(progress: gr.Progress):
    """Adapt a Gradio progress bar to the loader's ``(fraction, description)`` callback."""

    def report(fraction: float, description: str) -> None:
        try:
            progress(fraction, desc=description)
        except Exception:  # noqa: BLE001 - a progress bar must never break a load
            pass

    return report
