"""The clinic's treatment store behind subscription feeds: a thin layer over SQLite and PostgreSQL.

A table of treatments; their feed links (capability tokens, stored only as SHA-256 hashes, one
treatment may have several); the channels each treatment is pushed to (CalDAV, Google) with
what each last confirmed; and the clinic's settings (the fingerprint of its secret). SQLite (one
file, the default) serves one machine; a ``postgresql://`` URL lets several server processes (and
sync workers) share one database. Both speak the same SQL here: ``?`` placeholders (turned
into ``%s`` for psycopg), ISO-8601 UTC text for timestamps, JSON text for options.

Schema migrations are versioned: ``schema_version`` holds the last applied step and every step
of `MIGRATIONS` runs once, in order, inside its own transaction (PostgreSQL takes an advisory
lock so two processes starting together do not both migrate).

Tokens: ``secrets.token_urlsafe(32)`` (256 random bits, URL-safe). The clear token exists only in
the return value of `add` and `rotate_link`; `lookup_token` finds a treatment by the hash alone
(an indexed equality lookup) and compares with `hmac.compare_digest`, the same work for unknown
and revoked tokens (a revoked link simply has no hash any more).
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import hashlib
import heapq
import hmac
import itertools
import json
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from calendars.feeds.limits import MIN_DB_TIMEOUT
from reminders import make_plan
from reminders.errors import AftercalError, InputError, StoreError, UnknownTreatmentError
from reminders.protocol import CareProtocol, load_protocol, parse_protocol, shipped_protocol_text
from reminders.schedule import (
    DEFAULT_MORNING,
    DEFAULT_QUIET,
    CarePlan,
    Clinic,
    EventIds,
    PlanOptions,
    get_patient_zone,
    get_zone,
    parse_clock,
    parse_quiet_hours,
    parse_start,
)

TOKEN_BYTES = 32  # 256 random bits; the issue asks for at least 128
DEFAULT_DB_NAME = "clinic.db"
MIGRATION_TIMEOUT = 60.0  # schema steps may wait for another process's migration
ACTIVE = "active"
CANCELLED = "cancelled"
FORGETTING = "forgetting"  # forgotten: its events are still being removed from its channels
SYNC_LEASE = timedelta(minutes=10)  # a sync worker that died gives its treatments back after this

Clock = Callable[[], datetime]


class InvalidTreatmentError(StoreError):
    """One stored treatment cannot be read or no longer validates (a protocol from an older
    aftercal, options stored before a rule refused them): that treatment fails, the others work."""

    def __init__(self, treatment_id: str, reason: str) -> None:
        self.treatment_id = treatment_id
        self.reason = reason
        super().__init__(f"treatment {treatment_id} cannot be used: {reason}")


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting for other first openers: the switch needs an exclusive lock and
    SQLite answers "database is locked" at once instead of calling the busy handler."""
    for _ in range(200):  # up to ~10 s, as busy_timeout
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.05)
    conn.execute("PRAGMA journal_mode = WAL")  # the last try raises what SQLite says


def default_db_path() -> Path:
    """``$AFTERCAL_DATA_DIR/clinic.db``, else ``clinic.db`` in the user data dir (platformdirs)."""
    override = os.environ.get("AFTERCAL_DATA_DIR")
    if override:
        return Path(override) / DEFAULT_DB_NAME
    import platformdirs

    return Path(platformdirs.user_data_dir("aftercal", appauthor=False)) / DEFAULT_DB_NAME


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC) if text else None


# ---- options -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredOptions:
    """What shapes a stored treatment's plan besides protocol, start and zone."""

    discreet: bool = False
    morning: str = DEFAULT_MORNING
    quiet: str = DEFAULT_QUIET  # HH:MM-HH:MM, or "off"
    clinic_name: str | None = None
    clinic_phone: str | None = None
    clinic_url: str | None = None
    patient_name: str | None = None  # kept for the clinic's list
    name_in_feed: bool = False  # the patient's name appears in the feed only when the clinic asked

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StoredOptions:
        data = json.loads(text or "{}")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def plan_options(self, sequence: int, ids: EventIds | None = None) -> PlanOptions:
        return PlanOptions(
            morning=parse_clock(self.morning, "--morning"),
            quiet=parse_quiet_hours(self.quiet),
            discreet=self.discreet,
            patient_name=self.patient_name if self.name_in_feed else None,
            clinic=Clinic(name=self.clinic_name, phone=self.clinic_phone, url=self.clinic_url),
            sequence=sequence,
            ids=ids or EventIds(),
        )


# ---- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Treatment:
    """One stored treatment (never holds the clear token)."""

    pk: int
    treatment_id: str
    protocol: str  # as the clinic named it (shipped name or path)
    protocol_toml: str = field(repr=False)  # the protocol's text when added: feeds never read files
    start_local: str  # local ISO time, e.g. 2026-11-24T10:00 (with offset only when the clinic gave one)
    zone: str
    options: StoredOptions
    revision: int  # iCalendar SEQUENCE: bumped on reschedule and cancel
    status: str
    created_at: datetime
    updated_at: datetime  # DTSTAMP / LAST-MODIFIED of the feed, and its HTTP Last-Modified
    cancelled_at: datetime | None
    has_link: bool
    link_created_at: datetime | None  # of its newest link
    problem: str | None = None  # why the stored row cannot be served (see Store.list(check=True))
    links: int = 0  # active links
    ids: EventIds = field(default_factory=EventIds, repr=False)  # the store's event identifiers

    @property
    def cancelled(self) -> bool:
        return self.status == CANCELLED

    @property
    def forgetting(self) -> bool:
        return self.status == FORGETTING

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def ends_on(self) -> date:
        """The day its aftercare ended: the plan's last day, or the day it was cancelled if earlier."""
        last = self.plan().last_date() if self.problem is None else datetime.fromisoformat(self.start_local).date()
        if self.cancelled_at is not None:
            return min(last, self.cancelled_at.date())
        return last

    def parsed_protocol(self) -> CareProtocol:
        return parse_protocol(self.protocol_toml, origin=self.protocol)

    def plan(self) -> CarePlan:
        """The same plan `aftercal plan` makes for these inputs, with SEQUENCE = revision."""
        return make_plan(
            self.parsed_protocol(),
            self.start_local,
            self.zone,
            treatment_id=self.treatment_id,
            options=self.options.plan_options(self.revision, self.ids),
            # Checked when it was stored; a stored plan keeps rendering whatever the rules became.
            allow_fixed_zone=True,
        )

    def check(self, parsed: dict[tuple[str, str], CareProtocol] | None = None) -> str | None:
        """None if this treatment's feed can be rendered, else why not (one line).

        `parsed` caches protocols by (name, text): many treatments share one protocol, and parsing
        is most of the cost."""
        if self.problem is not None:
            return self.problem
        try:
            key = (self.protocol, self.protocol_toml)
            proto = parsed.get(key) if parsed is not None else None
            if proto is None:
                proto = self.parsed_protocol()
                if parsed is not None:
                    parsed[key] = proto
            make_plan(
                proto,
                self.start_local,
                self.zone,
                treatment_id=self.treatment_id,
                options=self.options.plan_options(self.revision, self.ids),
                allow_fixed_zone=True,
            )
        except Exception as exc:
            return _reason(exc)
        return None


