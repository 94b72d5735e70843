"""Settings from the command line and environment variables (flags win over env)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from playground.errors import PlaygroundError

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Limits:
    max_input_chars: int = 20_000  # per message (and per system prompt); ~5k tokens
    max_turns: int = 50  # rounds (user messages) per conversation
    session_generations: int = 3  # concurrent generation requests per visitor
    total_generations: int = 8  # concurrent generation requests overall; the rest queue
    votes_per_hour: int = 120  # votes (side-by-side and arena) per visitor per hour
    address_factor: int = 4
    ratings_per_hour: int = 300  # calls storing a rating, score or comment, per visitor per hour
    max_grid_cells: int = 4000  # cells of one notebook grid (PUBLIC_GRID_CELLS on a public deployment)

    def __post_init__(self):
        for name in (
            "max_input_chars",
            "max_turns",
            "session_generations",
            "total_generations",
            "max_grid_cells",
        ):
            if getattr(self, name) < 1:
                raise PlaygroundError(f"the limit {name} must be at least 1, got {getattr(self, name)}")


PUBLIC_GRID_CELLS = 200  # the default --max-grid-cells on a public deployment
DEFAULT_COLUMNS = ["smollm2-135m-instruct", "smollm2-135m-instruct-greedy"]


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _env_float(name: str) -> float | None:
    value = os.environ.get(name)
    return float(value) if value else None


def _on(value: str | None) -> bool:
    return bool(value) and value not in ("0", "false", "no")


def _open_data(flag: bool | None, public: bool) -> bool:
    """Exports show every visitor's conversations: on by default only where the app is private."""
    if flag is not None:
        return flag
    if os.environ.get("PLAYGROUND_OPEN_DATA"):
        return _on(os.environ["PLAYGROUND_OPEN_DATA"])
    return not public


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    auth: str | None = None  # "user:password" for shared links
    db: str = str(ROOT / "data" / "playground.db")
    presets_dir: Path = ROOT / "presets"
    user_presets_dir: Path = ROOT / "data" / "user_presets"
    cache_dir: Path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llm-playground"
    columns: list[str] = field(default_factory=lambda: list(DEFAULT_COLUMNS))
    memory_budget_gb: float | None = None
    device: str | None = None
    arena_pool: list[str] | None = None  # None: every preset whose weights are available
    arena_weights: dict[str, float] = field(default_factory=dict)
    bootstrap_rounds: int = 100
    leaderboard_prior_sd: float = (
        200.0  # Elo: the Bradley–Terry prior (one vote moves a model by tens of points)
    )
    leaderboard_min_battles: int = 30  # fewer battles: the model is marked provisional
    style_control: bool = True  # the second, style-controlled ranking (length and markdown as covariates)
    serving_rows: int = 16  # answers of one model sharing a forward pass (below 2: one at a time), every tab
    backend: str = "local"  # local | zerogpu (a Hugging Face ZeroGPU Space)
    sync_repo: str | None = None  # dataset repo (user/name or file:///folder/user/name) for rated data
    sync_every_min: float = 5.0
    preload: list[str] = field(default_factory=list)  # presets loaded at start-up (a Space loads them here)
    limits: Limits = field(default_factory=Limits)  # abuse limits for public and shared use
    open_data: bool = True  # the Data tab (export, replay) and /replay; off by default on a public deployment
    # a Space (SPACE_ID), --share or --public: each endpoint's access rule applies (playground/ui/access.py)
    public: bool = False

    @classmethod
    def from_args(cls, argv: list[str] | None = None) -> Settings:
        d = cls()
        env = os.environ.get
        parser = argparse.ArgumentParser(description="LLM comparison playground")
        parser.add_argument("--host", default=env("PLAYGROUND_HOST", d.host))
        parser.add_argument("--port", type=int, default=int(env("PLAYGROUND_PORT", d.port)))
        parser.add_argument("--share", action="store_true", default=env("PLAYGROUND_SHARE") == "1")
        parser.add_argument("--auth", default=env("PLAYGROUND_AUTH"), help="user:password for --share links")
        parser.add_argument(
            "--public",
            action="store_true",
            default=_on(env("PLAYGROUND_PUBLIC")),
            help="a public deployment (also implied by --share and by SPACE_ID): visitors reach only their "
            "own conversations, battles and grids",
        )
        parser.add_argument(
            "--db", default=env("PLAYGROUND_DB", d.db), help="SQLAlchemy URL or SQLite file path"
        )
        parser.add_argument("--presets", type=Path, default=Path(env("PLAYGROUND_PRESETS", d.presets_dir)))
        parser.add_argument(
            "--user-presets", type=Path, default=Path(env("PLAYGROUND_USER_PRESETS", d.user_presets_dir))
        )
        parser.add_argument("--cache-dir", type=Path, default=Path(env("PLAYGROUND_CACHE", d.cache_dir)))
        parser.add_argument(
            "--columns",
            default=",".join(_env_list("PLAYGROUND_COLUMNS") or d.columns),
            help="comma-separated preset names, one per Compare column (2 to 4)",
        )
        parser.add_argument(
            "--memory-budget-gb",
            type=float,
            default=_env_float("PLAYGROUND_MEMORY_BUDGET_GB"),
            help="memory for loaded models (GPU memory, or RAM on CPU); default 80%% of what is free",
        )
        parser.add_argument("--device", default=env("PLAYGROUND_DEVICE"), help="cpu or cuda (default: auto)")
        parser.add_argument(
            "--arena-pool",
            default=env("PLAYGROUND_ARENA_POOL"),
            help="comma-separated presets for arena battles, optionally name=weight",
        )
        parser.add_argument(
            "--bootstrap-rounds",
            type=int,
            default=int(env("PLAYGROUND_BOOTSTRAP_ROUNDS", d.bootstrap_rounds)),
        )
        parser.add_argument(
            "--leaderboard-prior-sd",
            type=float,
            default=float(env("PLAYGROUND_LEADERBOARD_PRIOR_SD", d.leaderboard_prior_sd)),
            help="standard deviation (Elo) of the ratings' prior: smaller trusts few battles less",
        )
        parser.add_argument(
            "--leaderboard-min-battles",
            type=int,
            default=int(env("PLAYGROUND_LEADERBOARD_MIN_BATTLES", d.leaderboard_min_battles)),
            help="models with fewer battles are marked provisional",
        )
        parser.add_argument(
            "--style-control",
            action=argparse.BooleanOptionalAction,
            default=env("PLAYGROUND_STYLE_CONTROL", "1") not in ("0", "false", "no"),
            help="offer the style-controlled ranking (answer length and markdown as covariates)",
        )
        parser.add_argument(
            "--serving-rows",
            type=int,
            default=int(env("PLAYGROUND_SERVING_ROWS", d.serving_rows)),
            help="most answers of one model computed together (Compare, Arena, API, Notebook grids); 0 or 1: off",
        )
        parser.add_argument(
            "--backend",
            choices=["local", "zerogpu"],
            default=env("PLAYGROUND_BACKEND", "zerogpu" if env("SPACES_ZERO_GPU") else d.backend),
            help="where generation runs: this process (CPU/CUDA) or ZeroGPU workers (on a Space)",
        )
        parser.add_argument(
            "--sync-repo",
            default=env("PLAYGROUND_SYNC_REPO"),
            help="dataset repo that rated data is pushed to as JSONL (user/name, or file:///folder/user/name)",
        )
        parser.add_argument(
            "--sync-every-min", type=float, default=float(env("PLAYGROUND_SYNC_EVERY_MIN", d.sync_every_min))
        )
        parser.add_argument(
            "--preload",
            default=",".join(_env_list("PLAYGROUND_PRELOAD") or []),
            help="comma-separated presets to load at start-up (on ZeroGPU: moved to the GPU the way it expects)",
        )
        parser.add_argument(
            "--open-data",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="offer the Data tab (exports of every stored conversation) and /replay; "
            "default: on, off on a public deployment (a Space, --share or --public)",
        )
        flags = (
            ("--max-input-chars", "max_input_chars", "longest message (characters) a visitor may send"),
            ("--max-turns", "max_turns", "most rounds in one conversation"),
            ("--max-session-generations", "session_generations", "concurrent generations per visitor"),
            ("--max-generations", "total_generations", "concurrent generations overall (the rest queue)"),
            ("--votes-per-hour", "votes_per_hour", "votes per visitor per hour"),
            ("--ratings-per-hour", "ratings_per_hour", "ratings, scores and comments per visitor per hour"),
            ("--max-grid-cells", "max_grid_cells", f"cells per notebook grid (public: {PUBLIC_GRID_CELLS})"),
        )
        for flag, name, help_text in flags:
            env_name = "PLAYGROUND_" + flag.removeprefix("--").replace("-", "_").upper()
            parser.add_argument(flag, type=int, dest=name, default=env(env_name), help=help_text)
        args = parser.parse_args(argv)
        public = args.public or args.share or bool(env("SPACE_ID"))
        defaults = Limits(max_grid_cells=PUBLIC_GRID_CELLS) if public else Limits()
        limits = {
            name: int(getattr(args, name)) if getattr(args, name) is not None else getattr(defaults, name)
            for _, name, _ in flags
        }
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
        if not 2 <= len(columns) <= 4:
            parser.error(f"--columns needs 2 to 4 preset names, got {len(columns)}")
        pool, weights = None, {}
        if args.arena_pool:
            pool = []
            for item in args.arena_pool.split(","):
                name, _, weight = item.strip().partition("=")
                pool.append(name)
                if weight:
                    weights[name] = float(weight)
        return cls(
            host=args.host,
            port=args.port,
            share=args.share,
            auth=args.auth,
            db=args.db,
            presets_dir=args.presets,
            user_presets_dir=args.user_presets,
            cache_dir=args.cache_dir,
            columns=columns,
            memory_budget_gb=args.memory_budget_gb,
            device=args.device,
            arena_pool=pool,
            arena_weights=weights,
            bootstrap_rounds=args.bootstrap_rounds,
            leaderboard_prior_sd=args.leaderboard_prior_sd,
            leaderboard_min_battles=args.leaderboard_min_battles,
            style_control=args.style_control,
            serving_rows=args.serving_rows,
            backend=args.backend,
            sync_repo=args.sync_repo,
            sync_every_min=args.sync_every_min,
            preload=[p.strip() for p in args.preload.split(",") if p.strip()],
            open_data=_open_data(args.open_data, public),
            public=public,
            limits=Limits(**limits),
        )
