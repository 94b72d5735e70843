"""ShareGPT records ``{id, conversations: [{from, value}], model, …}``, read the same way by every
trainer that takes ShareGPT (LLaMA-Factory, axolotl, TRL's ``maybe_convert_to_chatml``). No Gradio.

* Roles are ``system``, ``human`` and ``gpt``; there is at most one ``system`` turn and it comes
  first: the system prompt the model really saw (the stored turn's ``system_prompt``, which is the
  one given, else the conversation's own system message, else the preset's). System messages inside
  ``messages`` are never repeated as turns of their own (LLaMA-Factory drops a record with two).
* Then ``human`` / ``gpt`` alternate, ending with the answer (``gpt``).
* Only complete answers (finish reason ``eos`` or ``stop_string``) are exported: an answer cut by
  ``max_new_tokens`` (``length``) or stopped by the user (``stopped``) is left out unless
  ``include_incomplete`` asks for it, and a failed one (``error``, which includes a stream the server
  cut off) never is.
* One record per thread: each column of a compare / arena / API conversation is a thread, taken from
  the column's latest exportable answer (its ``messages`` hold the whole history it answered, so
  undone and regenerated rounds are left out as on screen). A notebook grid's cells are independent
  prompts, so there each exportable answer (cell, sample) is a record of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

from playground.store.models import Conversation, Turn

COMPLETE = ("eos", "stop_string")
INCOMPLETE = ("length", "stopped")
ROLES = {"user": "human", "assistant": "gpt"}


def exportable(turn: Turn, include_incomplete: bool = False) -> bool:
    allowed = COMPLETE + (INCOMPLETE if include_incomplete else ())
    return turn.finish_reason in allowed and turn.error is None


def sharegpt_records(
    conversation: Conversation, turns: list[Turn], include_incomplete: bool = False
) -> Iterator[dict]:
    answered = [t for t in turns if exportable(t, include_incomplete)]
    if conversation.mode == "notebook":
        threads = answered  # every cell (and sample) is its own prompt
    else:
        latest: dict[int, Turn] = {}
        for turn in answered:  # in id order: the last one of a column wins
            latest[turn.column] = turn
        threads = [latest[c] for c in sorted(latest)]
    for turn in threads:
        suffix = f"t{turn.id}" if conversation.mode == "notebook" else str(turn.column)
        yield {
            "id": f"{conversation.id}-{suffix}",
            "conversations": sharegpt_turns(turn),
            "model": turn.model_id,
            "preset": turn.preset_name,
            "revision": turn.revision,
            "mode": conversation.mode,
            "conversation_id": conversation.id,
            "column": turn.column,
            "turn_id": turn.id,
            "finish_reason": turn.finish_reason,
        }


def sharegpt_turns(turn: Turn) -> list[dict[str, str]]:
    """The system prompt the model saw (one turn, first), the conversation it answered, and the answer."""
    roles = {"system": "system", **ROLES}
    context = [{"from": roles[m["role"]], "value": m["content"]} for m in context_messages(turn)]
    return context + [{"from": "gpt", "value": turn.output}]


def context_messages(turn: Turn) -> list[dict[str, str]]:
    """What an answer's model saw, as ``{role, content}`` messages: the stored system prompt (the one
    it saw; templates drop the surrounding whitespace) first when there is one, then the turns
    (system messages inside ``messages`` are not repeated: the stored system prompt already says
    which one the model saw)."""
    system = turn.system_prompt.strip()
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": m["role"], "content": m["content"]} for m in turn.messages if m["role"] in ROLES]
