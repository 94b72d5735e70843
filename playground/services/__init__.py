"""Use cases, plain Python (no Gradio), each exposed 1:1 as the app's API: ``answers/`` (one answer,
side by side, arena battles, replay, ratings, limits), ``notebook/`` (grids of prompts × models, prompt
sets, exports of a run), ``leaderboard/`` (Bradley–Terry fit, intervals, Elo, stats, style control),
``data/`` (exports of everything stored, DPO pairs), ``presets`` and the start-up ``warmup``."""
