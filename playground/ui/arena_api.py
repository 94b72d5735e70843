"""Arena and leaderboard API endpoints (stable ``api_name``s), each a thin call into a service.

Battles are bound to the caller's session (each gradio_client ``Client`` has its own), and
nothing before ``/arena_vote`` returns the names of the models in a battle.
"""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from playground.container import Services
from playground.services.leaderboard.service import LeaderboardFilters
from playground.ui.access import Guard
from playground.ui.common import GENERATION, generation_slot, session_id, user_errors, visitor


def register_arena_api(services: Services) -> None:
    arena, guard = services.arena, Guard(services)

    @user_errors
    def arena_new(request: gr.Request = None) -> dict:
        """Start a battle between two anonymous models; returns its id and an empty conversation."""
        session = session_id(request)
        return arena.view(arena.new_battle(session), session).as_json()

    @user_errors
    @generation_slot(services.gate)
    def arena_send(battle_id: str, message: str, request: gr.Request = None) -> Iterator[dict]:
        """Send a message to both models of a battle; streams their answers as "Model A" / "Model B"."""
        for view in arena.send(battle_id, session_id(request), message):
            yield view.as_json()

    @user_errors
    def arena_vote(battle_id: str, outcome: str, request: gr.Request = None) -> dict:
        """Vote once, after both answers have finished: "0" (A), "1" (B), "tie" or "all_bad".
        Returns the vote id, both models' names and whether an answer named its own model."""
        services.gate.vote(visitor(request))
        return arena.vote(battle_id, session_id(request), outcome).as_json()

    @user_errors
    def arena_stop(battle_id: str, request: gr.Request = None) -> dict:
        """Stop both answers of a battle that are still being generated."""
        return {"stopped": arena.stop(battle_id, session_id(request))}

    @user_errors
    def leaderboard(
        include_compare: bool = False, include_leaked: bool = False, since: str = "", until: str = ""
    ) -> list[dict]:
        """The leaderboard as JSON rows. since/until: YYYY-MM-DD (UTC, both days included)."""
        filters = LeaderboardFilters.parse(include_compare, include_leaked, since, until)
        return services.leaderboard.compute(filters).rows()

    gr.api(guard.anyone(arena_new), api_name="arena_new")
    limit = services.settings.limits.total_generations
    gr.api(
        guard.owner(arena_send, battle="battle_id", action="play it"),
        api_name="arena_send",
        concurrency_id=GENERATION,
        concurrency_limit=limit,
    )
    gr.api(guard.owner(arena_vote, battle="battle_id", action="vote on it"), api_name="arena_vote")
    gr.api(guard.owner(arena_stop, battle="battle_id", action="stop it"), api_name="arena_stop")
    gr.api(guard.anyone(leaderboard), api_name="leaderboard")
