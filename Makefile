# `make train` and `make test` bootstrap .venv on first use (pinned by requirements.lock), then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: help install train test fashion-mnist lock clean

help:
	@echo "make install        .venv from requirements.lock (train and test do it on first use)"
	@echo "make train [ARGS=\"model.alpha=1.0 logger=csv\"]   one run (digits by default), then its test"
	@echo "make test [PYTEST_ARGS=\"-k resum\"]   the test suite (what CI runs), or the tests PYTEST_ARGS selects"
	@echo "make fashion-mnist  Debian's Fashion-MNIST IDX files (needs root)"
	@echo "make lock           rewrite requirements.lock from .venv"
	@echo "make clean          remove .venv and build files"

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint requirements.lock --editable '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Extra Hydra overrides: make train ARGS="model.alpha=1.0 logger=csv"
train: install
	$(BIN)/ssl-hybrid-train $(ARGS)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Real Fashion-MNIST from Debian (needs root); tests that need it skip with a reason when it is absent.
fashion-mnist:
	test -d $(FASHION_MNIST) || (apt-get update && apt-get install -y dataset-fashion-mnist)

lock: install
	(echo "# Exact versions tested here (CPU machine, Python 3.11); \`make install\` uses them as constraints."; \
	 echo "# Regenerate with: make lock"; $(BIN)/python -m pip freeze --exclude-editable) > requirements.lock

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
