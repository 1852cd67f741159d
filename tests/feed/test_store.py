"""The treatment store on SQLite and on the real PostgreSQL server: migrations, tokens, changes."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from calendars.feeds import store as store_module
from calendars.feeds.store import SCHEMA_VERSION, Store, hash_token, open_store
from reminders.errors import InputError, ProtocolError, StartTimeError, StoreError, ZoneError
from tests.feed.conftest import FakeClock, add_treatment


def test_migrations_are_versioned_and_idempotent(store: Store, store_url: str) -> None:
    assert store.schema_version() == SCHEMA_VERSION == len(store_module.MIGRATIONS)
    token = add_treatment(store)
    again = open_store(store_url)  # re-running the migrations changes nothing
    try:
        assert again.schema_version() == SCHEMA_VERSION
        assert again.lookup_token(token) is not None
        assert len(again.list()) == 1
    finally:
        again.close()


def test_migrations_resume_from_an_older_version(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 1)
    old = open_store(store_url)
    assert old.schema_version() == 1
    old.close()
    monkeypatch.undo()
    new = open_store(store_url)
    try:
        assert new.schema_version() == SCHEMA_VERSION
    finally:
        new.close()


def test_a_newer_schema_is_refused(store: Store, store_url: str) -> None:
    with store.transaction() as cur:
        cur.execute(store._sql("UPDATE schema_version SET version = ?"), (SCHEMA_VERSION + 5,))
    with pytest.raises(StoreError, match="upgrade aftercal"):
        open_store(store_url)


def test_concurrent_first_opens_migrate_once(store_url: str) -> None:
    errors: list[BaseException] = []
    stores: list[Store] = []

    def opener() -> None:
        try:
            stores.append(open_store(store_url))
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert {s.schema_version() for s in stores} == {SCHEMA_VERSION}
    finally:
        for s in stores:
            s.close()


def test_tokens_are_random_urlsafe_and_stored_hashed(store: Store, store_url: str) -> None:
    tokens = {add_treatment(store, f"T-{n}") for n in range(20)}
    assert len(tokens) == 20
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 bytes = 256 bits >= 128
        assert store.lookup_token(token) is not None
    held = [r[0] for r in store._query("SELECT token_hash FROM links")]
    assert sorted(held) == sorted(hash_token(t) for t in tokens)
    dump = "\n".join(str(row) for table in ("treatments", "links") for row in store._query(f"SELECT * FROM {table}"))
    assert not any(token in dump for token in tokens)
    if not store_url.startswith("postgresql"):
        raw = Path(store_url).read_bytes() + b"".join(p.read_bytes() for p in Path(store_url).parent.glob("*-wal"))
        assert not any(token.encode() in raw for token in tokens)


def test_lookup_refuses_unknown_rotated_and_revoked(store: Store) -> None:
    token = add_treatment(store)
    assert store.lookup_token("") is None
    assert store.lookup_token("x" * 43) is None
    assert store.lookup_token(hash_token(token)) is None  # the stored hash is not a key
    _t, new = store.rotate_link("T-1001")
    assert store.lookup_token(token) is None
    found = store.lookup_token(new)
    assert found is not None and found.treatment_id == "T-1001"
    revoked = store.revoke_link("T-1001")
    assert not revoked.has_link
    assert store.lookup_token(new) is None
    assert revoked.revision == found.revision  # links do not change the feed


def test_reschedule_and_cancel_bump_revision_and_time(store: Store, clock: FakeClock) -> None:
    add_treatment(store)
    first = store.get("T-1001")
    assert (first.revision, first.status) == (0, "active")
    moved = store.reschedule("T-1001", "2026-11-26T16:30")  # same second as the add
    assert moved.revision == 1
    assert moved.updated_at > first.updated_at
    assert moved.start_local == "2026-11-26T16:30"
    assert moved.plan().sequence == 1
    assert [r.uid for r in moved.plan().reminders] == [r.uid for r in first.plan().reminders]
    clock.advance(timedelta(hours=2))
    zoned = store.reschedule("T-1001", "2026-11-26T16:30", "America/New_York")
    assert (zoned.revision, zoned.zone) == (2, "America/New_York")
    assert zoned.updated_at == clock.now
    cancelled = store.cancel("T-1001")
    assert (cancelled.revision, cancelled.status) == (3, "cancelled")
    assert cancelled.cancelled_at == cancelled.updated_at
    with pytest.raises(InputError, match="already cancelled"):
        store.cancel("T-1001")
    with pytest.raises(InputError, match="cancelled"):
        store.reschedule("T-1001", "2026-12-01T10:00")
    assert store.get("T-1001").revision == 3


def test_bad_input_changes_nothing(store: Store) -> None:
    add_treatment(store)
    with pytest.raises(InputError, match="already exists"):
        add_treatment(store)
    with pytest.raises(StartTimeError):
        store.reschedule("T-1001", "next tuesday")
    with pytest.raises(StartTimeError, match="does not exist"):
        store.reschedule("T-1001", "2027-03-28T02:30")  # DST gap in Madrid
    with pytest.raises(ZoneError):
        store.reschedule("T-1001", "2026-12-01T10:00", "Mars/Olympus")
    with pytest.raises(ProtocolError):
        store.add("no-such-protocol", "2026-11-24T10:00", "Europe/Madrid", "T-2", store_module.StoredOptions())
    with pytest.raises(InputError, match="no treatment"):
        store.reschedule("T-404", "2026-12-01T10:00")
    assert [(t.treatment_id, t.revision) for t in store.list()] == [("T-1001", 0)]


def test_protocol_text_is_stored_with_the_treatment(store: Store, tmp_path: Path) -> None:
    from importlib import resources

    own = tmp_path / "own.toml"
    own.write_text(resources.files("reminders.content").joinpath("microneedling.toml").read_text(encoding="utf-8"))
    store.add(str(own), "2026-11-24T10:00", "Europe/Madrid", "T-own", store_module.StoredOptions(discreet=True))
    own.unlink()  # the feed must not depend on the file any more
    plan = store.get("T-own").plan()
    assert plan.options.discreet
    assert all("icroneedling" not in r.title for r in plan.reminders)


def test_default_path_and_bad_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERCAL_DATA_DIR", str(tmp_path / "data"))
    default = open_store(None)
    try:
        assert default.target == str(tmp_path / "data" / "clinic.db")
    finally:
        default.close()
    with pytest.raises(InputError, match="folder"):
        open_store(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        open_store(tmp_path / "missing" / "x.db")
    with pytest.raises(InputError, match="postgresql"):
        open_store("mysql://root@localhost/x")


def test_unreachable_postgres_is_one_line_without_password() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql://clinic:hunter2-secret@127.0.0.1:1/x")
    message = str(info.value)
    assert "hunter2" not in message
    assert "\n" not in message
    assert "127.0.0.1:1" in message


@pytest.mark.postgres
def test_a_broken_postgres_connection_is_replaced(pg_url: str, pg_admin: str) -> None:
    import psycopg

    store = open_store(pg_url)
    try:
        token = add_treatment(store)
        with store._conn() as conn:
            pid = conn.info.backend_pid
        with psycopg.connect(pg_admin, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreError) as info:  # the request that finds it dead fails in one line
            store.lookup_token(token)
        assert "\n" not in str(info.value)
        found = store.lookup_token(token)  # the next one gets a fresh connection
        assert found is not None and found.treatment_id == "T-1001"
    finally:
        store.close()


def test_pool_never_opens_more_than_its_limit(store: Store) -> None:
    token = add_treatment(store)
    store.max_connections = 2
    results: list[bool] = []

    def reader() -> None:
        for _ in range(20):
            results.append(store.lookup_token(token) is not None)

    threads = [threading.Thread(target=reader) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 120
    assert store._open <= 2


def test_unknown_and_revoked_tokens_take_the_same_path(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """No early exit on the token's shape: one indexed query by hash, then the same comparison."""
    import hmac

    token = add_treatment(store)
    store.revoke_link("T-1001")
    queries: list[str] = []
    compares: list[int] = []
    real_query, real_compare = store._query, hmac.compare_digest

    def spy_query(statement: str, params: tuple[object, ...] = ()) -> list[object]:
        queries.append(statement)
        return real_query(statement, params)

    def spy_compare(a: bytes, b: bytes) -> bool:
        compares.append(len(a))
        return real_compare(a, b)

    monkeypatch.setattr(store, "_query", spy_query)
    monkeypatch.setattr("calendars.feeds.store.hmac.compare_digest", spy_compare)
    traces = []
    for candidate in (token, "x", "", "A" * 43, token + "/../x"):
        queries.clear()
        compares.clear()
        assert store.lookup_token(candidate) is None
        traces.append((tuple(queries), tuple(compares)))
    assert len(set(traces)) == 1
    assert len(traces[0][0]) == 1 and "token_hash = ?" in traces[0][0][0]
    assert traces[0][1] == (64,)


def test_the_store_refuses_fixed_zones_unless_allowed(store: Store) -> None:
    from calendars.feeds.store import StoredOptions

    with pytest.raises(ZoneError, match="EST is a fixed offset"):
        store.add("microneedling", "2030-11-24T10:00", "EST", "T-fixed", StoredOptions())
    treatment, _token = store.add("microneedling", "2030-11-24T10:00", "Etc/GMT+5", "T-ok", StoredOptions(),
                                  allow_fixed_zone=True)  # fmt: skip
    assert treatment.zone == "Etc/GMT+5" and treatment.plan().reminders  # stored ones keep rendering
    with pytest.raises(ZoneError, match="fixed offset"):
        store.reschedule("T-ok", "2030-11-25T10:00", "EST")
