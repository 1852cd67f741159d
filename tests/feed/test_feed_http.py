"""The feed server through real HTTP on loopback (uvicorn in a thread), on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime

import pytest

from calendars.feeds.store import Store
from calendars.ics import render_ics
from reminders import make_plan
from reminders.schedule import PlanOptions
from tests.feed.conftest import START, ZONE, FakeClock, LiveServer, add_treatment
from tests.helpers import events_by_uid, normalize_calendar, parse_ics

Start = Callable[..., LiveServer]


def test_feed_is_the_plan_in_an_independent_parser(store: Store, store_url: str, live_server: Start) -> None:
    token = add_treatment(store)
    server = live_server(store_url)
    response = server.get(f"/f/{token}.ics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    calendar = parse_ics(response.content)  # vobject, validate=True
    events = events_by_uid(response.content)
    # Same events and UIDs as `aftercal plan` for the same treatment.
    plan = make_plan("microneedling", START, ZONE, treatment_id="T-1001", options=PlanOptions())
    expected = render_ics(plan, stamp=store.get("T-1001").updated_at)
    assert set(events) == {r.uid for r in plan.reminders}
    assert normalize_calendar(response.content) == normalize_calendar(expected)
    assert all(int(e.sequence.value) == 0 for e in events.values())
    assert calendar.contents["refresh-interval"][0].value is not None
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT12H" in response.content
    assert b"X-PUBLISHED-TTL:PT12H" in response.content


def test_200_304_and_no_rerender(store: Store, store_url: str, live_server: Start) -> None:
    token = add_treatment(store)
    server = live_server(store_url)
    first = server.get(f"/f/{token}.ics")
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert parsedate_to_datetime(last_modified) == store.get("T-1001").updated_at
    assert "max-age" in first.headers["cache-control"]
    assert server.renders == 1

    by_etag = server.get(f"/f/{token}.ics", headers={"If-None-Match": etag})
    assert by_etag.status_code == 304
    assert by_etag.content == b""
    assert by_etag.headers["etag"] == etag
    by_list = server.get(f"/f/{token}.ics", headers={"If-None-Match": f'"nope", W/{etag}'})
    assert by_list.status_code == 304
    by_date = server.get(f"/f/{token}.ics", headers={"If-Modified-Since": last_modified})
    assert by_date.status_code == 304
    earlier = format_datetime(parsedate_to_datetime(last_modified) - timedelta(seconds=1), usegmt=True)
    assert server.get(f"/f/{token}.ics", headers={"If-Modified-Since": earlier}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110).
    mismatch = server.get(f"/f/{token}.ics", headers={"If-None-Match": '"other"', "If-Modified-Since": last_modified})
    assert mismatch.status_code == 200
    assert mismatch.content == first.content
    assert server.get(f"/f/{token}.ics", headers={"If-Modified-Since": "garbage"}).status_code == 200
    assert server.renders == 1  # every answer above came from the cache


def test_head_matches_get(store: Store, store_url: str, live_server: Start) -> None:
    token = add_treatment(store)
    server = live_server(store_url)
    get = server.get(f"/f/{token}.ics")
    head = server.client.head(f"/f/{token}.ics")
    assert head.status_code == 200
    assert head.content == b""
    for name in ("etag", "last-modified", "content-type", "cache-control", "content-length"):
        assert head.headers[name] == get.headers[name]
    assert int(head.headers["content-length"]) == len(get.content)
    assert server.client.head(f"/f/{token}").status_code == 200
    assert server.client.head(f"/f/{secrets.token_urlsafe(32)}.ics").status_code == 404


def test_download_link_is_an_attachment(store: Store, store_url: str, live_server: Start) -> None:
    token = add_treatment(store)
    server = live_server(store_url)
    plain = server.get(f"/f/{token}.ics")
    download = server.get(f"/f/{token}.ics?download=1")
    assert "content-disposition" not in plain.headers
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.content == plain.content


def test_reschedule_changes_the_feed_in_place(store: Store, store_url: str, live_server: Start) -> None:
    token = add_treatment(store)
    server = live_server(store_url)
    before = server.get(f"/f/{token}.ics")
    store.reschedule("T-1001", "2026-11-26T16:30")
    after = server.get(f"/f/{token}.ics", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    # Not later than the response's Date: a change within the same second may keep the same
    # Last-Modified (the ETag tells the versions apart; test_feed_findings has the details).
    assert parsedate_to_datetime(after.headers["last-modified"]) >= parsedate_to_datetime(
        before.headers["last-modified"]
    )
    old, new = events_by_uid(before.content), events_by_uid(after.content)
    assert set(old) == set(new)
    assert all(int(e.sequence.value) == 1 for e in new.values())
    moved = [uid for uid in old if old[uid].dtstart.value != new[uid].dtstart.value]
    assert len(moved) == len(old)
    plan = make_plan("microneedling", "2026-11-26T16:30", ZONE, treatment_id="T-1001", options=PlanOptions(sequence=1))
    expected = render_ics(plan, stamp=store.get("T-1001").updated_at)
    assert normalize_calendar(after.content) == normalize_calendar(expected)


def test_cancel_shows_cancelled_events_then_empties(
    store: Store, store_url: str, clock: FakeClock, live_server: Start
) -> None:
    token = add_treatment(store)
    server = live_server(store_url, clock=clock, cancelled_for=timedelta(days=30))
    active = events_by_uid(server.get(f"/f/{token}.ics").content)
    store.cancel("T-1001")

    cancelled = server.get(f"/f/{token}.ics")
    events = events_by_uid(cancelled.content)
    assert set(events) == set(active)
    assert {e.status.value for e in events.values()} == {"CANCELLED"}
    assert all(int(e.sequence.value) == 1 for e in events.values())
    assert b"BEGIN:VALARM" not in cancelled.content
    page = server.get(f"/f/{token}")
    assert page.status_code == 200

    cancelled_at = store.get("T-1001").cancelled_at
    assert cancelled_at is not None
    clock.now = cancelled_at + timedelta(days=30) - timedelta(seconds=1)
    assert server.get(f"/f/{token}.ics").content == cancelled.content
    clock.now = cancelled_at + timedelta(days=30)
    ended = server.get(f"/f/{token}.ics", headers={"If-None-Match": cancelled.headers["etag"]})
    assert ended.status_code == 200
    calendar = parse_ics(ended.content)
    assert calendar.name == "VCALENDAR"
    assert not list(getattr(calendar, "vevent_list", []))
    assert parsedate_to_datetime(ended.headers["last-modified"]) > parsedate_to_datetime(
        cancelled.headers["last-modified"]
    )
    again = server.get(f"/f/{token}.ics", headers={"If-None-Match": ended.headers["etag"]})
    assert again.status_code == 304


def test_guessed_rotated_and_revoked_tokens_are_refused(store: Store, store_url: str, live_server: Start) -> None:
    token = add_treatment(store)
    server = live_server(store_url)
    assert server.get(f"/f/{token}.ics").status_code == 200
    refused = [
        server.get(f"/f/{secrets.token_urlsafe(32)}.ics"),
        server.get(f"/f/{token[:-1]}.ics"),
        server.get(f"/f/{token.upper()}.ics"),
        server.get("/f/T-1001.ics"),
        server.get(f"/f/{secrets.token_urlsafe(32)}"),
    ]
    _treatment, new_token = store.rotate_link("T-1001")
    refused.append(server.get(f"/f/{token}.ics"))
    refused.append(server.get(f"/f/{token}"))
    assert server.get(f"/f/{new_token}.ics").status_code == 200
    assert server.get(f"/f/{new_token}").status_code == 200
    store.revoke_link("T-1001")
    refused.append(server.get(f"/f/{new_token}.ics"))
    refused.append(server.get(f"/f/{new_token}"))
    assert [r.status_code for r in refused] == [404] * len(refused)
    # Unknown, rotated and revoked answers are indistinguishable (feeds: plain text; pages: a short page).
    for feeds in (True, False):
        same = [r for r in refused if r.url.path.endswith(".ics") is feeds]
        assert len({(r.content, r.headers["content-type"], r.headers["content-length"]) for r in same}) == 1
    _treatment, third = store.rotate_link("T-1001")
    assert server.get(f"/f/{third}.ics").status_code == 200


def test_methods_and_paths_are_refused(store: Store, store_url: str, live_server: Start) -> None:
    token = add_treatment(store)
    server = live_server(store_url)
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"):
        for path in (f"/f/{token}.ics", f"/f/{token}"):
            response = server.client.request(method, path)
            assert response.status_code == 405, (method, response.status_code)
            assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
    for path in (
        "/",
        "/f",
        "/f/",
        f"/{token}.ics",
        f"/f/{token}.ics/",
        f"/f/{token}/x.ics",
        f"/f/{token}.ics/../../etc/passwd",
        "/f/../pyproject.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/README.md",
        "/static/x",
        "/docs",
    ):
        response = server.get(path)
        assert response.status_code == 404, path
        assert b"VCALENDAR" not in response.content


def test_landing_page_links_to_the_feed(store: Store, store_url: str, live_server: Start) -> None:
    token = add_treatment(store)
    server = live_server(store_url, base_url="https://care.example/clinic/")
    page = server.get(f"/f/{token}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer"
    text = page.text
    assert f"webcal://care.example/clinic/f/{token}.ics" in text
    assert f"https://care.example/clinic/f/{token}.ics?download=1" in text
    # Without --base-url the page links back to the address it was fetched from.
    plain = live_server(store_url)
    assert f"webcal://127.0.0.1:{plain.base.rsplit(':', 1)[1]}/f/{token}.ics" in plain.get(f"/f/{token}").text


def test_feed_and_page_do_not_expose_name_or_treatment_id(store: Store, store_url: str, live_server: Start) -> None:
    hidden = add_treatment(store, "CLINIC-ID-4711", patient_name="Zoë Quartermaine")
    shown = add_treatment(store, "CLINIC-ID-4712", patient_name="Zoë Quartermaine", name_in_feed=True)
    server = live_server(store_url)
    for token in (hidden, shown):
        for response in (server.get(f"/f/{token}.ics"), server.get(f"/f/{token}")):
            assert response.status_code == 200
            assert "CLINIC-ID" not in response.text
            assert "CLINIC-ID" not in str(response.url)
    assert "Quartermaine" not in server.get(f"/f/{hidden}.ics").text
    assert "Quartermaine" not in server.get(f"/f/{hidden}").text
    assert "Quartermaine" in server.get(f"/f/{shown}.ics").text  # the clinic asked for it


def test_database_outage_is_a_503_without_details(tmp_path: object, live_server: Start) -> None:
    from pathlib import Path

    from calendars.feeds.store import open_store

    assert isinstance(tmp_path, Path)
    db = tmp_path / "gone.db"
    store = open_store(db)
    token = add_treatment(store)
    store.close()
    server = live_server(str(db))
    assert server.get(f"/f/{token}.ics").status_code == 200
    with server.app.state.feed.store.transaction() as cur:
        cur.execute("DROP TABLE treatments")
    response = server.get(f"/f/{token}.ics")
    assert response.status_code == 503
    assert token not in response.text and "treatments" not in response.text


@pytest.mark.parametrize("count", [3])
def test_each_treatment_is_rendered_once(store: Store, store_url: str, live_server: Start, count: int) -> None:
    tokens = [add_treatment(store, f"T-{n}") for n in range(count)]
    server = live_server(store_url)
    for _round in range(3):
        for token in tokens:
            assert server.get(f"/f/{token}.ics").status_code == 200
    assert server.renders == count
    store.reschedule("T-0", "2026-12-01T10:00")
    for token in tokens:
        server.get(f"/f/{token}.ics")
    assert server.renders == count + 1
