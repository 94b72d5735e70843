"""Cancel handles of running generations, per browser session, so Stop reaches the worker threads.

A run is keyed by ``(scope, session)``: the tab or endpoint that started it ("compare", "arena",
"notebook", "api-compare", …) and the Gradio session (a browser tab or a gradio_client ``Client``).
``with runs.run(key) as cancel:`` registers a run for as long as it streams; a new run of the same
key stops the one before it (a message sent while a round streams takes over). Stop cancels one
key; a page that is gone (reloaded or closed) cancels every run of its session.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

RunKey = tuple[str, str]  # (scope, session)
STOPPING_WAIT_S = 30  # the longest wait for a stopping round to store its answers


class RunRegistry:
    def __init__(self):
        self._lock = threading.Lock()
        self._runs: dict[RunKey, set[threading.Event]] = {}
        self._superseded: set[threading.Event] = set()  # cancelled by a newer run, not by Stop

    @contextmanager
    def run(self, key: RunKey) -> Iterator[threading.Event]:
        """A cancel event for the run of ``key`` while the ``with`` block lasts; a run of the same key
        that was still going is stopped first (it is then ``superseded``)."""
        event = threading.Event()
        with self._lock:
            for old in self._runs.pop(key, set()):
                old.set()
                self._superseded.add(old)
            self._runs[key] = {event}
        try:
            yield event
        finally:
            with self._lock:
                self._runs.get(key, set()).discard(event)
                self._superseded.discard(event)

    def superseded(self, event: threading.Event) -> bool:
        """Whether ``event`` was cancelled because a newer run of its key started (not by Stop)."""
        with self._lock:
            return event in self._superseded

    def cancel(self, key: RunKey) -> int:
        """Stop the runs of ``key``; how many there were."""
        with self._lock:
            events = self._runs.pop(key, set())
        for event in events:
            event.set()
        return len(events)

    def cancel_session(self, session: str | None) -> int:
        """Stop every run of ``session`` in every scope (its page is gone); how many there were."""
        with self._lock:
            keys = [key for key in self._runs if key[1] == session]
        return sum(self.cancel(key) for key in keys)

    def running(self, key: RunKey) -> bool:
        with self._lock:
            return bool(self._runs.get(key))


def wait_if_stopping(cancel: threading.Event | None, idle: threading.Event, grace_s: float = 3.0) -> None:
    """Wait for a running round (``cancel``, ``idle`` set once it has stored its answers) to finish if
    it is being stopped, or is about to be: the run of a reloaded page is cancelled when Gradio
    notices that the old page is gone, which may come a moment after the new page asks. A round
    still answering after ``grace_s`` (in another tab) is left running."""
    if cancel is None or idle.is_set():
        return
    if cancel.wait(grace_s):
        idle.wait(STOPPING_WAIT_S)
