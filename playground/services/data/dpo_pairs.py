"""DPO preference pairs ``{prompt, chosen, rejected, ...}`` from votes and from 👍/👎 ratings. No Gradio.

From votes (``source: "vote"``):

* A vote's outcome is the winning column's index ("0", "1", …), ``tie`` or ``all_bad``; ties and
  all-bad votes give no pair. The winning column's answer is ``chosen`` and each other column's
  answer of the same round is a ``rejected`` (a 4-column round gives 3 pairs).
* Compare votes judge one round (``turn_index``). A column's answer is its latest one stored up to
  the vote (so an answer regenerated after the vote is not taken for the one judged).
* Arena votes are cast once per battle (``turn_index`` 0) and judge the whole battle, every
  round of it. So a battle of *n* rounds gives *n* pairs, round *k* pairing the two sides' answers of
  round *k*, taken from the battle's record of finished rounds (rounds stopped or failed on one side
  are not in it).

From ratings (``source: "rating"``): the latest rating of every answer counts. A liked (👍) and a
disliked (👎) answer to exactly the same ``messages`` (the whole conversation up to the answer, in
any conversation, from any tab) make a pair; all liked × disliked combinations of one messages
list are paired. A pair already given by a vote is not repeated.

Every row holds exactly four keys, the same for every row, so trainers read the file one way every
time (TRL's ``is_conversational`` looks at one arbitrary key among ``prompt``, ``chosen``,
``rejected``, ``completion`` and ``messages``; a ``messages`` column next to string prompts made the
same file "conversational" under some hash seeds, and EOS was then not appended):

* ``prompt``, ``chosen``, ``rejected``: by default strings (TRL's "standard" format, the one it
  documents first): ``prompt`` is the chosen answer's rendered prompt (the exact string its model
  saw, with its template and system prompt) and ``chosen`` / ``rejected`` the two answers' text.
  With ``conversational`` they are message lists (TRL's "conversational" format): ``prompt`` the
  system prompt the chosen answer's model saw and the conversation it answered, ``chosen`` /
  ``rejected`` one assistant message each.
* ``metadata``: everything else, under one key that TRL and ``datasets`` leave alone: ``messages``
  / ``system_prompt`` (what the chosen prompt was rendered from), ``rejected_prompt`` /
  ``rejected_messages`` / ``rejected_system_prompt`` (the rejected answer's), ``same_context``
  (messages and system prompt equal: in a multi-round side-by-side each side keeps its own history,
  so from round 2 on, and whenever the system prompts differ, the two answers did not see the same
  context; filter on it for trainers that assume one shared prompt), ``chosen_model`` /
  ``rejected_model`` (preset names), ``*_model_id``, ``*_finish_reason``, ``conversation_id`` /
  ``rejected_conversation_id``, ``chosen_turn_id`` / ``rejected_turn_id``, ``turn_index``, ``source``,
  ``vote_id`` / ``vote_kind`` / ``identity_leaked`` (votes) and ``chosen_rating_id`` /
  ``rejected_rating_id`` (ratings); every key in every row (``null`` where it does not apply).

Answers that failed (finish reason ``error``, which includes a stream the server cut off) or are
empty are never paired, nor two identical texts.

Streaming: votes are read in batches and each vote's answers when it is paired; rated answers are
read ordered by their messages, so one messages group is in memory at a time. The only thing kept
across the whole export is the set of (chosen, rejected) answer ids paired by votes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Select, Text, cast, func, select
from sqlalchemy.orm import Session

from playground.services.data.sharegpt import context_messages
from playground.store.models import Battle, Conversation, Rating, Turn, Vote

BATCH = 200
NO_PAIR = ("tie", "all_bad")


def dpo_records(
    session: Session, restrict: Callable[[Select], Select] = lambda q: q, conversational: bool = False
) -> Iterator[dict[str, Any]]:
    """Vote pairs, then rating pairs; ``restrict`` filters a query that joins ``conversations``."""
    seen: set[tuple[int, int]] = set()
    for pair in vote_pairs(session, restrict, conversational):
        seen.add((pair["metadata"]["chosen_turn_id"], pair["metadata"]["rejected_turn_id"]))
        yield pair
    for pair in rating_pairs(session, restrict, conversational):
        if (pair["metadata"]["chosen_turn_id"], pair["metadata"]["rejected_turn_id"]) not in seen:
            yield pair


def vote_pairs(
    session: Session, restrict: Callable[[Select], Select] = lambda q: q, conversational: bool = False
) -> Iterator[dict]:
    query = restrict(select(Vote).join(Conversation, Conversation.id == Vote.conversation_id))
    query = query.where(Vote.outcome.not_in(NO_PAIR)).order_by(Vote.id)
    for vote in session.scalars(query.execution_options(yield_per=BATCH)):
        try:
            winner = int(vote.outcome)
        except ValueError:
            continue
        for answers in voted_rounds(session, vote):
            chosen = answers.get(winner)
            for column in sorted(answers):
                if column != winner and pairable(chosen, answers[column]):
                    yield pair_record(chosen, answers[column], "vote", conversational, vote=vote)


def voted_rounds(session: Session, vote: Vote) -> Iterator[dict[int, Turn]]:
    """The answers a vote judged, one ``{column: turn}`` per round."""
    if vote.kind == "arena":
        battle = session.scalars(select(Battle).where(Battle.conversation_id == vote.conversation_id)).first()
        if battle is not None and any(battle.turn_ids):
            ids = [turn_id for side in battle.turn_ids for turn_id in side]
            turns = {t.id: t for t in session.scalars(select(Turn).where(Turn.id.in_(ids)))}
            for round_index in range(min(len(side) for side in battle.turn_ids)):
                yield {s: turns.get(side[round_index]) for s, side in enumerate(battle.turn_ids)}
            return
        rounds = session.scalars(
            select(Turn.turn_index).where(Turn.conversation_id == vote.conversation_id).distinct()
        )
        indexes = sorted(rounds)
    else:
        indexes = [vote.turn_index]
    for round_index in indexes:
        query = select(Turn).where(
            Turn.conversation_id == vote.conversation_id,
            Turn.turn_index == round_index,
            Turn.finished_at <= vote.created_at,
        )
        latest: dict[int, Turn] = {}
        for turn in session.scalars(query.order_by(Turn.id)):
            latest[turn.column] = turn
        yield latest


def rating_pairs(
    session: Session, restrict: Callable[[Select], Select] = lambda q: q, conversational: bool = False
) -> Iterator[dict]:
    latest = (
        select(Rating.turn_id, func.max(Rating.id).label("rating_id")).group_by(Rating.turn_id).subquery()
    )
    key = cast(Turn.messages, Text).label("messages_key")  # one group per identical conversation
    query = restrict(
        select(Turn, Rating, key)
        .join(latest, latest.c.turn_id == Turn.id)
        .join(Rating, Rating.id == latest.c.rating_id)
        .join(Conversation, Conversation.id == Turn.conversation_id)
    ).order_by(key, Turn.id)
    group: list[tuple[Turn, Rating]] = []
    current = None
    for turn, rating, messages in session.execute(query.execution_options(yield_per=BATCH)):
        if messages != current:
            yield from _group_pairs(group, conversational)
            group, current = [], messages
        group.append((turn, rating))
    yield from _group_pairs(group, conversational)


def _group_pairs(group: list[tuple[Turn, Rating]], conversational: bool) -> Iterator[dict]:
    liked = [(t, r) for t, r in group if r.value > 0]
    disliked = [(t, r) for t, r in group if r.value < 0]
    for chosen, chosen_rating in liked:
        for rejected, rejected_rating in disliked:
            if pairable(chosen, rejected):
                yield pair_record(
                    chosen, rejected, "rating", conversational, ratings=(chosen_rating, rejected_rating)
                )


def usable(turn: Turn | None) -> bool:
    return (
        turn is not None
        and turn.finish_reason != "error"
        and turn.error is None
        and bool(turn.output.strip())
    )


def pairable(chosen: Turn | None, rejected: Turn | None) -> bool:
    return usable(chosen) and usable(rejected) and chosen.output.strip() != rejected.output.strip()


def pair_record(
    chosen: Turn,
    rejected: Turn,
    source: str,
    conversational: bool = False,
    vote: Vote | None = None,
    ratings: tuple | None = None,
) -> dict[str, Any]:
    if conversational:
        prompt: Any = context_messages(chosen)
        answers: tuple[Any, Any] = tuple(
            [{"role": "assistant", "content": t.output}] for t in (chosen, rejected)
        )
    else:
        prompt, answers = chosen.prompt, (chosen.output, rejected.output)
    return {
        "prompt": prompt,
        "chosen": answers[0],
        "rejected": answers[1],
        "metadata": {
            "messages": chosen.messages,
            "system_prompt": chosen.system_prompt,
            "same_context": chosen.messages == rejected.messages
            and chosen.system_prompt == rejected.system_prompt,
            "rejected_prompt": rejected.prompt,
            "rejected_messages": rejected.messages,
            "rejected_system_prompt": rejected.system_prompt,
            "chosen_model": chosen.preset_name,
            "rejected_model": rejected.preset_name,
            "chosen_model_id": chosen.model_id,
            "rejected_model_id": rejected.model_id,
            "chosen_finish_reason": chosen.finish_reason,
            "rejected_finish_reason": rejected.finish_reason,
            "source": source,
            "conversation_id": chosen.conversation_id,
            "rejected_conversation_id": rejected.conversation_id,
            "turn_index": chosen.turn_index,
            "chosen_turn_id": chosen.id,
            "rejected_turn_id": rejected.id,
            "vote_id": vote.id if vote else None,
            "vote_kind": vote.kind if vote else None,
            "identity_leaked": vote.identity_leaked if vote else None,
            "chosen_rating_id": ratings[0].id if ratings else None,
            "rejected_rating_id": ratings[1].id if ratings else None,
        },
    }
