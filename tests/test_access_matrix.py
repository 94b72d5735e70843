"""The access matrix: the real app started as a public deployment (``SPACE_ID`` set) on a real HTTP
server, with the real SmolLM2 model and a real SQLite file. Every endpoint ``view_api`` lists is
called as the session that owns what it names and as a foreign session, and must behave as its
declared rule says: allowed, or refused with a message naming the cause and nothing stored. An
endpoint without a case here (or without a rule: the app does not start) fails the test, and the
README's table must say what the rules say.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from gradio_client import Client

from playground.services.answers.limits import HOURLY
from playground.settings import Settings
from playground.store.models import (
    Battle,
    CompareRounds,
    Conversation,
    JudgeVerdict,
    Notebook,
    NotebookCell,
    NotebookRun,
    Rating,
    Score,
    Turn,
    Vote,
)
from playground.ui.access import Kind, declared
from tests.conftest import PRESETS, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
GREEDY = "smollm2-135m-instruct-greedy"
PAIR = json.dumps([GREEDY, GREEDY])
TINY = json.dumps({"max_new_tokens": 2})
TABLES = (
    Conversation,
    Turn,
    Rating,
    Score,
    Vote,
    NotebookCell,
    Battle,
    CompareRounds,
    Notebook,
    NotebookRun,
    JudgeVerdict,
)
DOCUMENT = {
    "name": "capitals",
    "rows": [{"prompt": "Name a colour."}],
    "models": [GREEDY],
    "max_new_tokens": 2,
}
RUBRIC = json.dumps({"preset": GREEDY, "mode": "rubric", "rubric": "Is it a colour?", "max_new_tokens": 2})
SIDE = json.dumps({"version": 1, "model": GREEDY, "sample": 0})
REFUSED = {  # the refusal each kind of rule gives a foreign session
    Kind.OWNER: "belongs to another session; on this public deployment only the session that made it can",
    Kind.NOBODY: "is turned off on this public deployment",
    Kind.SHARE_LINK: "is not one",
}


def say(text: str) -> str:
    return json.dumps([{"role": "user", "content": text}])


@pytest.fixture(scope="module")
def public_app(tmp_path_factory, model_cache_dir):
    """The app as a Space starts it: public, so open data is off and the grid cap is the public one."""
    from playground.container import build_services
    from playground.ui.app import CSS, build_app

    folder = tmp_path_factory.mktemp("public")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SPACE_ID", "someone/llm-playground")
        settings = Settings.from_args(
            [
                *("--db", str(folder / "playground.db"), "--presets", str(PRESETS)),
                *("--user-presets", str(folder / "user_presets"), "--cache-dir", str(model_cache_dir)),
                *("--arena-pool", f"smollm2-135m-instruct,{GREEDY}"),
            ]
        )
    assert settings.public and not settings.open_data
    services = build_services(settings)
    demo = build_app(services)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=CSS)
    yield f"http://127.0.0.1:{port}/", services, demo
    demo.close()


def stored(services) -> dict[str, int]:
    return {table.__tablename__: services.store.count(table) for table in TABLES}


@dataclass
class Case:
    kind: Kind  # the rule this endpoint must have
    args: Callable[
        [dict], tuple
    ]  # the call's arguments, from what the owner made (a link rule: with the link)
    check: Callable[[dict, object], bool] = lambda made, result: True  # the owner's (or link holder's) result
    run: Callable | None = None  # a case that drives both sessions itself (an owner rule without an id)
    forged: Callable[[dict], tuple] | None = None  # a link rule: the arguments with a run's id for the link


def stop_case(made: dict, owner: Client, stranger: Client) -> None:
    """/stop names nothing: a stranger's call stops none of the owner's generations; the owner's does."""
    story = say("Tell a very long story about a dragon.")
    job = owner.submit(GREEDY, story, '{"max_new_tokens": 400}', None, api_name="/generate")
    deadline = time.time() + 120
    while not job.outputs():
        assert time.time() < deadline and not job.done(), "the long answer never started"
        time.sleep(0.05)
    assert stranger.predict(api_name="/stop") == {"stopped": 0}
    grown = len(job.outputs()[-1])
    deadline = time.time() + 60
    while len(job.outputs()[-1]) == grown:  # still growing after the stranger's /stop
        assert time.time() < deadline and not job.done(), "the stranger's /stop ended the owner's answer"
        time.sleep(0.05)
    assert owner.predict(api_name="/stop") == {"stopped": 1}
    job.result(timeout=60)
    assert made["services"].store.turns()[-1].finish_reason == "stopped"


def continued(made: dict) -> tuple:
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": made["compare"]["columns"][0]["text"]},
        {"role": "user", "content": "And then?"},
    ]
    return PAIR, json.dumps(history), TINY, "", made["compare"]["conversation_id"]


def list_case(made: dict, owner: Client, stranger: Client) -> None:
    """/notebook_list names nothing: each session lists only the notebooks it made."""
    mine = made["notebook"]
    assert mine in [n["id"] for n in call(owner, "/notebook_list", ())]
    assert mine not in [n["id"] for n in call(stranger, "/notebook_list", ())]


