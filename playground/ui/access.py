"""Who may call each API endpoint and UI event on a public deployment: one rule per event, declared
where it is registered, enforced here, and checked at start-up (the app refuses to start if an
event has none).

A public deployment is a Space (``SPACE_ID``), ``--share`` or ``--public``; where the app is private
every rule lets the one user through, as before. The rule kinds:

- **anyone**: anyone may call it (it reads shared data, or makes something new for the caller);
- **owner**: only the session that made what the call names (an answer, a conversation, a notebook
  run or a battle, by the argument the rule points at); with no argument, the event acts only on
  what its own session holds (its tab's state, its own running generations), which another
  session cannot name;
- **share link**: holders of a share link its owner made (``Ownership.add_share_links``);
- **nobody**: private deployments only (``unless`` names a setting that opens it anyway).

A rule may also spend one of the visitor's hourly allowances (``spends="ratings"``), given back
when the call fails. The ownership facts come from ``services.access.Ownership`` (plain Python);
this module maps the Gradio request to a visitor and the handler's argument to the id.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass
from enum import StrEnum

import gradio as gr

from playground.container import Services
from playground.errors import PlaygroundError
from playground.services.access import OWNED
from playground.services.answers.limits import Spent
from playground.ui.common import request_in, visitor


class Kind(StrEnum):
    ANYONE = "anyone"
    OWNER = "owner"
    SHARE_LINK = "share link"
    NOBODY = "nobody"


@dataclass(frozen=True)
class Rule:
    kind: Kind
    what: str = ""  # owner / share link: what the call names ("answer", "conversation", "notebook", "battle")
    arg: str | None = None  # the handler's parameter holding its id (owner without it: the session's own)
    action: str = ""  # owner: the refused act, "rate it"; nobody: what is off, "data export and replay"
    spends: str | None = None  # the visitor's hourly allowance a call spends ("ratings")
    unless: str | None = None  # nobody: a setting that opens it anyway ("open_data")

    def describe(self) -> str:
        """Who may call it on a public deployment, in words (the README's table)."""
        if self.kind is Kind.OWNER:
            return (
                f"owner of the {self.what.replace('_', ' ')} (`{self.arg}`)"
                if self.arg
                else "owner (acts on its own session only)"
            )
        if self.kind is Kind.SHARE_LINK:
            return f"holders of the {self.what.replace('_', ' ')}'s share link (`{self.arg}`)"
        if self.kind is Kind.NOBODY and self.unless:
            return f"nobody, unless `--{self.unless.replace('_', '-')}`"
        return str(self.kind)


RULE = "__access_rule__"  # the attribute a guarded handler carries


def rule_of(fn) -> Rule | None:
    return getattr(fn, RULE, None)


class Guard:
    """Declares and enforces each event's rule: ``gr.api(guard.owner(rate, answer="turn_id",
    action="rate it"), api_name="rate")``."""

    def __init__(self, services: Services):
        self.services = services

    @property
    def public(self) -> bool:
        return self.services.settings.public

    def anyone(self, fn, spends: str | None = None):
        return self._guard(fn, Rule(Kind.ANYONE, spends=spends))

    def owner(self, fn, action: str = "", spends: str | None = None, **named: str):
        """``named``: at most one ``what="argument"`` (``answer="turn_id"``); none: the session's own."""
        if len(named) > 1 or not all(self.services.access.knows(what) for what in named):
            raise PlaygroundError(f"{_name(fn)}: an owner rule names one of {OWNED}, got {sorted(named)}")
        what, arg = next(iter(named.items()), ("", None))
        if arg and not action:
            raise PlaygroundError(f"{_name(fn)}: say what the owner rule refuses (action='rate it')")
        return self._guard(fn, Rule(Kind.OWNER, what, arg, action, spends))

    def share_link(self, fn, **named: str):
        """Only with a share link: ``share_link(fn, notebook="token")``."""
        [(what, arg)] = named.items()
        if not self.services.access.shares(what):
            raise PlaygroundError(f"{_name(fn)}: nothing makes share links for {what!r}")
        return self._guard(fn, Rule(Kind.SHARE_LINK, what, arg))

    def nobody(self, fn, action: str, unless: str | None = None):
        return self._guard(fn, Rule(Kind.NOBODY, action=action, unless=unless))

    # ------------------------------------------------------------------ enforcement

    def _guard(self, fn, rule: Rule):
        signature = inspect.signature(fn)
        if rule.arg and rule.arg not in signature.parameters:
            raise PlaygroundError(f"{_name(fn)}: its rule names the argument {rule.arg!r}, which it has not")
        needs_caller = rule.spends or (rule.kind is Kind.OWNER and rule.arg)
        if needs_caller and not _takes_request(fn):
            raise PlaygroundError(f"{_name(fn)}: its rule needs the caller, so it must take a gr.Request")

        def admit(args, kwargs) -> Spent | None:
            """Refuse the call (as the Gradio error the caller sees) or let it in, spending its allowance."""
            try:
                if self.public:
                    self._check(rule, signature, args, kwargs)
                if rule.spends:
                    return self.services.gate.spend(visitor(request_in(args, kwargs)), rule.spends)
            except PlaygroundError as exc:
                raise gr.Error(str(exc)) from None
            return None

        def refund(spent: Spent | None) -> None:
            if spent is not None:
                self.services.gate.refund(spent)

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def guarded_stream(*args, **kwargs):
                spent = admit(args, kwargs)
                try:
                    yield from fn(*args, **kwargs)
                except Exception:
                    refund(spent)
                    raise

            guarded = guarded_stream
        else:

            @functools.wraps(fn)
            def guarded(*args, **kwargs):
                spent = admit(args, kwargs)
                try:
                    return fn(*args, **kwargs)
                except Exception:
                    refund(spent)
                    raise

        setattr(guarded, RULE, rule)
        return guarded

    def _check(self, rule: Rule, signature: inspect.Signature, args, kwargs) -> None:
        """The rule on a public deployment."""
        if rule.kind is Kind.NOBODY and not (rule.unless and getattr(self.services.settings, rule.unless)):
            where = (
                f"start the app with --{rule.unless.replace('_', '-')} to open it"
                if rule.unless
                else "it is there where the app is private: localhost without --share or --public"
            )
            raise PlaygroundError(f"{rule.action} is turned off on this public deployment ({where})")
        if rule.arg is None:
            return
        bound = signature.bind_partial(*args, **kwargs)
        bound.apply_defaults()
        ident = bound.arguments.get(rule.arg)
        if rule.kind is Kind.OWNER:
            session = visitor(request_in(args, kwargs)).session
            self.services.access.check(rule.what, ident, session, rule.action)
        elif rule.kind is Kind.SHARE_LINK:
            self.services.access.check_link(rule.what, ident)


def _takes_request(fn) -> bool:
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError):
        hints = {}
    for name, param in inspect.signature(fn).parameters.items():
        hint = hints.get(name, param.annotation)
        if hint in (gr.Request, typing.Optional[gr.Request]) or hint in ("gr.Request", "Request"):  # noqa: UP045
            return True
    return False


def _name(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def declared(demo: gr.Blocks) -> dict[str, Rule]:
    """Every named API endpoint of ``demo`` (its ``/api_name``) with its rule."""
    return {
        f"/{block_fn.api_name}": rule_of(block_fn.fn)
        for block_fn in demo.fns.values()
        if block_fn.fn is not None and block_fn.api_visibility != "private"
    }


def check_rules(demo: gr.Blocks) -> None:
    """Refuse to start when an API endpoint or UI event has no declared rule."""
    missing = [
        (f"/{block_fn.api_name} " if block_fn.api_visibility != "private" else "the UI event ")
        + _name(block_fn.fn)
        for block_fn in demo.fns.values()
        if block_fn.fn is not None and rule_of(block_fn.fn) is None
    ]
    if missing:
        raise PlaygroundError(
            "every API endpoint and UI event needs an access rule (declared where it is registered: "
            "guard.anyone / owner / share_link / nobody, playground/ui/access.py); none for: "
            + "; ".join(missing)
        )
