"""Prompt templates: turn a conversation into the exact string a model receives.

A template is either the tokenizer's own chat template (``kind: tokenizer``) or an explicit
set of role formats, each holding ``{content}`` once. Content is substituted with plain
string replacement, so braces in a user's message are never interpreted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from playground.errors import PlaygroundError

Role = Literal["system", "user", "assistant"]
SLOT = "{content}"


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str


def parse_messages(raw: object) -> list[Message]:
    """Validate a JSON-like list of {role, content} dicts, naming the first bad entry."""
    if not isinstance(raw, list):
        raise PlaygroundError(
            f"messages must be a JSON list of {{role, content}} objects, got {type(raw).__name__}"
        )
    messages = []
    for i, item in enumerate(raw):
        if isinstance(item, Message):
            messages.append(item)
            continue
        if not isinstance(item, dict) or set(item) - {"role", "content"} or "role" not in item:
            raise PlaygroundError(f"messages[{i}] must be an object with 'role' and 'content', got {item!r}")
        if item["role"] not in ("system", "user", "assistant"):
            raise PlaygroundError(
                f"messages[{i}].role must be system, user or assistant, got {item['role']!r}"
            )
        if not isinstance(item.get("content"), str):
            raise PlaygroundError(f"messages[{i}].content must be a string")
        messages.append(Message(role=item["role"], content=item["content"]))
    return messages


class Template(BaseModel):
    """Role formats of one model card. ``None`` for ``system`` means the card has no system turn."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["explicit", "tokenizer", "server"] = "explicit"  # server: /v1/chat/completions
    prefix: str = ""
    system: str | None = None
    user: str = SLOT
    assistant: str = SLOT
    generation_prefix: str = ""

    @field_validator("system", "user", "assistant")
    @classmethod
    def _one_slot(cls, value: str | None) -> str | None:
        if value is not None and value.count(SLOT) != 1:
            raise ValueError(f"must contain {SLOT} exactly once, got {value!r}")
        return value

    def render(self, messages: Sequence[Message], system_prompt: str | None = None, tokenizer=None) -> str:
        """The prompt for the next assistant turn. An empty system prompt leaves the system block out."""
        system, turns = split_system(messages, system_prompt)
        if self.kind == "server":
            raise PlaygroundError(
                "template 'server' is rendered by the server; send the messages (chat_messages)"
            )
        if self.kind == "tokenizer":
            return self._render_with_tokenizer(system, turns, tokenizer)
        parts = [self.prefix]
        if system:
            if self.system is None:
                raise PlaygroundError("this model card has no system turn; leave the system prompt empty")
            parts.append(self.system.replace(SLOT, system))
        for message in turns:
            parts.append(getattr(self, message.role).replace(SLOT, message.content))
        parts.append(self.generation_prefix)
        return "".join(parts)

    @staticmethod
    def _render_with_tokenizer(system: str, turns: list[Message], tokenizer) -> str:
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise PlaygroundError("template 'tokenizer' needs a tokenizer that ships a chat template")
        chat = ([{"role": "system", "content": system}] if system else []) + [m.model_dump() for m in turns]
        return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)


def chat_messages(messages: Sequence[Message], system_prompt: str | None) -> list[dict]:
    """The conversation as chat-completions messages, the system prompt first when there is one."""
    system, turns = split_system(messages, system_prompt)
    return ([{"role": "system", "content": system}] if system else []) + [m.model_dump() for m in turns]


def resolve_system(messages: Sequence[Message], system_prompt: str | None, default: str) -> str:
    """The system prompt a model sees: the one given, else the conversation's own system message(s),
    else the preset's ``default``. The stored turn records this one, so it never misstates the context."""
    if system_prompt is not None:
        return system_prompt
    in_messages = [m.content for m in messages if m.role == "system"]
    return "\n".join(in_messages) if in_messages else default


def split_system(messages: Sequence[Message], system_prompt: str | None) -> tuple[str, list[Message]]:
    """Separate the system text from the turns; an explicit ``system_prompt`` wins over a system message."""
    turns = [m for m in messages if m.role != "system"]
    in_messages = [m.content for m in messages if m.role == "system"]
    system = system_prompt if system_prompt is not None else "\n".join(in_messages)
    if not turns or turns[-1].role != "user":
        raise PlaygroundError("the conversation must end with a user message")
    for i, message in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if message.role != expected:
            raise PlaygroundError(f"turn {i + 1} should be a {expected} message, got {message.role}")
    return system.strip(), turns
