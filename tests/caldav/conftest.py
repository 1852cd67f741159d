"""Real CalDAV servers for the tests: Radicale (htpasswd auth) and Xandikos, on 127.0.0.1.

Each server runs as a subprocess on a free port with temporary storage and stops at teardown.
`stop()` / `start()` keep the port and the storage, so a test can kill a server mid-publish and
bring the same server back.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from calendars.caldav import CalDavConnection, Password
from calendars.http import RetryPolicy

USER = "clinic"
PASSWORD = "s3cret-Pa55-word"  # tests assert it never appears in output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One CalDAV server process; `kind` is "radicale" or "xandikos"."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.root = root
        self.port = free_port()
        self.storage = root / "storage"
        self.storage.mkdir()
        self.log = root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        if kind == "radicale":
            self.htpasswd = root / "users"
            self.htpasswd.write_text(f"{USER}:{PASSWORD}\n", encoding="utf-8")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def auth_checked(self) -> bool:
        return self.kind == "radicale"

    def command(self) -> list[str]:
        if self.kind == "radicale":
            return [
                sys.executable, "-m", "radicale", "--config", "",
                "--auth-type", "htpasswd", "--auth-htpasswd-filename", str(self.htpasswd),
                "--auth-htpasswd-encryption", "plain", "--auth-delay", "0", "--rights-type", "owner_only",
                "--server-hosts", f"127.0.0.1:{self.port}", "--storage-filesystem-folder", str(self.storage),
            ]  # fmt: skip
        return [
            sys.executable, "-m", "xandikos", "serve", "-d", str(self.storage), "--defaults",
            "-l", "127.0.0.1", "-p", str(self.port), "--no-detect-systemd",
        ]  # fmt: skip

    def start(self) -> None:
        assert self.proc is None
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture(params=["radicale", "xandikos"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """Each CalDAV server in turn."""
    srv = Server(request.param, tmp_path)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[Server]:
    """Radicale only: the server that checks passwords."""
    srv = Server("radicale", tmp_path)
    srv.start()
    yield srv
    srv.stop()


FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def connect(server: Server) -> Iterator[object]:
    """A factory of connections to `server` (closed at teardown)."""
    made: list[CalDavConnection] = []

    def factory(retry: RetryPolicy = FAST_RETRY, password: str = PASSWORD) -> CalDavConnection:
        conn = CalDavConnection(server.url, USER, Password(password, "test"), timeout=5, retry=retry)
        made.append(conn)
        return conn

    yield factory
    for conn in made:
        conn.close()


@pytest.fixture(autouse=True)
def _no_system_keyring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Hermetic password lookup: no system keyring, no ~/.netrc of the machine running the tests."""
    import keyring
    from keyring.backends import null

    previous = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("AFTERCAL_CALDAV_PASSWORD", raising=False)
    yield
    keyring.set_keyring(previous)
