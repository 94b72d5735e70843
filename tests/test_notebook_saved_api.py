"""Saved notebooks through the real app process and gradio_client, on a public deployment (SPACE_ID
set): a notebook saved and run, the app killed (SIGKILL) and restarted, reopened by its link with every
cell; another session sees it read-only, cannot run or edit it, and may duplicate it; the judge and
the imports through their endpoints."""

from __future__ import annotations

import json

import pytest
from gradio_client import Client

from playground.store.db import Store
from playground.store.models import JudgeVerdict, Vote
from tests.appproc import AppProcess

pytestmark = pytest.mark.slow

GREEDY, SAMPLED = "smollm2-135m-instruct-greedy", "smollm2-135m-instruct"
DOCUMENT = {
    "name": "greetings",
    "template": "Say hello to {name} in one short sentence.",
    "rows": [{"name": "Ada", "expected": "Ada"}, {"name": "Linus", "expected": "Linus"}],
    "models": [GREEDY, SAMPLED],
    "max_new_tokens": 8,
    "checks": [{"type": "contains", "value": "{expected}"}, {"type": "length", "max": 200}],
    "judge": {"preset": GREEDY, "mode": "pairwise", "max_new_tokens": 6},
}


def test_a_saved_notebook_survives_a_kill_and_opens_by_link_read_only_for_others(tmp_path):
    db = tmp_path / "notebooks.db"
    app = AppProcess(str(db), env={"SPACE_ID": "someone/playground"}).start()
    try:
        owner = Client(app.url, verbose=False)
        created = owner.predict("", json.dumps(DOCUMENT), api_name="/notebook_save")
        notebook_id = created["id"]
        assert created["editable"] and created["runs"] == [] and len(notebook_id) == 32
        job = owner.submit(notebook_id, api_name="/notebook_run_saved")
        items = list(job)
        ran = items[-1]
        assert ran["version"] == 1 and ran["grid"]["finished"] and len(ran["grid"]["cells"]) == 4
        assert all(c["status"] == "done" and c["turn_id"] for c in ran["grid"]["cells"])
        assert ran["scores"]["checks"] == ['contains "{expected}"', "length 0–200 chars"]

        app.kill()  # SIGKILL: the notebook, its version and its cells live on only in the database
        app.start()

        stranger = Client(app.url, verbose=False)
        opened = stranger.predict(notebook_id, 0, api_name="/notebook_open")
        assert opened["notebook"]["document"]["rows"] == DOCUMENT["rows"]
        assert opened["notebook"]["editable"] is False
        assert [r["version"] for r in opened["notebook"]["runs"]] == [1]
        keep = ("row", "model", "sample", "status", "text", "turn_id", "finish_reason", "seed")
        assert [{k: c[k] for k in keep} for c in opened["version"]["grid"]["cells"]] == [
            {k: c[k] for k in keep} for c in ran["grid"]["cells"]
        ]
        assert opened["version"]["scores"] == ran["scores"]
        assert stranger.predict(api_name="/notebook_list") == []  # public: a stranger lists only their own

        with pytest.raises(
            Exception, match="belongs to another session; .* only the session that made it can run it"
        ):
            stranger.submit(notebook_id, api_name="/notebook_run_saved").result()
        with pytest.raises(Exception, match="belongs to another session; .* can edit it"):
            stranger.predict(notebook_id, json.dumps({**DOCUMENT, "name": "mine"}), api_name="/notebook_save")
        with pytest.raises(Exception, match="belongs to another session; .* can judge it"):
            stranger.submit(notebook_id, 1, "", api_name="/notebook_judge").result()
        with pytest.raises(Exception, match="belongs to another session; .* can delete it"):
            stranger.predict(notebook_id, api_name="/notebook_delete")
        copy = stranger.predict(notebook_id, "my copy", api_name="/notebook_duplicate")
        assert (
            copy["editable"]
            and copy["id"] != notebook_id
            and copy["document"]["checks"] == DOCUMENT["checks"]
        )
        assert [n["id"] for n in stranger.predict(api_name="/notebook_list")] == [copy["id"]]

        # the creator's session (the same client, across the restart) still may judge its notebook
        judged = list(owner.submit(notebook_id, 1, "", api_name="/notebook_judge"))[-1]
        assert judged["finished"] and judged["total"] == 4 and len(judged["verdicts"]) == 2
        assert all(len(v["calls"]) == 2 and v["outcome"] in ("a", "b", "tie") for v in judged["verdicts"])

        imported = stranger.predict(
            "tests.yaml",
            "tests:\n  - vars: {prompt: Hi}\n    assert: [{type: icontains, value: hello}]\n",
            api_name="/notebook_import",
        )
        assert imported["rows"] == [{"prompt": "Hi"}] and imported["checks"][0]["type"] == "contains"
        with pytest.raises(Exception, match=r"tests.yaml, line 3: assertion type 'similar' is not supported"):
            stranger.predict(
                "tests.yaml",
                "tests:\n  - vars: {prompt: Hi}\n    assert: [{type: similar, value: hello}]\n",
                api_name="/notebook_import",
            )
        with pytest.raises(Exception, match=r"python checks run code .* public"):  # a Space: no python checks
            stranger.predict(
                "",
                json.dumps({**DOCUMENT, "checks": [{"type": "python", "value": "True"}]}),
                api_name="/notebook_save",
            )
    finally:
        app.stop()
    store = Store(str(db))
    assert store.count(JudgeVerdict) == 2 and store.count(Vote) == 0  # verdicts are not votes
