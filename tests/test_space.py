"""The Space: its folder as `make space` assembles it, its entry point on a real HTTP server (without
ZeroGPU), and rated data synced to a dataset repo as append-only JSONL and restored after a restart.
The dataset repo is a local folder: only the Hub's network calls are replaced (``LocalFolderApi``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client

from playground.services.leaderboard.service import LeaderboardFilters, LeaderboardService
from playground.settings import ROOT, Settings
from playground.store.db import Store
from playground.store.hub_sync import read_records, start_sync
from playground.store.models import Turn
from tests.conftest import PRESETS, free_port
from tests.test_store import turn

TWO = ["smollm2-135m-instruct", "smollm2-135m-instruct-greedy"]


def test_make_space_assembles_a_pushable_folder(tmp_path):
    out = tmp_path / "space"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_space.py"), "--space", "me/arena", "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "git push" in done.stdout
    assert (out / "playground" / "engine" / "backends" / "zerogpu.py").is_file() and (
        out / "presets" / "tulu-7b-gptq.yaml"
    ).is_file()
    assert not list(out.glob("**/__pycache__"))
    front = (out / "README.md").read_text().split("---")[1]
    assert (
        "title: arena" in front
        and 'python_version: "3.11"' in front
        and "suggested_hardware: zero-a10g" in front
    )
    assert "sdk: gradio" in front and "app_file: app.py" in front
    pins = dict(
        line.split("==") for line in (out / "requirements.txt").read_text().splitlines() if "==" in line
    )
    major, minor = (int(x) for x in pins["torch"].split(".")[:2])
    assert (major, minor) >= (2, 8) and (major, minor) <= (2, 11) and "spaces" in pins
    app = (out / "app.py").read_text()
    assert app.index("import spaces") < app.index("import os")  # before anything can touch CUDA
    bad = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_space.py"), "--space", "nope"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "user/name" in bad.stderr


def test_rated_data_is_pushed_once_append_only_and_restores_the_leaderboard(tmp_path):
    repo = f"file://{tmp_path / 'hub' / 'me' / 'rated'}"
    store = Store(str(tmp_path / "a" / "db.sqlite"))
    sync, scheduler = start_sync(store, repo, tmp_path / "a", every_minutes=60)
    try:
        for k in range(3):
            cid = store.new_conversation("arena", ["p0", "p1"])
            a, b = turn(store, cid, 0), turn(store, cid, 1)
            store.record_vote(cid, "arena", 0, "0" if k < 2 else "tie", ["p0", "p1"], anonymous=True)
            store.record_rating(a, 1, ["accurate"], "good")
            store.record_score(b, 4)
        unrated = turn(store, store.new_conversation("compare", ["p0"]), 0)
        scheduler.trigger().result()
        pushed = tmp_path / "hub" / "me" / "rated"
        first = {p.name: p.read_bytes() for p in pushed.glob("*.jsonl")}
        assert len(first) == 1
        store.update_rating(1, ["accurate", "well written"], "better")
        scheduler.trigger().result()
        second = {p.name: p.read_bytes() for p in pushed.glob("*.jsonl")}
        name = next(iter(first))
        assert second[name].startswith(first[name]) and len(second[name]) > len(first[name])  # appended
    finally:
        scheduler.stop()
    records = read_records(pushed)
    turn_ids = [row["id"] for kind, row in records if kind == "turn"]
    assert sorted(turn_ids) == list(range(1, 7)) and unrated not in turn_ids  # each rated turn once
    assert [kind for kind, _ in records].count("vote") == 3 and [kind for kind, _ in records].count(
        "score"
    ) == 3

    before = LeaderboardService(store, registry=_Registry(), bootstrap_rounds=20).compute(
        LeaderboardFilters()
    )
    fresh = Store(str(tmp_path / "b" / "db.sqlite"))  # a restarted Space with an empty disk
    _sync, scheduler = start_sync(fresh, repo, tmp_path / "b", every_minutes=60)
    scheduler.stop()
    after = LeaderboardService(fresh, registry=_Registry(), bootstrap_rounds=20).compute(LeaderboardFilters())
    assert after.rows() == before.rows() and after.votes == 3
    assert [(r.reasons, r.comment) for r in fresh.ratings()][0] == (["accurate", "well written"], "better")
    assert fresh.count(Turn) == 6 and [s.score for s in fresh.scores()] == [4, 4, 4]


class _Registry:
    unavailable: dict = {}

    def __contains__(self, name):
        return False


@pytest.mark.slow
def test_the_space_entry_point_serves_compare_and_its_data_survives_a_restart(tmp_path, model_cache_dir):
    space = tmp_path / "space"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_space.py"), "--space", "me/arena", "--out", str(space)],
        check=True,
    )
    port = free_port()
    env = {
        **os.environ,
        "PLAYGROUND_PORT": str(port),
        "PLAYGROUND_HOST": "127.0.0.1",
        "PLAYGROUND_CACHE": str(model_cache_dir),
        "PLAYGROUND_SYNC_REPO": f"file://{tmp_path / 'hub' / 'me' / 'rated'}",
        "PLAYGROUND_SYNC_EVERY_MIN": "0.02",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    env.pop("SPACES_ZERO_GPU", None)
    db = space / "data" / "playground.db"

    def start():
        process = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=space,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.time() + 180
        for line in process.stdout:
            if re.search(rf"127\.0\.0\.1:{port}", line):
                return process
            assert time.time() < deadline, "the Space app did not start"
        raise AssertionError(f"the Space app exited with {process.wait()}")

    app = start()
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        job = client.submit(
            json.dumps(TWO),
            json.dumps([{"role": "user", "content": "Name a bird."}]),
            json.dumps({"max_new_tokens": 12}),
            "",
            "",
            api_name="/compare",
        )
        items = list(job)
        final = job.result()
        assert len(items) > 2 and all(c["done"] and c["text"] for c in final["columns"])
        client.predict(final["conversation_id"], 0, "1", api_name="/vote")
        rows = client.predict(True, False, "", "", api_name="/leaderboard")
        assert {r["model"] for r in rows} == set(TWO)
        time.sleep(4)  # the scheduler pushes every 1.2 s here
    finally:
        app.terminate()
        app.wait(30)
    stored = Store(str(db))
    turns = sorted(stored.turns(final["conversation_id"]), key=lambda t: t.column)
    assert [t.output for t in turns] == [c["text"] for c in final["columns"]]
    stored.engine.dispose()
    db.unlink()  # a restart without persistent storage
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    app = start()
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        assert client.predict(True, False, "", "", api_name="/leaderboard") == rows
    finally:
        app.terminate()
        app.wait(30)


def test_the_backend_is_chosen_by_setting(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_BACKEND", "zerogpu")  # on a Space: chosen because SPACES_ZERO_GPU is set
    assert Settings.from_args([]).backend == "zerogpu"
    monkeypatch.delenv("PLAYGROUND_BACKEND")
    assert Settings.from_args([]).backend == "local" and PRESETS.is_dir()


def test_start_up_preloads_and_marks_what_cannot_run(tmp_path, model_cache_dir):
    """PLAYGROUND_PRELOAD loads at start-up; a preset that fails is shown unavailable and refused at once."""
    from playground.container import build_services
    from playground.engine.models.loader import LoadRequest
    from playground.engine.models.templates import Message
    from playground.services.answers.chat import AnswerRequest
    from playground.ui.common import preset_choices

    settings = Settings(
        db=str(tmp_path / "db.sqlite"),
        user_presets_dir=tmp_path / "user",
        cache_dir=model_cache_dir,
        preload=["smollm2-135m-instruct", "llama-65b-instruct"],
    )
    services = build_services(settings)
    smol = services.registry.get("smollm2-135m-instruct")
    assert LoadRequest.from_spec(smol.model) in services.cache.loaded()
    reason = services.registry.unavailable["llama-65b-instruct"]
    assert "upstage/llama-65b-instruct" in reason and "local Hugging Face cache" in reason
    labels = dict((name, label) for label, name in preset_choices(services.registry))
    assert (
        labels["llama-65b-instruct"].endswith("⛔ unavailable")
        and "⛔" not in labels["smollm2-135m-instruct"]
    )
    request = AnswerRequest("llama-65b-instruct", [Message(role="user", content="Hi")])
    final = list(services.chat.answer(request, services.compare.start(["llama-65b-instruct"])))[-1]
    assert final.error.endswith(f"is unavailable here: {reason}") and final.finish_reason == "error"
    assert "llama-65b-instruct" not in services.arena.pool()


def test_presets_too_big_for_a_zerogpu_slot_are_unavailable(hub):
    from playground.container import check_zerogpu_fit
    from playground.engine.models.device import DeviceInfo
    from playground.engine.models.presets import PresetRegistry

    registry = PresetRegistry.from_folders(PRESETS)
    check_zerogpu_fit(registry, DeviceInfo.for_zerogpu(), slot_bytes=1024)  # a slot of 1 KiB: nothing fits
    reason = registry.unavailable["decilm-7b-instruct"]
    assert "of GPU memory and a ZeroGPU slot has 0.0 GB" in reason
    check_zerogpu_fit(fresh := PresetRegistry.from_folders(PRESETS), DeviceInfo.for_zerogpu())
    assert "decilm-7b-instruct" not in fresh.unavailable  # the tiny seeded checkpoints fit a real slot


def test_the_space_installs_what_the_app_imports():
    """Every runtime requirement is in the Space's pins too, except what a Space cannot or need not use."""

    def names(path: Path) -> dict[str, str]:
        pins = {}
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                name, _, version = line.partition("==")
                pins[name.split("[")[0].lower()] = version
        return pins

    app, space = names(ROOT / "requirements.txt"), names(ROOT / "spaces" / "requirements.txt")
    not_on_space = {"psycopg"}  # PostgreSQL replicas run elsewhere; the Space keeps SQLite + the dataset sync
    assert set(app) - set(space) - not_on_space == set()
    assert {n: v for n, v in space.items() if n in app and n != "torch"} == {
        n: v for n, v in app.items() if n in space and n != "torch"
    }
