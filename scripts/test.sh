#!/usr/bin/env bash
# Installs everything the tests need into .venv and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser test (tests/feed_browser) drives Debian's chromium; Playwright never downloads one.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ ! -x /usr/bin/chromium ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } ||
        echo "chromium could not be installed: the browser tests will be skipped" >&2
fi
# tests/test_vtimezone.py reads our VTIMEZONEs with libical through Debian's own python3 (PyGObject).
libical_probe="import gi; gi.require_version('ICalGLib', '3.0'); from gi.repository import ICalGLib"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! /usr/bin/python3 -c "$libical_probe" 2>/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gir1.2-ical-3.0 python3-gi >/dev/null; } ||
        echo "libical (gir1.2-ical-3.0) could not be installed: the libical tests will be skipped" >&2
fi
# tests/handout reads the handouts back with poppler's pdftotext and pdftoppm.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v pdftotext >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null; } ||
        echo "poppler-utils could not be installed: the handout tests that read PDFs will be skipped" >&2
fi
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
.venv/bin/python -m ruff check .
.venv/bin/python -m mypy  # strict; what it checks is in pyproject.toml [tool.mypy]
.venv/bin/python -m pytest "$@"
