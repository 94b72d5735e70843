"""Model engine: presets, templates, loading, the model cache and streaming generation.

Importing it registers the native DeciLM and OpenLM architectures with transformers' Auto
classes, so those cards load without remote code.
"""

from playground.engine.models.archs import register_native_architectures

register_native_architectures()
