"""Shared fixtures. Nothing here reaches the Hugging Face Hub: HF_HUB_OFFLINE is forced on."""

from __future__ import annotations

import os
import socket
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.pop("SPACES_ZERO_GPU", None)

import pytest  # noqa: E402

from playground.settings import ROOT, Settings  # noqa: E402
from tests.postgres import postgres_server, postgres_url  # noqa: E402, F401 - fixtures: a real PostgreSQL

PRESETS = ROOT / "presets"
FIXTURES = Path(os.environ.get("PLAYGROUND_FIXTURES", ROOT.parent / "shared" / "fixtures"))


def pytest_collection_modifyitems(config, items) -> None:
    """The heaviest files first (browser, then other slow ones, each file's tests kept together and in
    order): the two workers of ``make test`` take whole files as they free up, so the quick unit files
    fill the end instead of one long file running alone after everything else."""

    def weight(item) -> int:
        return 0 if item.get_closest_marker("browser") else 1 if item.get_closest_marker("slow") else 2

    heaviest: dict[Path, int] = {}
    for item in items:
        heaviest[item.path] = min(heaviest.get(item.path, 2), weight(item))
    items.sort(key=lambda item: heaviest[item.path])  # stable: the order within a weight stays


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def model_cache_dir() -> Path:
    """The real user cache, so the embedded model is converted once per machine, not per test run."""
    return Settings().cache_dir


def fresh_services(folder: Path, cache_dir: Path, **settings):
    """Services on the shipped presets and the real embedded model, with a fresh SQLite file and
    user-preset folder in ``folder`` (and any other ``Settings`` fields given)."""
    from playground.container import build_services

    return build_services(
        Settings(
            db=str(folder / "playground.db"),
            presets_dir=PRESETS,
            user_presets_dir=folder / "user_presets",
            cache_dir=cache_dir,
            **settings,
        )
    )


@pytest.fixture(scope="session")
def services(tmp_path_factory, model_cache_dir):
    """Services on the shipped presets, the real embedded model and a fresh SQLite file."""
    return fresh_services(tmp_path_factory.mktemp("db"), model_cache_dir)


@pytest.fixture(autouse=True)
def _presets_restored(request):
    """A preset a test adds to the session's services (a served model, a variant) leaves with the test:
    the Arena draws from every preset, so one pointing at a server that is gone would break battles."""
    if "services" not in request.fixturenames:
        yield
        return
    registry = request.getfixturevalue("services").registry
    before = set(registry.names())
    yield
    for name in set(registry.names()) - before:
        registry.remove(name)


@pytest.fixture(scope="session")
def smollm(services):
    """The embedded SmolLM2 model, loaded once (bf16 or fp32, as the machine prefers)."""
    from playground.engine.models.loader import LoadRequest

    preset = services.registry.get("smollm2-135m-instruct")
    return services.cache.get(LoadRequest.from_spec(preset.model))


@pytest.fixture(scope="session")
def live_app(services):
    """The real app on a free port (a real HTTP server), yielding its URL."""
    from playground.ui.app import CSS, build_app

    demo = build_app(services)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=CSS)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def offline_hub(tmp_path_factory):
    """The seeded offline Hub cache: tiny checkpoints under the five cards' real repo ids."""
    from tests.conftest_hub import build_session_hub

    return build_session_hub(tmp_path_factory)


@pytest.fixture
def hub(offline_hub, monkeypatch):
    """Point huggingface_hub at the seeded cache (offline) for one test."""
    from tests.conftest_hub import skip_gptqmodel_jit_kernels, use_offline_hub

    use_offline_hub(offline_hub.hf_home, monkeypatch)
    skip_gptqmodel_jit_kernels(monkeypatch)
    return offline_hub