def notebook(made: dict, *rest) -> tuple:
    return (made["notebook"], *rest)


def a_run(made: dict, *rest) -> tuple:
    """A link rule's forged arguments: a grid run's id in place of the notebook's link."""
    return (made["grid"]["conversation_id"], *rest)


def first_turn(made: dict) -> int:
    return made["compare"]["columns"][0]["turn_id"]


# In the order they run: later cases use what earlier ones made (a battle's round before its vote).
CASES: dict[str, Case] = {
    "/generate": Case(Kind.ANYONE, lambda m: (GREEDY, say("Hi"), TINY, None), lambda m, r: bool(r)),
    "/presets": Case(Kind.ANYONE, lambda m: (), lambda m, r: GREEDY in [p["name"] for p in r]),
    "/render_prompt": Case(
        Kind.ANYONE, lambda m: (GREEDY, say("Hi"), None), lambda m, r: r["prompt"].endswith("assistant\n")
    ),
    "/save_preset": Case(Kind.NOBODY, lambda m: (GREEDY, "mine", "", "{}", None)),
    "/compare": Case(Kind.OWNER, continued, lambda m, r: r["turn_index"] == 1 and r["columns"][1]["turn_id"]),
    "/rate": Case(Kind.OWNER, lambda m: (first_turn(m), 1, "[]", ""), lambda m, r: r["rating_id"]),
    "/vote": Case(
        Kind.OWNER, lambda m: (m["compare"]["conversation_id"], 0, "tie"), lambda m, r: r["vote_id"]
    ),
    "/stop": Case(Kind.OWNER, lambda m: (), run=stop_case),
    "/arena_new": Case(Kind.ANYONE, lambda m: (), lambda m, r: r["battle_id"] != m["battle"]),
    "/arena_send": Case(Kind.OWNER, lambda m: (m["battle"], "Say hi."), lambda m, r: r["can_vote"]),
    "/arena_stop": Case(Kind.OWNER, lambda m: (m["battle"],), lambda m, r: "stopped" in r),
    "/arena_vote": Case(Kind.OWNER, lambda m: (m["battle"], "tie"), lambda m, r: r["vote_id"]),
    "/leaderboard": Case(Kind.ANYONE, lambda m: (False, False, "", ""), lambda m, r: isinstance(r, list)),
    "/notebook_run": Case(
        Kind.ANYONE,
        lambda m: (json.dumps([GREEDY]), json.dumps([{"prompt": "Hi"}]), "{}", 1, "{prompt}", 0),
        lambda m, r: r["finished"],
    ),
    "/notebook_rate": Case(
        Kind.OWNER,
        lambda m: (m["grid"]["cells"][0]["turn_id"], -1, 2, "[]", "meh"),
        lambda m, r: set(r) == {"rating_id", "score_id"},
    ),
    "/notebook_export": Case(
        Kind.OWNER,
        lambda m: (m["grid"]["conversation_id"], "csv"),
        lambda m, r: "Name a colour." in r["content"],
    ),
    "/notebook_import": Case(
        Kind.ANYONE,
        lambda m: ("colours.jsonl", '{"input": "Name a colour.", "ideal": "red"}\n'),
        lambda m, r: r["rows"] == [{"prompt": "Name a colour.", "ideal": "red"}],
    ),
    "/notebook_list": Case(Kind.OWNER, lambda m: (), run=list_case),
    "/notebook_save": Case(
        Kind.OWNER,
        lambda m: notebook(m, json.dumps({**DOCUMENT, "name": "capitals, saved again"})),
        lambda m, r: r["id"] == m["notebook"] and r["editable"],
    ),
    "/notebook_open": Case(
        Kind.SHARE_LINK,
        lambda m: notebook(m, 0),
        lambda m, r: r["notebook"]["id"] == m["notebook"],
        forged=lambda m: a_run(m, 0),
    ),
    "/notebook_duplicate": Case(
        Kind.SHARE_LINK,
        lambda m: notebook(m, ""),
        lambda m, r: r["id"] != m["notebook"] and r["editable"],
        forged=lambda m: a_run(m, ""),
    ),
    "/notebook_run_saved": Case(
        Kind.OWNER, notebook, lambda m, r: r["version"] == 1 and r["grid"]["finished"]
    ),
    "/notebook_judge": Case(Kind.OWNER, lambda m: notebook(m, 0, RUBRIC), lambda m, r: r["finished"]),
    "/notebook_diff": Case(
        Kind.SHARE_LINK,
        lambda m: notebook(m, 1, 1),
        lambda m, r: r["changed"] == [],
        forged=lambda m: a_run(m, 1, 1),
    ),
    "/notebook_answer_diff": Case(
        Kind.SHARE_LINK,
        lambda m: notebook(m, 1, SIDE, SIDE),
        lambda m, r: all(op == "=" for op, _ in r["diff"]),
        forged=lambda m: a_run(m, 1, SIDE, SIDE),
    ),
    "/notebook_delete": Case(Kind.OWNER, notebook, lambda m, r: r["deleted"] == m["notebook"]),
    "/replay": Case(Kind.NOBODY, lambda m: (first_turn(m),)),
}


