"""The store's own rules: keyed identifiers, a store bound to its secret, no dead links, a second
link, an empty store said so. No channel server needed."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aftercal.cli import app
from aftercal.config import create_secret
from calendars.feeds.store import open_store
from reminders import make_plan
from reminders.errors import StoreError
from reminders.schedule import EventIds, PlanOptions, event_uid, treatment_tag
from tests.feed.conftest import ServeProcess, links_from
from tests.helpers import new_store, parse_ics

FUTURE = "2027-03-16T10:00"
ADD = ["treatments", "add", "microneedling", "--at", FUTURE, "--tz", "Europe/Madrid", "--id", "T-4711", "--no-qr"]


def plan_uids_and_tag(*extra: str) -> tuple[set[str], set[str]]:
    result = CliRunner().invoke(app, ["plan", "microneedling", "--at", FUTURE, "--tz", "Europe/Madrid", "--id",
                                      "T-4711", *extra])  # fmt: skip
    assert result.exit_code == 0, result.output
    events = parse_ics(result.stdout).vevent_list
    return {e.uid.value for e in events}, {e.contents["x-aftercal-plan"][0].value for e in events}


def test_plan_keeps_unkeyed_ids_without_a_secret_and_keys_them_with_one(_own_config_folder: Path) -> None:
    reminders = make_plan("microneedling", FUTURE, "Europe/Madrid", treatment_id="T-4711").reminders
    uids, tags = plan_uids_and_tag()
    assert uids == {event_uid("T-4711", r.key) for r in reminders} and tags == {treatment_tag("T-4711")}
    # Anyone holding such a feed recovers a short id by trying them: a few thousand hashes.
    (tag,) = tags
    found = [f"T-{n:04d}" for n in range(10000) if treatment_tag(f"T-{n:04d}") == tag]
    assert found == ["T-4711"]

    secret = create_secret(_own_config_folder / "aftercal.secret")
    keyed_uids, keyed_tags = plan_uids_and_tag()
    ids = EventIds(secret)
    assert keyed_uids == {ids.uid("T-4711", r.key) for r in reminders} and keyed_tags == {ids.tag("T-4711")}
    assert keyed_uids.isdisjoint(uids) and keyed_tags.isdisjoint(tags)
    (keyed_tag,) = keyed_tags
    assert not [n for n in range(10000) if treatment_tag(f"T-{n:04d}") == keyed_tag]
    assert keyed_tag != hashlib.sha256(b"T-4711").hexdigest()[:32]


@settings(max_examples=200, deadline=None)
@given(treatment_id=st.text(min_size=1, max_size=40), key=st.binary(min_size=32, max_size=32),
       other=st.binary(min_size=32, max_size=32))  # fmt: skip
def test_keyed_ids_are_stable_distinct_and_well_formed(treatment_id: str, key: bytes, other: bytes) -> None:
    ids = EventIds(key)
    assert ids.tag(treatment_id) == EventIds(key).tag(treatment_id)  # the same on every machine
    assert re.fullmatch(r"[0-9a-f]{32}", ids.tag(treatment_id))
    uid = ids.uid(treatment_id, "day-1")
    assert uid.endswith("@aftercal") and uuid.UUID(uid.removesuffix("@aftercal")).version == 4
    assert ids.tag(treatment_id) != treatment_tag(treatment_id)
    assert uid != ids.uid(treatment_id, "day-2") and uid != event_uid(treatment_id, "day-1")
    if other != key:
        assert EventIds(other).tag(treatment_id) != ids.tag(treatment_id)
        assert EventIds(other).fingerprint != ids.fingerprint
    plan = make_plan("microneedling", FUTURE, "Europe/Madrid", treatment_id="T-1", options=PlanOptions(ids=ids))
    assert plan.plan_tag == ids.tag("T-1") and plan.legacy_tag == treatment_tag("T-1")


def test_a_store_bound_to_a_secret_needs_that_secret(tmp_path: Path) -> None:
    secret = b"\x01" * 32
    db = new_store(tmp_path / "clinic.db", secret)
    with pytest.raises(StoreError, match="not on this machine: copy the secret file"):
        open_store(db)
    with pytest.raises(StoreError, match="not the one the treatment store"):
        open_store(db, secret=b"\x02" * 32)
    store = open_store(db, secret=secret)
    try:
        assert store.ids == EventIds(secret)
    finally:
        store.close()
    # Through the command line: one line, exit 1, nothing printed of the secret.
    listed = CliRunner().invoke(app, ["treatments", "list", "--db", db])
    assert listed.exit_code == 1 and listed.stderr.count("\n") == 1 and "copy the secret file" in listed.stderr


@pytest.mark.parametrize(
    ("base_url", "warning"),
    [
        (None, "127.0.0.1 is this machine, which no patient's phone can reach"),
        ("http://localhost:8080", "localhost is this machine"),
        ("http://care.example", "plain http"),
        ("https://care.example", None),
    ],
)
def test_links_that_cannot_work_are_never_printed_silently(
    tmp_path: Path, base_url: str | None, warning: str | None
) -> None:
    db = new_store(tmp_path / "clinic.db")
    extra = ["--base-url", base_url] if base_url else []
    added = CliRunner().invoke(app, [*ADD, "--db", db, *extra])
    assert added.exit_code == 0, added.output
    assert "Feed: " in added.stdout
    if warning is None:
        assert "warning" not in added.stderr
    else:
        assert "aftercal: warning: these links" in added.stderr and warning in added.stderr


def test_a_second_link_keeps_the_first_working(tmp_path: Path) -> None:
    db = new_store(tmp_path / "clinic.db")
    first = links_from(CliRunner().invoke(app, [*ADD, "--db", db]).stdout)["Feed"].rsplit("/", 1)[1][:-4]
    added = CliRunner().invoke(app, ["treatments", "link", "T-4711", "--new", "--no-qr", "--db", db,
                                     "--base-url", "https://care.example"])  # fmt: skip
    assert added.exit_code == 0 and "(2 active)" in added.stdout
    second = links_from(added.stdout)["Feed"].rsplit("/", 1)[1][:-4]
    store = open_store(db)
    try:
        assert store.lookup_token(first) is not None and store.lookup_token(second) is not None
        assert store.get("T-4711").links == 2
    finally:
        store.close()
    shown = CliRunner().invoke(app, ["treatments", "link", "T-4711", "--db", db])
    assert "2 active links" in shown.stdout
    rotated = CliRunner().invoke(app, ["treatments", "link", "T-4711", "--rotate", "--no-qr", "--db", db])
    third = links_from(rotated.stdout)["Feed"].rsplit("/", 1)[1][:-4]
    store = open_store(db)
    try:
        assert store.lookup_token(first) is None and store.lookup_token(second) is None
        assert store.lookup_token(third) is not None
    finally:
        store.close()


def test_serve_on_an_empty_store_says_so(tmp_path: Path, serve_process: Callable[..., ServeProcess]) -> None:
    db = new_store(tmp_path / "clinic.db")
    running = serve_process(db)
    assert httpx.get(running.base + "/f/" + "x" * 43 + ".ics").status_code == 404
    assert "holds no treatment yet: every feed link answers 404" in running.output()


def test_an_unreadable_row_stays_pending_and_the_others_go_on(tmp_path: Path) -> None:
    from aftercal.feeds import add_treatment
    from aftercal.sync import channel_target, sync_store

    db = new_store(tmp_path / "clinic.db")
    closed = channel_target("caldav", {"url": "http://127.0.0.1:9/", "user": "clinic", "calendar": "aftercare"})
    for tid in ("T-1", "T-2"):
        add_treatment("microneedling", FUTURE, "Europe/Madrid", tid, db=db, channels=[closed])
    store = open_store(db)
    try:
        with store.transaction() as cur:
            cur.execute("UPDATE treatments SET options = 'not json' WHERE treatment_id = 'T-1'")
    finally:
        store.close()
    report = sync_store(db=db)
    errors = {outcome.treatment_id: outcome.error or "" for outcome in report.outcomes}
    assert "the stored treatment cannot be read" in errors["T-1"]
    assert "T-2" in errors and "cannot be read" not in errors["T-2"]  # tried: the server is what failed


def test_sealed_values_open_only_in_their_place_and_with_the_secret(tmp_path: Path) -> None:
    from datetime import timedelta

    secret = b"\x03" * 32
    db = new_store(tmp_path / "clinic.db", secret)
    store = open_store(db, secret=secret)
    try:
        sealed = store.seal("1//refresh-token", "channel:1:patient_google")
        assert "refresh" not in sealed and store.unseal(sealed, "channel:1:patient_google") == "1//refresh-token"
        with pytest.raises(StoreError, match="cannot be opened"):
            store.unseal(sealed, "channel:2:patient_google")  # a row copied to another treatment
        # A state is single-use, expires, and remembers the link and browser it was made for.
        from aftercal.feeds import add_treatment

        add_treatment("microneedling", FUTURE, "Europe/Madrid", "T-1", db=db, secret=secret)
        pk = store.get("T-1").pk
        store.start_oauth("state-1", pk, "link-token", "browser-1", "sealed", timedelta(minutes=10))
        taken = store.take_oauth("state-1")
        assert taken is not None and taken.treatment_pk == pk and taken.browser_hash != "browser-1"
        assert store.take_oauth("state-1") is None  # replayed
        store.start_oauth("state-2", pk, "link-token", "browser-1", "sealed", timedelta(seconds=-1))
        assert store.take_oauth("state-2") is None  # expired
    finally:
        store.close()
    unbound = open_store(new_store(tmp_path / "other.db"))
    try:
        with pytest.raises(StoreError, match="not bound to a clinic secret"):
            unbound.seal("x", "y")
    finally:
        unbound.close()


def test_a_desktop_client_file_is_refused_for_patients(tmp_path: Path) -> None:
    import json

    from calendars.gcal_web import load_web_client
    from reminders.errors import InputError

    desktop = tmp_path / "desktop.json"
    desktop.write_text(json.dumps({"installed": {"client_id": "a", "client_secret": "b"}}))
    with pytest.raises(InputError, match="'Web application' OAuth client"):
        load_web_client(desktop)
    web = tmp_path / "web.json"
    web.write_text(json.dumps({"web": {"client_id": "a", "client_secret": "s3cr3t-value"}}))
    client = load_web_client(web, token_uri="http://127.0.0.1:9/token")
    assert client.client_id == "a" and client.token_uri == "http://127.0.0.1:9/token"
    assert "s3cr3t" not in repr(client)


def test_init_refuses_a_store_of_another_clinic_before_writing_anything(tmp_path: Path) -> None:
    db = new_store(tmp_path / "clinic.db", b"\x05" * 32)
    other = tmp_path / "other" / "x.toml"
    other.parent.mkdir()
    result = CliRunner().invoke(app, ["--config", str(other), "init", "--db", db])
    assert result.exit_code == 2 and "bound to another clinic's secret" in result.stderr, result.output
    assert list(other.parent.iterdir()) == []  # no config file, no new secret left behind


def test_sync_of_an_unknown_id_is_an_error_and_a_same_time_reschedule_changes_nothing(tmp_path: Path) -> None:
    db = new_store(tmp_path / "clinic.db")
    assert CliRunner().invoke(app, [*ADD, "--db", db]).exit_code == 0
    typo = CliRunner().invoke(app, ["sync", "--id", "T-4712", "--db", db])
    assert typo.exit_code == 2 and "no treatment 'T-4712'" in typo.stderr
    for _ in range(2):
        moved = CliRunner().invoke(app, ["treatments", "reschedule", "T-4711", "--at", "2027-03-18T15:00", "--db", db])
        assert moved.exit_code == 0 and "SEQUENCE 1" in moved.stdout  # the second one is no new revision
