"""A PostgreSQL that goes silent (issue 14): the feed server answers 503 within its database bound
and recovers by itself.

A TCP proxy stands in front of the real PostgreSQL. Switched to "silent" it still accepts
connections and acknowledges packets (the kernel does) but forwards nothing, on new and on
existing connections, and closes none: what a hung host or a black-holed network path looks like
to the client, where refused connections and resets never come.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from calendars.feeds.limits import DEFAULT_DB_TIMEOUT
from calendars.feeds.store import open_store
from tests.feed.conftest import PG_HOST, PG_PORT, LiveServer, add_treatment

pytestmark = pytest.mark.postgres

SILENCE = 9.0  # seconds the database stays silent
WORST_BOUND = DEFAULT_DB_TIMEOUT + 1.5  # the bound, plus thread hops and a busy 2-core machine
RECOVERY_BOUND = 5.0


class SilentProxy:
    """127.0.0.1:<port> -> PostgreSQL, one thread per connection; `silent` freezes all traffic."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.silent = threading.Event()
        self.stopping = threading.Event()
        self.sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.listener.settimeout(0.1)
        self.port = int(self.listener.getsockname()[1])
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _address = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.sockets.append(client)
            threading.Thread(target=self._pump, args=(client,), daemon=True).start()

    def _pump(self, client: socket.socket) -> None:
        while self.silent.is_set() and not self.stopping.is_set():  # accepted, never answered
            time.sleep(0.02)
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        self.sockets.append(upstream)
        peer = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peer:
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
            while not self.stopping.is_set():
                if self.silent.is_set():  # hold everything, close nothing
                    time.sleep(0.02)
                    continue
                for key, _events in selector.select(timeout=0.02):
                    source = key.fileobj
                    assert isinstance(source, socket.socket)
                    try:
                        data = source.recv(65536)
                        if not data:
                            raise ConnectionResetError
                        peer[source].setblocking(True)
                        peer[source].sendall(data)
                        peer[source].setblocking(False)
                    except OSError:
                        for sock in peer:
                            sock.close()
                        return

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture
def silent_proxy() -> Iterator[SilentProxy]:
    proxy = SilentProxy((PG_HOST, PG_PORT))
    try:
        yield proxy
    finally:
        proxy.close()


def test_silent_database_gives_quick_503s_and_recovers(
    pg_url: str, silent_proxy: SilentProxy, live_server: Callable[..., LiveServer]
) -> None:
    store = open_store(pg_url)
    token = add_treatment(store)
    store.close()
    via_proxy = pg_url.replace(f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{silent_proxy.port}")
    server = live_server(via_proxy)
    url = f"{server.base}/f/{token}.ics"

    def timed_get() -> tuple[int | None, float, str | None]:
        started = time.monotonic()
        try:
            response = httpx.get(url, timeout=30)
            status: int | None = response.status_code
            retry_after = response.headers.get("retry-after")
        except httpx.TransportError:
            status, retry_after = None, None
        return status, time.monotonic() - started, retry_after

    with ThreadPoolExecutor(12) as pool:
        assert [r[0] for r in pool.map(lambda _n: timed_get(), range(8))] == [200] * 8  # pooled connections

    silent_proxy.silent.set()
    went_silent = time.monotonic()
    resume = threading.Timer(SILENCE, silent_proxy.silent.clear)
    resume.start()
    try:
        with ThreadPoolExecutor(12) as pool:  # on pooled connections, and more than the pool holds
            during = list(pool.map(lambda _n: timed_get(), range(12)))
        while time.monotonic() - went_silent < SILENCE - WORST_BOUND:  # on new connections
            during.append(timed_get())
    finally:
        resume.join()
    resumed = time.monotonic()
    while True:
        status, _seconds, _retry = timed_get()
        if status == 200 or time.monotonic() - resumed > RECOVERY_BOUND + 10:
            break
        time.sleep(0.2)
    recovered_in = time.monotonic() - resumed
    worst = max(seconds for _status, seconds, _retry in during)
    print(
        f"\nsilent database: {len(during)} requests, statuses {sorted({s for s, _t, _r in during}, key=str)}, "
        f"worst {worst:.2f} s; recovered {recovered_in:.2f} s after the database answered again"
    )
    assert worst <= WORST_BOUND, during
    assert all(s == 503 and r is not None and int(r) > 0 for s, _t, r in during), during
    assert status == 200 and recovered_in <= RECOVERY_BOUND
