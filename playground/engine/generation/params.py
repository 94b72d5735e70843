"""Generation parameters: one validated object, shared by presets, the UI and the API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from playground.errors import PlaygroundError


class GenerationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.7, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, description="0 disables top-k")
    max_new_tokens: int = Field(256, ge=1)
    repetition_penalty: float = Field(1.0, gt=0.0, le=3.0)
    do_sample: bool = True
    seed: int | None = Field(None, ge=0, le=2**32 - 1)

    def check_context(self, prompt_tokens: int, context_length: int | None) -> None:
        if context_length and prompt_tokens + self.max_new_tokens > context_length:
            raise PlaygroundError(
                f"prompt ({prompt_tokens} tokens) + max_new_tokens ({self.max_new_tokens}) exceeds the "
                f"model's context of {context_length} tokens; lower max_new_tokens or shorten the conversation"
            )


def parse_params(raw: dict[str, Any] | None, base: GenerationParams | None = None) -> GenerationParams:
    """Overlay user-supplied values on ``base`` and validate; the message names each bad field."""
    merged = (base or GenerationParams()).model_dump()
    merged.update({k: v for k, v in (raw or {}).items() if v is not None or k == "seed"})
    try:
        return GenerationParams.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise PlaygroundError(f"invalid generation parameters: {problems}") from None
