"""The CalDAV publisher against real servers (Radicale and Xandikos): the issue's journeys."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter

import pytest

from calendars.base import diff_plan, sync_plan, unpublish_treatment
from calendars.caldav import CalDavPublisher, event_href
from calendars.http import RetryPolicy
from reminders import make_plan
from reminders.errors import ChannelError, NotFoundError, TransientError
from reminders.schedule import CarePlan, treatment_tag
from tests.caldav.helpers import put_foreign, stored_events


def plan_for(treatment_id: str = "T-1001", at: str = "2026-11-24T10:00", zone: str = "Europe/Paris") -> CarePlan:
    return make_plan("microneedling", at, zone, treatment_id=treatment_id)


class Methods:
    """Counts the HTTP methods a connection sends (a response hook on its session)."""

    def __init__(self, conn) -> None:
        self.counts: Counter[str] = Counter()
        conn.client.session.hooks["response"].append(self._hook)

    def _hook(self, response, *args, **kwargs):
        self.counts[response.request.method] += 1
        return response

    def reset(self) -> None:
        self.counts.clear()


@pytest.fixture
def calendar(connect):
    conn = connect()
    url = conn.find_calendar("aftercare", create=True)
    return conn, url


def test_first_publish_creates_every_event_with_alarms(calendar) -> None:
    conn, url = calendar
    plan = plan_for()
    _actions, summary = sync_plan(CalDavPublisher(conn, url), plan)
    assert (summary.created, summary.updated, summary.deleted) == (len(plan.reminders), 0, 0)
    held = {s.uid: s for s in stored_events(conn, url)}
    assert set(held) == {r.uid for r in plan.reminders}
    for reminder in plan.reminders:
        stored = held[reminder.uid]
        assert stored.href == event_href(url, reminder.uid)
        event = stored.event
        assert str(event["X-AFTERCAL-PLAN"]) == plan.plan_tag
        assert str(event["X-AFTERCAL-HASH"]) == reminder.content_hash()
        assert "DTEND" in event  # iCloud refuses events without it
        alarms = event.walk("VALARM")
        if reminder.alarm_text:
            assert [str(a["DESCRIPTION"]) for a in alarms] == [reminder.alarm_text]
            assert str(alarms[0]["ACTION"]) == "DISPLAY"
        else:
            assert alarms == []


def test_republish_uploads_nothing(calendar) -> None:
    conn, url = calendar
    plan = plan_for()
    sync_plan(CalDavPublisher(conn, url), plan)
    before = {s.href: s.text for s in stored_events(conn, url)}
    methods = Methods(conn)
    _actions, summary = sync_plan(CalDavPublisher(conn, url), plan)
    assert summary.line() == f"created 0, updated 0, deleted 0, unchanged {len(plan.reminders)}"
    assert methods.counts == Counter({"REPORT": 1})
    assert {s.href: s.text for s in stored_events(conn, url)} == before


def test_reschedule_updates_in_place_and_removes_dropped_steps(calendar) -> None:
    conn, url = calendar
    first = plan_for()
    sync_plan(CalDavPublisher(conn, url), first)
    hrefs = {s.uid: s.href for s in stored_events(conn, url)}
    moved = plan_for(at="2026-12-01T15:30")
    dropped = moved.reminders[-2:]
    later = dataclasses.replace(moved, reminders=moved.reminders[:-2])
    _actions, summary = sync_plan(CalDavPublisher(conn, url), later)
    assert summary.deleted == 2
    assert summary.created == 0
    assert summary.updated + summary.unchanged == len(later.reminders)
    assert summary.updated > 0
    held = {s.uid: s for s in stored_events(conn, url)}
    assert set(held) == {r.uid for r in later.reminders}
    assert not {r.uid for r in dropped} & set(held)
    for reminder in later.reminders:
        event = held[reminder.uid].event
        assert held[reminder.uid].href == hrefs[reminder.uid]  # in place, same resource
        assert str(event["X-AFTERCAL-HASH"]) == reminder.content_hash()
        assert event.decoded("DTSTART") == reminder.start
        if summary.updated and reminder.content_hash() != first.reminders[0].content_hash():
            assert int(event.decoded("SEQUENCE")) >= 1


def test_unpublish_removes_exactly_that_treatment(calendar) -> None:
    conn, url = calendar
    one, two = plan_for("T-1"), plan_for("T-2", at="2026-11-26T11:00")
    pub = CalDavPublisher(conn, url)
    sync_plan(pub, one)
    sync_plan(pub, two)
    foreign = put_foreign(conn, url, "dentist.ics", "dentist-1@example.com")
    _actions, summary = unpublish_treatment(pub, "T-1")
    assert summary.deleted == len(one.reminders)
    left = {s.uid for s in stored_events(conn, url)}
    assert left == {r.uid for r in two.reminders} | {"dentist-1@example.com"}
    assert foreign in {s.href for s in stored_events(conn, url)}
    # Unpublishing again finds nothing and sends no write.
    methods = Methods(conn)
    _actions, again = unpublish_treatment(pub, "T-1")
    assert again.deleted == 0
    assert set(methods.counts) == {"REPORT"}


def test_foreign_events_are_never_touched(calendar) -> None:
    conn, url = calendar
    put_foreign(conn, url, "dentist.ics", "dentist-1@example.com")
    # Even one that looks like aftercal's, but for another treatment.
    other_tag = treatment_tag("someone-else")
    put_foreign(conn, url, "other.ics", "other-1@example.com", f"X-AFTERCAL-PLAN:{other_tag}\r\nX-AFTERCAL-HASH:x\r\n")
    before = {s.uid: s.text for s in stored_events(conn, url) if "aftercal" not in s.uid}
    pub = CalDavPublisher(conn, url)
    sync_plan(pub, plan_for())
    sync_plan(pub, plan_for(at="2026-11-30T09:30"))
    unpublish_treatment(pub, "T-1001")
    after = {s.uid: s.text for s in stored_events(conn, url)}
    assert after == before


def test_uid_taken_by_a_foreign_event_under_another_href_is_left_alone(calendar, server) -> None:
    """Radicale answers 409, Xandikos 412: both end as a one-line error, the foreign event intact."""
    conn, url = calendar
    plan = plan_for()
    victim = plan.reminders[0]
    put_foreign(conn, url, "copied.ics", victim.uid)
    before = [s.text for s in stored_events(conn, url)]
    statuses: list[tuple[str, int]] = []

    def record(r, *_args, **_kwargs):
        statuses.append((r.request.method, r.status_code))
        return r

    conn.client.session.hooks["response"].append(record)
    with pytest.raises(ChannelError, match="did not create"):
        sync_plan(CalDavPublisher(conn, url), plan)
    assert [s.text for s in stored_events(conn, url) if s.uid == victim.uid] == before
    expected = {"radicale": 409, "xandikos": 412}[server.kind]
    assert ("PUT", expected) in statuses
    # The conflict does not block the rest of the plan: every other event was published.
    others = {r.uid for r in plan.reminders if r.uid != victim.uid}
    assert others <= {s.uid for s in stored_events(conn, url)}


def test_stale_view_converges_without_duplicates(calendar) -> None:
    """A write whose answer was lost: re-creating existing events at the same hrefs adds nothing."""
    conn, url = calendar
    plan = plan_for()
    pub = CalDavPublisher(conn, url)
    sync_plan(pub, plan)
    summary = pub.apply(plan, diff_plan(plan, {}))  # as if the server held nothing
    assert summary.created == 0
    assert summary.unchanged == len(plan.reminders)
    assert sorted(s.uid for s in stored_events(conn, url)) == sorted(r.uid for r in plan.reminders)


def test_own_event_under_another_href_is_updated_there(calendar) -> None:
    """An aftercal event stored under another name (older version, other tool) is found by tag and updated."""
    conn, url = calendar
    plan = plan_for()
    sync_plan(CalDavPublisher(conn, url), plan)
    first = plan.reminders[0]
    text = next(s.text for s in stored_events(conn, url) if s.uid == first.uid)
    conn.client.session.request("DELETE", event_href(url, first.uid), auth=conn.client.auth)
    conn.client.session.request(
        "PUT", url + "renamed.ics", data=text.encode(), headers={"Content-Type": "text/calendar"}, auth=conn.client.auth
    )
    _actions, summary = sync_plan(CalDavPublisher(conn, url), plan_for(at="2026-11-24T11:00"))
    assert summary.created == 0
    held = [s for s in stored_events(conn, url) if s.uid == first.uid]
    assert [s.href for s in held] == [url + "renamed.ics"]


def test_server_stopped_mid_publish_then_rerun_converges(server, connect) -> None:
    conn = connect()
    url = conn.find_calendar("aftercare", create=True)
    plan = plan_for()
    written: list[str] = []

    def stop_after_three(action: str, key: str) -> None:
        written.append(key)
        if len(written) == 3:
            server.stop()

    with pytest.raises(TransientError, match="run the same command again"):
        sync_plan(CalDavPublisher(conn, url), plan, progress=stop_after_three)
    server.start()
    fresh = connect()
    _actions, summary = sync_plan(CalDavPublisher(fresh, url), plan)
    assert summary.created == len(plan.reminders) - 3
    assert summary.unchanged == 3
    stored = stored_events(fresh, url)
    assert sorted(s.uid for s in stored) == sorted(r.uid for r in plan.reminders)  # no duplicate, none lost
    hashes = {s.uid: str(s.event["X-AFTERCAL-HASH"]) for s in stored}
    assert hashes == {r.uid: r.content_hash() for r in plan.reminders}
    _actions, again = sync_plan(CalDavPublisher(fresh, url), plan)
    assert again.unchanged == len(plan.reminders) and again.created == again.updated == 0


def test_retries_ride_out_a_server_restart(server, connect) -> None:
    conn = connect(retry=RetryPolicy(attempts=12, base_delay=0.2, max_delay=1.0))
    url = conn.find_calendar("aftercare", create=True)
    plan = plan_for()
    restarts: list[threading.Thread] = []

    def bounce_once(action: str, key: str) -> None:
        if not restarts:
            server.stop()
            thread = threading.Timer(0.4, server.start)
            thread.start()
            restarts.append(thread)

    _actions, summary = sync_plan(CalDavPublisher(conn, url), plan, progress=bounce_once)
    restarts[0].join()
    assert summary.created == len(plan.reminders)
    assert sorted(s.uid for s in stored_events(conn, url)) == sorted(r.uid for r in plan.reminders)


def test_unknown_calendar_names_the_calendars_there(connect) -> None:
    conn = connect()
    conn.find_calendar("aftercare", create=True)
    with pytest.raises(NotFoundError, match=r"no calendar named 'nope'.*'aftercare'.*--create-calendar"):
        conn.find_calendar("nope", create=False)


def test_calendar_by_url_needs_no_discovery(calendar, connect) -> None:
    _conn, url = calendar
    other = connect()
    assert other.find_calendar(url, create=False) == url
    assert other.requests == 0
    _actions, summary = sync_plan(CalDavPublisher(other, url), plan_for())
    assert summary.created == len(plan_for().reminders)
    assert other.requests == 1 + summary.created


def test_missing_calendar_url_is_a_404_error(server, connect) -> None:
    conn = connect()
    pub = CalDavPublisher(conn, server.url + "nobody/none/", calendar_label="none")
    with pytest.raises((NotFoundError, ChannelError), match=r"40[34]"):
        sync_plan(pub, plan_for())


def test_batch_prefetch_reads_the_calendar_once(calendar) -> None:
    conn, url = calendar
    plans = [plan_for(f"B-{i}", at=f"2026-11-2{i}T10:00") for i in range(4)]
    put_foreign(conn, url, "dentist.ics", "dentist-1@example.com")
    sync_plan(CalDavPublisher(conn, url), plans[0])  # one already there
    moved = plan_for("B-1", at="2026-11-29T10:00")
    sync_plan(CalDavPublisher(conn, url), plans[1])  # and one to reschedule
    batch = [plans[0], moved, plans[2], plans[3]]
    methods = Methods(conn)
    publisher = CalDavPublisher(conn, url)
    publisher.prefetch({p.plan_tag for p in batch})
    summaries = [sync_plan(publisher, care)[1] for care in batch]
    n = len(plans[0].reminders)
    assert [s.line() for s in summaries] == [
        f"created 0, updated 0, deleted 0, unchanged {n}",
        f"created 0, updated {n}, deleted 0, unchanged 0",
        f"created {n}, updated 0, deleted 0, unchanged 0",
        f"created {n}, updated 0, deleted 0, unchanged 0",
    ]
    assert methods.counts["REPORT"] == 1
    assert methods.counts["PUT"] == 3 * n
    stored = stored_events(conn, url)
    assert sorted(s.uid for s in stored) == sorted(
        [r.uid for care in batch for r in care.reminders] + ["dentist-1@example.com"]
    )
    # A second fetch of the same treatment asks the server again (the snapshot is used once).
    methods.reset()
    assert set(publisher.fetch(moved.plan_tag)) == {r.uid for r in moved.reminders}
    assert methods.counts == Counter({"REPORT": 1})


def test_event_edited_elsewhere_meanwhile_is_still_updated(calendar) -> None:
    """ETag mismatch (a phone edited the event after we read it): re-read, still ours, overwritten."""
    from icalendar import Calendar

    conn, url = calendar
    plan = plan_for()
    pub = CalDavPublisher(conn, url)
    sync_plan(pub, plan)
    held = pub.fetch(plan.plan_tag)  # etags as of now
    first = plan.reminders[0]
    stored = next(s for s in stored_events(conn, url) if s.uid == first.uid)
    cal = Calendar.from_ical(stored.text)
    event = next(iter(cal.walk("VEVENT")))
    event["SUMMARY"] = "edited on a phone"
    response = conn.client.session.request(
        "PUT", stored.href, data=cal.to_ical(), headers={"Content-Type": "text/calendar"}, auth=conn.client.auth
    )
    assert response.status_code in (201, 204)
    moved = plan_for(at="2026-11-25T10:00")
    methods = Methods(conn)
    summary = pub.apply(moved, diff_plan(moved, held))  # stale etag for `first`
    assert summary.updated == len(moved.reminders)
    # The stale PUT was refused (412), the event re-read by UID, then written again.
    assert methods.counts == Counter({"PUT": len(moved.reminders) + 1, "REPORT": 1})
    after = {s.uid: s for s in stored_events(conn, url)}
    assert len(after) == len(moved.reminders)
    assert {uid: str(s.event["X-AFTERCAL-HASH"]) for uid, s in after.items()} == {
        r.uid: r.content_hash() for r in moved.reminders
    }
    assert str(after[first.uid].event["SUMMARY"]) == first.title