def _reason(exc: Exception) -> str:
    """One line for a stored row that fails: aftercal's own message, else the exception's type too."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, AftercalError) else f"{type(exc).__name__}: {text}".rstrip(": ")


_COLUMNS = (
    "t.pk, t.treatment_id, t.protocol, t.protocol_toml, t.start_local, t.zone, t.options, t.revision, t.status, "
    "t.created_at, t.updated_at, t.cancelled_at, "
    "(SELECT COUNT(*) FROM links l WHERE l.treatment_pk = t.pk), "
    "(SELECT MAX(l.created_at) FROM links l WHERE l.treatment_pk = t.pk)"
)


def _row(values: Sequence[Any]) -> Treatment:
    """A stored row; InvalidTreatmentError if it cannot be read (one row never breaks the others)."""
    try:
        return _read_row(values)
    except Exception as exc:
        raise InvalidTreatmentError(str(values[1]), f"stored row unreadable: {_reason(exc)}") from None


def _lenient_row(values: Sequence[Any], problem: str) -> Treatment:
    """What can be read of an unreadable row, for `treatments list`, with `problem` set."""

    def attempt(read: Callable[[], Any], fallback: Any) -> Any:
        try:
            return read()
        except Exception:
            return fallback

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return Treatment(
        pk=int(values[0]),
        treatment_id=str(values[1]),
        protocol=str(values[2]),
        protocol_toml=str(values[3]),
        start_local=str(values[4]),
        zone=str(values[5]),
        options=attempt(lambda: StoredOptions.from_json(values[6]), StoredOptions()),
        revision=attempt(lambda: int(values[7]), 0),
        status=str(values[8]),
        created_at=attempt(lambda: _from_iso(values[9]), None) or epoch,
        updated_at=attempt(lambda: _from_iso(values[10]), None) or epoch,
        cancelled_at=attempt(lambda: _from_iso(values[11]), None),
        has_link=bool(values[12]),
        link_created_at=attempt(lambda: _from_iso(values[13]), None),
        problem=problem,
        links=attempt(lambda: int(values[12]), 0),
    )


def _read_row(values: Sequence[Any]) -> Treatment:
    return Treatment(
        pk=int(values[0]),
        treatment_id=values[1],
        protocol=values[2],
        protocol_toml=values[3],
        start_local=values[4],
        zone=values[5],
        options=StoredOptions.from_json(values[6]),
        revision=int(values[7]),
        status=values[8],
        created_at=_from_iso(values[9]) or _utc_now(),
        updated_at=_from_iso(values[10]) or _utc_now(),
        cancelled_at=_from_iso(values[11]),
        has_link=bool(values[12]),
        link_created_at=_from_iso(values[13]),
        links=int(values[12]),
    )


# ---- migrations ----------------------------------------------------------------------------------

# Each step is applied once, in order, in one transaction; never edit a released step, add one.
# A step is a list of statements, or a dict of lists per dialect ("sqlite", "postgres").
MIGRATIONS: list[list[str] | dict[str, list[str]]] = [
    # 1: treatments with their hashed link
    {
        "sqlite": [
            """CREATE TABLE treatments (
                pk INTEGER PRIMARY KEY AUTOINCREMENT,
                treatment_id TEXT NOT NULL UNIQUE,
                protocol TEXT NOT NULL,
                protocol_toml TEXT NOT NULL,
                start_local TEXT NOT NULL,
                zone TEXT NOT NULL,
                options TEXT NOT NULL,
                revision INTEGER NOT NULL DEFAULT 0,
                status TEXT NOT NULL DEFAULT 'active',
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                cancelled_at TEXT,
                token_hash TEXT UNIQUE,
                link_created_at TEXT
            )""",
        ],
        "postgres": [
            """CREATE TABLE treatments (
                pk BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                treatment_id TEXT NOT NULL UNIQUE,
                protocol TEXT NOT NULL,
                protocol_toml TEXT NOT NULL,
                start_local TEXT NOT NULL,
                zone TEXT NOT NULL,
                options TEXT NOT NULL,
                revision INTEGER NOT NULL DEFAULT 0,
                status TEXT NOT NULL DEFAULT 'active',
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                cancelled_at TEXT,
                token_hash TEXT UNIQUE,
                link_created_at TEXT
            )""",
        ],
    },
    # 2: the clinic's list is read newest first
    ["CREATE INDEX treatments_by_created ON treatments (created_at)"],
    # 3: several links per treatment; the channels each treatment is pushed to; the clinic's
    # settings; a lease so that one sync worker at a time pushes a treatment
    {
        dialect: [
            f"""CREATE TABLE links (
                pk {identity},
                treatment_pk {ref} NOT NULL REFERENCES treatments (pk) ON DELETE CASCADE,
                token_hash TEXT NOT NULL UNIQUE,
                created_at TEXT NOT NULL
            )""",
            "CREATE INDEX links_by_treatment ON links (treatment_pk)",
            "INSERT INTO links (treatment_pk, token_hash, created_at) "
            "SELECT pk, token_hash, COALESCE(link_created_at, created_at) FROM treatments WHERE token_hash IS NOT NULL",
            # The old column stays (SQLite cannot drop a UNIQUE column) but is never set again.
            "UPDATE treatments SET token_hash = NULL, link_created_at = NULL",
            f"""CREATE TABLE channels (
                pk {identity},
                treatment_pk {ref} NOT NULL REFERENCES treatments (pk) ON DELETE CASCADE,
                channel TEXT NOT NULL,
                target TEXT NOT NULL,
                synced_revision INTEGER,
                synced_ids TEXT,
                removed INTEGER NOT NULL DEFAULT 0,
                last_synced_at TEXT,
                last_error TEXT,
                last_error_at TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                UNIQUE (treatment_pk, channel)
            )""",
            "ALTER TABLE treatments ADD COLUMN sync_owner TEXT",
            "ALTER TABLE treatments ADD COLUMN sync_until TEXT",
            "CREATE TABLE clinic (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ]
        for dialect, identity, ref in (
            ("sqlite", "INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER"),
            ("postgres", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BIGINT"),
        )
    },
    # 4: patients connect their own Google Calendar: pending OAuth states (single-use, expiring,
    # bound to a link and a browser), a channel's sealed credentials, and its disconnection
    {
        dialect: [
            f"""CREATE TABLE oauth_states (
                state_hash TEXT PRIMARY KEY,
                treatment_pk {ref} NOT NULL REFERENCES treatments (pk) ON DELETE CASCADE,
                link_hash TEXT NOT NULL,
                browser_hash TEXT NOT NULL,
                sealed TEXT NOT NULL,
                expires_at TEXT NOT NULL
            )""",
            "ALTER TABLE channels ADD COLUMN credentials TEXT",
            "ALTER TABLE channels ADD COLUMN disconnected_at TEXT",
        ]
        for dialect, ref in (("sqlite", "INTEGER"), ("postgres", "BIGINT"))
    },
]
SCHEMA_VERSION = len(MIGRATIONS)


# ---- bounded database calls ------------------------------------------------------------------------


class _Watch:
    """One database call being watched: its deadline and a duplicate of its connection's socket."""

    __slots__ = ("deadline", "done", "fired", "sock")

    def __init__(self, deadline: float, sock: socket.socket) -> None:
        self.deadline = deadline
        self.sock: socket.socket | None = sock
        self.done = False
        self.fired = False


