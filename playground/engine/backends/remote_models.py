"""What a server says it serves (``GET /v1/models``), asked on a served preset's first use.

A name the server does not list is refused before any answer: llama.cpp's server, for one, answers
any model name with the model it has loaded, so a typo would otherwise be stored as the wrong model.
What the server reports about the model is recorded with every answer in the turn's revision: its
id, and where it says so the weights file (``transformers serve``'s ``repo:file.gguf`` ids), the
checkpoint it was loaded from (vLLM's ``root``) and the quantisation (llama.cpp's GGUF file type).
"""

from __future__ import annotations

from dataclasses import dataclass

from playground.engine.backends.remote_errors import explain
from playground.engine.models.presets import ModelSpec
from playground.errors import PlaygroundError

REVISION_CHARS = 256  # the width of turns.revision (PostgreSQL enforces it)


@dataclass(frozen=True)
class ServedModel:
    id: str
    file: str = ""
    root: str = ""
    quantization: str = ""
    note: str = ""  # why it could not be checked

    def revision(self, base_url: str) -> str:
        details = [f"{k}={v}" for k, v in (("file", self.file), ("root", self.root)) if v and v != self.id]
        details += [f"quantization={self.quantization}"] if self.quantization else []
        details += [self.note] if self.note else []
        text = f"{self.id}@{base_url}" + (f" ({'; '.join(details)})" if details else "")
        return text if len(text) <= REVISION_CHARS else text[: REVISION_CHARS - 1] + "…"


def ask_served_model(api, spec: ModelSpec) -> ServedModel:
    """The server's entry for ``spec.served_model``; PlaygroundError when the server does not list it."""
    import openai

    try:
        entries = list(api.models.list())
    except openai.NotFoundError:  # a server without the listing: the answers themselves will tell
        return ServedModel(spec.served_model, note="not checked: the server has no GET /models")
    except Exception as exc:  # noqa: BLE001 - every client failure becomes the server's message
        raise explain(spec, exc) from None
    for entry in entries:
        extra = entry.model_extra or {}
        if spec.served_model == entry.id or spec.served_model in (extra.get("aliases") or []):
            return described(entry.id, extra)
    listed = ", ".join(repr(e.id) for e in entries[:10]) or "no model"
    raise PlaygroundError(
        f"{spec.base_url} does not serve a model named {spec.served_model!r}: GET "
        f"{spec.base_url.rstrip('/')}/models lists {listed}; fix model.served_model in the preset"
    )


def described(model_id: str, extra: dict) -> ServedModel:
    """What one ``/models`` entry says about the weights."""
    _, _, file = model_id.partition(":")
    meta = extra.get("meta") if isinstance(extra.get("meta"), dict) else {}
    return ServedModel(
        id=model_id,
        file=file if file.endswith(".gguf") else "",
        root=str(extra.get("root") or ""),
        quantization=str(meta.get("ftype") or extra.get("quantization") or ""),
    )