def call(client: Client, endpoint: str, args: tuple):
    return client.submit(*args, api_name=endpoint).result(timeout=300)


@pytest.fixture(scope="module")
def made(public_app):
    """What the owner made before the matrix: a side-by-side round, a one-cell grid, a battle."""
    url, services, _ = public_app
    owner = Client(url, verbose=False)
    compare = call(owner, "/compare", (PAIR, say("Hi"), TINY, "", ""))
    rows, params = json.dumps([{"prompt": "Name a colour."}]), json.dumps({GREEDY: {"max_new_tokens": 2}})
    grid = call(owner, "/notebook_run", (json.dumps([GREEDY]), rows, params, 1, "{prompt}", 0))
    battle = owner.predict(api_name="/arena_new")["battle_id"]
    saved = call(owner, "/notebook_save", ("", json.dumps(DOCUMENT)))["id"]
    return {
        **{"owner": owner, "services": services, "compare": compare, "grid": grid, "battle": battle},
        "notebook": saved,
    }


def refused(client: Client, endpoint: str, args: tuple, kind: Kind, services) -> None:
    before = stored(services)
    with pytest.raises(Exception, match=REFUSED[kind]):
        call(client, endpoint, args)
    assert stored(services) == before, f"{endpoint}: a refused call stored something"


def test_every_endpoint_against_its_rule_as_owner_and_as_a_stranger(public_app, made):
    url, services, demo = public_app
    owner, stranger = made["owner"], Client(url, verbose=False)
    assert owner.session_hash != stranger.session_hash
    endpoints = set(stranger.view_api(return_format="dict", print_info=False)["named_endpoints"])
    rules = declared(demo)
    assert not [e for e in endpoints if rules.get(e) is None], "endpoints without an access rule"
    assert endpoints - set(CASES) == set(), "new endpoint(s): add their case (and rule) to this matrix"
    assert set(CASES) - endpoints == set(), "cases of endpoints the public app does not have"
    for endpoint, case in CASES.items():
        rule = rules[endpoint]
        assert rule.kind is case.kind, f"{endpoint}: declared {rule.kind}, expected {case.kind}"
        args = case.args(made)
        if case.run is not None:
            case.run(made, owner, stranger)
        elif rule.kind is Kind.ANYONE:
            assert case.check(made, call(stranger, endpoint, args)), endpoint
            assert case.check(made, call(owner, endpoint, args)), endpoint
        elif rule.kind is Kind.SHARE_LINK:  # the link is the grant: a stranger holding it may read
            assert case.check(made, call(stranger, endpoint, args)), endpoint
            refused(stranger, endpoint, case.forged(made), rule.kind, services)
        elif rule.kind is Kind.NOBODY:
            refused(stranger, endpoint, args, rule.kind, services)
            refused(owner, endpoint, args, rule.kind, services)
        else:
            refused(stranger, endpoint, args, rule.kind, services)
            assert case.check(made, call(owner, endpoint, args)), endpoint
    assert not list(Path(services.settings.user_presets_dir).glob("*.yaml")), "a preset was saved"
    assert [r.value for r in services.store.ratings()] == [1, -1]  # the owner's two; none of the stranger's
    assert [(s.score, s.comment) for s in services.store.scores()] == [(2, "meh")]
    assert [v.outcome for v in services.store.votes()] == ["tie", "tie"]


def test_a_grid_over_the_public_cell_cap_is_refused_and_nothing_stored(public_app):
    url, services, _ = public_app
    client = Client(url, verbose=False)
    before = stored(services)
    rows = json.dumps([{"prompt": f"Say {n}."} for n in range(101)])
    cap = r"the grid has 202 cells .*; at most 200 run at once here \(--max-grid-cells\)"
    with pytest.raises(Exception, match=cap):
        call(
            client,
            "/notebook_run",
            (json.dumps(["smollm2-135m-instruct", GREEDY]), rows, "{}", 1, "{prompt}", 0),
        )
    assert stored(services) == before


def readme_rules() -> dict[str, tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Public deployments: who may call what") :]
    section = section[: section.index("\n## ")]
    return {
        m.group(1): (m.group(2).strip(), m.group(3).strip())
        for m in re.finditer(r"^\| `(/\w+)` \| ([^|]+) \|([^|]*)\|$", section, re.MULTILINE)
    }


def test_the_readme_lists_every_endpoints_rule(public_app, services):
    from playground.ui.app import build_app

    _, _, demo = public_app
    rules = {**declared(build_app(services)), **declared(demo)}  # the private app also has /export
    listed = readme_rules()
    assert set(listed) == set(rules)
    for endpoint, rule in rules.items():
        who, limits = listed[endpoint]
        assert who == rule.describe(), endpoint
        if rule.spends:
            assert HOURLY[rule.spends][2] in limits, endpoint
