"""Abuse limits for public and shared use: message size, conversation length, concurrent
generations, and votes and ratings per hour. No Gradio here (the UI turns a request into a ``Visitor``).

A visitor is its Gradio session plus, on a Space (behind a proxy), its ``x-forwarded-for``
address. Each per-visitor limit applies to the session and, separately, to the address, which
gets ``address_factor`` times the session's allowance (several people can share one address);
opening new tabs therefore does not multiply what one address may use. Overall concurrency is the
Gradio queue's limit on generation events: requests beyond it wait in the queue and see their
position there.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from playground.errors import PlaygroundError
from playground.settings import Limits  # noqa: F401 - the limits' values live with the settings

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# hourly allowances per visitor: what → (the Limits field, the verb of the refusal, its flag)
HOURLY = {
    "votes": ("votes_per_hour", "voted", "--votes-per-hour"),
    "ratings": ("ratings_per_hour", "rated or commented", "--ratings-per-hour"),
}


@dataclass(frozen=True)
class Visitor:
    session: str | None
    address: str | None = None

    def keys(self, factor: int) -> list[tuple[str, int]]:
        """The counters this visitor's use goes to, each with its allowance multiplier."""
        keys = [(f"session:{self.session or 'anonymous'}", 1)]
        if self.address:
            keys.append((f"address:{self.address}", factor))
        return keys


@dataclass(frozen=True)
class Spent:
    """One use of an hourly allowance: the counters it went to, and when."""

    keys: tuple[tuple[str, str], ...]
    at: float


def check_text(text: str | None, what: str, limits: Limits) -> None:
    """Refuse, before anything is generated or stored, a message longer than ``max_input_chars`` or
    holding characters no database or tokenizer takes: NUL, and lone UTF-16 surrogates (what
    invalid UTF-8 or a broken ``\\ud800`` JSON escape becomes). Other control characters pass."""
    if not text:
        return
    bad = _UNSTORABLE.search(text)
    if bad:
        char = bad.group()
        name = (
            "a NUL character"
            if char == "\x00"
            else f"an invalid character (lone surrogate U+{ord(char):04X})"
        )
        raise PlaygroundError(
            f"{what} contains {name} at position {bad.start()}; remove it (is the text valid UTF-8?)"
        )
    if len(text) > limits.max_input_chars:
        raise PlaygroundError(
            f"{what} is {len(text):,} characters; the limit here is {limits.max_input_chars:,} "
            "(--max-input-chars). Shorten it or split it into several messages."
        )


def check_turn(turn_index: int, limits: Limits) -> None:
    if turn_index >= limits.max_turns:
        raise PlaygroundError(
            f"this conversation has reached {limits.max_turns} rounds, the most allowed here "
            "(--max-turns); start a new one"
        )


class Gate:
    """Counts running generations and recent votes per visitor key; refuses what is over a limit."""

    def __init__(self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic):
        self.limits = limits or Limits()
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[str, int] = defaultdict(int)
        self._hourly: dict[tuple[str, str], deque[float]] = defaultdict(deque)  # (what, visitor key) → times

    @contextmanager
    def generating(self, visitor: Visitor) -> Iterator[None]:
        """Hold one of the visitor's generation slots for the duration of a request."""
        keys = visitor.keys(self.limits.address_factor)
        with self._lock:
            for key, factor in keys:
                allowed = self.limits.session_generations * factor
                if self._running[key] >= allowed:
                    who = "this session" if key.startswith("session:") else "your network address"
                    raise PlaygroundError(
                        f"{who} already has {self._running[key]} generation(s) running, the most allowed "
                        f"at once here ({allowed}); wait for one to finish or stop it"
                    )
            for key, _ in keys:
                self._running[key] += 1
        try:
            yield
        finally:
            with self._lock:
                for key, _ in keys:
                    self._running[key] -= 1
                    if not self._running[key]:
                        del self._running[key]

    def running(self, visitor: Visitor) -> int:
        with self._lock:
            return self._running.get(visitor.keys(1)[0][0], 0)

    def vote(self, visitor: Visitor) -> None:
        """Count a vote; refuse it when the visitor has voted ``votes_per_hour`` times in the last hour."""
        self.spend(visitor, "votes")

    def spend(self, visitor: Visitor, what: str) -> Spent:
        """Spend one of the visitor's hourly ``what`` (a key of ``HOURLY``) for a write, or refuse it when
        none is left. Give it back with ``refund`` when the write fails: only what was stored counts."""
        try:
            field, verb, flag = HOURLY[what]
        except KeyError:
            raise PlaygroundError(f"unknown hourly allowance {what!r}; known: {sorted(HOURLY)}") from None
        now = self._clock()
        keys = [((what, key), factor) for key, factor in visitor.keys(self.limits.address_factor)]
        with self._lock:
            for key, factor in keys:
                recent = self._hourly[key]
                while recent and recent[0] <= now - 3600:
                    recent.popleft()
                allowed = getattr(self.limits, field) * factor
                if len(recent) >= allowed:
                    wait = max(1, math.ceil((recent[0] + 3600 - now) / 60))
                    raise PlaygroundError(
                        f"you have {verb} {len(recent)} times in the last hour, the most allowed here "
                        f"({allowed}, {flag}); try again in about {wait} minute(s)"
                    )
            for key, _ in keys:
                self._hourly[key].append(now)
        return Spent(tuple(key for key, _ in keys), now)

    def refund(self, spent: Spent) -> None:
        with self._lock:
            for key in spent.keys:
                if spent.at in self._hourly[key]:
                    self._hourly[key].remove(spent.at)
