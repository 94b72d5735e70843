"""Where the engine's CPU compute runs: on short-lived threads, never on a long-lived one.

PyTorch's CPU kernels parallelise with OpenMP (libgomp). Every thread that runs a parallel op
becomes the master of its own team, and that team's helper threads live as long as the master
does. libgomp lets idle helpers spin (and so answer the next op at once) only while the threads
it manages do not outnumber the CPUs; past that it parks them on futexes and every op pays a
wake-up. So a team left behind by the main thread or by a pooled request thread (after a
dtype benchmark or a model load, say) makes every later generation slower: on a 2-core machine,
decoding SmolLM2 in bf16 on a worker thread fell from ~25 to ~12 tokens/s. Generation already
runs on a thread of its own that ends with it; loads and benchmarks go through ``isolated``.

Both helpers run their target in a copy of the caller's ``contextvars`` context, so whatever
the caller's framework keeps there (Gradio's request and progress bar) is still in reach.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def start_thread(target: Callable[..., object], *args, name: str) -> threading.Thread:
    """Start a daemon thread running ``target(*args)`` in a copy of the caller's context."""
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target, *args), name=name, daemon=True)
    thread.start()
    return thread


def isolated(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run ``fn`` on a new thread that ends with it (taking its OpenMP team along); return or raise."""
    result: list[T] = []
    failure: list[BaseException] = []

    def work():
        try:
            result.append(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
            failure.append(exc)

    start_thread(work, name=getattr(fn, "__name__", "compute")).join()
    if failure:
        raise failure[0]
    return result[0]
