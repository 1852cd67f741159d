"""One contract for every push channel: the six journeys of issue 9, and a state machine over them.

The shape is vdirsyncer's `StorageTests`: a channel's test module subclasses `PublisherContract`,
provides a fresh empty calendar per test (the autouse `channel` fixture) and implements the hooks
below; every `test_*` method here then runs against that channel. What a server holds is read
back by the hooks without aftercal (raw CalDAV REPORT + vobject, the Google stand-in's own
state, the reference calendar's dict), so a publisher cannot vouch for itself.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from tests.contract.subject import (
    CarePlan,
    ChannelError,
    Publisher,
    SyncSummary,
    load_protocol,
    make_plan,
    sync_plan,
    treatment_tag,
    unpublish_treatment,
)

# Read by path: the suite does not depend on where the package data of the protocols is mapped.
PROTOCOL_FILE = Path(__file__).resolve().parents[2] / "content" / "microneedling.toml"
ZONE = "Europe/Paris"
# Crosses the end of summer time (2026-10-25); 20:30 puts one timed step in quiet hours without
# an alarm ("silent") and defers two others; the windows are all-day events without alarms.
FIRST = "2026-10-20T20:30"
MOVED = "2026-11-03T10:00"
OTHER = "2026-10-22T09:00"
FAIL_AFTER = 5  # writes that reach the server before it falls over in journey 6


@dataclass(frozen=True)
class Seen:
    """What a patient's calendar app shows of one event. Datetimes compare as instants."""

    start: datetime | date
    end: datetime | date
    title: str
    has_alarm: bool


@dataclass(frozen=True)
class Stored:
    """One event as the server holds it, read without aftercal."""

    uid: str
    plan_tag: str | None  # aftercal's treatment tag; None: not made by aftercal
    seen: Seen
    resource: str  # where it lives (href, Google event id...): the same after an update in place
    raw: Any  # everything the server keeps about it (text + ETag, JSON...): foreign events must keep it


@functools.cache
def protocol(steps: int | None = None) -> Any:
    proto = load_protocol(PROTOCOL_FILE)
    return proto if steps is None else dataclasses.replace(proto, steps=proto.steps[:steps])


@functools.cache
def plan_for(treatment_id: str = "T-1001", at: str = FIRST, *, steps: int | None = None) -> CarePlan:
    return make_plan(protocol(steps), at, ZONE, treatment_id=treatment_id)


def expected(plan: CarePlan | None) -> dict[str, Seen]:
    """What a calendar must show for `plan` (None: nothing)."""
    if plan is None:
        return {}
    return {r.uid: Seen(r.start, r.end, r.title, r.alarm_text is not None) for r in plan.reminders}


def rescheduled(first: CarePlan) -> CarePlan:
    """`first` moved to another day and time, its last two steps dropped (same treatment id)."""
    moved = make_plan(first.protocol, MOVED, ZONE, treatment_id=first.treatment_id)
    return dataclasses.replace(moved, reminders=moved.reminders[:-2])


def run(publisher: Publisher, treatment_id: str, plan: CarePlan | None) -> SyncSummary:
    """Publish `plan`, or unpublish the treatment when it is None."""
    if plan is None:
        return unpublish_treatment(publisher, treatment_id)[1]
    return sync_plan(publisher, plan)[1]


