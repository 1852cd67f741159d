"""`aftercal serve` under an idle-connection attack (issue 14): a real process with a small
open-files limit, flooded with idle and half-header sockets, must keep answering a probe, close the
idle sockets after the header timeout, and write a bounded log.

Settings go through the environment (AFTERCAL_HEADER_TIMEOUT), so the same test runs against a
`serve` that does not know them: there it fails the way the issue describes.
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from calendars.feeds.store import open_store
from tests.feed.conftest import AFTERCAL, add_treatment, free_port

FD_LIMIT = 256
IDLE_SOCKETS = 300  # more than FD_LIMIT, and than any connection bound under it
HALF_HEADER_SOCKETS = 100
HEADER_TIMEOUT = 2.0
PROBE_BOUND = 2.0  # seconds a probe may take while the attack holds its sockets
LOG_LINE_BOUND = 40


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


@contextlib.contextmanager
def _serve(db: str, log: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "AFTERCAL_HEADER_TIMEOUT": str(HEADER_TIMEOUT)}
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [*AFTERCAL, "serve", "--db", db, "--host", "127.0.0.1", "--port", str(port)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_low_fd_limit,  # sets the child's open-files limit, nothing else
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text(errors="replace")
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _open(port: int, first_bytes: bytes) -> socket.socket | None:
    """A connected socket that sent `first_bytes` (maybe nothing), or None if the server's queue is full."""
    sock = socket.socket()
    sock.settimeout(0.5)
    try:
        sock.connect(("127.0.0.1", port))
        if first_bytes:
            sock.sendall(first_bytes)
    except OSError:
        sock.close()
        return None
    return sock


def _count_open(socks: list[socket.socket], wait: float = 0.3) -> int:
    """How many of `socks` the server has not closed (a close, a reset or a 503 counts as closed)."""
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        ready = {key.fileobj for key, _events in selector.select(timeout=wait)}
    return sum(sock not in ready for sock in socks)


def _get(url: str, timeout: float) -> tuple[int | None, float]:
    """(status or None on a transport error, seconds taken)."""
    started = time.monotonic()
    try:
        status: int | None = httpx.get(url, timeout=timeout).status_code
    except httpx.TransportError:
        status = None
    return status, time.monotonic() - started


def test_idle_and_half_header_sockets_do_not_lock_out_a_probe(tmp_path: Path) -> None:
    db = str(tmp_path / "clinic.db")
    store = open_store(db)
    token = add_treatment(store)
    store.close()
    log = tmp_path / "serve.log"
    attack: list[socket.socket] = []
    with _serve(db, log) as base:
        port = int(base.rsplit(":", 1)[1])
        lines_before = len(log.read_text(errors="replace").splitlines())
        try:
            for _ in range(IDLE_SOCKETS):
                if (sock := _open(port, b"")) is not None:
                    attack.append(sock)
            half = b"GET /f/" + b"x" * 43 + b".ics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
            for _ in range(HALF_HEADER_SOCKETS):
                if (sock := _open(port, half)) is not None:
                    attack.append(sock)
            time.sleep(0.5)  # let the server take them in

            status, answered_in = _get(f"{base}/f/{token}.ics", PROBE_BOUND + 3)
            time.sleep(HEADER_TIMEOUT + 1.5)
            still_open = _count_open(attack)
            after, _seconds = _get(f"{base}/f/{token}.ics", PROBE_BOUND + 3)
        finally:
            for sock in attack:
                sock.close()
        time.sleep(0.5)
        written = log.read_text(errors="replace").splitlines()[lines_before:]
    print(
        f"\nidle-socket attack: {len(attack)} sockets held, probe answered {status} in {answered_in:.3f} s, "
        f"{still_open} still open after {HEADER_TIMEOUT + 1.5:.1f} s, {len(written)} log lines"
    )
    assert status == 200 and answered_in < PROBE_BOUND, (status, answered_in)
    assert still_open == 0
    assert after == 200
    assert len(written) < LOG_LINE_BOUND, "\n".join(written[:20])
    assert "Traceback" not in "\n".join(written)


@pytest.mark.parametrize("limit", [8])
def test_max_connections_bound_refuses_or_evicts_quickly(tmp_path: Path, limit: int) -> None:
    """More idle connections than --max-connections: the oldest idle ones are closed, a probe still answers."""
    db = str(tmp_path / "clinic.db")
    store = open_store(db)
    token = add_treatment(store)
    store.close()
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [*AFTERCAL, "serve", "--db", db, "--port", str(port), "--max-connections", str(limit)],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    socks: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        socks = [s for s in (_open(port, b"") for _ in range(limit * 3)) if s is not None]
        time.sleep(0.3)
        assert _count_open(socks) <= limit  # the oldest idle ones were closed
        status, seconds = _get(f"{base}/f/{token}.ics", 5)
        assert status == 200 and seconds < PROBE_BOUND
    finally:
        for sock in socks:
            sock.close()
        proc.terminate()
        proc.wait(timeout=15)


def test_repeated_log_messages_are_one_line_per_interval() -> None:
    """asyncio's accept() error, 1,000 times in a burst (it was 400,000 in 30 s), logs one line;
    the next one after the interval says how many were dropped."""
    import logging

    from calendars.feeds.limits import RateLimit

    now = [0.0]
    limit = RateLimit(10.0, clock=lambda: now[0])

    def record(fd: int, exc: Exception | None = None) -> logging.LogRecord:
        message = f"socket.accept() out of system resource\nsocket: <asyncio.TransportSocket fd={fd}>"
        info = (type(exc), exc, None) if exc else None
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, (), info)

    burst = [limit.filter(record(n, OSError(24, "Too many open files"))) for n in range(1000)]
    assert burst.count(True) == 1 and burst[0]
    other = logging.LogRecord("aftercal.feed", logging.ERROR, __file__, 1, "treatment database unavailable", (), None)
    assert limit.filter(other)  # another kind of message is not held back
    now[0] = 10.5
    later = record(7, OSError(24, "Too many open files"))
    assert limit.filter(later)
    assert "[999 more like this in the last 10 s not logged]" in later.getMessage()
    assert limit.filter(later)  # the same record on a second handler: same verdict, counted once
