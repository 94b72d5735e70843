"""The real app as its own ``app.py`` process on a free port, for tests and benches that restart or
kill it (SIGKILL: no shutdown code runs)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppProcess:
    def __init__(self, db: str, port: int | None = None, args: list[str] = (), env: dict | None = None):
        self.db, self.port, self.args = db, port or free_port(), list(args)
        self.env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            **(env or {}),
        }
        self.env.pop("SPACES_ZERO_GPU", None)
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 180) -> AppProcess:
        command = [
            sys.executable,
            str(ROOT / "app.py"),
            "--db",
            self.db,
            "--port",
            str(self.port),
            *self.args,
        ]
        self.output = []
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        ready = threading.Event()

        def read() -> None:
            for line in self.process.stdout:
                self.output.append(line)
                if re.search(rf"127\.0\.0\.1:{self.port}", line):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.time() + timeout
        while not ready.wait(0.2):
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode}:\n{''.join(self.output)}")
            if time.time() > deadline:
                self.kill()
                raise RuntimeError(f"app.py did not start in {timeout} s:\n{''.join(self.output)}")
        return self

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or close anything."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
