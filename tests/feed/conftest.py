"""Fixtures for the feed tests: stores on SQLite and on the machine's PostgreSQL, real servers.

PostgreSQL: the server on 127.0.0.1:5432 (trust auth), database `test`. Every store gets its own
schema (`aftercal_t_<random>`), selected through libpq's `options=-csearch_path=...` in the URL,
and dropped at teardown, so parallel runs never collide. Only if the server cannot be reached at
all are the PostgreSQL tests skipped, with the reason.

Servers: `live_server` runs the ASGI app under uvicorn in a thread on a socket bound to port 0
(the test can inject a clock and read the app's render counter); `serve_process` runs the real
`aftercal serve` command in a subprocess on a free port and stops it with SIGTERM.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from calendars.feeds.store import Store, StoredOptions, open_store

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_DB = "test"
START = "2026-11-24T10:00"
ZONE = "Europe/Madrid"


def _pg_admin_url() -> str | None:
    """A URL that reaches the test database as postgres or root, or None."""
    import psycopg

    for user in ("postgres", "root"):
        url = f"postgresql://{user}@{PG_HOST}:{PG_PORT}/{PG_DB}"
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            return url
        except psycopg.Error:
            continue
    return None


@pytest.fixture(scope="session")
def pg_admin() -> str:
    url = _pg_admin_url()
    if url is None:
        pytest.skip(f"PostgreSQL not reachable on {PG_HOST}:{PG_PORT} (database {PG_DB}, user postgres or root)")
    return url


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A store URL whose tables live in a fresh schema, dropped afterwards."""
    import psycopg

    schema = f"aftercal_t_{os.getpid()}_{secrets.token_hex(6)}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{pg_admin}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "clinic.db")
    return str(request.getfixturevalue("pg_url"))


class FakeClock:
    """A clock the test moves by hand (UTC, whole seconds)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = (start or datetime.now(UTC)).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[Store]:
    opened = open_store(store_url, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


def add_treatment(store: Store, treatment_id: str = "T-1001", **options: Any) -> str:
    """Add the issue's example treatment; returns its token."""
    _treatment, token = store.add("microneedling", START, ZONE, treatment_id, StoredOptions(**options))
    return token


@dataclass
class LiveServer:
    """uvicorn serving create_app(...) in a thread."""

    app: Any
    base: str
    server: Any
    thread: threading.Thread
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base, timeout=10)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    @property
    def renders(self) -> int:
        return int(self.app.state.feed.cache.renders)


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """Factory: live_server(store_url, clock=..., cancelled_for=..., base_url=...)."""
    import uvicorn

    from calendars.feeds.app import create_app

    started: list[LiveServer] = []

    def start(store_url: str | Store, **kwargs: Any) -> LiveServer:
        app = create_app(store_url, **kwargs)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        live = LiveServer(app=app, base=f"http://127.0.0.1:{port}", server=server, thread=thread)
        started.append(live)
        return live

    yield start
    for live in started:
        live.client.close()
        live.server.should_exit = True
        live.thread.join(timeout=10)
        assert not live.thread.is_alive(), "uvicorn thread did not stop"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


AFTERCAL = [sys.executable, "-c", "from aftercal.cli import main; main()"]


@dataclass
class ServeProcess:
    """A real `aftercal serve` subprocess."""

    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Factory: serve_process(db, *extra_args) -> a running `aftercal serve`, stopped at teardown."""
    started: list[ServeProcess] = []

    def start(db: str, *extra: str) -> ServeProcess:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        handle = log.open("wb")
        proc = subprocess.Popen(
            [*AFTERCAL, "serve", "--db", db, "--host", "127.0.0.1", "--port", str(port), *extra],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        handle.close()
        running = ServeProcess(proc=proc, base=f"http://127.0.0.1:{port}", log=log)
        started.append(running)
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"aftercal serve exited: {running.output()}")
            try:
                httpx.get(running.base + "/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"aftercal serve did not start: {running.output()}") from None
                time.sleep(0.05)
        return running

    yield start
    for running in started:
        running.stop()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `aftercal` command in a subprocess."""
    return subprocess.run(
        [*AFTERCAL, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}, check=False
    )


def links_from(output: str) -> dict[str, str]:
    """The Feed:/Subscribe:/Page: lines of `treatments add` or `link --rotate`."""
    found = {}
    for line in output.splitlines():
        for prefix in ("Feed: ", "Subscribe: ", "Page: "):
            if line.startswith(prefix):
                found[prefix.strip(": ")] = line[len(prefix) :].strip()
    return found
