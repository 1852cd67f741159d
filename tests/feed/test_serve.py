"""The real `aftercal serve` process: links from `treatments add`, token-free logs, clean shutdown,
and two processes sharing one PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.feed.conftest import ServeProcess, links_from, run_cli
from tests.helpers import events_by_uid, new_store

Serve = Callable[..., ServeProcess]
ADD = ["treatments", "add", "microneedling", "--at", "2026-11-24T10:00", "--tz", "Europe/Madrid", "--id", "T-1001"]


def path_of(link: str) -> str:
    return "/f/" + link.rsplit("/f/", 1)[1]


def test_serve_with_links_from_add_logs_no_token_and_stops_cleanly(tmp_path: Path, serve_process: Serve) -> None:
    db = new_store(tmp_path / "clinic.db")
    added = run_cli(*ADD, "--db", db, "--no-qr")
    assert added.returncode == 0, added.stderr
    links = links_from(added.stdout)
    token = path_of(links["Page"]).removeprefix("/f/")
    server = serve_process(db, "--base-url", "https://care.example")

    feed = httpx.get(server.base + path_of(links["Feed"]))
    assert feed.status_code == 200
    assert events_by_uid(feed.content)
    page = httpx.get(server.base + path_of(links["Page"]))
    assert page.status_code == 200
    assert f"webcal://care.example/f/{token}.ics" in page.text
    assert httpx.get(server.base + path_of(links["Feed"]) + "?download=1").status_code == 200
    assert httpx.head(server.base + path_of(links["Feed"])).status_code == 200
    assert httpx.get(server.base + "/f/" + "A" * 43 + ".ics").status_code == 404
    assert httpx.post(server.base + path_of(links["Feed"])).status_code == 405

    assert server.stop() == 0  # SIGTERM: graceful shutdown, exit status 0
    log = server.output()
    assert "GET /f/<redacted>.ics HTTP/1.1" in log
    assert "GET /f/<redacted> HTTP/1.1" in log
    assert "POST /f/<redacted>.ics HTTP/1.1" in log
    assert "/f/<redacted>.ics?download=1" in log
    assert token not in log
    assert "A" * 43 not in log
    assert "Finished server process" in log


@pytest.mark.postgres
def test_two_serve_processes_share_one_postgres_database(pg_url: str, serve_process: Serve) -> None:
    new_store(pg_url)
    added = run_cli(*ADD, "--db", pg_url, "--no-qr")
    assert added.returncode == 0, added.stderr
    feed_path = path_of(links_from(added.stdout)["Feed"])
    first, second = serve_process(pg_url), serve_process(pg_url)

    def both() -> list[httpx.Response]:
        return [httpx.get(server.base + feed_path) for server in (first, second)]

    a, b = both()
    assert a.status_code == b.status_code == 200
    assert a.content == b.content and a.headers["etag"] == b.headers["etag"]

    moved = run_cli("treatments", "reschedule", "T-1001", "--at", "2026-11-26T16:30", "--db", pg_url)
    assert moved.returncode == 0, moved.stderr
    for response in both():
        assert response.status_code == 200
        assert response.headers["etag"] != a.headers["etag"]
        events = events_by_uid(response.content)
        assert set(events) == set(events_by_uid(a.content))
        assert {int(e.sequence.value) for e in events.values()} == {1}
        assert any(e.dtstart.value.day == 26 for e in events.values())
    # One process sees what the other's clinic did, and they still answer byte for byte alike.
    c, d = both()
    assert c.content == d.content

    rotated = run_cli("treatments", "link", "T-1001", "--rotate", "--no-qr", "--db", pg_url)
    assert rotated.returncode == 0, rotated.stderr
    new_path = path_of(links_from(rotated.stdout)["Feed"])
    assert [r.status_code for r in both()] == [404, 404]
    assert [httpx.get(s.base + new_path).status_code for s in (first, second)] == [200, 200]

    assert run_cli("treatments", "cancel", "T-1001", "--db", pg_url).returncode == 0
    for server in (first, second):
        events = events_by_uid(httpx.get(server.base + new_path).content)
        assert {e.status.value for e in events.values()} == {"CANCELLED"}
    assert first.stop() == 0 and second.stop() == 0
