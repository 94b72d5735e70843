"""The one exception type for errors a user can act on."""


class PlaygroundError(Exception):
    """An error whose message names the real cause and is shown to the user as is."""
