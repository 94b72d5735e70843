"""The value types the UI shows and edits (re-exported here so the UI talks to services only), and
the one reader of JSON arguments (the API's and the tab's JSON boxes)."""

import json
from typing import Any

from playground.engine.generation.params import GenerationParams, parse_params
from playground.engine.models.presets import Preset
from playground.engine.models.templates import Message, parse_messages
from playground.errors import PlaygroundError

__all__ = ["GenerationParams", "Message", "Preset", "parse_json", "parse_messages", "parse_params"]


def parse_json(raw: Any, what: str, default: Any) -> Any:
    """A value given as JSON text (the API, a JSON box) or as it is; empty means ``default``."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise PlaygroundError(f"{what} is not valid JSON: {exc}") from None
