"""Entry point of the Hugging Face Space: the same app, state kept on the Space's persistent storage.

Outside a Space, ``spaces.GPU`` is a no-op, so this file also runs locally (``python spaces/app.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE if (HERE / "playground").is_dir() else HERE.parent))

DATA = Path("/data") if Path("/data").is_dir() else HERE / "data"
os.environ.setdefault("PLAYGROUND_DB", str(DATA / "playground.db"))
os.environ.setdefault("PLAYGROUND_CACHE", str(DATA / "cache"))
os.environ.setdefault("PLAYGROUND_HOST", "0.0.0.0")

from playground.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main([]))
