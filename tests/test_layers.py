"""The architecture is enforced, not hoped for: the import-linter contracts pass (and fail on a planted
upward import), modules import each other without circles, no module passes 400 lines, and every
package says what lives in it."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

from playground.settings import ROOT

PACKAGE = ROOT / "playground"
LINT = Path(sys.executable).parent / "lint-imports"


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml")],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


def test_the_contracts_pass_here_and_fail_on_a_planted_upward_import(tmp_path):
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout
    copy = tmp_path / "repo"
    shutil.copytree(PACKAGE, copy / "playground", ignore=shutil.ignore_patterns("__pycache__"))
    store = copy / "playground" / "store" / "db.py"
    store.write_text(store.read_text() + "\nfrom playground.services.answers import chat  # noqa\n")
    broken = lint(copy)
    assert broken.returncode != 0 and "BROKEN" in broken.stdout
    assert "playground.store.db -> playground.services.answers.chat" in broken.stdout


def imports_of(path: Path, module: str) -> set[str]:
    """The playground modules ``module`` imports (at any depth of the file, lazily or not)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n.startswith("playground")}
    return found


def test_no_import_circles():
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in PACKAGE.rglob("*.py")
    }
    graph = {m: {i for i in imports_of(p, m) if i in modules and i != m} for m, p in modules.items()}
    for m in graph:  # a package's __init__ importing its own modules is not a circle through them
        graph[m] = {i for i in graph[m] if not (m + ".").startswith(i + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_modules_stay_small_and_packages_say_what_they_hold():
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long, f"modules over 400 lines: {long}"
    for init in PACKAGE.rglob("__init__.py"):
        if "migrations" in init.parts:
            continue
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init.relative_to(ROOT)} has no docstring"
