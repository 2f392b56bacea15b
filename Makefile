# Everyday targets. `make test` is what CI runs (after the README's install command).
VENV ?= .venv
BIN = $(VENV)/bin
SHARED_DATA := $(abspath ../shared/data)
export NOISY_NBDEV_DATA ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)

.PHONY: test test-slow lint export docs

test: lint       ## ruff (undefined names, unused imports), notebooks (tools/test_nbs.py, slow cells skipped), pytest
	$(BIN)/python tools/test_nbs.py
	$(BIN)/python -m pytest -q

test-slow:       ## the notebooks with their `#| slow` cells (hours), and only pytest's slow tests: run after `make test`
	$(BIN)/python tools/test_nbs.py --flags slow
	$(BIN)/python -m pytest -q -m slow

lint:            ## pyflakes checks of the exported package: a name the notebooks define only in a test cell fails here
	$(BIN)/ruff check --select F noisy_nbdev

export:
	$(BIN)/nbdev-export

docs:            ## static HTML site in _site/ from the notebooks (no Quarto needed)
	bash tools/build_docs.sh
