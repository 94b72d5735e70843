"""The engine: model cards and loading (``models/``), the one generation pipeline (``generation/``)
and the backends that serve it (``backends/``: local, ZeroGPU, OpenAI-compatible servers).

No storage and no UI here. Nothing happens on import: ``setup()`` registers the native
architectures and the engine's attention with transformers, once, at start-up.
"""


def setup() -> None:
    """Register the native DeciLM/OpenLM architectures and the engine's attention (idempotent)."""
    from playground.engine.generation.attention import register
    from playground.engine.models.archs import register_native_architectures

    register_native_architectures()
    register()
