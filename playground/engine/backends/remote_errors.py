"""A served model's failures, said with the server's address and what to do.

A request that never started (refused connection, timeout, 401/403, 404, 429, 5xx) is ``explain``-ed
as such; a stream that broke after text had arrived is ``broke_mid_answer``: the server had been
reached, so its message never suggests the address is wrong.
"""

from __future__ import annotations

from playground.engine.models.presets import ModelSpec
from playground.errors import PlaygroundError

CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 10.0, 120.0


def explain(spec: ModelSpec, exc: BaseException) -> PlaygroundError:
    """A request to the server that failed before anything streamed."""
    import openai

    server = spec.base_url
    if isinstance(exc, openai.APITimeoutError):
        return PlaygroundError(
            f"{server} did not answer within {READ_TIMEOUT_S:.0f} s (timeout); is it overloaded?"
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        return PlaygroundError(
            f"cannot reach {server} ({type(cause).__name__ if cause else 'connection error'}: {cause or exc}); "
            "is the server running at that address? Start it, or fix model.base_url in the preset"
        )
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        where = (
            f"set the environment variable {spec.api_key_env}"
            if spec.api_key_env
            else "add model.api_key_env"
        )
        return PlaygroundError(
            f"{server} refused the request (HTTP {exc.status_code}): the API key is missing or not allowed; {where}"
        )
    if isinstance(exc, openai.NotFoundError):
        return PlaygroundError(
            f"{server} does not serve a model named {spec.served_model!r} (HTTP 404); "
            f"GET {server.rstrip('/')}/models lists what it serves: fix model.served_model in the preset"
        )
    if isinstance(exc, openai.RateLimitError):
        return PlaygroundError(f"{server} is rate-limiting requests (HTTP 429); wait a moment and try again")
    if isinstance(exc, openai.APIStatusError):
        return PlaygroundError(f"{server} failed with HTTP {exc.status_code}: {_detail(exc)}")
    return PlaygroundError(f"{server}: {type(exc).__name__}: {exc}")


def broke_mid_answer(spec: ModelSpec, exc: BaseException, arrived: int) -> str:
    """A stream that started and then broke: what happened, and that what arrived is kept."""
    import openai

    cause = exc.__cause__ or exc.__context__ or exc
    if isinstance(exc, openai.APITimeoutError):
        what = f"it sent nothing for {READ_TIMEOUT_S:.0f} s (timeout)"
    elif isinstance(exc, openai.APIStatusError | openai.APIError) and getattr(exc, "body", None):
        what = f"the server reported an error: {_detail(exc)}"
    else:
        what = f"{type(cause).__name__}: {cause}"
    return (
        f"the answer from {spec.base_url} broke off after {arrived} characters had arrived ({what}); "
        "the server stopped or crashed while answering. The text that arrived is kept"
    )


def _detail(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("message") or body)
    return str(body or getattr(exc, "message", exc))
