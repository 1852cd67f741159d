"""Publishing to Google Calendar: the real googleapiclient against the Calendar v3 stand-in."""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest

from calendars.base import PublishJob, diff_plan, sync_plan, unpublish_treatment
from calendars.gcal import GooglePublisher, event_id
from calendars.http import RetryPolicy
from calendars.tags import GOOGLE_HASH, GOOGLE_PLAN, GOOGLE_UID
from reminders import make_plan
from reminders.errors import AuthError, ChannelError, NotFoundError, TransientError
from reminders.protocol import load_protocol
from reminders.schedule import CarePlan, PlanOptions
from tests.google.standin import CalendarStandin

PlanFor = Callable[..., CarePlan]


def by_uid(standin: CalendarStandin, calendar_id: str = "primary") -> dict[str, dict[str, Any]]:
    return {e["extendedProperties"]["private"][GOOGLE_UID]: e for e in standin.events(calendar_id) if _ours(e)}


def _ours(event: dict[str, Any]) -> bool:
    return GOOGLE_UID in ((event.get("extendedProperties") or {}).get("private") or {})


def test_event_ids_are_deterministic_base32hex() -> None:
    ids = {event_id(tid, key) for tid in ("T-1", "T-2") for key in ("day-1", "day-2", "rebook.window")}
    assert len(ids) == 6
    for value in ids:
        assert re.fullmatch(r"[a-v0-9]{5,1024}", value)
        base64.b32hexdecode(value.upper())  # really base32hex
    assert event_id("T-1", "day-1") == event_id("T-1", "day-1")
    assert event_id("T-1", "day-1") != event_id("T-1 ", "day-1")


def test_first_publish_creates_every_event_in_one_batch(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor
) -> None:
    plan = plan_for()
    _, summary = sync_plan(publisher, plan)

    assert (summary.created, summary.updated, summary.deleted, summary.unchanged) == (len(plan.reminders), 0, 0, 0)
    # One list, then one batch request carrying every insert.
    assert standin.http_requests == 2
    assert standin.batch_requests == 1
    assert [c.method for c in standin.writes()] == ["POST"] * len(plan.reminders)
    held = by_uid(standin)
    assert set(held) == {r.uid for r in plan.reminders}
    for reminder in plan.reminders:
        event = held[reminder.uid]
        assert event["id"] == event_id(plan.treatment_id, reminder.key)
        assert event["summary"] == reminder.title
        assert event["transparency"] == "transparent"
        assert event["visibility"] == "private"
        assert event["status"] == "confirmed"
        private = event["extendedProperties"]["private"]
        assert private[GOOGLE_PLAN] == plan.plan_tag
        assert private[GOOGLE_HASH] == reminder.content_hash()
        assert event["reminders"]["useDefault"] is False
        if reminder.all_day:
            assert isinstance(reminder.start, date) and not isinstance(reminder.start, datetime)
            assert event["start"] == {"date": reminder.start.isoformat()}
            assert event["end"] == {"date": reminder.end.isoformat()}
            assert not event["reminders"].get("overrides")
        else:
            assert isinstance(reminder.start, datetime)
            assert event["start"]["timeZone"] == "America/Chicago"
            assert datetime.fromisoformat(event["start"]["dateTime"]) == reminder.start
            expected = [{"method": "popup", "minutes": 0}] if reminder.alarm_text else []
            assert event["reminders"].get("overrides", []) == expected
    assert any(e["reminders"].get("overrides") for e in held.values())


def test_unchanged_republish_makes_no_write(
    standin: CalendarStandin, new_publisher: Callable[..., GooglePublisher], plan_for: PlanFor
) -> None:
    sync_plan(new_publisher(), plan_for())
    standin.reset_counts()

    _, summary = sync_plan(new_publisher(), plan_for())

    assert summary.line() == f"created 0, updated 0, deleted 0, unchanged {len(plan_for().reminders)}"
    assert standin.writes() == []
    assert standin.http_requests == 1  # the list, nothing else