class _Watchdog:
    """Cuts the socket of a PostgreSQL call that outlives its deadline.

    psycopg has no client-side query timeout, and TCP keepalives or tcp_user_timeout do not fire
    while a host (or a proxy in front of it) still acknowledges packets but never answers. A
    shutdown() of the socket makes the blocked call fail at once; the connection is then dropped.
    The watch holds a dup() of the socket, so the number can never be reused by another socket
    before the watch ends, and firing and stopping take one lock, so a call that finished (its
    connection back in the pool) is never cut.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, conn: Any, deadline: float) -> _Watch | None:
        try:
            sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        except Exception:  # a connection without a socket fails on its own
            return None
        entry = _Watch(deadline, sock)
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._order), entry))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="aftercal-db-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0][2] is entry:
                self._cond.notify()
        return entry

    def stop(self, entry: _Watch) -> bool:
        """End a watch (idempotent); True if it fired, i.e. the connection was cut."""
        with self._cond:
            entry.done = True
            sock, entry.sock = entry.sock, None
        if sock is not None:
            sock.close()
        return entry.fired

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _order, entry = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                entry.fired = True
                if entry.sock is not None:
                    with contextlib.suppress(OSError):
                        entry.sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()


# ---- the store -------------------------------------------------------------------------------------


@dataclass
class Store:
    """Treatments in SQLite or PostgreSQL. Thread-safe: calls borrow from a small connection pool."""

    url: str
    dialect: str  # "sqlite" or "postgres"
    target: str  # file path or libpq URL
    clock: Clock = _utc_now
    max_connections: int = 8
    # Bound in seconds on every call (pool wait, connect, query); None waits as long as it takes.
    timeout: float | None = None
    # How treatment ids become UIDs and plan tags: keyed once the store is bound to a clinic secret.
    ids: EventIds = field(default_factory=EventIds, repr=False)
    _idle: list[Any] = field(default_factory=list, repr=False)
    _open: int = field(default=0, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    # -- connections

    def _connect(self, deadline: float | None = None) -> Any:
        if self.dialect == "sqlite":
            try:
                if self.target != ":memory:" and not os.path.exists(self.target):
                    # The store may hold patient names: readable by its owner only (WAL files inherit it).
                    os.close(os.open(self.target, os.O_CREAT | os.O_WRONLY, 0o600))
                conn = sqlite3.connect(self.target, timeout=10.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout = 10000")
                _enable_wal(conn)
                conn.execute("PRAGMA foreign_keys = ON")
                # A forgotten patient's row is overwritten with zeros, not left in free pages.
                conn.execute("PRAGMA secure_delete = ON")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open the treatment database {self.target}: {exc}") from None
            return conn
        import psycopg

        try:
            return psycopg.connect(self.target, autocommit=True, **self._pg_params(deadline))
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot connect to the treatment database {_safe_url(self.url)}: {_pg_reason(exc, self.url)}"
            ) from None

    def _pg_params(self, deadline: float | None) -> dict[str, Any]:
        """libpq parameters that bound a connection in time (the URL's own values win, but for the
        connect timeout, which must fit in what is left of the call's bound)."""
        if deadline is None or self.timeout is None:
            return {"connect_timeout": 10}
        from psycopg.conninfo import conninfo_to_dict

        remaining = deadline - time.monotonic()
        if remaining < MIN_DB_TIMEOUT:  # libpq cannot wait less than 2 s for a connection
            raise StoreError(f"treatment database {_safe_url(self.url)}: no connection free within {self.timeout:g} s")
        given = conninfo_to_dict(self.target)
        params: dict[str, Any] = {"connect_timeout": int(remaining)}
        options = str(given.get("options") or "")
        if "statement_timeout" not in options:
            params["options"] = f"{options} -c statement_timeout={int(self.timeout * 1000)}".strip()
        # A host that vanishes (packets dropped): unacknowledged data, or an idle pooled connection,
        # fails within seconds instead of the kernel's 15 minutes.
        defaults = {
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": int(self.timeout * 1000),
        }
        params.update({key: value for key, value in defaults.items() if key not in given})
        return params

    @contextmanager
    def _conn(self, *, slow: bool = False) -> Iterator[Any]:
        """Borrow a connection from the pool (at most `max_connections`, opened on demand).

        With `timeout` set, the whole call (waiting for a pooled connection, connecting, and the
        caller's queries) ends within it: a PostgreSQL that stops answering gives a StoreError,
        not a hung request. `slow` (migrations) allows MIGRATION_TIMEOUT instead.

        A connection that broke (PostgreSQL restarted, network cut, cut by the watchdog) is
        dropped, not returned, so the next request opens a fresh one.
        """
        limit = None if self.timeout is None else max(self.timeout, MIGRATION_TIMEOUT) if slow else self.timeout
        deadline = None if limit is None else time.monotonic() + limit
        with self._cond:
            while not self._idle and self._open >= self.max_connections:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise StoreError(f"treatment database {_safe_url(self.url)}: no connection free within {limit:g} s")
                self._cond.wait(remaining)
            conn = self._idle.pop() if self._idle else None
            if conn is None:
                self._open += 1
        if conn is None:
            try:
                conn = self._connect(deadline)
            except BaseException:
                with self._cond:
                    self._open -= 1
                    self._cond.notify()
                raise
        watch = _WATCHDOG.watch(conn, deadline) if deadline is not None and self.dialect == "postgres" else None
        try:
            yield conn
        except Exception:
            if watch is not None and _WATCHDOG.stop(watch):
                raise StoreError(f"treatment database {_safe_url(self.url)}: no answer within {limit:g} s") from None
            raise
        finally:
            fired = watch is not None and _WATCHDOG.stop(watch)
            broken = fired or bool(getattr(conn, "broken", False) or getattr(conn, "closed", False))
            with self._cond:
                if broken:
                    self._open -= 1
                else:
                    self._idle.append(conn)
                self._cond.notify()
            if broken:
                with contextlib.suppress(Exception):
                    conn.close()

    def close(self) -> None:
        """Close the idle connections (all of them once no request is running)."""
        with self._cond:
            conns, self._idle = self._idle, []
            self._open -= len(conns)
            self._cond.notify_all()
        for conn in conns:
            with contextlib.suppress(Exception):  # a broken connection must not stop shutdown
                conn.close()

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.dialect == "postgres" else statement

    @contextmanager
    def transaction(self, *, slow: bool = False) -> Iterator[Any]:
        """A cursor inside BEGIN ... COMMIT (ROLLBACK on any error); SQLite takes the write lock at once."""
        with self._conn(slow=slow) as conn:
            yield from self._transaction(conn)

    def _transaction(self, conn: Any) -> Iterator[Any]:
        try:
            if self.dialect == "sqlite":
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.cursor()
                try:
                    yield cur
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            else:
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
        except AftercalError:
            raise
        except Exception as exc:
            raise self._wrap(exc) from None

    def _wrap(self, exc: Exception) -> StoreError:
        if self.dialect == "sqlite":
            return StoreError(f"treatment database {self.target}: {exc}")
        return StoreError(f"treatment database {_safe_url(self.url)}: {_pg_reason(exc, self.url)}")

    def _query(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._conn() as conn:
            try:
                cur = conn.execute(self._sql(statement), tuple(params))
                rows = cur.fetchall()
            except Exception as exc:
                raise self._wrap(exc) from None
        return list(rows)

    # -- schema

    def exists(self) -> bool:
        """Whether this database holds a treatment store (a schema made by aftercal)."""
        if self.dialect == "sqlite":
            if self.target != ":memory:" and not os.path.exists(self.target):
                return False
            rows = self._query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
            return bool(rows)
        rows = self._query("SELECT to_regclass('schema_version')")
        return bool(rows) and rows[0][0] is not None

    def migrate(self) -> int:
        """Apply every pending migration; returns the schema version now in force."""
        with self.transaction(slow=True) as cur:
            self._migration_lock(cur)
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            cur.execute("SELECT version FROM schema_version")
            row = cur.fetchone()
            if row is None:
                cur.execute(self._sql("INSERT INTO schema_version (version) VALUES (?)"), (0,))
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the treatment database has schema version {version}, newer than this aftercal "
                f"({SCHEMA_VERSION}): upgrade aftercal"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            step = MIGRATIONS[number - 1]
            statements = step if isinstance(step, list) else step[self.dialect]
            with self.transaction(slow=True) as cur:
                self._migration_lock(cur)
                cur.execute("SELECT version FROM schema_version")
                current = int(cur.fetchone()[0])
                if current >= number:  # another process got there first
                    continue
                for statement in statements:
                    cur.execute(statement)
                cur.execute(self._sql("UPDATE schema_version SET version = ?"), (number,))
        return self.schema_version()

    def _migration_lock(self, cur: Any) -> None:
        """PostgreSQL: one migrating process at a time, with room for a slow step."""
        if self.dialect == "postgres":
            if self.timeout is not None:
                cur.execute(f"SET LOCAL statement_timeout = {int(max(self.timeout, MIGRATION_TIMEOUT) * 1000)}")
            cur.execute("SELECT pg_advisory_xact_lock(7234501)")

    def schema_version(self) -> int:
        rows = self._query("SELECT version FROM schema_version")
        return int(rows[0][0]) if rows else 0

    # -- the clinic secret

    def clinic_setting(self, name: str) -> str | None:
        rows = self._query("SELECT value FROM clinic WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def use_secret(self, secret: bytes | None) -> None:
        """Take the event identifiers this store was made with: keyed if it is bound to a clinic
        secret (which must then be `secret`), else the historic unkeyed ones."""
        bound = self.clinic_setting("secret_fingerprint") if SCHEMA_VERSION >= 3 else None  # 3 made the table
        if bound is None:
            self.ids = EventIds()
            return
        if secret is None:
            raise StoreError(
                f"the treatment store {self.label} is bound to a clinic secret that is not on this machine: copy the "
                "secret file from the machine that ran `aftercal init` (`aftercal config show` says where it goes)"
            )
        ids = EventIds(secret)
        if ids.fingerprint != bound:
            raise StoreError(
                f"the clinic secret here is not the one the treatment store {self.label} was made with: copy the "
                "secret file from the machine that ran `aftercal init` (`aftercal config show` says where it goes)"
            )
        self.ids = ids

    def bind_secret(self, secret: bytes) -> bool:
        """Bind this store to the clinic secret (once); True if it was bound now. Every treatment's
        events then move to keyed identifiers at its next sync."""
        fingerprint = EventIds(secret).fingerprint
        with self.transaction() as cur:
            cur.execute(self._sql("SELECT value FROM clinic WHERE name = ?"), ("secret_fingerprint",))
            row = cur.fetchone()
            if row is None:
                cur.execute(
                    self._sql("INSERT INTO clinic (name, value) VALUES (?, ?)"), ("secret_fingerprint", fingerprint)
                )
        if row is not None and row[0] != fingerprint:
            raise StoreError(
                f"the treatment store {self.label} is bound to another clinic secret: copy the secret file from "
                "the machine that ran `aftercal init` for it"
            )
        self.use_secret(secret)
        return row is None

    @property
    def label(self) -> str:
        return self.target if self.dialect == "sqlite" else _safe_url(self.url)

    # -- treatments

    def _treatment(self, values: Sequence[Any]) -> Treatment:
        return replace(_row(values), ids=self.ids)

    def add(
        self,
        protocol: str,
        start_local: str,
        zone: str,
        treatment_id: str | None,
        options: StoredOptions,
        *,
        allow_fixed_zone: bool = False,
        channels: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> tuple[Treatment, str]:
        """Store a new treatment, with the channels it is pushed to (name, target); returns it and
        its link token (the only time it exists in clear)."""
        proto = load_protocol(protocol)
        protocol_toml = _protocol_text(protocol)
        plan = make_plan(
            proto,
            start_local,
            zone,
            treatment_id=treatment_id,
            options=options.plan_options(0, self.ids),
            allow_fixed_zone=allow_fixed_zone,
        )
        start_text = _normal_start(start_local, plan)
        now = _iso(self.clock())
        token = new_token()
        exists = f"treatment {plan.treatment_id} already exists: use `aftercal treatments reschedule` to move it"
        with self.transaction() as cur:
            cur.execute(self._sql("SELECT 1 FROM treatments WHERE treatment_id = ?"), (plan.treatment_id,))
            if cur.fetchone() is not None:
                raise InputError(exists)
            values = (
                plan.treatment_id, str(protocol), protocol_toml, start_text, plan.zone.key, options.to_json(),
                ACTIVE, now, now,
            )  # fmt: skip
            try:
                cur.execute(
                    self._sql(
                        "INSERT INTO treatments (treatment_id, protocol, protocol_toml, start_local, zone, options, "
                        "revision, status, created_at, updated_at, cancelled_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, NULL)"
                    ),
                    values,
                )
            except Exception as exc:
                # Another `add` of the same id committed between our check and our insert (PostgreSQL
                # checks read committed data, so two adds can both pass the check): the same answer.
                if _duplicate_treatment_id(exc):
                    raise InputError(exists) from None
                raise
            cur.execute(self._sql("SELECT pk FROM treatments WHERE treatment_id = ?"), (plan.treatment_id,))
            pk = int(cur.fetchone()[0])
            cur.execute(
                self._sql("INSERT INTO links (treatment_pk, token_hash, created_at) VALUES (?, ?, ?)"),
                (pk, hash_token(token), now),
            )
            for channel, target in channels:
                cur.execute(
                    self._sql("INSERT INTO channels (treatment_pk, channel, target) VALUES (?, ?, ?)"),
                    (pk, channel, json.dumps(target, sort_keys=True)),
                )
        return self.get(plan.treatment_id), token

    def get(self, treatment_id: str) -> Treatment:
        rows = self._query(f"SELECT {_COLUMNS} FROM treatments t WHERE t.treatment_id = ?", (treatment_id,))
        if not rows:
            raise UnknownTreatmentError(f"no treatment {treatment_id!r} in the store (see `aftercal treatments list`)")
        return self._treatment(rows[0])

    def find(self, treatment_id: str) -> Treatment | None:
        try:
            return self.get(treatment_id)
        except UnknownTreatmentError:
            return None

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM treatments")[0][0])

    def list(self, *, check: bool = False) -> list[Treatment]:
        """Every treatment; a row that cannot be read comes back with `problem` set instead of
        failing the list, and with `check` so does one whose feed would not render."""
        rows = self._query(f"SELECT {_COLUMNS} FROM treatments t ORDER BY t.created_at, t.pk")
        found = []
        parsed: dict[tuple[str, str], CareProtocol] = {}
        for values in rows:
            try:
                treatment = self._treatment(values)
            except InvalidTreatmentError as exc:
                treatment = replace(_lenient_row(values, exc.reason), ids=self.ids)
            if check and treatment.problem is None:
                problem = treatment.check(parsed)
                if problem is not None:
                    treatment = replace(treatment, problem=problem)
            found.append(treatment)
        return found

    def lookup_token(self, token: str) -> Treatment | None:
        """The treatment whose live link is `token`, else None (unknown, rotated or revoked alike)."""
        digest = hash_token(token)
        rows = self._query(
            f"SELECT {_COLUMNS}, k.token_hash FROM links k JOIN treatments t ON t.pk = k.treatment_pk "
            "WHERE k.token_hash = ?",
            (digest,),
        )
        stored = rows[0][14] if rows else "0" * 64
        # Same comparison whether or not a row came back.
        if hmac.compare_digest(stored.encode(), digest.encode()) and rows:
            return self._treatment(rows[0])
        return None

    def _change(
        self, treatment_id: str, apply: Callable[[Treatment, datetime], dict[str, Any]], *, bump: bool
    ) -> Treatment:
        """Read-modify-write of one treatment; a bump moves updated_at forward by at least a second."""
        for _attempt in range(20):
            current = self.get(treatment_id)
            now = max(self.clock().replace(microsecond=0), current.updated_at + timedelta(seconds=1))
            changes = apply(current, now)
            if all(getattr(current, column, None) == value for column, value in changes.items()):
                return current  # nothing changes (a reschedule to its own time): no new revision
            changes["updated_at"] = _iso(now) if bump else _iso(current.updated_at)
            if bump:
                changes["revision"] = current.revision + 1
            assignments = ", ".join(f"{column} = ?" for column in changes)
            with self.transaction() as cur:
                cur.execute(
                    self._sql(f"UPDATE treatments SET {assignments} WHERE pk = ? AND revision = ?"),
                    (*changes.values(), current.pk, current.revision),
                )
                if cur.rowcount == 1:
                    break
        else:  # pragma: no cover - twenty concurrent writers on one treatment
            raise StoreError(f"treatment {treatment_id} kept changing under us: try again")
        return self.get(treatment_id)

    def reschedule(
        self, treatment_id: str, start_local: str, zone: str | None = None, *, allow_fixed_zone: bool = False
    ) -> Treatment:
        """Move a treatment; its feed keeps the same UIDs with a higher SEQUENCE."""
        if zone is not None:
            zone = get_patient_zone(zone, allow_fixed=allow_fixed_zone).key

        def apply(current: Treatment, _now: datetime) -> dict[str, Any]:
            if current.cancelled:
                raise InputError(f"treatment {treatment_id} is cancelled: add it again with a new --id")
            _refuse_forgotten(current)
            new_zone = zone or current.zone
            moved = replace(current, start_local=start_local, zone=new_zone, revision=current.revision + 1)
            plan = moved.plan()  # validates start and zone
            return {"start_local": _normal_start(start_local, plan), "zone": plan.zone.key}

        return self._change(treatment_id, apply, bump=True)

    def cancel(self, treatment_id: str) -> Treatment:
        """Mark cancelled: the feed shows STATUS:CANCELLED events for a while, then nothing."""

        def apply(current: Treatment, now: datetime) -> dict[str, Any]:
            if current.cancelled:
                raise InputError(f"treatment {treatment_id} is already cancelled")
            _refuse_forgotten(current)
            return {"status": CANCELLED, "cancelled_at": _iso(now)}

        return self._change(treatment_id, apply, bump=True)

    def forget(self, treatment_id: str) -> Treatment | None:
        """Forget a treatment: its links go at once, the patient's name too; the row goes once
        every channel confirmed its events removed (now, if it has no channel). Returns the row
        still kept for that removal, None if nothing is left (also when it was never there)."""
        treatment = self.find(treatment_id)
        if treatment is None:
            return None
        if not treatment.forgetting:

            def apply(current: Treatment, now: datetime) -> dict[str, Any]:
                erased = replace(current.options, patient_name=None, name_in_feed=False)
                return {"status": FORGETTING, "options": erased.to_json(), "cancelled_at": _iso(now)}

            self._change(treatment_id, apply, bump=True)
        with self.transaction() as cur:
            cur.execute(self._sql("DELETE FROM links WHERE treatment_pk = ?"), (treatment.pk,))
        return self.finish_forget(treatment.pk)

    def finish_forget(self, pk: int) -> Treatment | None:
        """Delete a forgotten treatment whose channels all hold nothing of it any more; returns the
        row if it must wait for a channel still, else None."""
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    "DELETE FROM treatments WHERE pk = ? AND status = ? AND NOT EXISTS "
                    "(SELECT 1 FROM channels c WHERE c.treatment_pk = treatments.pk AND c.removed = 0 "
                    "AND c.disconnected_at IS NULL)"
                ),
                (pk, FORGETTING),
            )
        rows = self._query(f"SELECT {_COLUMNS} FROM treatments t WHERE t.pk = ?", (pk,))
        return self._treatment(rows[0]) if rows else None

    def rotate_link(self, treatment_id: str) -> tuple[Treatment, str]:
        """A new link; every old one stops working at once. Returns the new token (only time in clear)."""
        return self._new_link(treatment_id, replace_all=True)

    def new_link(self, treatment_id: str) -> tuple[Treatment, str]:
        """Another link beside the ones already active (a patient lost the paper; the phone keeps working)."""
        return self._new_link(treatment_id, replace_all=False)

    def _new_link(self, treatment_id: str, *, replace_all: bool) -> tuple[Treatment, str]:
        treatment = self.get(treatment_id)
        _refuse_forgotten(treatment)
        token = new_token()
        with self.transaction() as cur:
            if replace_all:
                cur.execute(self._sql("DELETE FROM links WHERE treatment_pk = ?"), (treatment.pk,))
            cur.execute(
                self._sql("INSERT INTO links (treatment_pk, token_hash, created_at) VALUES (?, ?, ?)"),
                (treatment.pk, hash_token(token), _iso(self.clock())),
            )
        return self.get(treatment_id), token

    def revoke_link(self, treatment_id: str) -> Treatment:
        """No link at all any more (until `rotate_link`)."""
        treatment = self.get(treatment_id)
        with self.transaction() as cur:
            cur.execute(self._sql("DELETE FROM links WHERE treatment_pk = ?"), (treatment.pk,))
        return self.get(treatment_id)

    # -- channels

    def channels(self, treatment_pk: int) -> builtins.list[ChannelState]:
        rows = self._query(
            f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE treatment_pk = ? ORDER BY pk", (treatment_pk,)
        )
        return [_channel_row(values) for values in rows]

    def pending(
        self, *, after_pk: int = 0, limit: int = 100, everything: bool = False
    ) -> builtins.list[tuple[int, str]]:
        """Treatments (pk and id, by pk, after `after_pk`) with a channel not in line, or still to
        be forgotten; with `everything`, every treatment that has a channel."""
        stale = (
            "c.disconnected_at IS NULL AND (t.status = 'active' AND (c.removed = 1 OR c.synced_revision IS NULL "
            "OR c.synced_revision <> t.revision OR c.synced_ids IS NULL OR c.synced_ids <> ?) "
            "OR t.status <> 'active' AND c.removed = 0)"
        )
        where = "1 = 1" if everything else stale
        params: tuple[Any, ...] = () if everything else (self.ids.fingerprint,)
        rows = self._query(
            f"SELECT t.pk, t.treatment_id FROM treatments t WHERE t.pk > ? AND (EXISTS (SELECT 1 FROM channels c "
            f"WHERE c.treatment_pk = t.pk AND ({where})) OR t.status = ?) ORDER BY t.pk LIMIT ?",
            (after_pk, *params, FORGETTING, limit),
        )
        return [(int(row[0]), str(row[1])) for row in rows]

    def claim(self, pk: int, worker: str, *, lease: timedelta = SYNC_LEASE) -> Treatment | None:
        """Take treatment `pk` for syncing if no other worker holds it (an atomic conditional
        UPDATE: on PostgreSQL two workers on two machines cannot both win); None if taken or gone."""
        now = self.clock()
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    "UPDATE treatments SET sync_owner = ?, sync_until = ? "
                    "WHERE pk = ? AND (sync_until IS NULL OR sync_until < ? OR sync_owner = ?)"
                ),
                (worker, _iso(now + lease), pk, _iso(now), worker),
            )
            won = cur.rowcount == 1
        if not won:
            return None
        rows = self._query(f"SELECT {_COLUMNS} FROM treatments t WHERE t.pk = ?", (pk,))
        return self._treatment(rows[0]) if rows else None

    def release(self, pk: int, worker: str) -> None:
        with self.transaction() as cur:
            cur.execute(
                self._sql("UPDATE treatments SET sync_owner = NULL, sync_until = NULL WHERE pk = ? AND sync_owner = ?"),
                (pk, worker),
            )

    def mark_synced(self, pk: int, channel: str, *, revision: int | None, removed: bool) -> None:
        """A channel confirmed it holds the treatment at `revision` (or, `removed`, nothing of it)."""
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    "UPDATE channels SET synced_revision = ?, synced_ids = ?, removed = ?, last_synced_at = ?, "
                    "last_error = NULL, last_error_at = NULL, attempts = 0 WHERE treatment_pk = ? AND channel = ?"
                ),
                (revision, self.ids.fingerprint, int(removed), _iso(self.clock()), pk, channel),
            )

    def mark_failed(self, pk: int, channel: str, error: str) -> None:
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    "UPDATE channels SET last_error = ?, last_error_at = ?, attempts = attempts + 1 "
                    "WHERE treatment_pk = ? AND channel = ?"
                ),
                (error[:500], _iso(self.clock()), pk, channel),
            )

    # -- sealed secrets and a patient's own Google Calendar

    def _sealing_key(self) -> bytes:
        if self.ids.key is None:
            raise StoreError(
                f"the treatment store {self.label} is not bound to a clinic secret, which encrypts patients' Google "
                "tokens: run `aftercal init` (it binds the store)"
            )
        return hmac.new(self.ids.key, b"aftercal-sealing-key", hashlib.sha256).digest()

    def mac(self, text: str) -> str:
        """An HMAC of `text` under a key derived from the clinic secret (form tokens)."""
        return hmac.new(self._sealing_key(), b"mac\x1f" + text.encode(), hashlib.sha256).hexdigest()

    def seal(self, text: str, context: str) -> str:
        """`text` encrypted (AES-256-GCM) under a key derived from the clinic secret, which never
        lives in the database; `context` binds it to its place (a row moved elsewhere fails)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._sealing_key()).encrypt(nonce, text.encode(), context.encode())
        return "v1:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def unseal(self, sealed: str, context: str) -> str:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            version, body = sealed.split(":", 1)
            raw = base64.urlsafe_b64decode(body)
            if version != "v1":
                raise ValueError(version)
            return AESGCM(self._sealing_key()).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (ValueError, InvalidTag):
            raise StoreError("a sealed value in the treatment store cannot be opened with this clinic secret") from None

    def start_oauth(
        self, state: str, treatment_pk: int, link_token: str, browser: str, sealed: str, ttl: timedelta
    ) -> None:
        """Remember an OAuth `state` for `ttl`: single-use, bound to the link and to the browser."""
        now = self.clock()
        with self.transaction() as cur:
            cur.execute(self._sql("DELETE FROM oauth_states WHERE expires_at < ?"), (_iso(now),))
            cur.execute(
                self._sql(
                    "INSERT INTO oauth_states (state_hash, treatment_pk, link_hash, browser_hash, sealed, expires_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)"
                ),
                (hash_token(state), treatment_pk, hash_token(link_token), hash_token(browser), sealed, _iso(now + ttl)),
            )

    def take_oauth(self, state: str) -> OAuthState | None:
        """The state's row, deleted as it is read (a second use finds nothing); None if unknown or expired."""
        digest = hash_token(state)
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    "SELECT treatment_pk, link_hash, browser_hash, sealed, expires_at FROM oauth_states "
                    "WHERE state_hash = ?"
                ),
                (digest,),
            )
            row = cur.fetchone()
            if row is None:
                return None
            cur.execute(self._sql("DELETE FROM oauth_states WHERE state_hash = ?"), (digest,))
            if cur.rowcount != 1:  # another request took it first
                return None
        expires = _from_iso(row[4])
        if expires is None or expires < self.clock():
            return None
        return OAuthState(int(row[0]), str(row[1]), str(row[2]), str(row[3]))

    def link_is_active(self, treatment_pk: int, link_hash: str) -> bool:
        rows = self._query("SELECT 1 FROM links WHERE treatment_pk = ? AND token_hash = ?", (treatment_pk, link_hash))
        return bool(rows)

    def set_channel(
        self, treatment_pk: int, channel: str, target: dict[str, Any], *, credentials: str | None = None
    ) -> None:
        """Add (or replace) one channel of a treatment, not synced yet."""
        with self.transaction() as cur:
            cur.execute(
                self._sql("DELETE FROM channels WHERE treatment_pk = ? AND channel = ?"), (treatment_pk, channel)
            )
            cur.execute(
                self._sql("INSERT INTO channels (treatment_pk, channel, target, credentials) VALUES (?, ?, ?, ?)"),
                (treatment_pk, channel, json.dumps(target, sort_keys=True), credentials),
            )

    def drop_channel(self, treatment_pk: int, channel: str) -> None:
        with self.transaction() as cur:
            cur.execute(
                self._sql("DELETE FROM channels WHERE treatment_pk = ? AND channel = ?"), (treatment_pk, channel)
            )

    def mark_disconnected(self, treatment_pk: int, channel: str, reason: str) -> None:
        """The other side took the access back: keep the row to say so, forget the credentials."""
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    "UPDATE channels SET disconnected_at = ?, credentials = NULL, last_error = ?, last_error_at = ? "
                    "WHERE treatment_pk = ? AND channel = ?"
                ),
                (_iso(self.clock()), reason[:500], _iso(self.clock()), treatment_pk, channel),
            )


