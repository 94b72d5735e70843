"""The Notebook: a grid of prompts × models run through the engine (service, grid), prompt sets from CSV/JSONL and templates (prompts), and a run's cells out as CSV/JSONL (export)."""
