"""Issue 14's smaller feed findings: a stored treatment that no longer validates, a treatment id
raced in by two adds, Last-Modified later than Date, links from the Host header, and tokens
percent-encoded past the log's redaction."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from typer.testing import CliRunner

from aftercal.cli import app
from calendars.feeds.app import redact
from calendars.feeds.store import Store, open_store
from reminders.errors import InputError
from tests.feed.conftest import START, ZONE, FakeClock, LiveServer, ServeProcess, add_treatment
from tests.helpers import new_store

Start = Callable[..., LiveServer]


def _set(store: Store, treatment_id: str, column: str, value: str) -> None:
    """Write a column behind the store's back, as an older aftercal (or a hand edit) left it."""
    with store.transaction() as cur:
        cur.execute(store._sql(f"UPDATE treatments SET {column} = ? WHERE treatment_id = ?"), (value, treatment_id))


def _bad_rows(store: Store) -> dict[str, str]:
    """T-ok plus three treatments that cannot be served; returns every token by id."""
    tokens = {tid: add_treatment(store, tid) for tid in ("T-ok", "T-quiet", "T-old", "T-garbled")}
    # A morning time inside the quiet hours, stored before that was refused.
    _set(store, "T-quiet", "options", json.dumps({"morning": "02:00", "quiet": "22:00-08:00"}))
    # A protocol written for another version of the schema.
    old_toml = store.get("T-old").protocol_toml.replace("name", "nombre", 1)
    _set(store, "T-old", "protocol_toml", old_toml)
    # A row that cannot even be read.
    _set(store, "T-garbled", "options", "{not json")
    return tokens