def test_reschedule_updates_in_place(
    standin: CalendarStandin, new_publisher: Callable[..., GooglePublisher], plan_for: PlanFor
) -> None:
    sync_plan(new_publisher(), plan_for(at="2026-11-24T10:00"))
    moved = plan_for(at="2026-12-01T15:30")
    standin.reset_counts()

    _, summary = sync_plan(new_publisher(), moved)

    assert summary.created == 0 and summary.deleted == 0
    assert summary.updated + summary.unchanged == len(moved.reminders)
    assert summary.updated > 0
    assert {c.method for c in standin.writes()} == {"PUT"}
    held = by_uid(standin)
    assert len(standin.events()) == len(moved.reminders)  # no duplicates
    for reminder in moved.reminders:
        if not reminder.all_day:
            assert isinstance(reminder.start, datetime)
            assert datetime.fromisoformat(held[reminder.uid]["start"]["dateTime"]) == reminder.start
    # The server raised the sequence of moved events; a second reschedule is still accepted.
    assert any(e["sequence"] > 0 for e in held.values())
    _, again = sync_plan(new_publisher(), plan_for(at="2026-11-24T10:00"))
    assert again.updated > 0 and again.created == 0


def test_changed_text_updates_only_what_changed(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor
) -> None:
    sync_plan(publisher, plan_for())
    standin.reset_counts()
    discreet = plan_for(options=PlanOptions(discreet=True))

    _, summary = sync_plan(publisher, discreet)

    changed = [r for r, o in zip(discreet.reminders, plan_for().reminders, strict=True) if r.title != o.title]
    assert summary.updated == len(changed) > 0
    assert summary.unchanged == len(discreet.reminders) - len(changed)
    assert len(standin.writes()) == len(changed)


def test_steps_no_longer_in_plan_are_deleted(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor
) -> None:
    full = plan_for()
    sync_plan(publisher, full)
    protocol = load_protocol("microneedling")
    shorter = dataclasses.replace(protocol, steps=protocol.steps[:-2])
    smaller = make_plan(shorter, "2026-11-24T10:00", "America/Chicago", treatment_id="T-1001")
    gone = {r.uid for r in full.reminders} - {r.uid for r in smaller.reminders}
    assert gone

    _, summary = sync_plan(publisher, smaller)

    assert summary.deleted == len(gone)
    assert summary.unchanged == len(smaller.reminders)
    assert set(by_uid(standin)) == {r.uid for r in smaller.reminders}


def test_unpublish_removes_one_treatment_and_leaves_foreign_events(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor
) -> None:
    first, second = plan_for("T-1"), plan_for("T-2")
    sync_plan(publisher, first)
    sync_plan(publisher, second)
    foreign = standin.put_event(
        "primary",
        {
            "id": "dentist0001",
            "summary": "Dentist",
            "start": {"dateTime": "2026-11-26T09:00:00-06:00"},
            "end": {"dateTime": "2026-11-26T10:00:00-06:00"},
            "extendedProperties": {"private": {"someOtherApp": "x"}},
        },
    )

    _, summary = unpublish_treatment(publisher, "T-1")

    assert summary.deleted == len(first.reminders)
    left = standin.events()
    assert {e["id"] for e in left} == {foreign["id"]} | {event_id("T-2", r.key) for r in second.reminders}
    assert next(e for e in left if e["id"] == foreign["id"])["summary"] == "Dentist"
    standin.reset_counts()
    _, again = unpublish_treatment(publisher, "T-1")
    assert again.deleted == 0 and standin.writes() == []


def test_republish_after_unpublish_restores_cancelled_ids_through_409(
    standin: CalendarStandin, new_publisher: Callable[..., GooglePublisher], plan_for: PlanFor
) -> None:
    plan = plan_for()
    sync_plan(new_publisher(), plan)
    unpublish_treatment(new_publisher(), plan.treatment_id)
    assert standin.events() == []
    # Should the list not show cancelled events, a fresh client inserts, gets 409 and updates
    # them back to confirmed.
    standin.cancelled_match_filters = False
    standin.reset_counts()

    _, summary = sync_plan(new_publisher(), plan)

    assert summary.created == len(plan.reminders)
    assert {c.status for c in standin.calls if c.method == "POST" and c.via == "batch"} == {409}
    assert len([c for c in standin.calls if c.method == "PUT"]) == len(plan.reminders)
    assert {e["status"] for e in standin.events()} == {"confirmed"}
    assert set(by_uid(standin)) == {r.uid for r in plan.reminders}