@dataclass(frozen=True)
class OAuthState:
    """A pending connect: whose treatment, which link and browser started it, and its sealed
    secrets (the link token, to go back to the page, and the PKCE verifier)."""

    treatment_pk: int
    link_hash: str
    browser_hash: str
    sealed: str


def _refuse_forgotten(treatment: Treatment) -> None:
    if treatment.forgetting:
        raise InputError(
            f"treatment {treatment.treatment_id} is forgotten (its events are still being removed): "
            "`aftercal sync` finishes that"
        )


@dataclass(frozen=True)
class ChannelState:
    """Where one treatment's events go besides its feed, and what that channel last confirmed."""

    channel: str  # "caldav" or "google"
    target: dict[str, Any]  # CalDAV: url, user, calendar; Google: calendar_id, credentials, ...
    synced_revision: int | None  # the treatment revision the channel holds (None: never synced)
    synced_ids: str | None  # EventIds.fingerprint of the identifiers it holds them under
    removed: bool  # the channel confirmed it holds nothing of the treatment
    last_synced_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    attempts: int  # failed attempts since the last success
    credentials: str | None = field(default=None, repr=False)  # sealed (Store.seal): a patient's refresh token
    disconnected_at: datetime | None = None  # the patient revoked aftercal's access: no longer pushed

    def in_line(self, treatment: Treatment) -> bool:
        if self.disconnected_at is not None:  # the patient took the access back: nothing to push
            return True
        if treatment.status != ACTIVE:
            return self.removed
        return (
            not self.removed
            and self.synced_revision == treatment.revision
            and self.synced_ids == (treatment.ids.fingerprint)
        )