def test_a_treatment_that_no_longer_validates_is_a_503_for_itself_only(
    store: Store, store_url: str, live_server: Start, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = _bad_rows(store)
    server = live_server(store_url)
    caplog.set_level(logging.INFO)
    assert server.get(f"/f/{tokens['T-ok']}.ics").status_code == 200
    assert server.get(f"/f/{tokens['T-ok']}").status_code == 200
    for tid in ("T-quiet", "T-old", "T-garbled"):
        caplog.clear()
        for path in (f"/f/{tokens[tid]}.ics", f"/f/{tokens[tid]}"):
            response = server.get(path)
            assert response.status_code == 503, (tid, path, response.status_code)
            assert int(response.headers["retry-after"]) > 0
            assert "clinic" in response.text and tid not in response.text
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 2, [r.getMessage() for r in errors]  # one line per request
        assert all(r.exc_info is None and tid in r.getMessage() for r in errors)
        assert not any("Exception in ASGI application" in r.getMessage() for r in caplog.records)
    assert server.get(f"/f/{tokens['T-ok']}.ics").status_code == 200


def test_list_shows_every_row_and_marks_the_bad_ones(tmp_path: Path) -> None:
    db = new_store(tmp_path / "clinic.db")
    store = open_store(db)
    _bad_rows(store)
    store.close()
    listed = CliRunner().invoke(app, ["treatments", "list", "--db", db])
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert set(rows) == {"T-ok", "T-quiet", "T-old", "T-garbled"}
    assert " active " in rows["T-ok"]
    for tid in ("T-quiet", "T-old", "T-garbled"):
        assert " INVALID " in rows[tid]
    notes = {line.split()[1].rstrip(":"): line for line in listed.stderr.splitlines() if line.startswith("INVALID")}
    assert set(notes) == {"T-quiet", "T-old", "T-garbled"}
    assert "quiet hours" in notes["T-quiet"] and "unknown key" in notes["T-old"] and "unreadable" in notes["T-garbled"]


def test_an_id_raced_in_by_another_add_is_already_exists(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `treatments add --id T-9` at once: both pass the existence check, one insert loses."""
    original = Store._sql
    rival = open_store(store_url)

    def racing(self: Store, statement: str) -> str:
        if self is store and store.dialect == "postgres" and statement.startswith("INSERT INTO treatments"):
            # The rival commits between our check (which found nothing) and our insert.
            rival.add("microneedling", START, ZONE, "T-9", store.get("T-ok").options)
        elif self is store and store.dialect == "sqlite" and statement.startswith("SELECT 1 FROM treatments"):
            statement += " AND 1 = 0"  # SQLite's write lock serializes adds: the check misses the row
        return original(self, statement)

    add_treatment(store, "T-ok")
    if store.dialect == "sqlite":
        add_treatment(store, "T-9")
    monkeypatch.setattr(Store, "_sql", racing)
    try:
        with pytest.raises(InputError, match="T-9 already exists") as info:
            store.add("microneedling", START, ZONE, "T-9", store.get("T-ok").options)
        assert info.value.exit_code == 2
    finally:
        monkeypatch.undo()
        rival.close()
    assert [t.treatment_id for t in store.list()].count("T-9") == 1


def test_the_cli_says_already_exists_for_a_raced_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = new_store(tmp_path / "clinic.db")
    args = ["treatments", "add", "microneedling", "--at", START, "--tz", ZONE, "--id", "T-9", "--db", db, "--no-qr"]
    assert CliRunner().invoke(app, args).exit_code == 0
    original = Store._sql
    monkeypatch.setattr(
        Store, "_sql", lambda self, s: original(self, s + " AND 1 = 0" if s.startswith("SELECT 1 FROM") else s)
    )
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.stderr, again.output


def test_last_modified_is_never_later_than_date(tmp_path: Path, serve_process: Callable[..., ServeProcess]) -> None:
    """25 quick reschedules move updated_at 25 s ahead of the clock (each change needs its own
    second); the real server must still not send a Last-Modified after its Date."""
    db = new_store(tmp_path / "clinic.db")
    store = open_store(db, clock=FakeClock())
    token = add_treatment(store)
    for day in range(25):
        store.reschedule("T-1001", f"2026-12-{day + 1:02d}T10:00")
    store.close()
    server = serve_process(db)
    response = httpx.get(f"{server.base}/f/{token}.ics")
    assert response.status_code == 200
    assert len(response.headers.get_list("date")) == 1
    date = parsedate_to_datetime(response.headers["date"])
    last_modified = parsedate_to_datetime(response.headers["last-modified"])
    assert last_modified <= date, (response.headers["last-modified"], response.headers["date"])
    assert httpx.get(f"{server.base}/f/x").headers.get_list("date")  # every answer has a Date
    revalidated = httpx.get(f"{server.base}/f/{token}.ics", headers={"If-None-Match": response.headers["etag"]})
    assert revalidated.status_code == 304


def test_clamped_last_modified_never_hides_a_change(store: Store, store_url: str, live_server: Start) -> None:
    assert isinstance(store.clock, FakeClock)
    start = store.clock.now
    token = add_treatment(store)
    for day in (1, 2, 3):
        store.reschedule("T-1001", f"2026-12-{day:02d}T10:00")  # updated_at: start + 3 s
    app_clock = FakeClock(start)
    server = live_server(store_url, clock=app_clock)

    first = server.get(f"/f/{token}.ics")
    clamped = first.headers["last-modified"]
    assert parsedate_to_datetime(clamped) == start  # not later than the server's own now
    assert server.get(f"/f/{token}.ics", headers={"If-None-Match": first.headers["etag"]}).status_code == 304

    store.reschedule("T-1001", "2026-12-04T10:00")  # start + 4 s
    changed = server.get(f"/f/{token}.ics", headers={"If-Modified-Since": clamped})
    assert changed.status_code == 200 and changed.content != first.content

    app_clock.advance(timedelta(seconds=10))  # now past the change: the true moment is sent
    settled = server.get(f"/f/{token}.ics")
    assert parsedate_to_datetime(settled.headers["last-modified"]) == start + timedelta(seconds=4)
    since = settled.headers["last-modified"]
    assert server.get(f"/f/{token}.ics", headers={"If-Modified-Since": since}).status_code == 304
    assert server.get(f"/f/{token}.ics", headers={"If-None-Match": settled.headers["etag"]}).status_code == 304


def test_page_links_never_follow_the_host_header(store: Store, store_url: str, live_server: Start) -> None:
    token = add_treatment(store)
    server = live_server(store_url)
    port = server.base.rsplit(":", 1)[1]
    for host in ("evil.example", "evil.example:443", "127.0.0.1:1@evil.example"):
        page = server.get(f"/f/{token}", headers={"Host": host})
        assert page.status_code == 200
        assert "evil" not in page.text
        assert f"webcal://127.0.0.1:{port}/f/{token}.ics" in page.text


def _fragments(token: str, size: int = 12) -> list[str]:
    return [token[i : i + size] for i in range(len(token) - size + 1)]


def _encode_one(token: str, at: int) -> str:
    return token[:at] + f"%{ord(token[at]):02X}" + token[at + 1 :]


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1:5 - "GET /f/<redacted>.ics?t={one} HTTP/1.1" 200',
        '127.0.0.1:5 - "GET /f/<redacted>.ics?t={twice} HTTP/1.1" 200',
        '127.0.0.1:5 - "GET /?next=%2Ff%2F{token}.ics HTTP/1.1" 404',
        '127.0.0.1:5 - "GET /?next=%2Ff%2F{short} HTTP/1.1" 404',
        '127.0.0.1:5 - "GET /F/{token} HTTP/1.1" 404',
        '127.0.0.1:5 - "GET /f/{one} HTTP/1.1" 404',
    ],
)
def test_redact_sees_through_percent_encoding(line: str) -> None:
    token = "Zq3" + "x" * 20 + "-_" + "Ab9" * 6
    one = _encode_one(token, 20)
    text = line.format(token=token, one=one, twice=one.replace("%", "%25"), short=token[:20])
    redacted = redact(text)
    plain = unquote(unquote(redacted))
    assert not any(fragment in plain for fragment in _fragments(token)), redacted
    assert "<redacted>" in redacted


def test_access_log_redacts_percent_encoded_tokens(tmp_path: Path, serve_process: Callable[..., Any]) -> None:
    db = new_store(tmp_path / "clinic.db")
    store = open_store(db)
    token = add_treatment(store)
    store.close()
    server = serve_process(db)
    paths = [
        f"/f/{token}.ics?t={_encode_one(token, 10)}",
        f"/f/{token}.ics?t={_encode_one(token, 10).replace('%', '%25')}",
        f"/?next=%2Ff%2F{_encode_one(token, 30)}",
        f"/f/{_encode_one(token, 5)}.ics",
    ]
    for path in paths:
        httpx.get(server.base + path)
    assert server.stop() == 0
    log = server.output()
    assert len(re.findall(r'"GET ', log)) >= len(paths)
    decoded = unquote(unquote(log))
    assert not any(fragment in decoded for fragment in _fragments(token)), log
