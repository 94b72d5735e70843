"""The model cache with the real loader and the embedded model in different quantisations."""

import threading

import pytest

from playground.engine.models.cache import ModelCache
from playground.engine.models.loader import LoadRequest
from playground.errors import PlaygroundError

pytestmark = pytest.mark.slow


def requests(services):
    spec = services.registry.get("smollm2-135m-instruct").model
    return [LoadRequest.from_spec(spec, quantization=q) for q in ("none", "8bit", "4bit-nf4")]


def test_concurrent_requests_load_once(services):
    cache = ModelCache(services.cache.device, services.cache.cache_root, budget_bytes=2 * 1024**3)
    request = requests(services)[0]
    got, barrier = [], threading.Barrier(4)

    def ask():
        barrier.wait()
        got.append(cache.get(request))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.load_count == 1
    assert len({id(m) for m in got}) == 1


def test_lru_eviction_respects_the_budget(services):
    bf16, int8, nf4 = requests(services)
    probe = ModelCache(services.cache.device, services.cache.cache_root, budget_bytes=2 * 1024**3)
    sizes = {r: probe.get(r).footprint_bytes for r in (bf16, int8, nf4)}
    assert sizes[nf4] < sizes[int8] < sizes[bf16]
    budget = sizes[bf16] + sizes[int8] + sizes[nf4] // 2  # two of them fit, not three
    cache = ModelCache(
        services.cache.device, services.cache.cache_root, budget_bytes=budget, estimate=lambda r: sizes[r]
    )
    cache.get(bf16)
    cache.get(int8)
    cache.get(bf16)  # bf16 is now the most recently used
    cache.get(nf4)  # needs room: the least recently used (8-bit) goes
    assert cache.loaded() == [bf16, nf4]
    assert cache.used_bytes() <= budget


def test_model_in_use_is_not_evicted_and_too_big_is_refused_with_numbers(services):
    bf16, int8, _ = requests(services)
    size = 300 * 1024**2
    cache = ModelCache(
        services.cache.device,
        services.cache.cache_root,
        budget_bytes=int(size * 1.5),
        estimate=lambda r: size,
    )
    with cache.use(bf16):
        with pytest.raises(PlaygroundError, match="held by models that are generating"):
            cache.get(int8)
    cache.get(int8)  # once bf16 is released it can be evicted
    assert cache.loaded() == [int8]
    small = ModelCache(
        services.cache.device, services.cache.cache_root, budget_bytes=size // 2, estimate=lambda r: size
    )
    with pytest.raises(PlaygroundError, match=r"needs about 0\.3 GB but the memory budget is 0\.1 GB"):
        small.get(bf16)