class PublisherContract:
    """The journeys every channel passes. Subclass it as `Test<Channel>` and implement the hooks."""

    # Settings of the state machine on this channel; None: not run here (reported as a skip).
    machine_settings: ClassVar[settings | None] = None

    # ---- hooks a channel implements ----------------------------------------------------------

    @pytest.fixture(autouse=True)
    def channel(self) -> Iterator[None]:
        """Start the server (if any) and give this test a fresh, empty calendar; stop it after."""
        raise NotImplementedError

    def new_calendar(self) -> None:
        """Switch to another fresh, empty calendar on the same server (one per state-machine example)."""
        raise NotImplementedError

    def publisher(self) -> Publisher:
        """A new real Publisher on the current calendar, as a new `aftercal` process would make."""
        raise NotImplementedError

    def stored_events(self) -> list[Stored]:
        """Every event of the current calendar, read from the server without aftercal."""
        raise NotImplementedError

    def add_foreign_event(self) -> None:
        """Put an event made by another app (no aftercal tags) into the current calendar."""
        raise NotImplementedError

    def break_after(self, n: int) -> None:
        """Let `n` more writes reach the server, then make every write fail until `heal`."""
        raise NotImplementedError

    def heal(self) -> None:
        raise NotImplementedError

    def server_writes(self) -> int:
        """Writes that reached the server side so far (counted there, or by a proxy in front of it)."""
        raise NotImplementedError

    # ---- views built on the hooks --------------------------------------------------------------

    def held_events(self, plan_tag: str) -> dict[str, Seen]:
        """The events of one treatment by UID; a UID held twice fails the test."""
        events = [s for s in self.stored_events() if s.plan_tag == plan_tag]
        duplicated = [uid for uid, n in Counter(s.uid for s in events).items() if n > 1]
        assert not duplicated, f"events held twice: {duplicated}"
        return {s.uid: s.seen for s in events}

    def assert_holds_exactly(self, *plans: CarePlan | None) -> None:
        """The calendar holds these plans' events and nothing else of aftercal's, each once."""
        stored = self.stored_events()
        counts = Counter(s.uid for s in stored)
        assert [uid for uid, n in counts.items() if n > 1] == []
        ours = {s.uid: s.seen for s in stored if s.plan_tag is not None}
        want: dict[str, Seen] = {}
        for plan in plans:
            want.update(expected(plan))
        assert ours == want

    def foreign(self) -> dict[str, Any]:
        return {s.resource: s.raw for s in self.stored_events() if s.plan_tag is None}

    def resources(self, plan_tag: str) -> dict[str, str]:
        return {s.uid: s.resource for s in self.stored_events() if s.plan_tag == plan_tag}

    # ---- 1. first publish ----------------------------------------------------------------------

    def test_first_publish_holds_exactly_the_plan(self) -> None:
        plan = plan_for()
        n = len(plan.reminders)
        summary = run(self.publisher(), plan.treatment_id, plan)
        assert summary == SyncSummary(created=n)
        held = self.held_events(plan.plan_tag)
        assert held == expected(plan)
        # The plan really exercises instants across DST, all-day events and both alarm cases.
        assert {s.has_alarm for s in held.values()} == {True, False}
        assert any(isinstance(s.start, datetime) and not s.has_alarm for s in held.values())
        assert len(self.stored_events()) == n

    # ---- 2. unchanged re-publish ---------------------------------------------------------------

    def test_unchanged_republish_writes_nothing(self) -> None:
        plan = plan_for()
        run(self.publisher(), plan.treatment_id, plan)
        before = {s.resource: s.raw for s in self.stored_events()}
        writes = self.server_writes()
        summary = run(self.publisher(), plan.treatment_id, plan)
        assert summary == SyncSummary(unchanged=len(plan.reminders))
        assert self.server_writes() == writes
        assert {s.resource: s.raw for s in self.stored_events()} == before

    # ---- 3. reschedule -------------------------------------------------------------------------

    def test_reschedule_moves_events_in_place(self) -> None:
        first = plan_for()
        run(self.publisher(), first.treatment_id, first)
        where = self.resources(first.plan_tag)
        later = rescheduled(first)
        dropped = {r.uid for r in first.reminders} - {r.uid for r in later.reminders}
        assert len(dropped) == 2
        summary = run(self.publisher(), later.treatment_id, later)
        assert (summary.created, summary.deleted) == (0, 2)
        assert summary.updated > 0
        assert summary.updated + summary.unchanged == len(later.reminders)
        assert self.held_events(later.plan_tag) == expected(later)
        # Same UIDs in the same places: updated, not deleted and re-created.
        assert self.resources(later.plan_tag) == {r.uid: where[r.uid] for r in later.reminders}
        assert len(self.stored_events()) == len(later.reminders)

    # ---- 4. unpublish one treatment ------------------------------------------------------------

    def test_unpublish_removes_only_that_treatment(self) -> None:
        one, two = plan_for("T-1"), plan_for("T-2", OTHER)
        run(self.publisher(), "T-1", one)
        run(self.publisher(), "T-2", two)
        summary = run(self.publisher(), "T-1", None)
        assert summary == SyncSummary(deleted=len(one.reminders))
        assert self.held_events(one.plan_tag) == {}
        assert self.held_events(two.plan_tag) == expected(two)
        self.assert_holds_exactly(two)
        writes = self.server_writes()
        assert run(self.publisher(), "T-1", None) == SyncSummary()
        assert self.server_writes() == writes

    # ---- 5. foreign events ---------------------------------------------------------------------

    def test_foreign_event_survives_publish_reschedule_unpublish(self) -> None:
        self.add_foreign_event()
        before = self.foreign()
        assert len(before) == 1
        first = plan_for()
        run(self.publisher(), first.treatment_id, first)
        assert self.foreign() == before
        later = rescheduled(first)
        run(self.publisher(), later.treatment_id, later)
        assert self.foreign() == before
        self.assert_holds_exactly(later)
        run(self.publisher(), later.treatment_id, None)
        assert self.foreign() == before
        assert len(self.stored_events()) == 1

    # ---- 6. failure half-way -------------------------------------------------------------------

    @pytest.mark.parametrize("phase", ["publish", "reschedule", "unpublish"])
    def test_rerun_after_failure_half_way_converges(self, phase: str) -> None:
        first = plan_for()
        later = rescheduled(first)
        start, target = {"publish": (None, first), "reschedule": (first, later), "unpublish": (first, None)}[phase]
        if start is not None:
            run(self.publisher(), first.treatment_id, start)
        tag = first.plan_tag
        self.break_after(FAIL_AFTER)
        with pytest.raises(ChannelError):
            run(self.publisher(), first.treatment_id, target)
        self.heal()
        half = self.held_events(tag)  # no duplicates even now
        assert half not in (expected(start), expected(target)), "the failure did not happen half-way"
        before, wanted = expected(start), expected(target)
        assert all(seen in (before.get(uid), wanted.get(uid)) for uid, seen in half.items())
        summary = run(self.publisher(), first.treatment_id, target)
        n = len(first.reminders)
        if phase == "publish":  # what the failed run wrote is kept, the rest is written once
            assert summary == SyncSummary(created=n - FAIL_AFTER, unchanged=FAIL_AFTER)
        elif phase == "unpublish":
            assert summary == SyncSummary(deleted=n - FAIL_AFTER)
        else:
            assert summary.created == 0  # nothing deleted and made again
        # The end state is the one a clean run leaves: the target's events, once each, nothing else.
        assert self.held_events(tag) == expected(target)
        self.assert_holds_exactly(target)
        writes = self.server_writes()
        again = run(self.publisher(), first.treatment_id, target)
        assert (again.created, again.updated, again.deleted) == (0, 0, 0)
        assert self.server_writes() == writes

    # ---- state machine -------------------------------------------------------------------------

    def test_state_machine(self) -> None:
        if self.machine_settings is None:
            pytest.skip("the state machine is not run on this channel (time budget)")
        contract = self

        class Machine(PublishMachine):
            def __init__(self) -> None:
                super().__init__(contract)

        run_state_machine_as_test(Machine, settings=self.machine_settings)


