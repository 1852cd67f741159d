"""What `aftercal sync` and a reschedule cost: time for unchanged treatments, requests per channel.

    .venv/bin/python benchmarks/bench_sync.py [--treatments 1000] [--rounds 5] [--no-postgres]

Table 1: `sync_store()` over a store of N treatments, each pushed to a CalDAV channel that is in
line (its last confirmed revision is the treatment's): what a cron job costs when nothing
changed. SQLite (a file in a temporary folder) and the machine's PostgreSQL (127.0.0.1:5432,
database `test`, a schema of its own, dropped afterwards), measured side by side in one run,
median of the rounds. The CalDAV target is a closed port: a request would fail and show as
pending, so "pending 0" also proves that no request was sent.

Table 2: HTTP requests that reach each server when one treatment pushed to both channels is
added, rescheduled, cancelled and forgotten: Radicale (behind a counting proxy) and the Google
Calendar v3 stand-in of the tests (its own count of HTTP requests and API calls), through the
real clients.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aftercal.feeds import add_treatment, cancel_treatment, forget_treatment, init_store, reschedule_treatment  # noqa: E402
from aftercal.sync import channel_target, sync_store  # noqa: E402
from calendars.caldav import CalDavConnection, Password  # noqa: E402
from calendars.feeds.store import StoredOptions, open_store  # noqa: E402
from tests.google.standin import CalendarStandin  # noqa: E402
from tests.relay import RecordingProxy  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
USER, PASSWORD = "clinic", "bench-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- table 1: sync of unchanged treatments ---------------------------------------------------------


def fill(db: str, secret: bytes, count: int) -> None:
    """`count` treatments, each with a CalDAV channel marked in line."""
    init_store(db, secret)
    target = channel_target("caldav", {"url": "http://127.0.0.1:9/", "user": USER, "calendar": "aftercare"})
    store = open_store(db, secret=secret)
    try:
        for n in range(count):
            treatment, _token = store.add(
                "microneedling", "2027-03-16T10:00", "Europe/Paris", f"T-{n:05d}", StoredOptions(), channels=[target]
            )
            store.mark_synced(treatment.pk, "caldav", revision=treatment.revision, removed=False)
    finally:
        store.close()


def time_sync(db: str, secret: bytes, rounds: int) -> tuple[float, int, int]:
    """Median seconds of `sync_store()`, and what the last round looked at and left pending."""
    times = []
    report = None
    for _ in range(rounds):
        start = time.perf_counter()
        report = sync_store(db=db, secret=secret)
        times.append(time.perf_counter() - start)
    assert report is not None
    return statistics.median(times), report.looked_at, len(report.failed)


@contextmanager
def pg_schema() -> Iterator[str | None]:
    try:
        import psycopg

        schema = f"aftercal_bench_{secrets.token_hex(4)}"
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:  # no server here: the table says so
        print(f"PostgreSQL not reachable ({type(exc).__name__}): its row is left out", file=sys.stderr)
        yield None
        return
    try:
        yield f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def table_unchanged(count: int, rounds: int, postgres: bool) -> None:
    secret = secrets.token_bytes(32)
    rows = []
    with tempfile.TemporaryDirectory() as folder, pg_schema() if postgres else _nothing() as pg_url:
        targets = [("SQLite", str(Path(folder) / "clinic.db"))]
        if pg_url is not None:
            targets.append(("PostgreSQL", pg_url))
        for name, db in targets:
            start = time.perf_counter()
            fill(db, secret, count)
            filled = time.perf_counter() - start
            seconds, looked_at, pending = time_sync(db, secret, rounds)
            rows.append((name, count, seconds * 1000, looked_at, pending, filled))
    print(f"\n`aftercal sync` over {count} treatments whose CalDAV channel is in line (median of {rounds})")
    print(f"{'store':<11} {'treatments':>10} {'sync ms':>9} {'looked at':>10} {'pending':>8} {'fill s':>7}")
    for name, n, ms, looked_at, pending, filled in rows:
        print(f"{name:<11} {n:>10} {ms:>9.2f} {looked_at:>10} {pending:>8} {filled:>7.1f}")


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


# ---- table 2: requests per change ------------------------------------------------------------------


def take(proxy: RecordingProxy) -> str:
    """The requests `proxy` passed since the last call, by method."""
    methods = Counter(method for method, _path in proxy.requests)
    proxy.requests.clear()
    text = ", ".join(f"{count} {method}" for method, count in sorted(methods.items()))
    total = sum(methods.values())
    return f"{total} ({text})" if total else "0"


@contextmanager
def radicale(folder: Path) -> Iterator[str]:
    port = free_port()
    users = folder / "users"
    users.write_text(f"{USER}:{PASSWORD}\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--config", "", "--auth-type", "htpasswd",
         "--auth-htpasswd-filename", str(users), "--auth-htpasswd-encryption", "plain", "--auth-delay", "0",
         "--rights-type", "owner_only", "--server-hosts", f"127.0.0.1:{port}",
         "--storage-filesystem-folder", str(folder / "storage")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("radicale did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def table_requests() -> None:
    os.environ["AFTERCAL_CALDAV_PASSWORD"] = PASSWORD
    secret = secrets.token_bytes(32)
    rows: list[tuple[str, str, str, int]] = []
    with tempfile.TemporaryDirectory() as tmp, radicale(Path(tmp)) as caldav_url, CalendarStandin() as google:
        folder = Path(tmp)
        with CalDavConnection(caldav_url, USER, Password(PASSWORD, "bench")) as conn:
            conn.find_calendar("aftercare", create=True)
        proxy = RecordingProxy(caldav_url)
        db = str(folder / "clinic.db")
        init_store(db, secret)
        channels = [
            channel_target("caldav", {"url": proxy.url, "user": USER, "calendar": "aftercare"}),
            channel_target("google", {"api_endpoint": google.url, "no_auth": True}),
        ]

        def step(name: str, change: Callable[[], Any]) -> None:
            google.reset_counts()
            change()
            report = sync_store(db=db, secret=secret, treatment_ids=["T-1"])
            assert not report.failed, [o.line() for o in report.failed]
            rows.append((name, take(proxy), f"{google.http_requests}", len(google.calls)))

        step(
            "add (first push)",
            lambda: add_treatment(
                "microneedling", "2027-03-16T10:00", "Europe/Paris", "T-1", db=db, channels=channels, secret=secret
            ),
        )
        step("sync, nothing changed", lambda: None)
        step("reschedule", lambda: reschedule_treatment("T-1", "2027-03-18T15:00", db=db, secret=secret))
        step("cancel", lambda: cancel_treatment("T-1", db=db, secret=secret))
        step("forget (events already removed)", lambda: forget_treatment("T-1", db=db, secret=secret))
        proxy.close()
    print("\nHTTP requests that reach each server for one treatment pushed to CalDAV and Google")
    print(f"{'change':<32} {'CalDAV (Radicale)':<34} {'Google HTTP':>11} {'API calls':>9}")
    for name, caldav, google_http, google_calls in rows:
        print(f"{name:<32} {caldav:<34} {google_http:>11} {google_calls:>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--treatments", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    table_unchanged(args.treatments, args.rounds, not args.no_postgres)
    table_requests()


if __name__ == "__main__":
    main()
