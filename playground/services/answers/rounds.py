"""What a side-by-side conversation is made of: rounds of a user message and each column's answer,
the view a page shows of it, and the history a column's model reads. No Gradio here (the state
machine that changes them is ``conversation.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playground.engine.models.templates import Message
from playground.services.answers.chat import AnswerUpdate

NO_ANSWER = "(no answer in this column)"


def round_index(messages: list[Message]) -> int:
    """The one turn-index rule: the number of user messages before the last one."""
    return sum(1 for m in messages if m.role == "user") - 1


@dataclass
class ColumnSetup:
    """What one column runs a round with."""

    preset: str
    params: dict[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None


@dataclass
class Round:
    user: str
    answers: list[AnswerUpdate | None]  # per column; None where the column had no answer

    def answer(self, column: int) -> AnswerUpdate | None:
        return self.answers[column] if column < len(self.answers) else None


@dataclass
class ConversationView:
    """What a page shows of a conversation: its rounds (the last may still be running) and votes."""

    conversation_id: str | None
    rounds: list[Round] = field(default_factory=list)
    running: bool = False
    voted: dict[int, str] = field(default_factory=dict)  # round index → vote outcome

    @property
    def can_vote(self) -> bool:
        """Whether the last round can still be voted on: finished, not voted, two answers stored."""
        if self.running or not self.rounds or len(self.rounds) - 1 in self.voted:
            return False
        return sum(1 for a in self.rounds[-1].answers if a is not None and a.turn_id is not None) >= 2

    def chat(self, column: int) -> list[dict]:
        """One column's chat: each round's message and that column's answer (or what became of it)."""
        shown = []
        for turn in self.rounds:
            answer = turn.answer(column)
            if answer is None:
                text = NO_ANSWER
            elif answer.error:
                text = f"{answer.text}\n\n⚠️ {answer.error}".strip()
            else:
                text = answer.text or ("…" if not answer.done else "(empty answer)")
            shown += [{"role": "user", "content": turn.user}, {"role": "assistant", "content": text}]
        return shown

    def turn_ids(self, column: int) -> list[int | None]:
        """The stored answer behind each of a column's answers in ``chat`` (for ratings)."""
        return [a.turn_id if a is not None else None for a in (r.answer(column) for r in self.rounds)]

    def stats_line(self, column: int) -> str:
        """The last round's answer of a column: its stats and how it ended, or its error."""
        answer = self.rounds[-1].answer(column) if self.rounds else None
        if answer is None:
            return ""
        if answer.error:
            return f"**error:** {answer.error}"
        return answer.stats_line()


def history(rounds: list[Round], column: int) -> list[dict]:
    """What a column's model reads before the next message: every round, with the column's answer
    text (empty where it failed or had none), so ``round_index`` of the next message is its place."""
    messages = []
    for turn in rounds:
        answer = turn.answer(column)
        text = answer.text.strip() if answer is not None and not answer.error else ""
        messages += [{"role": "user", "content": turn.user}, {"role": "assistant", "content": text}]
    return messages


def stored_answer(turn) -> AnswerUpdate:
    """A stored turn as a finished answer."""
    stats = {
        "prompt_tokens": turn.prompt_tokens,
        "completion_tokens": turn.completion_tokens,
        "ttft_s": turn.ttft_s,
        "total_s": turn.total_s,
        "tokens_per_s": turn.tokens_per_s or 0.0,
    }
    return AnswerUpdate(
        text=turn.output,
        done=True,
        finish_reason=turn.finish_reason,
        error=turn.error,
        turn_id=turn.id,
        stats=stats,
    )
