"""``bench/gpu_check.py`` runs in CI on the CPU (a tiny model) so the GPU check never rots: every check
runs, the same request gives the same text on every path, and it needs nothing above the engine."""

from __future__ import annotations

import json
import subprocess
import sys

from playground.settings import ROOT


def test_the_gpu_check_runs_on_the_cpu_and_writes_its_report(tmp_path):
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cpu", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["ok"] and report["probe"]["layout"] in ("packed", "fixed", "single")
    assert all(check["same_text"] for check in report["identity"].values())
    assert report["two_models"]["same_text"]
    for key in ("lone", "concurrency", "grid"):
        assert all(value > 0 for value in report[key].values()), report[key]
    assert "gradio" not in report["imported_outside_the_engine"]
    assert "sqlalchemy" not in report["imported_outside_the_engine"]
    assert done.stdout.strip().splitlines()[-1].replace(".", "").isdigit()  # the ratio, last
