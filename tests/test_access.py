"""The access-rule mechanism (playground/ui/access.py): what makes a deployment public, the start-up
check, mistakes in a declaration, the share-link kind on a real server, and the hourly write
allowance. The whole app against its rules is tests/test_access_matrix.py."""

from __future__ import annotations

import dataclasses

import gradio as gr
import pytest
from gradio_client import Client

from playground.errors import PlaygroundError
from playground.services.access import Ownership, new_share_token
from playground.services.answers.limits import Gate, Limits, Visitor
from playground.settings import Settings
from playground.ui.access import Guard, Kind, check_rules, declared
from tests.conftest import free_port


@pytest.mark.parametrize(
    ("env", "argv", "public"),
    [
        ({}, [], False),
        ({"SPACE_ID": "someone/space"}, [], True),
        ({}, ["--share"], True),
        ({}, ["--public"], True),
        ({"PLAYGROUND_PUBLIC": "1"}, [], True),
    ],
)
def test_what_makes_a_deployment_public(monkeypatch, env, argv, public):
    for name in ("SPACE_ID", "PLAYGROUND_PUBLIC", "PLAYGROUND_OPEN_DATA", "PLAYGROUND_MAX_GRID_CELLS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_args(argv)
    assert settings.public is public
    assert settings.open_data is not public  # exports and replay: private only, unless --open-data
    assert settings.limits.max_grid_cells == (200 if public else 4000)
    opened = Settings.from_args([*argv, "--open-data", "--max-grid-cells", "50"])
    assert opened.open_data and opened.limits.max_grid_cells == 50 and opened.public is public


def test_ratings_per_hour_count_what_was_stored_only():
    now = [0.0]
    gate = Gate(Limits(ratings_per_hour=2), clock=lambda: now[0])
    me = Visitor("s")
    gate.spend(me, "ratings")
    failed = gate.spend(me, "ratings")
    gate.refund(failed)  # the write failed: it does not count
    gate.spend(me, "ratings")
    with pytest.raises(PlaygroundError, match=r"rated or commented 2 times .*\(2, --ratings-per-hour\)"):
        gate.spend(me, "ratings")
    gate.vote(me)  # votes are another allowance
    now[0] += 3601
    gate.spend(me, "ratings")


def test_an_endpoint_or_event_without_a_rule_stops_start_up():
    with gr.Blocks() as demo:
        button = gr.Button()
        button.click(lambda: None, api_visibility="private")

        def sneaky() -> str:
            return "hi"

        gr.api(sneaky, api_name="sneaky")
    with pytest.raises(
        PlaygroundError, match=r"needs an access rule.*none for: .*the UI event .*<lambda>"
    ) as info:
        check_rules(demo)
    assert "/sneaky tests.test_access" in str(info.value)


@pytest.fixture
def public_services(services):
    """The shared test services (real store, gate, model) as a public deployment, with their own
    ownership facts."""
    settings = dataclasses.replace(services.settings, public=True, open_data=False)
    return dataclasses.replace(services, settings=settings, access=Ownership(services.store))


@pytest.mark.slow
def test_mistakes_in_a_declaration_stop_start_up(public_services):
    guard = Guard(public_services)

    def rate(turn_id: int, request: gr.Request = None) -> dict:
        return {}

    def no_caller(turn_id: int) -> dict:
        return {}

    with pytest.raises(PlaygroundError, match="names the argument 'answer_id', which it has not"):
        guard.owner(rate, answer="answer_id", action="rate it")
    with pytest.raises(PlaygroundError, match="must take a gr.Request"):
        guard.owner(no_caller, answer="turn_id", action="rate it")
    with pytest.raises(PlaygroundError, match="an owner rule names one of"):
        guard.owner(rate, run="turn_id", action="rate it")
    with pytest.raises(PlaygroundError, match="nothing makes share links for 'notebook'"):
        guard.share_link(rate, notebook="turn_id")


@pytest.mark.slow
def test_the_real_app_refuses_to_start_when_an_endpoint_has_no_rule(services, monkeypatch):
    from playground.ui import app

    registered = app.register_data_api

    def with_a_new_endpoint(services) -> None:
        registered(services)

        def peek(conversation_id: str) -> str:
            return conversation_id

        gr.api(peek, api_name="peek")

    monkeypatch.setattr(app, "register_data_api", with_a_new_endpoint)
    with pytest.raises(PlaygroundError, match="none for: /peek "):
        app.build_app(services)


@pytest.mark.slow
def test_share_links_owner_and_nobody_rules_on_a_real_server(public_services):
    """A read by share link: the holder of the token may, a run's id or a guessed token may not."""
    links = {new_share_token(): "the saved notebook"}
    public_services.access.add_share_links("notebook", links.__contains__)
    guard = Guard(public_services)
    with gr.Blocks() as demo:

        def read(token: str) -> str:
            return links[token]

        def mine(conversation_id: str, request: gr.Request = None) -> str:
            return "yours"

        def closed() -> str:
            return "never"

        gr.api(guard.share_link(read, notebook="token"), api_name="read")
        gr.api(guard.owner(mine, conversation="conversation_id", action="read it"), api_name="mine")
        gr.api(guard.nobody(closed, "closing"), api_name="closed")
    rules = declared(demo)
    assert [rules[e].kind for e in ("/read", "/mine", "/closed")] == [
        Kind.SHARE_LINK,
        Kind.OWNER,
        Kind.NOBODY,
    ]
    check_rules(demo)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        owner, stranger = (
            Client(f"http://127.0.0.1:{port}/", verbose=False),
            Client(f"http://127.0.0.1:{port}/", verbose=False),
        )
        conversation = public_services.store.new_conversation("notebook", ["x"], owner.session_hash)
        [token] = links
        assert len(token) == 22  # 128 random bits, URL-safe
        assert stranger.predict(token, api_name="/read") == "the saved notebook"
        for forged in (conversation, new_share_token(), ""):
            with pytest.raises(Exception, match="this needs a share link of the notebook .* is not one"):
                stranger.predict(forged, api_name="/read")
        assert owner.predict(conversation, api_name="/mine") == "yours"
        with pytest.raises(Exception, match=f"conversation '{conversation}' belongs to another session"):
            stranger.predict(conversation, api_name="/mine")
        with pytest.raises(Exception, match=r"closing is turned off on this public deployment \(it is there"):
            owner.predict(api_name="/closed")
    finally:
        demo.close()
