# Everyday targets. `make test` is what CI runs (after the README's install command).
VENV ?= .venv
BIN = $(VENV)/bin
SHARED_DATA := $(abspath ../shared/data)
export NOISY_NBDEV_DATA ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)

.PHONY: test test-slow export docs

test:            ## notebooks (nbdev-test, slow cells skipped) then pytest
	$(BIN)/python tools/test_nbs.py
	$(BIN)/python -m pytest -q

test-slow:       ## also the `#| slow` notebook cells and pytest's slow tests
	$(BIN)/python tools/test_nbs.py --flags slow
	$(BIN)/python -m pytest -q -m slow

export:
	$(BIN)/nbdev-export

docs:            ## static HTML site in _site/ from the notebooks (no Quarto needed)
	bash tools/build_docs.sh
