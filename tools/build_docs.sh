#!/usr/bin/env bash
# `make docs`: the static documentation site in _site/, from the notebooks, offline (no Quarto): see tools/build_docs.py.
# Uses $PYTHON, else $VENV/bin/python (the Makefile's VENV, default .venv), else python3; extra arguments go to
# build_docs.py (e.g. --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  V="${VENV:-.venv}"
  if [ -x "$V/bin/python" ]; then PY="$V/bin/python"; else PY=python3; fi
fi
exec "$PY" tools/build_docs.py "$@"
