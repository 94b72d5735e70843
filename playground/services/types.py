"""The value types the UI shows and edits (re-exported here so the UI talks to services only)."""

from playground.engine.generation.params import GenerationParams, parse_params
from playground.engine.models.presets import Preset
from playground.engine.models.templates import Message, parse_messages

__all__ = ["GenerationParams", "Message", "Preset", "parse_messages", "parse_params"]
