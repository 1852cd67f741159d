"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against a served landing page.

The page is served by the real `aftercal serve` (a subprocess on a free loopback port, over a
temporary SQLite database filled by `aftercal treatments add`). Playwright's own browser builds
are never downloaded: `scripts/test.sh` installs Debian's chromium when it is missing.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import new_store

# Debian's chromium; another Chromium build can be named for a local run.
CHROMIUM = os.environ.get("AFTERCAL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The installed console script, or the same entry point through this interpreter.
_SCRIPT = Path(sys.executable).parent / "aftercal"
AFTERCAL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-c", "from aftercal.cli import main; main()"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "feed_browser" in str(item.path):
            item.add_marker(pytest.mark.browser)


@dataclass(frozen=True)
class FeedSite:
    page: str  # http://127.0.0.1:PORT/f/<token>
    feed: str  # .../f/<token>.ics
    subscribe: str  # webcal://.../f/<token>.ics
    db: Path
    port: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def aftercal(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AFTERCAL, *args], capture_output=True, text=True, timeout=60, env=env, check=False)


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"aftercal serve exited with {process.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"aftercal serve did not listen on 127.0.0.1:{port} within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


ZONE = "America/New_York"
DAYS_AGO = 4  # the served treatment was 4 days ago: past days to fold, today between key days


def days_ago_at_ten(days: int) -> str:
    """A local start `days` before today in ZONE, at 10:00 (the page folds by the real clock)."""
    today = datetime.now(ZoneInfo(ZONE)).date()
    return f"{today - timedelta(days=days):%Y-%m-%d}T10:00"


def add_treatment(db: Path, base: str, treatment_id: str, *extra: str, at: str = "2026-11-24T10:00") -> dict[str, str]:
    """`aftercal treatments add`; returns its printed links by label (Feed, Subscribe, Page)."""
    added = aftercal(
        "treatments", "add", "microneedling", "--at", at, "--tz", ZONE,
        "--id", treatment_id, "--db", str(db), "--base-url", base, "--no-qr", *extra,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    lines = dict(re.findall(r"^(Feed|Subscribe|Page): (\S+)$", added.stdout, flags=re.MULTILINE))
    assert set(lines) == {"Feed", "Subscribe", "Page"}, added.stdout
    return lines


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} missing: install Debian's chromium (scripts/test.sh does, as root)")
    pytest.importorskip("playwright.sync_api", reason="playwright (test extra) is not installed")
    return CHROMIUM


@pytest.fixture(scope="package")
def browser(chromium_path: str) -> Iterator[Any]:
    """One Chromium for this folder's tests, closed when they are done: Playwright's sync API runs
    an event loop in the main thread until then, which asyncio.run in later tests would hit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="session")
def feed_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeedSite]:
    """`aftercal treatments add` into a fresh SQLite file, then `aftercal serve` on a free port."""
    folder = tmp_path_factory.mktemp("feed-site")
    db = Path(new_store(folder / "treatments.sqlite3"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    clinic = ("--clinic-name", "Riverside Skin Clinic", "--clinic-phone", "+1 (212) 555-0100")
    lines = add_treatment(db, base, "T-1", *clinic, at=days_ago_at_ten(DAYS_AGO))
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [*AFTERCAL, "serve", "--db", str(db), "--host", "127.0.0.1", "--port", str(port), "--base-url", base],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process)
        yield FeedSite(page=lines["Page"], feed=lines["Feed"], subscribe=lines["Subscribe"], db=db, port=port)
    finally:
        stop(process)
        log.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A phone-sized page with JavaScript off; every request is recorded, any off 127.0.0.1 aborted."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        java_script_enabled=False,
        accept_downloads=True,
    )
    requests: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        requests.append(url)
        if url.startswith(("http://127.0.0.1:", "https://127.0.0.1:")):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.requests = requests
    try:
        yield page
    finally:
        context.close()


@dataclass
class PageSite:
    """A tiny loopback server for pages rendered in the test: GET serves `pages[path]`, POST is
    recorded in `posts` as (path, body) and answered with a short page."""

    base: str
    pages: dict[str, str] = field(default_factory=dict)
    posts: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def page_site() -> Iterator[PageSite]:
    site = PageSite(base="")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            page = site.pages.get(self.path)
            self._answer(200 if page is not None else 404, page or "Not Found")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            site.posts.append((self.path, self.rfile.read(length).decode()))
            self._answer(200, "<!DOCTYPE html><title>posted</title><p>posted</p>")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
