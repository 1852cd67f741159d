#!/usr/bin/env bash
# Installs everything the tests need into .venv and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
.venv/bin/python -m ruff check .
.venv/bin/python -m pytest "$@"