# ---- the state machine (vdirsyncer's tests/unit/sync/test_sync.py shape) ----------------------

TREATMENTS = ("T-a", "T-b", "T-c")
STARTS = (FIRST, MOVED, "2027-03-27T19:00")  # the last one: summer time starts the next night
SIZES = (2, 4, 6)  # protocol steps kept: a reschedule may add or drop steps
goals = st.none() | st.tuples(st.sampled_from(STARTS), st.sampled_from(SIZES))  # None: unpublish


class PublishMachine(RuleBasedStateMachine):
    """Publish / reschedule / unpublish / fail half-way on a few treatments sharing one calendar.

    The model is, per treatment, the exact events the calendar must hold, or after a failed run the
    events it may hold (each either as before or as wanted, or missing) until a run succeeds.
    """

    def __init__(self, contract: PublisherContract) -> None:
        super().__init__()
        self.contract = contract
        self.exact: dict[str, dict[str, Seen] | None] = {tid: {} for tid in TREATMENTS}
        self.loose: dict[str, dict[str, set[Seen]]] = {tid: {} for tid in TREATMENTS}
        self.foreign: dict[str, Any] = {}

    @staticmethod
    def plan(tid: str, goal: tuple[str, int] | None) -> CarePlan | None:
        return None if goal is None else plan_for(tid, goal[0], steps=goal[1])

    def wanted_summary(self, tid: str, plan: CarePlan | None) -> SyncSummary | None:
        old, new = self.exact[tid], expected(plan)
        if old is None:
            return None
        both = old.keys() & new.keys()
        changed = sum(1 for uid in both if old[uid] != new[uid])
        return SyncSummary(
            created=len(new.keys() - old.keys()),
            updated=changed,
            deleted=len(old.keys() - new.keys()),
            unchanged=len(both) - changed,
        )

    def succeed(self, tid: str, plan: CarePlan | None) -> None:
        want = self.wanted_summary(tid, plan)
        writes = self.contract.server_writes()
        summary = run(self.contract.publisher(), tid, plan)
        if want is not None:
            assert summary == want
            assert self.contract.server_writes() - writes == want.created + want.updated + want.deleted
        self.exact[tid] = expected(plan)
        self.loose[tid] = {}

    @initialize()
    def fresh_calendar(self) -> None:
        self.contract.new_calendar()
        self.contract.add_foreign_event()
        self.foreign = self.contract.foreign()
        assert len(self.foreign) == 1

    @rule(tid=st.sampled_from(TREATMENTS), start=st.sampled_from(STARTS), steps=st.sampled_from(SIZES))
    def publish(self, tid: str, start: str, steps: int) -> None:
        """First publish, unchanged re-publish or reschedule, depending on what the model holds."""
        self.succeed(tid, self.plan(tid, (start, steps)))

    @rule(tid=st.sampled_from(TREATMENTS))
    def unpublish(self, tid: str) -> None:
        self.succeed(tid, None)

    @rule(tid=st.sampled_from(TREATMENTS), goal=goals, n=st.integers(0, 6), rerun=st.booleans())
    def fail_midway(self, tid: str, goal: tuple[str, int] | None, n: int, rerun: bool) -> None:
        plan = self.plan(tid, goal)
        want = self.wanted_summary(tid, plan)
        self.contract.break_after(n)
        try:
            run(self.contract.publisher(), tid, plan)
        except ChannelError:
            failed = True
        else:
            failed = False
        finally:
            self.contract.heal()
        if want is not None:
            assert failed == (n < want.created + want.updated + want.deleted)
        if failed:
            before = self.exact[tid]
            loose = self.loose[tid]
            if before is not None:
                loose = {uid: {seen} for uid, seen in before.items()}
            for uid, seen in expected(plan).items():
                loose.setdefault(uid, set()).add(seen)
            self.exact[tid], self.loose[tid] = None, loose
        else:
            self.exact[tid], self.loose[tid] = expected(plan), {}
        if rerun:
            self.succeed(tid, plan)

    @invariant()
    def calendar_matches_model(self) -> None:
        if not self.foreign:
            return  # before initialize
        stored = self.contract.stored_events()
        assert [uid for uid, n in Counter(s.uid for s in stored).items() if n > 1] == []
        assert {s.resource: s.raw for s in stored if s.plan_tag is None} == self.foreign
        tags = {treatment_tag(tid): tid for tid in TREATMENTS}
        assert {s.plan_tag for s in stored} <= {*tags, None}
        for tag, tid in tags.items():
            held = {s.uid: s.seen for s in stored if s.plan_tag == tag}
            exact = self.exact[tid]
            if exact is not None:
                assert held == exact, tid
            else:
                loose = self.loose[tid]
                assert all(seen in loose.get(uid, set()) for uid, seen in held.items()), tid
