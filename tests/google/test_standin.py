"""The stand-in answers as Google does where aftercal depends on it (checked with the real client)."""

from __future__ import annotations

from typing import Any

import pytest
from googleapiclient.errors import HttpError

from calendars.gcal import GooglePublisher
from tests.google.standin import CalendarStandin


def body(event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "summary": "x",
        "start": {"dateTime": "2026-11-24T10:00:00", "timeZone": "America/Chicago"},
        "end": {"dateTime": "2026-11-24T10:15:00", "timeZone": "America/Chicago"},
        **extra,
    }


def status_of(request: Any) -> tuple[int, str]:
    with pytest.raises(HttpError) as info:
        request.execute()
    details = info.value.error_details
    reason = details[0]["reason"] if isinstance(details, list) and details else ""
    return info.value.resp.status, reason


@pytest.mark.parametrize("bad_id", ["abc", "ABCDEF123", "event-with-dash", "wxyz12345"])
def test_event_ids_must_be_base32hex(publisher: GooglePublisher, bad_id: str) -> None:
    events = publisher.events_api()
    assert status_of(events.insert(calendarId="primary", body=body(bad_id)))[0] == 400


def test_existing_and_cancelled_ids_answer_409_and_410(standin: CalendarStandin, publisher: GooglePublisher) -> None:
    events = publisher.events_api()
    events.insert(calendarId="primary", body=body("abcde12345")).execute()
    assert status_of(events.insert(calendarId="primary", body=body("abcde12345"))) == (409, "duplicate")
    events.delete(calendarId="primary", eventId="abcde12345").execute()
    assert status_of(events.delete(calendarId="primary", eventId="abcde12345")) == (410, "deleted")
    assert status_of(events.insert(calendarId="primary", body=body("abcde12345"))) == (409, "duplicate")
    assert events.get(calendarId="primary", eventId="abcde12345").execute()["status"] == "cancelled"
    restored = events.update(calendarId="primary", eventId="abcde12345", body=body("abcde12345")).execute()
    assert restored["status"] == "confirmed"
    assert status_of(events.delete(calendarId="primary", eventId="unknown123")) == (404, "notFound")


@pytest.mark.parametrize(
    "reminders",
    [
        {"useDefault": True, "overrides": [{"method": "popup", "minutes": 0}]},
        {"useDefault": False, "overrides": [{"method": "popup", "minutes": m} for m in range(6)]},
        {"useDefault": False, "overrides": [{"method": "popup", "minutes": 40321}]},
    ],
)
def test_reminder_rules(publisher: GooglePublisher, reminders: dict[str, Any]) -> None:
    request = publisher.events_api().insert(calendarId="primary", body=body("abcde12345", reminders=reminders))
    assert status_of(request)[0] == 400


def test_lower_sequence_is_refused_and_time_changes_raise_it(publisher: GooglePublisher) -> None:
    events = publisher.events_api()
    events.insert(calendarId="primary", body=body("abcde12345")).execute()
    moved = body("abcde12345")
    moved["end"] = {"dateTime": "2026-11-24T10:30:00", "timeZone": "America/Chicago"}
    assert events.update(calendarId="primary", eventId="abcde12345", body=moved).execute()["sequence"] == 1
    stale = dict(moved, sequence=0)
    assert status_of(events.update(calendarId="primary", eventId="abcde12345", body=stale)) == (
        400,
        "invalidSequenceValue",
    )


def test_patch_merges_and_list_filters(publisher: GooglePublisher) -> None:
    events = publisher.events_api()
    tagged = body("abcde12345", extendedProperties={"private": {"a": "1", "b": "2"}})
    events.insert(calendarId="primary", body=tagged).execute()
    events.insert(calendarId="primary", body=body("abcde67890")).execute()
    patched = events.patch(
        calendarId="primary", eventId="abcde12345", body={"extendedProperties": {"private": {"b": "3"}}}
    ).execute()
    assert patched["extendedProperties"]["private"] == {"a": "1", "b": "3"} and patched["summary"] == "x"

    found = events.list(calendarId="primary", privateExtendedProperty=["a=1", "b=3"]).execute()["items"]
    assert [e["id"] for e in found] == ["abcde12345"]
    assert events.list(calendarId="primary", privateExtendedProperty=["a=1", "b=2"]).execute()["items"] == []

    events.delete(calendarId="primary", eventId="abcde12345").execute()
    assert events.list(calendarId="primary", privateExtendedProperty="a=1").execute()["items"] == []
    deleted = events.list(calendarId="primary", privateExtendedProperty="a=1", showDeleted=True).execute()["items"]
    assert [(e["id"], e["status"]) for e in deleted] == [("abcde12345", "cancelled")]
    assert "summary" not in deleted[0]


def test_batch_answers_each_part(standin: CalendarStandin, publisher: GooglePublisher) -> None:
    from googleapiclient.http import BatchHttpRequest

    answers: dict[str, Any] = {}
    batch = BatchHttpRequest(
        callback=lambda rid, resp, exc: answers.__setitem__(rid, exc.resp.status if exc else resp),
        batch_uri=standin.url + "batch/calendar/v3",
    )
    events = publisher.events_api()
    batch.add(events.insert(calendarId="primary", body=body("abcde12345")), request_id="ok")
    batch.add(events.insert(calendarId="primary", body=body("bad")), request_id="bad")
    batch.add(events.delete(calendarId="primary", eventId="nothere123"), request_id="gone")
    batch.execute()
    assert answers["ok"]["id"] == "abcde12345"
    assert answers["bad"] == 400 and answers["gone"] == 404
    assert standin.http_requests == 1 and len(standin.calls) == 3
