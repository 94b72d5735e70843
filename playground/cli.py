"""Command-line entry: settings from flags and env → services → Gradio app → launch. No logic."""

from __future__ import annotations

import sys

from playground.errors import PlaygroundError
from playground.services.container import build_services
from playground.settings import Settings
from playground.ui.app import CSS, build_app


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_args(argv)
    try:
        services = build_services(settings)
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    auth = tuple(settings.auth.split(":", 1)) if settings.auth else None
    if settings.share and not auth:
        print(
            "warning: --share without --auth makes the playground public to anyone with the link",
            file=sys.stderr,
        )
    build_app(services).launch(
        server_name=settings.host, server_port=settings.port, share=settings.share, auth=auth, css=CSS
    )
    return 0
