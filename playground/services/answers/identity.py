"""Which words give an arena contestant away, and whether an answer says them. No Gradio here."""

from __future__ import annotations

import re

from playground.engine.models.presets import Preset

_GENERIC = {"instruct", "chat", "base", "gptq", "awq", "gguf", "lora", "embedded", "greedy", "model", "the"}
_SIZE = re.compile(r"^(v?\d+(\.\d+)?[kmbt]?|\d+k|[a-z]?\d+)$", re.IGNORECASE)


def identity_terms(preset: Preset) -> list[str]:
    """Words that give a preset's model away: its ``identity_terms`` plus the distinctive words of
    its display name and of the model id's org and name (sizes and words like "instruct" dropped)."""
    org, _, name = preset.model.id.rpartition("/")
    words = [org, *re.split(r"[-_]", org)]
    words += re.split(r"[\s\-_.,()/]+", name) + re.split(r"[\s\-_.,()/]+", preset.display_name)
    terms = {t.strip() for t in preset.identity_terms if t.strip()}
    for word in words:
        for w in (word, word.rstrip("0123456789")):
            if len(w) >= 3 and not _SIZE.match(w) and w.lower() not in _GENERIC:
                terms.add(w)
    return sorted(terms, key=lambda t: (-len(t), t.lower()))


def term_pattern(terms: list[str]) -> re.Pattern | None:
    """Any of ``terms`` as a whole word (case-insensitive, "Hugging Face" = "HuggingFace" =
    "hugging-face"; a digit may follow, so "SmolLM" also finds "SmolLM2")."""
    parts = []
    for term in sorted(set(terms), key=len, reverse=True):
        words = [re.escape(w) for w in re.split(r"[^\w]+", term) if w]
        if words:
            parts.append(r"(?<![^\W\d_])" + r"[\s\-_./]*".join(words) + r"(?![^\W\d_])")
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def names_itself(text: str, preset: Preset) -> bool:
    """Whether an answer names its own model or maker ("I'm SmolLM, trained by Hugging Face")."""
    pattern = term_pattern(identity_terms(preset))
    return bool(text and pattern and pattern.search(text))


def weights_available(preset: Preset) -> bool:
    """Embedded and served (remote) models always; Hub models when their config is in the local Hub cache."""
    if preset.model.loader == "embedded-gguf" or preset.model.remote:
        return True
    from huggingface_hub import try_to_load_from_cache

    for filename in ("config.json", "adapter_config.json"):
        try:
            found = try_to_load_from_cache(preset.model.id, filename, revision=preset.model.revision)
        except Exception:  # noqa: BLE001 - a malformed id or cache is just "not available"
            found = None
        if isinstance(found, str):
            return True
    return False
