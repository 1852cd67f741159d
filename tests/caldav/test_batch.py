"""CalDAV batches (`CalDavBatchPublisher`, calendars.base.BatchPublisher) against a real Radicale."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from calendars.base import BatchPublisher, PublishJob
from calendars.caldav import CalDavBatchPublisher, CalDavConnection, Password
from calendars.http import RetryPolicy
from reminders import make_plan
from reminders.errors import AuthError, ChannelError, NotFoundError
from reminders.schedule import CarePlan
from tests.caldav.conftest import PASSWORD, USER, Server
from tests.caldav.helpers import put_foreign, stored_events

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)


def plan_for(treatment_id: str, hour: int = 10) -> CarePlan:
    return make_plan("microneedling", f"2026-11-24T{hour:02d}:00", "Europe/Paris", treatment_id=treatment_id)


class Requests:
    """(method, URL) of every response a connection receives (a hook on its session)."""

    def __init__(self, conn: CalDavConnection) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()
        conn.client.session.hooks["response"].append(self._hook)

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.seen[(str(response.request.method), str(response.request.url))] += 1
        return response

    def count(self, method: str, url: str | None = None) -> int:
        return sum(n for (m, u), n in self.seen.items() if m == method and (url is None or u == url))

    def reset(self) -> None:
        self.seen.clear()


@pytest.fixture
def connect(radicale: Server) -> Iterator[Callable[..., CalDavConnection]]:
    made: list[CalDavConnection] = []

    def factory(password: str = PASSWORD) -> CalDavConnection:
        conn = CalDavConnection(radicale.url, USER, Password(password, "test"), timeout=5, retry=FAST)
        made.append(conn)
        return conn

    yield factory
    for conn in made:
        conn.close()


def test_the_batch_publisher_is_a_batch_publisher(connect: Callable[..., CalDavConnection]) -> None:
    batch: BatchPublisher = CalDavBatchPublisher(connect(), "aftercare")
    assert batch.name == "caldav"


def test_each_calendar_is_read_once_for_the_whole_batch(connect: Callable[..., CalDavConnection]) -> None:
    conn = connect()
    main = conn.find_calendar("aftercare", create=True)
    room = conn.find_calendar("room 2", create=True)
    assert main is not None and room is not None
    plans = [plan_for(f"T-{i}", hour=9 + i) for i in range(5)]
    jobs = [PublishJob.publish(p) for p in plans[:3]] + [PublishJob.publish(p, "room 2") for p in plans[3:]]
    requests = Requests(conn)

    results = CalDavBatchPublisher(conn, "aftercare").publish_jobs(jobs)

    assert [r.label for r in results] == [p.treatment_id for p in plans]
    assert [r.error for r in results] == [None] * 5
    assert [r.summary.created for r in results] == [len(p.reminders) for p in plans]
    assert requests.count("REPORT", main) == 1 and requests.count("REPORT", room) == 1
    assert requests.count("REPORT") == 2
    assert requests.count("PUT") == sum(len(p.reminders) for p in plans)
    assert len(stored_events(conn, main)) == sum(len(p.reminders) for p in plans[:3])
    assert len(stored_events(conn, room)) == sum(len(p.reminders) for p in plans[3:])

    # Unchanged re-run, in a new process: one listing per calendar and nothing else.
    again = connect()
    requests = Requests(again)
    by_url = [*jobs[:3], *(PublishJob.publish(p, room) for p in plans[3:])]
    rerun = CalDavBatchPublisher(again, main).publish_jobs(by_url)
    assert [r.summary.unchanged for r in rerun] == [len(p.reminders) for p in plans]
    assert requests.count("REPORT", main) == 1 and requests.count("REPORT", room) == 1
    assert sum(requests.seen.values()) == 2  # calendars given as URLs: no discovery either


def test_a_failing_job_does_not_stop_the_rest(connect: Callable[..., CalDavConnection]) -> None:
    conn = connect()
    main = conn.find_calendar("aftercare", create=True)
    assert main is not None
    first, clash, last = plan_for("T-1", 9), plan_for("T-2", 10), plan_for("T-3", 11)
    # Another app holds one of T-2's UIDs: that event is left alone and T-2 is reported as failed.
    put_foreign(conn, main, "dentist.ics", clash.reminders[0].uid)
    jobs = [
        PublishJob.publish(first),
        PublishJob.publish(plan_for("T-9"), "no such calendar"),
        PublishJob.publish(clash),
        PublishJob.publish(plan_for("T-8"), "no such calendar"),
        PublishJob.publish(last),
    ]
    progress: list[tuple[str, str, str]] = []

    results = CalDavBatchPublisher(conn, "aftercare").publish_jobs(jobs, progress=lambda *seen: progress.append(seen))

    ok, missing, failed, missing_again, ok_too = results
    assert ok.ok and ok_too.ok
    assert ok.summary.created == len(first.reminders) and ok_too.summary.created == len(last.reminders)
    assert isinstance(missing.error, NotFoundError) and "no such calendar" in str(missing.error)
    assert missing.actions is None
    assert missing_again.error is missing.error  # the calendar was looked up once
    assert isinstance(failed.error, ChannelError) and "already holds an event with its UID" in str(failed.error)
    assert failed.summary.created == len(clash.reminders) - 1  # what it did is still counted
    held = {s.uid: s for s in stored_events(conn, main)}
    assert "Dentist" in held[clash.reminders[0].uid].text
    assert len(held) == len(first.reminders) + len(clash.reminders) + len(last.reminders)
    assert Counter(label for label, _action, _key in progress) == {
        "T-1": len(first.reminders),
        "T-2": len(clash.reminders) - 1,
        "T-3": len(last.reminders),
    }
    assert {action for _label, action, _key in progress} == {"create"}


def test_a_refused_password_ends_the_batch_without_more_requests(connect: Callable[..., CalDavConnection]) -> None:
    conn = connect(password="not-the-password")
    jobs = [PublishJob.publish(plan_for("T-1")), PublishJob.publish(plan_for("T-2"), "room 2")]

    results = CalDavBatchPublisher(conn, "aftercare").publish_jobs(jobs)

    assert isinstance(results[0].error, AuthError) and "401" in str(results[0].error)
    assert results[1].error is results[0].error
    assert conn.requests == 1  # the first discovery request; the second job was never tried


def test_dry_run_changes_nothing_not_even_the_calendar(connect: Callable[..., CalDavConnection]) -> None:
    conn = connect()
    plan = plan_for("T-1")

    results = CalDavBatchPublisher(conn, "aftercare", create_calendar=True).publish_jobs(
        [PublishJob.publish(plan)], dry_run=True
    )

    (result,) = results
    assert result.ok and result.would_create_calendar
    assert result.actions is not None and len(result.actions.create) == len(plan.reminders)
    assert result.summary.created == 0
    assert [c.name for c in conn.calendars()] == []


def test_unpublish_jobs_remove_only_those_treatments(connect: Callable[..., CalDavConnection]) -> None:
    conn = connect()
    main = conn.find_calendar("aftercare", create=True)
    assert main is not None
    plans = [plan_for(f"T-{i}", hour=9 + i) for i in range(3)]
    batch = CalDavBatchPublisher(conn, "aftercare", create_calendar=True)
    assert all(r.ok for r in batch.publish_jobs([PublishJob.publish(p) for p in plans]))
    put_foreign(conn, main, "dentist.ics", "dentist@example.com")

    results = batch.unpublish_jobs(["T-0", "T-2"])
    missing = batch.unpublish_jobs(["T-1"], calendar="never made")

    assert [r.summary.deleted for r in results] == [len(plans[0].reminders), len(plans[2].reminders)]
    left = {s.uid for s in stored_events(conn, main)}
    assert left == {r.uid for r in plans[1].reminders} | {"dentist@example.com"}
    # An unpublish never makes a calendar, even from a publisher allowed to.
    assert isinstance(missing[0].error, NotFoundError)
    assert "never made" not in [c.name for c in conn.calendars()]