def test_listed_cancelled_ids_skip_the_409_round(
    standin: CalendarStandin, new_publisher: Callable[..., GooglePublisher], plan_for: PlanFor
) -> None:
    plan = plan_for()
    sync_plan(new_publisher(), plan)
    unpublish_treatment(new_publisher(), plan.treatment_id)
    standin.reset_counts()

    _, summary = sync_plan(new_publisher(), plan)

    assert summary.created == len(plan.reminders)
    assert {e["status"] for e in standin.events()} == {"confirmed"}

    assert [c.status for c in standin.writes()] == [200] * len(plan.reminders)
    assert standin.http_requests == 2


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, "rateLimitExceeded"), (403, "rateLimitExceeded"), (403, "userRateLimitExceeded"), (500, None), (503, None)],
)
def test_retryable_batch_parts_are_requeued(
    standin: CalendarStandin,
    publisher: GooglePublisher,
    plan_for: PlanFor,
    sleeps: list[float],
    status: int,
    reason: str | None,
) -> None:
    plan = plan_for()
    standin.inject(status, reason, method="POST", after=3, times=4)

    _, summary = sync_plan(publisher, plan)

    assert summary.created == len(plan.reminders)
    assert set(by_uid(standin)) == {r.uid for r in plan.reminders}
    assert standin.batch_requests == 2  # the failed parts went again, in one more batch
    assert len([c for c in standin.calls if c.status == status]) == 4
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 1.0


def test_failed_whole_batch_request_is_retried(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor, sleeps: list[float]
) -> None:
    standin.inject(503, scope="batch", times=2)

    _, summary = sync_plan(publisher, plan_for())

    assert summary.created == len(plan_for().reminders)
    assert standin.batch_requests == 3
    assert len(sleeps) == 2
    assert sleeps[1] <= 2.0  # jittered, within the doubled bound


def test_list_is_retried(standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor) -> None:
    standin.inject(500, method="GET", times=2)
    _, summary = sync_plan(publisher, plan_for())
    assert summary.created == len(plan_for().reminders)


def test_retries_are_bounded(
    standin: CalendarStandin, new_publisher: Callable[..., GooglePublisher], plan_for: PlanFor, sleeps: list[float]
) -> None:
    standin.inject(503, method="POST", times=-1)
    with pytest.raises(TransientError, match="run the same command again later"):
        sync_plan(new_publisher(attempts=3), plan_for())
    assert standin.batch_requests == 3


def test_forbidden_is_one_line_error_without_retry(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor, sleeps: list[float]
) -> None:
    standin.inject(403, "forbidden", method="POST", times=-1)
    with pytest.raises(AuthError) as info:
        sync_plan(publisher, plan_for())
    message = str(info.value)
    assert "403 forbidden" in message and "primary" in message and "\n" not in message
    assert sleeps == [] and standin.batch_requests == 1


def test_unknown_calendar_is_not_found(standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor) -> None:
    with pytest.raises(NotFoundError, match=r"nope@example\.com"):
        sync_plan(publisher.for_calendar("nope@example.com"), plan_for())


def test_failure_half_way_then_rerun_converges(
    standin: CalendarStandin, new_publisher: Callable[..., GooglePublisher], plan_for: PlanFor
) -> None:
    plan = plan_for()
    fault = standin.inject(403, "forbidden", method="POST", after=6, times=-1)
    with pytest.raises(ChannelError):
        sync_plan(new_publisher(), plan)
    assert len(standin.events()) == 6
    standin.faults.remove(fault)
    standin.reset_counts()

    _, summary = sync_plan(new_publisher(), plan)

    assert summary.created == len(plan.reminders) - 6 and summary.unchanged == 6
    assert len(standin.writes()) == len(plan.reminders) - 6
    assert set(by_uid(standin)) == {r.uid for r in plan.reminders}
    assert len(standin.events()) == len(plan.reminders)


