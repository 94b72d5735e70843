"""Per-answer ratings: like / dislike, with reasons from a fixed list and an optional comment."""

from __future__ import annotations

from playground.errors import PlaygroundError
from playground.services.answers.limits import Limits, check_text
from playground.store.db import Store

LIKE_REASONS = ["accurate", "followed instructions", "well written", "creative"]
DISLIKE_REASONS = [
    "wrong",
    "didn't follow instructions",
    "refused needlessly",
    "too long/short",
    "bad formatting",
    "other",
]


def check_owner(store: Store, turn_id: int, session: str) -> None:
    """Refuse to judge an answer that is not stored, or that belongs to another session."""
    exists, owner = store.turn_owner(turn_id)
    if not exists:
        raise PlaygroundError(f"there is no stored answer with id {turn_id}")
    if owner is not None and owner != session:
        raise PlaygroundError(
            f"answer {turn_id} belongs to another session; you can only rate your own answers"
        )


def reasons_for(value: int) -> list[str]:
    return LIKE_REASONS if value > 0 else DISLIKE_REASONS


class FeedbackService:
    def __init__(self, store: Store, limits: Limits | None = None):
        self.store = store
        self.limits = limits or Limits()

    def check_comment(self, comment: str | None) -> None:
        """A comment is held to the limits of a message (--max-input-chars, no NUL)."""
        check_text(comment, "the comment", self.limits)

    def rate(
        self,
        turn_id: int,
        value: int,
        reasons: list[str] | None = None,
        comment: str = "",
        session: str | None = None,
    ) -> int:
        """Rate a stored answer; with ``session``, only an answer of that session's conversations."""
        reasons = self._check(int(value), reasons or [])
        self.check_comment(comment)
        if session is not None:
            check_owner(self.store, int(turn_id), session)
        return self.store.record_rating(int(turn_id), int(value), reasons, comment)

    def explain(self, rating_id: int, value: int, reasons: list[str], comment: str = "") -> None:
        """Attach reasons and a comment to a rating already given."""
        self.check_comment(comment)
        self.store.update_rating(int(rating_id), self._check(int(value), reasons), comment)

    @staticmethod
    def _check(value: int, reasons: list[str]) -> list[str]:
        if value not in (1, -1):
            raise PlaygroundError(f"a rating is 1 (like) or -1 (dislike), got {value!r}")
        allowed = reasons_for(value)
        unknown = [r for r in reasons if r not in allowed]
        if unknown:
            kind = "like" if value > 0 else "dislike"
            raise PlaygroundError(f"unknown {kind} reason(s) {unknown}; choose from {allowed}")
        return list(reasons)
