"""The side-by-side conversation service (the state machine behind the Compare tab and /compare), on
the real SmolLM2 model and a real SQLite file: a stopped answer is a finished round, Regenerate
re-runs the last round, Undo removes one, the next message carries the whole history and the next
turn index, and the conversation comes back from the database."""

from __future__ import annotations

import threading
import time

import pytest

from playground.engine.models.templates import parse_messages
from playground.errors import PlaygroundError
from playground.services.answers.conversation import Conversations
from playground.services.answers.rounds import ColumnSetup, round_index

pytestmark = pytest.mark.slow

GREEDY = "smollm2-135m-instruct-greedy"
SHORT = [ColumnSetup(GREEDY, {"max_new_tokens": 4}), ColumnSetup(GREEDY, {"max_new_tokens": 5})]
LONG = [ColumnSetup(GREEDY, {"max_new_tokens": 400}), ColumnSetup(GREEDY, {"max_new_tokens": 400})]
OWNER = "browser-key-of-test"


def last(views):
    return list(views)[-1]


def stop_at_first_text(views, cancel: threading.Event):
    view = None
    for view in views:
        if any(a is not None and a.text for a in view.rounds[-1].answers):
            cancel.set()
    return view


def stored(services, conversation_id):
    return sorted(services.store.turns(conversation_id), key=lambda t: t.id)


def test_send_stop_regenerate_undo_send_keeps_the_conversation(services):
    conversations = services.conversations
    first = last(conversations.send(None, OWNER, "Name a color.", SHORT))
    cid = first.conversation_id
    assert len(first.rounds) == 1 and first.can_vote and not first.running
    assert all(a.done and a.turn_id for a in first.rounds[0].answers)

    cancel = threading.Event()
    stopped = stop_at_first_text(
        conversations.send(cid, OWNER, "Tell a very long story.", LONG, cancel), cancel
    )
    assert len(stopped.rounds) == 2, "a stopped round stays in the conversation"
    assert [a.finish_reason for a in stopped.rounds[1].answers] == ["stopped", "stopped"]
    assert all(line.endswith("stopped") for line in (stopped.stats_line(0), stopped.stats_line(1)))
    stopped_ids = stopped.turn_ids(0)

    regenerated = last(conversations.regenerate(cid, OWNER, SHORT))
    assert len(regenerated.rounds) == 2 and regenerated.rounds[1].user == "Tell a very long story."
    assert regenerated.turn_ids(0)[1] != stopped_ids[1] and regenerated.turn_ids(0)[0] == stopped_ids[0]

    undone = conversations.undo(cid, OWNER)
    assert len(undone.rounds) == 1 and undone.turn_ids(0) == first.turn_ids(0)
    assert undone.stats_line(0) == first.stats_line(0)

    after = last(conversations.send(cid, OWNER, "Name a fruit.", SHORT))
    assert [r.user for r in after.rounds] == ["Name a color.", "Name a fruit."]

    turns = stored(services, cid)
    assert [(t.turn_index, t.finish_reason == "stopped") for t in turns if t.column == 0] == [
        (0, False),
        (1, True),  # the stopped round, stored with its text
        (1, False),  # regenerated: the same round, the same index
        (1, False),  # after Undo the next message is round 1 again
    ]
    for column in (0, 1):
        regen, fruit = [t for t in turns if t.column == column][2:]
        color = first.rounds[0].answers[column].text.strip()
        assert regen.messages == [
            {"role": "user", "content": "Name a color."},
            {"role": "assistant", "content": color},
            {"role": "user", "content": "Tell a very long story."},
        ]
        assert fruit.messages[:2] == regen.messages[:2] and fruit.messages[-1]["content"] == "Name a fruit."
    # what the conversation is now is stored: a fresh service (a restarted app) reads it back
    again = Conversations(services.compare, services.store).restore(cid, OWNER)
    assert [r.user for r in again.rounds] == ["Name a color.", "Name a fruit."]
    assert again.turn_ids(1) == after.turn_ids(1) and again.stats_line(1) == after.stats_line(1)
    assert Conversations(services.compare, services.store).restore(cid, "someone-else").rounds == []


def test_a_round_whose_reader_went_away_is_finished_by_its_workers(services):
    """A page that is gone never reads its stream again (Gradio drops it without closing it): the
    round still ends, is stored and kept, once its run is cancelled."""
    conversations = services.conversations
    cid = last(conversations.send(None, OWNER, "Say one word.", SHORT)).conversation_id
    cancel = threading.Event()
    stream = conversations.send(cid, OWNER, "Tell a very long story.", LONG, cancel)
    for view in stream:
        if view.rounds[-1].answers[0].text:
            break  # the reader stops reading, and keeps the generator open
    assert conversations.view(cid, OWNER).running
    cancel.set()  # what the page's unload does (RunRegistry.cancel_session)
    deadline = time.monotonic() + 120
    while conversations.view(cid, OWNER).running:
        assert time.monotonic() < deadline, "the round never finished"
        time.sleep(0.05)
    view = conversations.view(cid, OWNER)
    assert len(view.rounds) == 2 and {a.finish_reason for a in view.rounds[1].answers} == {"stopped"}
    assert services.store.rounds(cid)[1]["turns"] == view.turn_ids(0)[1:] + view.turn_ids(1)[1:]
    stream.close()


def test_the_api_rule_is_the_same_rule_and_truncates(services):
    conversations = services.conversations
    ask = [{"role": "user", "content": "Name a cat."}]
    first = last(conversations.answer(None, "api-client", SHORT, [parse_messages(ask)] * 2))
    cid = first.conversation_id
    answer = first.rounds[0].answers[0].text.strip()
    second = [*ask, {"role": "assistant", "content": answer}, {"role": "user", "content": "And a dog?"}]
    assert round_index(parse_messages(second)) == 1
    view = last(conversations.answer(cid, "api-client", SHORT, [parse_messages(second)] * 2))
    assert len(view.rounds) == 2
    again = last(conversations.answer(cid, "api-client", SHORT, [parse_messages(ask)] * 2))  # rewound
    assert len(again.rounds) == 1
    assert sorted(t.turn_index for t in services.store.turns(cid)) == [0, 0, 0, 0, 1, 1]
    with pytest.raises(PlaygroundError, match="same number of user messages"):
        last(conversations.answer(cid, "api-client", SHORT, [parse_messages(ask), parse_messages(second)]))
    with pytest.raises(PlaygroundError, match="belongs to another session"):
        last(conversations.answer(cid, "another-client", SHORT, [parse_messages(ask)] * 2))


def test_votes_close_the_round_and_nothing_to_undo_is_said(services):
    conversations = services.conversations
    with pytest.raises(PlaygroundError, match="nothing to regenerate yet"):
        last(conversations.regenerate(None, OWNER, SHORT))
    with pytest.raises(PlaygroundError, match="nothing to undo yet"):
        conversations.undo(None, OWNER)
    with pytest.raises(PlaygroundError, match="the message is empty"):
        last(conversations.send(None, OWNER, "   ", SHORT))
    view = last(conversations.send(None, OWNER, "Name a bird.", SHORT))
    assert view.can_vote
    _vote_id, voted = conversations.vote(view.conversation_id, OWNER, "tie")
    assert not voted.can_vote and voted.voted == {0: "tie"}
    with pytest.raises(PlaygroundError, match="already has a vote"):
        conversations.vote(view.conversation_id, OWNER, "0")
    undone = conversations.undo(view.conversation_id, OWNER)
    assert undone.rounds == [] and not undone.can_vote