_CHANNEL_COLUMNS = (
    "channel, target, synced_revision, synced_ids, removed, last_synced_at, last_error, last_error_at, attempts, "
    "credentials, disconnected_at"
)


def _channel_row(values: Sequence[Any]) -> ChannelState:
    return ChannelState(
        channel=str(values[0]),
        target=json.loads(values[1]),
        synced_revision=None if values[2] is None else int(values[2]),
        synced_ids=values[3],
        removed=bool(values[4]),
        last_synced_at=_from_iso(values[5]),
        last_error=values[6],
        last_error_at=_from_iso(values[7]),
        attempts=int(values[8]),
        credentials=values[9],
        disconnected_at=_from_iso(values[10]),
    )


def _duplicate_treatment_id(exc: Exception) -> bool:
    """The unique index on treatment_id refused an insert (SQLite or PostgreSQL)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return "treatments.treatment_id" in str(exc)
    if getattr(exc, "sqlstate", None) != "23505":  # unique_violation
        return False
    constraint = getattr(getattr(exc, "diag", None), "constraint_name", None)
    return "treatment_id" in (constraint or str(exc))


def _protocol_text(protocol: str) -> str:
    """The protocol's TOML text (shipped or a clinic file), stored so feeds never read files."""
    text_name = str(protocol)
    if "/" in text_name or text_name.endswith(".toml"):
        return Path(text_name).read_text(encoding="utf-8")
    return shipped_protocol_text(text_name)


