"""Per-answer ratings: like / dislike, with reasons from a fixed list and an optional comment."""

from __future__ import annotations

from playground.errors import PlaygroundError
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


def reasons_for(value: int) -> list[str]:
    return LIKE_REASONS if value > 0 else DISLIKE_REASONS


class FeedbackService:
    def __init__(self, store: Store):
        self.store = store

    def rate(self, turn_id: int, value: int, reasons: list[str] | None = None, comment: str = "") -> int:
        reasons = self._check(int(value), reasons or [])
        return self.store.record_rating(int(turn_id), int(value), reasons, comment)

    def explain(self, rating_id: int, value: int, reasons: list[str], comment: str = "") -> None:
        """Attach reasons and a comment to a rating already given."""
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
