"""The arena through gradio_client against the running app and the real SmolLM2 model: the vote rules
(one vote, only after both answers, only by the battle's own session) and identity secrecy."""

import json

import pytest
from gradio_client import Client

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clients(live_app):
    return Client(live_app, verbose=False), Client(live_app, verbose=False)


def identities(services, presets):
    return [
        w
        for p in presets
        for w in (p, services.registry.get(p).display_name, services.registry.get(p).model.id)
    ]


def test_battle_rules_and_secrecy(clients, services):
    player, stranger = clients
    assert player.session_hash != stranger.session_hash
    names = set(player.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {"/arena_new", "/arena_send", "/arena_vote", "/arena_stop", "/leaderboard"} <= names

    new = player.predict(api_name="/arena_new")
    battle = new["battle_id"]
    assert new["Model A"] == new["Model B"] == "" and not new["can_vote"]
    job = player.submit(battle, "Say hi.", api_name="/arena_send")
    with pytest.raises(Exception, match="vote after both answers have finished"):
        player.predict(battle, "0", api_name="/arena_vote")
    with pytest.raises(Exception, match="not one of this session's battles"):
        stranger.predict(battle, "0", api_name="/arena_vote")
    items = list(job)
    final = job.result()
    assert final["can_vote"] and final["round"] == 1 and all(final["finished"].values())
    assert (
        final["Model A"].strip()
        and final["Model B"].strip()
        and final["errors"] == {"Model A": None, "Model B": None}
    )
    assert not any(item["can_vote"] for item in items[:-1])
    with pytest.raises(Exception, match="not one of this session's battles"):
        stranger.predict(battle, "1", api_name="/arena_vote")
    with pytest.raises(Exception, match="not one of this session's battles"):
        stranger.predict(battle, "Who are you?", api_name="/arena_send")

    reveal = player.predict(battle, "0", api_name="/arena_vote")
    presets = [reveal["Model A"]["preset"], reveal["Model B"]["preset"]]
    assert presets[0] != presets[1] and set(presets) <= set(services.arena.pool())
    secrets = identities(services, presets)
    for shown in [new, *items, final]:
        text = json.dumps(shown).lower()
        assert not [s for s in secrets if s.lower() in text], shown
    assert all(s in json.dumps(reveal) for s in secrets)
    with pytest.raises(Exception, match="already has a vote"):
        player.predict(battle, "tie", api_name="/arena_vote")
    with pytest.raises(Exception, match="battle is over"):
        player.predict(battle, "More?", api_name="/arena_send")

    [vote] = [v for v in services.store.votes(("arena",)) if v.id == reveal["vote_id"]]
    assert (vote.outcome, vote.models, vote.anonymous) == ("0", presets, True)
    assert vote.identity_leaked == reveal["identity_leaked"]
    turns = services.store.turns(vote.conversation_id)
    assert sorted((t.column, t.preset_name) for t in turns) == [(0, presets[0]), (1, presets[1])]
    for t in turns:  # the preset's defaults, with the seed the answer ran with
        assert t.params == services.registry.get(t.preset_name).params.model_dump() | {"seed": t.seed}

    rows = player.predict(False, True, "", "", api_name="/leaderboard")
    assert set(presets) <= {r["model"] for r in rows}
    assert all({"rating", "ci_low", "ci_high", "elo", "win_rate", "median_ttft_s"} <= set(r) for r in rows)
