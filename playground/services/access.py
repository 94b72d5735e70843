"""Who owns what, for the access rules of a public deployment. No Gradio.

Every stored conversation (Compare, Arena, API, Notebook) records the session that made it, and so
does every arena battle; an answer belongs to its conversation's session. ``Ownership.check`` refuses
a session that is not the owner, whatever id it sends: an id alone grants nothing. Reading another
visitor's data goes only through a share link: a token of 128 random bits (``new_share_token``),
never the id of a run or a conversation, resolved by the feature that made it (``add_share_links``).
A feature that keeps its own owners (saved notebooks: a hash of the visitor's key) says who owns
what through ``add_owned``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from playground.errors import PlaygroundError
from playground.store.db import Store

OwnedBy = Callable[[str, str | None], tuple[bool, bool]]  # (id, session) -> (stored, that session's)
OWNED = ("answer", "conversation", "notebook", "battle")  # what an owner rule can name (and ``add_owned``'s)
SHARE_TOKEN_BYTES = 16  # 128 random bits


def new_share_token() -> str:
    """A share link's token: 128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(SHARE_TOKEN_BYTES)


class Ownership:
    def __init__(self, store: Store):
        self.store = store
        self._share_links: dict[str, Callable[[str], bool]] = {}
        self._owned: dict[str, OwnedBy] = {}

    def add_owned(self, what: str, owned_by: OwnedBy) -> None:
        """Let owner rules name ``what``, whose owners its feature keeps: ``owned_by(id, session)``."""
        self._owned[what] = owned_by

    def knows(self, what: str) -> bool:
        return what in OWNED or what in self._owned

    def owner(self, what: str, ident) -> tuple[bool, str | None]:
        """Whether ``what`` (``OWNED``) with id ``ident`` is stored, and the session it belongs to."""
        if what == "answer":
            try:
                return self.store.turn_owner(int(ident))
            except (TypeError, ValueError):
                return False, None
        if what in ("conversation", "notebook"):
            conversation = self.store.conversation(str(ident))
            if conversation is None or (what == "notebook" and conversation.mode != "notebook"):
                return False, None
            return True, conversation.session_id
        if what == "battle":
            battle = self.store.battle(str(ident))
            return (battle is not None, battle.session_id if battle else None)
        raise PlaygroundError(f"unknown kind of owned data {what!r}; known: {', '.join(OWNED)}")

    def check(self, what: str, ident, session: str | None, action: str) -> None:
        """Refuse ``session`` to ``action`` (e.g. "rate it") ``what`` ``ident`` unless it made it. An empty
        id names nothing (the call makes a new one); an id that is not stored is left to the call,
        which says so."""
        if ident in (None, ""):
            return
        if what in self._owned:
            found, mine = self._owned[what](str(ident), session)
        else:
            found, owner = self.owner(what, ident)
            mine = owner is not None and owner == session
        if found and not mine:
            raise PlaygroundError(
                f"{what.replace('_', ' ')} {ident!r} belongs to another session; on this public deployment only the "
                f"session that made it can {action}"
            )

    def add_share_links(self, what: str, is_link: Callable[[str], bool]) -> None:
        """Let holders of a share link read ``what``: ``is_link(token)`` says whether a token is a live
        link of that kind (the feature that makes the links keeps them)."""
        self._share_links[what] = is_link

    def shares(self, what: str) -> bool:
        return what in self._share_links

    def check_link(self, what: str, token) -> None:
        """Refuse a token that is not a live share link of ``what``."""
        if what not in self._share_links:
            raise PlaygroundError(f"there are no share links for {what} here")
        if not isinstance(token, str) or not token or not self._share_links[what](token):
            raise PlaygroundError(
                f"this needs a share link of the {what.replace('_', ' ')} (a token its owner made); {token!r} is not one "
                "(a run's or a conversation's id is not a share link)"
            )
