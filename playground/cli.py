"""Command-line entry: settings from flags and env → services → Gradio app → launch. No logic.

``python app.py export …`` writes the stored data out instead (see ``export_main``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from playground.errors import PlaygroundError
from playground.logs import quiet_logs
from playground.settings import Settings


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "export":
        return export_main(argv[1:])
    settings = Settings.from_args(argv)  # before torch is imported: --help and bad flags print no more
    quiet_logs()
    from playground.engine.models.device import configure_cuda

    configure_cuda()  # before anything touches CUDA: batch-invariant cuBLAS settings
    from playground.container import build_services

    try:
        services = build_services(settings)
        if settings.backend == "local":  # the first answer should not pay for loading and probing
            services.warmup.start(services.chat.backends, services.registry, settings.columns)
        from playground.ui.app import CSS, build_app  # Gradio's import and the page build overlap the warm-up

        demo = build_app(services)  # refused when an endpoint has no access rule
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    auth = tuple(settings.auth.split(":", 1)) if settings.auth else None
    if settings.share and not auth:
        print(
            "warning: --share without --auth makes the playground public to anyone with the link",
            file=sys.stderr,
        )
    demo.launch(
        server_name=settings.host, server_port=settings.port, share=settings.share, auth=auth, css=CSS
    )
    return 0


def export_main(argv: list[str]) -> int:
    """``app.py export --format F --out FILE [--since DATE] [--mode MODE] [--db URL] [--include-unvoted]
    [--include-incomplete] [--dpo-format standard|conversational]``: stream the stored conversations
    out in one format (only reads; the database must exist)."""
    from playground.services.data.export import (
        DPO_FORMATS,
        FORMATS,
        MODES,
        ExportFilter,
        export_to_file,
        open_database,
        write_export,
    )

    parser = argparse.ArgumentParser(prog="app.py export", description=export_main.__doc__.split("\n")[0])
    parser.add_argument("--format", required=True, choices=FORMATS, help="jsonl, csv, dpo or sharegpt")
    parser.add_argument("--out", required=True, help="file to write ('-' for standard output)")
    parser.add_argument("--since", default="", help="only conversations from this day on (YYYY-MM-DD, UTC)")
    parser.add_argument("--mode", default="", help=f"only one kind of conversation: {', '.join(MODES)}")
    parser.add_argument(
        "--db",
        default=os.environ.get("PLAYGROUND_DB", Settings.db),
        help="SQLAlchemy URL or SQLite file path",
    )
    parser.add_argument(
        "--include-unvoted",
        action="store_true",
        help="also arena battles without a vote (left out by default, as on the Data tab: their names are secret)",
    )
    parser.add_argument(
        "--include-incomplete",
        action="store_true",
        help="sharegpt: also answers cut by max_new_tokens or stopped (only complete ones by default)",
    )
    parser.add_argument(
        "--dpo-format",
        choices=DPO_FORMATS,
        default="standard",
        help="dpo: prompt/chosen/rejected as strings (standard) or as messages (conversational)",
    )
    args = parser.parse_args(argv)
    try:
        flt = ExportFilter.parse(
            args.since,
            args.mode,
            include_unvoted=args.include_unvoted,
            include_incomplete=args.include_incomplete,
            dpo_format=args.dpo_format,
        )
        engine = open_database(args.db)
        if args.out == "-":
            n = write_export(engine, args.format, sys.stdout, flt)
        else:
            n = export_to_file(engine, args.format, Path(args.out), flt)
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} {args.format} record(s) to {args.out}", file=sys.stderr)
    return 0
