#!/usr/bin/env bash
# Installs everything the tests need into .venv and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser test (tests/feed_browser) drives Debian's chromium; Playwright never downloads one.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ ! -x /usr/bin/chromium ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } ||
        echo "chromium could not be installed: the browser tests will be skipped" >&2
fi
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
.venv/bin/python -m ruff check .
.venv/bin/python -m pytest "$@"
