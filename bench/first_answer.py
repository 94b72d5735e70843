"""The first answer after the page is up, from an empty cache (a fresh install's first start).

Starts ``app.py`` with an empty cache folder (so the embedded model is converted from its GGUF, loaded
and probed: the start-up warm-up does that in the background while the page comes up), waits until
the page answers, then asks the default preset at once for a short answer; then the same again on the
filled cache (a second start). Prints when the page was up, when the first token and the whole answer
came, and as the last line the seconds from page up to the complete first answer from the empty
cache. Target: <= 5.

    python bench/first_answer.py [--tokens 32]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from harness import call, cpu_description, start_app, stop_app

PRESET = "smollm2-135m-instruct"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-first-"))
    cache = ["--cache-dir", str(folder / "empty-cache")]
    messages = json.dumps([{"role": "user", "content": "Name three rivers."}])
    params = json.dumps({"max_new_tokens": args.tokens})
    timings = {}
    for start in ("empty cache", "second start"):  # the second finds the converted model and its probe
        app, client, up = start_app(folder, cache)
        try:
            first = done = None
            for seconds, _text in call(client.src, "generate", [PRESET, messages, params, None]):
                first = seconds if first is None else first
                done = seconds
        finally:
            stop_app(app)
        timings[start] = (up, first, done)
    print(cpu_description())
    for start, (up, first, done) in timings.items():
        print(
            f"{start}: page up {up:.1f} s after start; after that: first token {first:.2f} s, "
            f"answer of up to {args.tokens} tokens {done:.2f} s"
        )
    print("seconds from page up to the complete first answer, empty cache (target <= 5):")
    print(f"{timings['empty cache'][2]:.2f}")


if __name__ == "__main__":
    main()