def test_delete_of_already_deleted_event_counts_as_done(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor
) -> None:
    plan = plan_for()
    sync_plan(publisher, plan)
    actions = diff_plan(None, publisher.fetch(plan.plan_tag))
    # Someone deletes two events between our list and our deletes (410), one is purged (404).
    victims = [held.handle for held in actions.delete[:3]]
    calendar = standin.calendars["primary"]
    calendar.events[victims[0]]["status"] = "cancelled"
    calendar.events[victims[1]]["status"] = "cancelled"
    del calendar.events[victims[2]]

    summary = publisher.apply(None, actions)

    assert summary.deleted == len(plan.reminders)
    assert sorted(c.status for c in standin.calls if c.method == "DELETE" and c.status >= 400) == [404, 410, 410]
    assert standin.events() == []


def test_update_of_purged_event_inserts_it(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor
) -> None:
    sync_plan(publisher, plan_for(at="2026-11-24T10:00"))
    moved = plan_for(at="2026-11-25T10:00")
    actions = diff_plan(moved, publisher.fetch(moved.plan_tag))
    purged = actions.update[0][1].handle
    del standin.calendars["primary"].events[purged]

    summary = publisher.apply(moved, actions)

    assert summary.updated == len(actions.update)
    assert set(by_uid(standin)) == {r.uid for r in moved.reminders}


