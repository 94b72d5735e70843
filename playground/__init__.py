"""LLM comparison playground."""

__version__ = "0.1.0"
