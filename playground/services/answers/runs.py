"""Cancel handles of running generations, per browser session, so Stop reaches the worker threads."""

from __future__ import annotations

import threading


class RunRegistry:
    def __init__(self):
        self._lock = threading.Lock()
        self._runs: dict[str, set[threading.Event]] = {}
        self._superseded: set[threading.Event] = set()  # cancelled by a newer run, not by Stop

    def start(self, session: str) -> threading.Event:
        """A new cancel event for ``session``; a new message cancels what that session still runs."""
        event = threading.Event()
        with self._lock:
            for old in self._runs.pop(session, set()):
                old.set()
                self._superseded.add(old)
            self._runs[session] = {event}
        return event

    def superseded(self, event: threading.Event) -> bool:
        """Whether ``event`` was cancelled because a newer run of its session started (not by Stop)."""
        with self._lock:
            return event in self._superseded

    def finish(self, session: str, event: threading.Event) -> None:
        with self._lock:
            self._runs.get(session, set()).discard(event)
            self._superseded.discard(event)

    def cancel(self, session: str) -> int:
        with self._lock:
            events = self._runs.pop(session, set())
        for event in events:
            event.set()
        return len(events)
