"""The Data tab's use case: the stored conversations written out as a file."""

from __future__ import annotations

from pathlib import Path

from playground.services.data.export import ExportFilter, export_to_file
from playground.store.db import Store


class DataService:
    def __init__(self, store: Store):
        self.store = store

    def export(self, fmt: str, path: Path, flt: ExportFilter | None = None) -> int:
        """Write the conversations (``flt`` chooses which) as ``fmt`` to ``path``; how many records."""
        return export_to_file(self.store.engine, fmt, path, flt)
