"""ArenaService without a model: the draw, identity terms, and the battle rules on a scripted CompareService."""

import json
import random
from collections import Counter

import pytest

from playground.engine.models.presets import PresetRegistry
from playground.errors import PlaygroundError
from playground.services.answers.arena import ArenaService, identity_terms, names_itself
from playground.services.answers.chat import AnswerUpdate
from playground.store.db import Store
from playground.store.models import Vote
from tests.conftest import PRESETS

SMOL, GREEDY = "smollm2-135m-instruct", "smollm2-135m-instruct-greedy"


@pytest.fixture(scope="module")
def registry():
    return PresetRegistry.from_folders(PRESETS)


class ScriptedCompare:
    """Stands in for CompareService: each preset answers with its scripted text (or error)."""

    def __init__(self, store: Store, answers: dict[str, str], errors: dict[str, str] | None = None):
        self.store, self.answers, self.errors, self.requests = store, answers, errors or {}, []

    def start(self, presets, mode="compare", session_id=None):
        return self.store.new_conversation(mode, presets, session_id)

    def run(self, conversation_id, requests, cancel=None, on_finish=None):
        """As ``CompareService.run``: ``on_finish`` gets the final answers before the last snapshot."""
        self.requests.append(requests)
        yield [AnswerUpdate(text=self.answers[r.preset][:3]) for r in requests]
        final = [
            AnswerUpdate(text="", done=True, error=self.errors[r.preset], finish_reason="error")
            if r.preset in self.errors
            else AnswerUpdate(text=self.answers[r.preset], done=True, finish_reason="eos", turn_id=100 + i)
            for i, r in enumerate(requests)
        ]
        if on_finish is not None:
            on_finish(final)
        yield final


def make_arena(registry, tmp_path, answers=None, errors=None, **kwargs):
    store = Store(str(tmp_path / "arena.db"))
    answers = answers or {SMOL: "Hello there!", GREEDY: "Hi! How can I help?"}
    compare = ScriptedCompare(store, answers, errors)
    kwargs.setdefault("pool", [SMOL, GREEDY])
    return ArenaService(registry, compare, store, rng=random.Random(0), **kwargs), store, compare


def secret_words(registry, names):
    return [w.lower() for n in names for w in (n, registry.get(n).display_name, registry.get(n).model.id)]


def test_draw_two_different_presets_weighted_in_random_order(registry, tmp_path):
    arena, *_ = make_arena(
        registry, tmp_path, pool=None, available=lambda p: True, weights={"tulu-7b-gptq": 0}
    )
    assert "tulu-7b-gptq" not in arena.pool() and len(arena.pool()) == 6
    draws = [arena.draw() for _ in range(600)]
    assert all(a != b for a, b in draws)
    assert {a for a, _ in draws} == set(arena.pool()) == {b for _, b in draws}
    heavy, *_ = make_arena(registry, tmp_path, pool=[SMOL, GREEDY, "dclm-1b-it"], weights={"dclm-1b-it": 8})
    counts = Counter(name for _ in range(600) for name in heavy.draw())
    assert counts["dclm-1b-it"] > 500 and counts[SMOL] + counts[GREEDY] == 1200 - counts["dclm-1b-it"]


def test_default_pool_is_the_presets_whose_weights_are_here(registry, tmp_path):
    arena, *_ = make_arena(registry, tmp_path, pool=None)  # the real check: embedded always, Hub if cached
    assert {SMOL, GREEDY} <= set(arena.pool())
    lonely, *_ = make_arena(registry, tmp_path, pool=[SMOL])
    with pytest.raises(PlaygroundError, match="at least two presets"):
        lonely.new_battle("s1")
    with pytest.raises(PlaygroundError, match="unknown preset"):
        make_arena(registry, tmp_path, pool=[SMOL, "nope"])


def test_hub_presets_join_the_pool_when_their_config_is_cached(registry, tmp_path, monkeypatch):
    from huggingface_hub import constants

    sha = "0" * 40
    for repo, filename in (
        ("Deci/DeciLM-7B-instruct", "config.json"),
        ("dfurman/falcon-7b-chat-oasst1", "adapter_config.json"),
    ):
        cached = tmp_path / f"models--{repo.replace('/', '--')}"
        (cached / "snapshots" / sha).mkdir(parents=True)
        (cached / "snapshots" / sha / filename).write_text("{}")
        (cached / "refs").mkdir()
        (cached / "refs" / "main").write_text(sha)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    arena, *_ = make_arena(registry, tmp_path, pool=None)
    assert sorted(arena.pool()) == sorted([SMOL, GREEDY, "decilm-7b-instruct", "falcon-7b-chat-oasst1"])


