"""What the benchmarks share: the app in its own process, the raw transformers baselines measured on the
same machine in the same run, peak memory, and the machine's description for the report.

Every speed target is a ratio against raw ``model.generate`` on the same machine, model and dtype,
never an absolute number (machines here differ between sessions).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import torch  # noqa: E402


def cpu_description() -> str:
    """The CPU model and the flags that decide kernel speed (native bf16 or not)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    model = re.search(r"model name\s*:\s*(.*)", info)
    flags = set(re.search(r"flags\s*:\s*(.*)", info).group(1).split()) if "flags" in info else set()
    wanted = [f for f in ("avx512_bf16", "amx_bf16", "avx512f", "avx2") if f in flags]
    return f"{model.group(1).strip() if model else 'CPU'}, {os.cpu_count()} cores, flags: {' '.join(wanted) or '-'}"


class PeakMemory:
    """Highest resident set size of a process (and its children) while the block runs (every 20 ms)."""

    def __init__(self, pid: int | None = None):
        self.process = psutil.Process(pid or os.getpid())

    def _rss(self) -> int:
        try:
            return self.process.memory_info().rss
        except psutil.Error:
            return 0

    def __enter__(self):
        self.peak, self._stop = self._rss(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(folder: Path, extra: list[str] = (), env: dict | None = None):
    """``app.py`` on a free port with a throw-away database; returns (process, client, seconds to up)."""
    from gradio_client import Client

    port = free_port()
    command = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--db", str(folder / "bench.db"), "--user-presets", str(folder / "user"), *extra]
    started = time.perf_counter()
    app = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 600
    while True:
        if app.poll() is not None:
            raise SystemExit(f"app.py exited with {app.returncode}: {app.stderr.read()[-2000:]}")
        try:
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            return app, client, time.perf_counter() - started
        except Exception:  # noqa: BLE001 - not listening yet
            if time.monotonic() > deadline:
                app.kill()
                raise
            time.sleep(0.2)


def stop_app(app) -> None:
    app.terminate()
    try:
        app.wait(timeout=30)
    except subprocess.TimeoutExpired:
        app.kill()


def call(base_url: str, api_name: str, data: list, timeout: float = 600.0):
    """Call an endpoint the way a browser or ``curl`` does (Gradio's REST call API: POST, then read the
    server-sent events as they arrive); yields (seconds since the call, data) per streamed output.

    ``gradio_client`` is not used for timing: it polls its own message queue every 50 ms, which would
    be measured as the app's latency."""
    import httpx

    base = base_url.rstrip("/")
    started = time.perf_counter()
    with httpx.Client(timeout=timeout) as http:
        event_id = http.post(f"{base}/gradio_api/call/{api_name}", json={"data": data}).json()["event_id"]
        with http.stream("GET", f"{base}/gradio_api/call/{api_name}/{event_id}") as stream:
            kind = None
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    kind = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    payload = json.loads(line.removeprefix("data:").strip() or "null")
                    if kind == "error":
                        raise RuntimeError(f"{api_name} failed: {payload}")
                    if kind in ("generating", "complete"):
                        yield time.perf_counter() - started, payload
                    if kind == "complete":
                        return


def load_default(folder: Path, preset_name: str):
    """The preset's model loaded the way the app loads it (its dtype choice), with its rendered prompt maker."""
    from playground.container import build_services
    from playground.engine.models.loader import LoadRequest
    from playground.settings import Settings

    services = build_services(Settings(db=str(folder / "raw.db"), user_presets_dir=folder / "raw-user"))
    preset = services.registry.get(preset_name)
    loaded = services.cache.get(LoadRequest.from_spec(preset.model))
    return services, preset, loaded


def render(preset, loaded, question: str) -> str:
    from playground.engine.models.templates import Message

    return preset.template.render(
        [Message(role="user", content=question)], preset.system_prompt, loaded.tokenizer
    )


def raw_generate(loaded, prompts: list[str], tokens: int) -> tuple[float, int]:
    """Raw ``model.generate`` of ``prompts`` as one left-padded batch, greedy, exactly ``tokens`` new
    tokens per row; (seconds, new tokens)."""
    tokenizer = loaded.tokenizer
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        encoded = tokenizer(prompts, return_tensors="pt", padding=True)
    finally:
        tokenizer.padding_side = side
    start = time.perf_counter()
    with torch.inference_mode():
        loaded.model.generate(
            **encoded,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    return time.perf_counter() - start, tokens * len(prompts)


def raw_speedup(loaded, prompts: list[str], tokens: int) -> tuple[float, float, float]:
    """Raw transformers' own batching gain with every answer ``tokens`` long: (one-by-one tokens/s,
    batched tokens/s, batched / one-by-one)."""
    serial_s, batched_s = raw_speedup_on(loaded, prompts, [tokens] * len(prompts))
    total = tokens * len(prompts)
    return total / serial_s, total / batched_s, serial_s / batched_s


def raw_speedup_on(loaded, prompts: list[str], lengths: list[int]) -> tuple[float, float]:
    """Raw transformers on the same work as answers of different lengths: each prompt alone for exactly
    its own length, then all as one batch for the longest (a batch of ``generate`` runs until its last
    row ends); (one-by-one seconds, batched seconds).

    Runs on a thread that ends with it (``engine/threads.py``): an OpenMP team left on this thread
    would slow the engine measured after it in the same process."""
    from playground.engine.threads import isolated

    def run() -> tuple[float, float]:
        raw_generate(loaded, prompts[:1], 4)  # warm-up
        serial_s = sum(raw_generate(loaded, [p], max(1, n))[0] for p, n in zip(prompts, lengths, strict=True))
        return serial_s, raw_generate(loaded, prompts, max(1, *lengths))[0]

    return isolated(run)
