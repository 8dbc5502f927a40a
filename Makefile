# Vision Transformer Lab. `make run` serves the hub; `make test` runs the suite.
# Everything installs into $(VENV); override any variable on the command line.

PYTHON      ?= python3
VENV        ?= .venv
HOST        ?= 127.0.0.1
PORT        ?= 7860
PY          := $(VENV)/bin/python
PIP         := $(PY) -m pip

# torch is installed before the project, so no dependency can pull a multi-GB CUDA build
# on a CPU-only machine. A torch already in the venv (a CUDA build, say) is kept as it is.
# With no GPU, TORCH_INDEX may point at PyTorch's CPU wheel index; left empty, pip uses its
# own configuration (on the project's machines that resolves to the CPU wheel on disk).
TORCH_VERSION ?= 2.13.0
TORCH_SPEC    ?= torch==$(TORCH_VERSION)
TORCH_INDEX   ?=
HAS_GPU       := $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)
TORCH_FLAGS   := $(if $(and $(TORCH_INDEX),$(if $(HAS_GPU),,cpu)),--index-url $(TORCH_INDEX),)

PYTEST_ARGS ?=
# pytest-xdist: one worker per core, each test file on one worker (its module fixtures load once), one torch
# thread per worker. Most of the suite waits on a server, a browser or Python, so two workers on two cores take
# about half the time of one process. PYTEST_PARALLEL= runs it in one process.
PYTEST_PARALLEL ?= -n auto --dist loadfile

.PHONY: run test bench lint install install-dev browser-deps clean help

help:
	@echo "make run     create $(VENV), install, serve the hub on http://$(HOST):$(PORT)/"
	@echo "make test    install dev extras (and Debian chromium if missing), run the suite"
	@echo "make bench   benchmarks: prints a table, writes bench/results.json"
	@echo "make lint    ruff"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.torch: | $(PY)
	@if $(PY) -c "import torch" 2>/dev/null; then \
		echo "keeping installed torch $$($(PY) -c 'import torch; print(torch.__version__)')"; \
	else \
		echo "installing $(TORCH_SPEC) $(TORCH_FLAGS) (GPU present: $(or $(HAS_GPU),no))"; \
		$(PIP) install -q "$(TORCH_SPEC)" $(TORCH_FLAGS); \
	fi
	@touch $@

# torchvision (the CNN model definitions of cnn_vs_vit) must be the release built for the installed
# torch: torch 2.X.Y pairs with torchvision 0.(X+15).Y, installed with --no-deps so it never replaces
# torch. PyPI's wheel is a CUDA build whose compiled ops cannot load beside the CPU torch, and
# transformers imports any torchvision it finds, so it goes into a private folder that only
# shared/cnn_models.py reads. Not in pyproject.toml, for the same reasons.
$(VENV)/.torchvision: $(VENV)/.torch
	@if $(PY) -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torchvision') is None)"; then \
		echo "keeping installed torchvision"; \
	else \
		tv=$$($(PY) -c "import torch; v = torch.__version__.split('+')[0].split('.'); print(f'0.{int(v[1]) + 15}.{v[2]}')"); \
		echo "installing torchvision==$$tv into $(VENV)/torchvision-defs (model definitions for cnn_vs_vit)"; \
		$(PIP) install -q --no-deps --upgrade --target $(VENV)/torchvision-defs "torchvision==$$tv" $(TORCH_FLAGS); \
	fi
	@touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch $(VENV)/.torchvision
	$(PIP) install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(PIP) install -q -e ".[dev]"
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	GRADIO_ANALYTICS_ENABLED=False $(PY) -m hub --host $(HOST) --port $(PORT)

# Debian chromium for the browser tests (Playwright cannot download its own browser here).
browser-deps:
	@if [ -x /usr/bin/chromium ]; then \
		:; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "*** WARNING: /usr/bin/chromium is missing and apt is unavailable: browser tests will be SKIPPED ***"; \
	fi

test: install-dev browser-deps
	HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False OMP_NUM_THREADS=1 $(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

bench: install-dev
	HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False $(PY) -m bench

lint: install-dev
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache bench/results.json
