"""The store drives every channel: one treatment pushed to CalDAV (Radicale) and Google (stand-in)
and linked, through reschedule, cancel and forget; a channel down leaves the change pending until
`aftercal sync`; published events move to keyed identifiers without duplicates."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import httpx

from aftercal.config import read_secret
from calendars.feeds.store import open_store
from reminders import make_plan
from reminders.schedule import EventIds, PlanOptions, event_uid
from tests.feed.conftest import LiveServer
from tests.helpers import parse_ics
from tests.sync.conftest import Clinic

ADD = ("treatments", "add", "microneedling", "--at", "2027-03-16T10:00", "--tz", "Europe/Paris", "--id", "T-4711",
       "--no-qr")  # fmt: skip
N = len(make_plan("microneedling", "2027-03-16T10:00", "Europe/Paris", treatment_id="T-4711").reminders)


def keyed(clinic: Clinic) -> EventIds:
    secret = read_secret(clinic.root / "config" / "aftercal.secret")
    assert secret is not None
    return EventIds(secret)


def feed(server: LiveServer, token: str) -> tuple[int, str]:
    response = httpx.get(f"{server.base}/f/{token}.ics")
    return response.status_code, response.text


def token_of(stdout: str) -> str:
    match = re.search(r"^Feed: https://care\.example/f/([A-Za-z0-9_-]+)\.ics$", stdout, re.M)
    assert match, stdout
    return match.group(1)


def caldav_starts(clinic: Clinic) -> dict[str, datetime]:
    return {s.uid: s.event.decoded("DTSTART") for s in clinic.caldav_events()}


def google_starts(clinic: Clinic) -> dict[str, str]:
    return {e["extendedProperties"]["private"]["aftercalUid"]: e["start"].get("dateTime", e["start"].get("date"))
            for e in clinic.google_events()}  # fmt: skip


def test_pushed_and_linked_treatment_follows_the_store(clinic: Clinic, live_server: Callable[..., LiveServer]) -> None:
    added = clinic.run(*ADD, "--push", "caldav", "--push", "google")
    assert added.exit_code == 0, added.output
    assert "T-4711 caldav: in line (created 17" in added.stdout and "T-4711 google: in line (created 17" in added.stdout
    token = token_of(added.stdout)
    ids = keyed(clinic)
    server = live_server(open_store(clinic.db, create=False, secret=ids.key))
    plan = make_plan("microneedling", "2027-03-16T10:00", "Europe/Paris", treatment_id="T-4711",
                     options=PlanOptions(ids=ids))  # fmt: skip
    uids = {r.uid for r in plan.reminders}
    # Keyed: no event carries what an unkeyed hash of "T-4711" gives, in any channel or the feed.
    assert uids.isdisjoint({event_uid("T-4711", r.key) for r in plan.reminders})
    assert set(caldav_starts(clinic)) == uids == set(google_starts(clinic))
    status, body = feed(server, token)
    assert status == 200 and {e.uid.value for e in parse_ics(body).vevent_list} == uids
    popups = [e for e in clinic.google_events() if e["reminders"].get("overrides")]
    assert popups, "key days ring on Android"

    shown = clinic.run("treatments", "show", "T-4711")
    assert shown.exit_code == 0 and shown.stdout.count("in line (revision 0") == 2, shown.stdout

    moved = clinic.run("treatments", "reschedule", "T-4711", "--at", "2027-03-18T15:00")
    assert moved.exit_code == 0, moved.output
    assert "T-4711 caldav: in line (created 0, updated" in moved.stdout
    moved_plan = make_plan("microneedling", "2027-03-18T15:00", "Europe/Paris", treatment_id="T-4711",
                           options=PlanOptions(ids=ids))  # fmt: skip
    want = {r.uid: r.start for r in moved_plan.reminders}
    assert caldav_starts(clinic) == want  # moved in place: same UIDs, the new times
    in_google = {uid: datetime.fromisoformat(v) if "T" in v else date.fromisoformat(v)
                 for uid, v in google_starts(clinic).items()}  # fmt: skip
    assert in_google == want
    status, body = feed(server, token)
    assert status == 200 and "SEQUENCE:1" in body and "DTSTART;TZID=Europe/Paris:20270318T" in body

    cancelled = clinic.run("treatments", "cancel", "T-4711")
    assert cancelled.exit_code == 0, cancelled.output
    assert clinic.caldav_events() == [] and clinic.google_events() == []
    status, body = feed(server, token)
    assert status == 200 and "STATUS:CANCELLED" in body

    forgotten = clinic.run("treatments", "forget", "T-4711")
    assert forgotten.exit_code == 0, forgotten.output
    assert "nothing of it is left" in forgotten.stdout or "row" in forgotten.stdout
    assert feed(server, token)[0] == 404
    gone = clinic.run("treatments", "show", "T-4711")
    assert gone.exit_code == 2 and "no treatment 'T-4711'" in gone.stderr
    store = open_store(clinic.db, create=False, secret=ids.key)
    try:
        for table in ("treatments", "links", "channels"):
            assert store._query(f"SELECT COUNT(*) FROM {table}")[0][0] == 0, table
    finally:
        store.close()
    again = clinic.run("treatments", "forget", "T-4711")
    assert again.exit_code == 0 and "nothing stored" in again.stdout


def test_a_server_down_leaves_the_change_pending_until_sync(clinic: Clinic) -> None:
    added = clinic.run(*ADD, "--push", "caldav", "--patient-name", "Ana Ruiz")
    assert added.exit_code == 0, added.output
    clinic.radicale.stop()
    moved = clinic.run("treatments", "reschedule", "T-4711", "--at", "2027-03-18T15:00")
    assert moved.exit_code == 1
    assert "the change is saved; caldav pending" in moved.stderr and "aftercal sync" in moved.stderr
    shown = clinic.run("treatments", "show", "T-4711")
    assert "pending: revision 1; last error" in shown.stdout and "1 failed attempts" in shown.stdout
    assert clinic.run("sync").exit_code == 1  # still down: still pending, said again

    clinic.radicale.start()
    synced = clinic.run("sync")
    assert synced.exit_code == 0, synced.output
    assert "T-4711 caldav: in line (created 0, updated" in synced.stdout
    assert "in line (revision 1" in clinic.run("treatments", "show", "T-4711").stdout
    idle = clinic.run("sync")
    assert idle.exit_code == 0 and "0 channel(s) brought in line, 0 pending, 0 treatment(s)" in idle.stderr

    # Forget while the server is down: links and name go at once, the row waits for the removal.
    clinic.radicale.stop()
    forgotten = clinic.run("treatments", "forget", "T-4711")
    assert forgotten.exit_code == 1 and "caldav pending" in forgotten.stderr
    shown = clinic.run("treatments", "show", "T-4711")
    assert "forgotten" in shown.stdout and "Ana Ruiz" not in shown.stdout and "no active link" in shown.stdout
    clinic.radicale.start()
    assert len(clinic.caldav_events()) == N
    synced = clinic.run("sync")
    assert synced.exit_code == 0, synced.output
    assert "T-4711: forgotten; nothing of it is left" in synced.stdout
    assert clinic.caldav_events() == []
    assert clinic.run("treatments", "show", "T-4711").exit_code == 2


def test_events_published_before_the_secret_move_to_keyed_ids(clinic: Clinic, tmp_path: Path) -> None:
    # Published by hand before the clinic had a secret: unkeyed UIDs and tags.
    legacy_env = {"AFTERCAL_SECRET_FILE": str(tmp_path / "none.secret")}
    from typer.testing import CliRunner

    from aftercal.cli import app

    for channel in ("caldav", "google"):
        published = CliRunner().invoke(
            app, ["publish", channel, "microneedling", "--at", "2027-03-16T10:00", "--tz", "Europe/Paris", "--id",
                  "T-4711"], env=legacy_env,
        )  # fmt: skip
        assert published.exit_code == 0, published.output
    legacy = {event_uid("T-4711", key) for key in (r.key for r in make_plan(
        "microneedling", "2027-03-16T10:00", "Europe/Paris", treatment_id="T-4711").reminders)}  # fmt: skip
    assert set(caldav_starts(clinic)) == legacy == set(google_starts(clinic))

    added = clinic.run(*ADD, "--push", "caldav", "--push", "google")
    assert added.exit_code == 0, added.output
    assert "created 17, updated 0, deleted 17" in added.stdout
    ids = keyed(clinic)
    assert set(caldav_starts(clinic)).isdisjoint(legacy) and len(clinic.caldav_events()) == N
    assert set(google_starts(clinic)).isdisjoint(legacy) and len(clinic.google_events()) == N
    assert all(uid.endswith("@aftercal") for uid in caldav_starts(clinic))
    assert ids.keyed