def test_identity_terms_and_self_naming(registry):
    terms = {name: {t.lower() for t in identity_terms(registry.get(name))} for name in registry.names()}
    assert {"smollm", "smollm2", "hugging face", "huggingfacetb"} <= terms[SMOL]
    assert {"falcon", "tii", "dfurman"} <= terms["falcon-7b-chat-oasst1"]
    assert {"deci", "decilm"} <= terms["decilm-7b-instruct"]
    assert {"tulu", "ai2", "allen institute"} <= terms["tulu-7b-gptq"]
    assert {"upstage", "llama"} <= terms["llama-65b-instruct"] and "dclm" in terms["dclm-1b-it"]
    assert not {"instruct", "135m", "7b", "chat", "it"} & set().union(*terms.values())
    smol, falcon, deci = (registry.get(n) for n in (SMOL, "falcon-7b-chat-oasst1", "decilm-7b-instruct"))
    assert names_itself("I'm SmolLM, trained by HuggingFace.", smol)
    assert names_itself("I was made by the hugging-face team", smol)
    assert names_itself("I am Falcon, a model from the Technology Innovation Institute.", falcon)
    assert not names_itself("Hello! How can I help you today?", smol)
    assert not names_itself("I am Falcon.", smol)  # another model's name is not a self-reveal
    assert not names_itself("The decimal point.", deci)


def test_battle_rules_multi_turn_and_the_reveal(registry, tmp_path):
    arena, store, compare = make_arena(registry, tmp_path)
    battle = arena.new_battle("s1")
    shown = [json.dumps(arena.view(battle, "s1").as_json())]
    with pytest.raises(PlaygroundError, match="after both answers have finished: nothing has been answered"):
        arena.vote(battle, "s1", "0")
    stream = arena.send(battle, "s1", "Say hi.")
    shown.append(json.dumps(next(stream).as_json()))
    with pytest.raises(
        PlaygroundError, match="after both answers have finished: Model A and Model B are still"
    ):
        arena.vote(battle, "s1", "0")
    with pytest.raises(PlaygroundError, match="still answering"):
        list(arena.send(battle, "s1", "again"))
    views = list(stream)
    shown += [json.dumps(v.as_json()) for v in views]
    assert views[-1].can_vote and views[-1].round == 1 and not any(v.can_vote for v in views[:-1])
    second = list(arena.send(battle, "s1", "And now?"))  # keep talking before voting
    shown += [json.dumps(v.as_json()) for v in second]
    assert [m.role for m in compare.requests[-1][0].messages] == ["user", "assistant", "user"]
    assert len(second[-1].chats[0]) == 4 and arena.turn_ids(battle, 1) == [101, 101]

    for foreign in ("s2", None):
        with pytest.raises(PlaygroundError, match="not one of this session's battles"):
            arena.vote(battle, foreign, "0")
    with pytest.raises(PlaygroundError, match="vote must be one of"):
        arena.vote(battle, "s1", "A")
    reveal = arena.vote(battle, "s1", "all_bad")
    names = [m["preset"] for m in reveal.models]
    assert sorted(names) == sorted([SMOL, GREEDY]) and not reveal.identity_leaked
    leaks = [w for w in secret_words(registry, names) for text in shown if w in text.lower()]
    assert leaks == []
    assert set(json.dumps(reveal.as_json()).lower().split('"')) >= set(secret_words(registry, names))
    with pytest.raises(PlaygroundError, match="already has a vote"):
        arena.vote(battle, "s1", "0")
    with pytest.raises(PlaygroundError, match="battle is over"):
        list(arena.send(battle, "s1", "more"))
    [vote] = store.votes()
    assert (vote.kind, vote.turn_index, vote.outcome, vote.models) == ("arena", 0, "all_bad", names)
    assert vote.anonymous and not vote.identity_leaked and store.count(Vote) == 1


def test_self_naming_answer_marks_the_vote_and_errors_are_redacted(registry, tmp_path):
    answers = {SMOL: "I'm SmolLM, trained by Hugging Face.", GREEDY: "Hi!"}
    arena, store, _ = make_arena(registry, tmp_path, answers=answers)
    battle = arena.new_battle("s1")
    assert list(arena.send(battle, "s1", "Who are you?"))[-1].can_vote  # still playable
    assert arena.vote(battle, "s1", "1").identity_leaked and store.votes()[0].identity_leaked

    error = "cannot load HuggingFaceTB/SmolLM2-135M-Instruct@embedded (smollm2-135m-instruct): needs 9 GB, 2 GB free"
    broken, *_ = make_arena(registry, tmp_path / "b", errors={SMOL: error})
    battle = broken.new_battle("s1")
    final = list(broken.send(battle, "s1", "Hi"))[-1]
    side = 0 if final.errors[0] else 1
    assert final.errors[side] == "cannot load [hidden]@embedded ([hidden]): needs 9 GB, 2 GB free"
    assert (
        final.errors[1 - side] is None
        and not final.can_vote
        and final.chats[side][-1]["content"].startswith("⚠️")
    )
    with pytest.raises(PlaygroundError, match="nothing has been answered"):
        broken.vote(battle, "s1", "tie")