def test_fetch_follows_pages(standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor) -> None:
    plan = plan_for()
    sync_plan(publisher, plan)
    publisher.page_size = 5
    standin.reset_counts()

    held = publisher.fetch(plan.plan_tag)

    assert set(held) == {r.uid for r in plan.reminders}
    assert standin.http_requests == -(-len(plan.reminders) // 5)


def test_many_events_are_split_into_batches(
    standin: CalendarStandin, new_publisher: Callable[..., GooglePublisher], plan_for: PlanFor
) -> None:
    plan = plan_for()
    _, summary = sync_plan(new_publisher(batch_size=5), plan)
    assert summary.created == len(plan.reminders)
    assert standin.batch_requests == -(-len(plan.reminders) // 5)


def test_other_calendar_gets_its_own_events(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor
) -> None:
    standin.add_calendar("clinic@group.calendar.google.com", "Clinic")
    plan = plan_for()
    sync_plan(publisher.for_calendar("clinic@group.calendar.google.com"), plan)
    assert standin.events("primary") == []
    assert set(by_uid(standin, "clinic@group.calendar.google.com")) == {r.uid for r in plan.reminders}


def test_patient_zone_and_dst_are_kept(standin: CalendarStandin, publisher: GooglePublisher) -> None:
    # Europe/Paris leaves summer time on 2026-10-25: events after it carry the winter offset.
    plan = make_plan("microneedling", "2026-10-20T18:00", "Europe/Paris", treatment_id="T-dst")
    sync_plan(publisher, plan)
    held = by_uid(standin)
    for reminder in plan.reminders:
        if isinstance(reminder.start, datetime):
            start = held[reminder.uid]["start"]
            assert start["timeZone"] == "Europe/Paris"
            assert datetime.fromisoformat(start["dateTime"]).utcoffset() == reminder.start.utcoffset()
    offsets = {
        datetime.fromisoformat(e["start"]["dateTime"]).utcoffset() for e in held.values() if "dateTime" in e["start"]
    }
    assert len(offsets) == 2


# ---- many treatments at once (staff batches) ----------------------------------------------------


def test_publish_jobs_shares_batch_requests(
    standin: CalendarStandin, new_publisher: Callable[..., GooglePublisher], plan_for: PlanFor
) -> None:
    standin.add_calendar("room2@group.calendar.google.com", "Room 2")
    plans = [plan_for(f"T-{i}", at=f"2026-11-24T{9 + i:02d}:00") for i in range(5)]
    jobs = [PublishJob.publish(p, "primary") for p in plans[:4]]
    jobs.append(PublishJob.publish(plans[4], "room2@group.calendar.google.com"))
    total = sum(len(p.reminders) for p in plans)

    results = new_publisher().publish_jobs(jobs)

    assert [r.error for r in results] == [None] * 5
    assert [r.summary.created for r in results] == [len(p.reminders) for p in plans]
    # One batch of 5 list calls, then the writes of all treatments in shared batches of 50.
    assert standin.batch_requests == standin.http_requests == 1 + -(-total // 50)
    assert len(standin.events("primary")) == total - len(plans[4].reminders)
    assert len(standin.events("room2@group.calendar.google.com")) == len(plans[4].reminders)

    standin.reset_counts()
    again = new_publisher().publish_jobs(jobs)
    assert [r.summary.unchanged for r in again] == [len(p.reminders) for p in plans]
    assert standin.http_requests == 1 and standin.writes() == []


def test_publish_jobs_isolates_a_failing_treatment(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor
) -> None:
    good, bad = plan_for("T-good"), plan_for("T-bad")
    jobs = [PublishJob.publish(bad, "missing@example.com"), PublishJob.publish(good)]

    results = publisher.publish_jobs(jobs)

    assert isinstance(results[0].error, NotFoundError) and "missing@example.com" in str(results[0].error)
    assert results[1].error is None and results[1].summary.created == len(good.reminders)


def test_publish_jobs_write_error_fails_only_its_treatment(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor
) -> None:
    first, second = plan_for("T-1"), plan_for("T-2")
    # Batch parts run in any order: T-1 goes to its own calendar, whose 4th insert fails.
    standin.add_calendar("room1", "Room 1")
    standin.inject(403, "forbidden", method="POST", path="/calendars/room1/", after=3, times=1)

    results = publisher.publish_jobs([PublishJob.publish(first, "room1"), PublishJob.publish(second)])

    assert isinstance(results[0].error, AuthError)
    assert results[0].summary.created == len(first.reminders) - 1
    assert results[1].error is None and results[1].summary.created == len(second.reminders)


def test_publish_jobs_unpublish_dry_run_and_pages(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: PlanFor
) -> None:
    plans = [plan_for(f"T-{i}") for i in range(3)]
    publisher.publish_jobs([PublishJob.publish(p) for p in plans])
    publisher.page_size = 4
    removal = [p.treatment_id for p in plans[:2]]
    standin.reset_counts()

    dry = publisher.unpublish_jobs(removal, dry_run=True)
    assert [len(r.actions.delete) for r in dry if r.actions] == [len(p.reminders) for p in plans[:2]]
    assert standin.writes() == []
    # Every page after the first is fetched in a further shared batch.
    assert standin.http_requests == -(-len(plans[0].reminders) // 4)

    done = publisher.unpublish_jobs(removal, calendar="primary")
    assert [r.summary.deleted for r in done] == [len(p.reminders) for p in plans[:2]]
    assert {e["extendedProperties"]["private"][GOOGLE_PLAN] for e in standin.events()} == {plans[2].plan_tag}


def test_follow_ups_after_the_last_retry_are_still_sent() -> None:
    """A 409 that turns an insert into an update in the last round must not be dropped silently."""
    from calendars.base import SyncSummary
    from calendars.gcal import GooglePublisher, _Failure, _Op

    class NoService:
        def close(self) -> None:
            pass

    no_wait = RetryPolicy(attempts=2, sleep=lambda s: None)
    publisher = GooglePublisher(NoService(), batch_uri="http://127.0.0.1/batch", retry=no_wait)
    rounds = {"n": 0}

    def fake_batch(chunk: list[_Op]) -> list[tuple[_Op, dict[str, object] | None, _Failure | None]]:
        rounds["n"] += 1
        answers: list[tuple[_Op, dict[str, object] | None, _Failure | None]] = []
        for op in chunk:
            if op.label == "flaky":  # 503 every time
                answers.append((op, None, _Failure(503, "backendError", "x")))
            elif op.label == "exists" and op.kind == "insert":  # 503, then 409: becomes an update
                answers.append((op, None, _Failure(503 if rounds["n"] == 1 else 409, "x", "x")))
            else:
                answers.append((op, {}, None))
        return answers

    publisher._send_batch = fake_batch  # type: ignore[method-assign]
    flaky, exists = SyncSummary(), SyncSummary()
    errors = publisher.run([
        _Op("insert", "primary", "e1", {}, "created", "flaky", owner=0, summary=flaky),
        _Op("insert", "primary", "e2", {}, "created", "exists", owner=1, summary=exists),
    ])  # fmt: skip
    assert 0 in errors  # the one that kept failing is reported
    assert 1 not in errors and exists.created + exists.updated == 1  # the follow-up was sent and done
