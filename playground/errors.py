"""The one exception type for errors a user can act on."""


class PlaygroundError(Exception):
    """An error whose message names the real cause and is shown to the user as is."""


def explain_failure(exc: BaseException) -> PlaygroundError:
    """A failure while generating, as a message naming its cause."""
    if isinstance(exc, PlaygroundError):
        return exc
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        return PlaygroundError(f"out of memory while generating: {exc}")
    return PlaygroundError(f"generation failed: {type(exc).__name__}: {exc}")
