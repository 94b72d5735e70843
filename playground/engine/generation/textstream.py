"""Turning a stream of token ids into safe text deltas.

``IncrementalDecoder`` never emits half of a multi-byte character: it holds text back while
the decoded tail is the replacement character U+FFFD. ``StopStringFilter`` holds back only
the tail that could begin a stop string split across tokens, and never lets the stop string
itself through.
"""

from __future__ import annotations

from collections.abc import Sequence


class IncrementalDecoder:
    """Decode a growing id list into deltas, re-decoding only a short window (as TGI does)."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0

    def push(self, new_ids: Sequence[int]) -> str:
        self._ids.extend(int(i) for i in new_ids)
        decode = self._tokenizer.decode
        prefix = decode(self._ids[self._prefix_offset : self._read_offset], skip_special_tokens=True)
        full = decode(self._ids[self._prefix_offset :], skip_special_tokens=True)
        if len(full) > len(prefix) and not full.endswith("\ufffd"):
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._ids)
            return full[len(prefix) :]
        return ""

    def flush(self) -> str:
        """Whatever is still held back at the end (a trailing incomplete character, if any)."""
        decode = self._tokenizer.decode
        prefix = decode(self._ids[self._prefix_offset : self._read_offset], skip_special_tokens=True)
        full = decode(self._ids[self._prefix_offset :], skip_special_tokens=True)
        self._prefix_offset = self._read_offset = len(self._ids)
        return full[len(prefix) :] if len(full) > len(prefix) else ""


class StopStringFilter:
    """Pass text through until a stop string appears; the stop string and what follows are dropped."""

    def __init__(self, stop_strings: Sequence[str]):
        self._stops = [s for s in stop_strings if s]
        self._pending = ""
        self.stopped_on: str | None = None

    def push(self, text: str) -> str:
        """The part of ``text`` that is safe to show now."""
        if self.stopped_on is not None:
            return ""
        self._pending += text
        hits = [(self._pending.find(s), s) for s in self._stops if s in self._pending]
        if hits:
            index, stop = min(hits)
            self.stopped_on = stop
            out, self._pending = self._pending[:index], ""
            return out
        cut = len(self._pending) - self._partial_stop_suffix(self._pending)
        out, self._pending = self._pending[:cut], self._pending[cut:]
        return out

    def _partial_stop_suffix(self, text: str) -> int:
        """Length of the longest tail of ``text`` that could be the start of a stop string."""
        best = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:k]):
                    best = k
                    break
        return best

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return "" if self.stopped_on is not None else out
