"""Assemble the Hugging Face Space folder: ``python scripts/make_space.py --space user/name [--out DIR]``.

The folder holds the Space entry point (``spaces/app.py``), its pinned requirements (torch 2.10,
which ZeroGPU supports), a README whose front matter names the SDK, the Python version and the
hardware, and copies of ``playground/`` and ``presets/``. It can be pushed as it is; the script
prints the commands.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPACE_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def assemble(space: str, out: Path) -> Path:
    if not SPACE_RE.match(space):
        raise SystemExit(f"error: --space must look like user/name, got {space!r}")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy2(ROOT / "spaces" / "app.py", out / "app.py")
    shutil.copy2(ROOT / "spaces" / "requirements.txt", out / "requirements.txt")
    readme = (ROOT / "spaces" / "README.md").read_text(encoding="utf-8")
    (out / "README.md").write_text(
        readme.replace("title: LLM Playground", f"title: {space.split('/')[1]}", 1)
    )
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "playground", out / "playground", ignore=ignore)
    shutil.copytree(ROOT / "presets", out / "presets", ignore=ignore)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--space", required=True, help="the Space's id, user/name")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "space")
    args = parser.parse_args(argv)
    out = assemble(args.space, args.out)
    print(f"assembled {out} for https://huggingface.co/spaces/{args.space}; push it with:")
    print(f"  cd {out} && git init -b main && git add . && git commit -m deploy")
    print(f"  git remote add space https://huggingface.co/spaces/{args.space} && git push --force space main")
    return 0


if __name__ == "__main__":
    sys.exit(main())