def _normal_start(text: str, plan: CarePlan) -> str:
    """The start as stored: the local wall time, plus the offset only when it disambiguates a fold."""
    start = parse_start(text, get_zone(plan.zone.key))
    naive = start.replace(tzinfo=None).isoformat(timespec="minutes")
    return start.isoformat(timespec="minutes") if start.fold else naive


def _safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(database URL)"
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _pg_reason(exc: Exception, url: str) -> str:
    """First line of a psycopg error, without connection strings or the URL's password.

    libpq quotes parts of a URL it cannot parse (e.g. a password with a stray %), so the
    password is masked in every form it may take, not only after "password=".
    """
    from urllib.parse import unquote, urlsplit

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text.split(" password=", 1)[0]
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    for secret in {password, unquote(password)} if password else set():
        if secret:
            text = text.replace(secret, "***")
    return text


def is_postgres_url(value: str) -> bool:
    return value.startswith(("postgresql://", "postgres://"))


def open_store(
    url_or_path: str | Path | None = None,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    timeout: float | None = None,
    create: bool = True,
    secret: bytes | None = None,
) -> Store:
    """A store for a file path, ``sqlite:///path``, or ``postgresql://...`` URL (None: the default file).

    `timeout` bounds every PostgreSQL call in seconds (the feed server sets DEFAULT_DB_TIMEOUT).
    Without `create`, a database that holds no store yet is an InputError that says how to make
    one (`aftercal init`), so a mistyped path never becomes an empty store. A store bound to a
    clinic secret needs that `secret` (its treatments' identifiers are keyed with it).
    """
    default = url_or_path is None or str(url_or_path) == ""
    if default:
        path = default_db_path()
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        url_or_path = path
    text = str(url_or_path)
    if is_postgres_url(text):
        store = Store(url=text, dialect="postgres", target=text)
    else:
        if text.startswith("sqlite:///"):
            text = text[len("sqlite://") :]
        elif "://" in text:
            raise InputError(f"--db: use a file path or a postgresql:// URL, not {_safe_url(text)}")
        path = Path(text).expanduser()
        if path.is_dir():
            raise InputError(f"--db {path}: is a folder; give a database file")
        if not create and not path.exists():
            raise _no_store(str(path), default)
        if not path.parent.is_dir():
            raise InputError(f"--db {path}: folder {path.parent} does not exist")
        store = Store(url=str(path), dialect="sqlite", target=str(path))
    if clock is not None:
        store.clock = clock
    if timeout is not None:
        store.timeout = max(float(timeout), MIN_DB_TIMEOUT)
    try:
        if not create and not store.exists():
            raise _no_store(store.label, default)
        if migrate:
            store.migrate()
            store.use_secret(secret)
    except BaseException:
        store.close()
        raise
    return store


def _no_store(where: str, default: bool) -> InputError:
    if default:
        return InputError(f"no treatment store yet at {where}: create one with `aftercal init` (or give --db)")
    return InputError(
        f"--db {where}: no treatment store there: create one with `aftercal init --db {where}` (or check the name)"
    )
