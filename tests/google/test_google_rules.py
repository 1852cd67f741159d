"""Google as it really behaves (issue 16): each rule the stand-in keeps, and aftercal surviving it.

Each section first checks the stand-in's rule by itself (the documentation it follows is named in
tests/google/standin.py), then drives aftercal into it. The aftercal tests of a section failed
against the stricter stand-in before aftercal was fixed.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from calendars import gcal
from calendars.base import PublishJob, sync_plan, unpublish_treatment
from calendars.gcal import GooglePublisher, connect, event_id
from calendars.gcal_auth import SCOPE_APP_CREATED, SCOPE_EVENTS, token_path
from reminders import make_plan
from reminders.errors import AuthError, ChannelError, NotFoundError, TransientError
from tests.google.accounts import (
    SERVICE_ACCOUNT,
    FakeBrowser,
    client_secrets,
    login,
    run,
    service_account_key,
    write_token,
)
from tests.google.standin import DEFAULT_USER, CalendarStandin, ManualClock

START = ["microneedling", "--at", "2026-11-24T10:00", "--tz", "America/Chicago", "--id", "T-1"]
PAST = "2020-01-01T00:00:00Z"  # an access token that has expired: the client refreshes it first


@pytest.fixture(autouse=True)
def _env(standin: CalendarStandin, config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # google-auth refreshes user tokens at Google's own token endpoint: point it at the stand-in.
    monkeypatch.setattr("google.oauth2.credentials._GOOGLE_OAUTH2_TOKEN_ENDPOINT", standin.url + "token")
    monkeypatch.setenv("AFTERCAL_GOOGLE_BACKOFF", "0")
    monkeypatch.delenv("AFTERCAL_GOOGLE_CALENDAR_ID", raising=False)


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.strip().splitlines() if not line.startswith("aftercal: warning:")]


def publish(standin: CalendarStandin, *args: str) -> Any:
    return run("publish", "google", *args, "--api-endpoint", standin.url)


def count(treatment_id: str = "T-1") -> int:
    return len(make_plan("microneedling", "2026-11-24T10:00", "America/Chicago", treatment_id=treatment_id).reminders)


def status_of(request: Any) -> tuple[int, str]:
    with pytest.raises(HttpError) as info:
        request.execute()
    details = info.value.error_details
    return info.value.resp.status, details[0]["reason"] if isinstance(details, list) and details else ""


# ---- refresh tokens only on consent ------------------------------------------------------------------


def authorization_code(standin: CalendarStandin, **query: str) -> str:
    status, location, _ = standin.authorize(
        {"client_id": "c", "redirect_uri": "http://127.0.0.1:1/", "scope": SCOPE_EVENTS, "state": "s", **query}
    )
    assert status == 302
    return parse_qs(urlsplit(location).query)["code"][0]


def exchange(standin: CalendarStandin, code: str) -> dict[str, Any]:
    form = {"grant_type": "authorization_code", "code": code, "client_id": "c", "client_secret": "x"}
    status, answer = standin.token_grant({**form, "redirect_uri": "http://127.0.0.1:1/"})
    assert status == 200, answer
    return answer


def test_standin_gives_a_refresh_token_only_when_the_consent_screen_is_shown(standin: CalendarStandin) -> None:
    standin.register_client("c", "x")
    assert "refresh_token" in exchange(standin, authorization_code(standin, access_type="offline"))
    # The same person again: Google skips the consent screen, and sends no refresh token.
    assert "refresh_token" not in exchange(standin, authorization_code(standin, access_type="offline"))
    assert "refresh_token" in exchange(standin, authorization_code(standin, access_type="offline", prompt="consent"))
    assert "refresh_token" not in exchange(standin, authorization_code(standin, prompt="consent"))


def test_repeat_login_stores_a_sign_in_that_lasts(
    standin: CalendarStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = client_secrets(tmp_path / "client_secret.json", standin)
    assert login(secrets, monkeypatch).exit_code == 0
    browser = FakeBrowser()

    again = login(secrets, monkeypatch, browser)  # Google remembers the first consent

    assert again.exit_code == 0, again.output
    query = parse_qs(urlsplit(browser.urls[0]).query)
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
    stored = json.loads(token_path().read_text(encoding="utf-8"))
    assert stored.get("refresh_token")
    # An hour later the access token has expired: it is refreshed, and publishing works.
    stored["expiry"] = PAST
    token_path().write_text(json.dumps(stored), encoding="utf-8")
    result = publish(standin, *START)
    assert result.exit_code == 0, result.output


def test_login_refuses_to_store_a_sign_in_without_refresh_token(
    standin: CalendarStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = client_secrets(tmp_path / "client_secret.json", standin)
    assert login(secrets, monkeypatch).exit_code == 0
    token_path().unlink()  # another computer; Google still remembers the consent
    # A URL without prompt=consent (bookmarked, or shortened by a proxy): no consent screen.
    result = login(secrets, monkeypatch, FakeBrowser(drop=("prompt",)))

    assert result.exit_code == 1
    lines = errors(result.stderr)
    assert len(lines) == 1 and "no refresh token" in lines[0], result.stderr
    assert "https://myaccount.google.com/permissions" in lines[0] and "aftercal google login" in lines[0]
    assert not token_path().exists() and "Traceback" not in result.output


def test_stored_sign_in_without_refresh_token_says_to_log_in_again(standin: CalendarStandin) -> None:
    token_path().parent.mkdir(parents=True)
    token_path().write_text(
        json.dumps({"token": "old", "client_id": "c", "client_secret": "x", "scopes": [SCOPE_EVENTS], "expiry": PAST}),
        encoding="utf-8",
    )
    result = publish(standin, *START)
    assert result.exit_code == 1
    lines = errors(result.stderr)
    assert len(lines) == 1 and "no refresh token" in lines[0] and "aftercal google login" in lines[0], lines


# ---- scopes per access token ---------------------------------------------------------------------------


def signed_in(standin: CalendarStandin, scope: str) -> None:
    """A stored sign-in that Google granted `scope` (its access token has expired: refreshed first)."""
    write_token(token_path(), standin, token="old", refresh=f"r-{scope[-6:]}", expiry=PAST, scopes=[scope])


def test_standin_enforces_each_tokens_scopes(standin: CalendarStandin) -> None:
    signed_in(standin, SCOPE_EVENTS)
    with connect(api_endpoint=standin.url) as client:
        events = client.events_api()
        assert "items" in events.list(calendarId="primary").execute()
        assert status_of(client.service.calendars().insert(body={"summary": "x"})) == (403, "insufficientPermissions")
        assert status_of(client.service.calendarList().list()) == (403, "insufficientPermissions")
    token_path().unlink()
    signed_in(standin, SCOPE_APP_CREATED)
    with connect(api_endpoint=standin.url) as client:
        made = client.service.calendars().insert(body={"summary": "Aftercare"}).execute()
        assert "items" in client.events_api().list(calendarId=made["id"]).execute()
        assert status_of(client.events_api().list(calendarId="primary")) == (403, "insufficientPermissions")


def test_create_calendar_with_the_default_sign_in_says_which_sign_in_it_needs(standin: CalendarStandin) -> None:
    signed_in(standin, SCOPE_EVENTS)
    result = publish(standin, *START, "--calendar", "Aftercare", "--create-calendar")
    assert result.exit_code == 1
    lines = errors(result.stderr)
    assert len(lines) == 1 and "aftercal google login --app-created-only" in lines[0], result.stderr
    assert not standin.named("Aftercare")
    assert not [c for c in standin.calls if c.path.endswith("/calendars") or "calendarList" in c.path]


def test_app_created_sign_in_keeps_to_the_calendars_aftercal_made(standin: CalendarStandin) -> None:
    signed_in(standin, SCOPE_APP_CREATED)
    made = publish(standin, *START, "--calendar", "Aftercare", "--create-calendar")
    assert made.exit_code == 0, made.output
    assert len(standin.named("Aftercare")) == 1 and made.stdout.startswith("T-1: created ")

    result = publish(standin, *START, "--calendar-id", "primary")
    assert result.exit_code == 1
    lines = errors(result.stderr)
    assert len(lines) == 1 and "calendar.app.created" in lines[0] and "--calendar NAME" in lines[0], result.stderr
    assert standin.events("primary") == []


# ---- one identity per credential -------------------------------------------------------------------------


def test_standin_primary_is_the_signed_in_identitys_own(standin: CalendarStandin, tmp_path: Path) -> None:
    standin.token = "nothing-yet"
    standin.add_calendar("room1", "Room 1", shared={SERVICE_ACCOUNT: "reader"})
    standin.add_calendar("clinic-private", "Private", owner=DEFAULT_USER)
    key = service_account_key(tmp_path / "sa.json", standin)
    with connect(api_endpoint=standin.url, credentials_file=key) as client:
        events = client.events_api()
        body = {"id": "abcde12345", "summary": "x", "start": {"date": "2026-11-24"}, "end": {"date": "2026-11-25"}}
        events.insert(calendarId="primary", body=body).execute()
        assert status_of(events.list(calendarId="clinic-private")) == (404, "notFound")
        assert status_of(events.insert(calendarId="room1", body=body)) == (403, "requiredAccessLevel")
    assert [e["id"] for e in standin.events(SERVICE_ACCOUNT)] == ["abcde12345"]
    assert standin.events("primary") == []  # the patient's calendar (DEFAULT_USER's): untouched


def test_service_account_is_refused_its_own_primary_calendar(standin: CalendarStandin, tmp_path: Path) -> None:
    standin.token = "nothing-yet"
    key = service_account_key(tmp_path / "sa.json", standin)
    result = publish(standin, *START, "--credentials", str(key))  # --calendar-id primary by default
    assert result.exit_code == 2
    lines = errors(result.stderr)
    assert len(lines) == 1 and SERVICE_ACCOUNT in lines[0] and "--calendar-id" in lines[0], result.stderr
    assert standin.writes() == [] and result.stdout == ""


def test_service_account_is_refused_calendars_of_its_own(standin: CalendarStandin, tmp_path: Path) -> None:
    standin.token = "nothing-yet"
    key = service_account_key(tmp_path / "sa.json", standin)
    result = publish(standin, *START, "--credentials", str(key), "--calendar", "Aftercare", "--create-calendar")
    assert result.exit_code == 2
    lines = errors(result.stderr)
    assert len(lines) == 1 and SERVICE_ACCOUNT in lines[0] and "--calendar-id" in lines[0], result.stderr
    assert standin.writes() == [] and not standin.named("Aftercare")


def test_service_account_calendar_must_be_shared_with_it(standin: CalendarStandin, tmp_path: Path) -> None:
    standin.token = "nothing-yet"
    standin.add_calendar("room2", "Room 2")  # the clinic forgot to share it
    key = service_account_key(tmp_path / "sa.json", standin)
    result = publish(standin, *START, "--credentials", str(key), "--calendar-id", "room2")
    assert result.exit_code == 1
    lines = errors(result.stderr)
    assert len(lines) == 1 and f"not shared with the service account {SERVICE_ACCOUNT}" in lines[0], result.stderr
    assert standin.writes() == []

    standin.calendars["room2"].shared[SERVICE_ACCOUNT] = "writer"
    again = publish(standin, *START, "--credentials", str(key), "--calendar-id", "room2")
    assert again.exit_code == 0, again.output
    assert len(standin.events("room2")) == count()


# ---- batch parts run in any order ------------------------------------------------------------------------


def test_standin_runs_batch_parts_in_a_seeded_order_and_answers_in_request_order() -> None:
    ids = [f"event{n:05d}" for n in range(12)]

    def run_order(seed: int) -> tuple[list[str], list[str]]:
        with CalendarStandin(seed=seed) as standin, connect(api_endpoint=standin.url, no_auth=True) as client:
            answered: list[str] = []
            batch = BatchHttpRequest(
                callback=lambda rid, _resp, _exc: answered.append(rid), batch_uri=standin.url + "batch/calendar/v3"
            )
            for value in ids:
                batch.add(client.events_api().delete(calendarId="primary", eventId=value), request_id=value)
            batch.execute()
            return [unquote(c.path).rsplit("/", 1)[1] for c in standin.calls], answered

    ran, answered = run_order(7)
    assert answered == ids and sorted(ran) == ids and ran != ids
    assert run_order(7)[0] == ran  # the same seed, the same order: a test is repeatable


def test_csv_with_one_treatment_twice_publishes_it_once(standin: CalendarStandin, tmp_path: Path) -> None:
    csv = tmp_path / "appointments.csv"
    csv.write_text(
        "id,protocol,start,zone\n"
        "T-1,microneedling,2026-11-24T09:00,America/Chicago\n"
        "T-2,microneedling,2026-11-24T10:00,America/Chicago\n"
        "T-1,microneedling,2026-11-30T15:00,America/Chicago\n",
        encoding="utf-8",
    )

    result = run("publish", "google", "--from", str(csv), "--api-endpoint", standin.url, "--no-auth")

    assert result.exit_code == 1
    lines = errors(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "line 4" in lines[0] and "'T-1'" in lines[0] and "line 2" in lines[0] and "row skipped" in lines[0]
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["T-1", "T-2", "total"]
    first = make_plan("microneedling", "2026-11-24T09:00", "America/Chicago", treatment_id="T-1")
    held = {e["id"]: e for e in standin.events()}
    for reminder in first.reminders:  # line 2's plan, every event of it
        if isinstance(reminder.start, datetime):
            start = held[event_id("T-1", reminder.key)]["start"]["dateTime"]
            assert datetime.fromisoformat(start) == reminder.start


# ---- the per-user quota, over a sliding window -----------------------------------------------------------


def test_standin_quota_slides_with_the_clock(standin: CalendarStandin, clock: ManualClock) -> None:
    standin.quota_per_minute = 3
    with connect(api_endpoint=standin.url, no_auth=True) as client:
        listing = client.events_api().list(calendarId="primary")
        for _ in range(3):
            listing.execute()
            clock.advance(10)
        assert status_of(listing) == (403, "rateLimitExceeded")  # 3 calls in the last 60 s
        clock.advance(30.5)  # the first call leaves the window
        listing.execute()
        assert status_of(listing) == (403, "rateLimitExceeded")


def test_a_burst_past_the_quota_waits_for_the_window(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: Any, sleeps: list[float]
) -> None:
    # Google's quota is 600 calls a minute per user; the same rule at 100 keeps the test small.
    standin.quota_per_minute = 100
    plans = [plan_for(f"T-{n}") for n in range(8)]  # 8 lists and 136 inserts

    results = publisher.publish_jobs([PublishJob.publish(plan) for plan in plans])

    assert [r.error for r in results] == [None] * len(plans)
    assert [r.summary.created for r in results] == [len(plan.reminders) for plan in plans]
    assert sum(sleeps) >= 60  # it waited for the burst to leave the window, and no longer than it had to
    assert len(standin.events()) == sum(len(plan.reminders) for plan in plans)


def test_rate_limits_are_waited_out_for_a_bounded_time(
    standin: CalendarStandin, new_publisher: Any, plan_for: Any, sleeps: list[float]
) -> None:
    # A rate limit is Google's sliding one-minute quota: its rounds end when the waits span the
    # window (RATE_PATIENCE), not after the policy's attempts.
    standin.inject(429, method="POST", times=-1)
    with pytest.raises(TransientError, match="run the same command again later"):
        sync_plan(new_publisher(attempts=3), plan_for())
    assert gcal.RATE_PATIENCE <= sum(sleeps) <= gcal.RATE_PATIENCE + gcal.DEFAULT_RETRY.max_delay
    assert standin.batch_requests == len(sleeps) + 1 <= gcal.RATE_LIMIT_ROUNDS


# ---- 409 conflict, retried ---------------------------------------------------------------------------------


def test_standin_answers_conflict_to_a_second_part_on_the_same_event(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: Any
) -> None:
    sync_plan(publisher, plan_for())
    target = standin.events()[0]["id"]
    answers: dict[str, int] = {}
    batch = BatchHttpRequest(
        callback=lambda rid, _resp, exc: answers.__setitem__(rid, exc.resp.status if exc else 200),
        batch_uri=standin.url + "batch/calendar/v3",
    )
    events = publisher.events_api()
    batch.add(events.patch(calendarId="primary", eventId=target, body={"summary": "a"}), request_id="patch")
    batch.add(events.delete(calendarId="primary", eventId=target), request_id="delete")
    batch.execute()
    assert sorted(answers.values()) == [200, 409]  # whichever ran second


@pytest.mark.parametrize("method", ["PUT", "DELETE", "GET", "POST"])
def test_conflict_is_retried(
    standin: CalendarStandin, new_publisher: Any, plan_for: Any, sleeps: list[float], method: str
) -> None:
    plan = plan_for()
    if method != "POST":
        sync_plan(new_publisher(), plan)
    standin.inject(409, "conflict", method=method, times=2)

    if method == "PUT":
        moved = plan_for(at="2026-11-25T10:00")
        _, summary = sync_plan(new_publisher(), moved)
        assert summary.updated > 0 and summary.created == 0
    elif method == "DELETE":
        _, summary = unpublish_treatment(new_publisher(), plan.treatment_id)
        assert summary.deleted == len(plan.reminders) and standin.events() == []
    else:  # GET: the list (a plain request); POST: inserts
        _, summary = sync_plan(new_publisher(), plan)
        assert summary.created + summary.unchanged == len(plan.reminders)
    assert len([c for c in standin.calls if c.status == 409]) == 2
    assert sleeps or method == "POST"  # an insert may also go again as an update (then a 404: an insert)


# ---- smaller: 404 backoff, quotaExceeded, web client --------------------------------------------------------


def test_a_404_for_a_calendar_is_retried_with_backoff(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: Any, sleeps: list[float]
) -> None:
    standin.inject(404, method="GET", path="/calendars/primary/events", times=1)  # not yet visible
    _, summary = sync_plan(publisher, plan_for())
    assert summary.created == len(plan_for().reminders) and len(sleeps) == 1

    standin.inject(404, method="GET", times=1)  # the same in shared batches
    results = publisher.publish_jobs([PublishJob.publish(plan_for("T-2")), PublishJob.publish(plan_for("T-3"))])
    assert [r.error for r in results] == [None, None]


def test_an_unknown_calendar_is_reported_after_a_short_backoff(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: Any, sleeps: list[float]
) -> None:
    with pytest.raises(NotFoundError, match="does not know calendar 'nope'"):
        sync_plan(publisher.for_calendar("nope"), plan_for())
    assert 1 <= len(sleeps) <= 2 and sum(sleeps) <= 3.0


def test_quota_exceeded_is_a_quota_problem_not_an_access_problem(
    standin: CalendarStandin, publisher: GooglePublisher, plan_for: Any
) -> None:
    standin.inject(403, "quotaExceeded", method="POST", times=-1)
    with pytest.raises(ChannelError) as info:
        sync_plan(publisher, plan_for())
    message = str(info.value)
    assert not isinstance(info.value, AuthError)
    assert "usage limits" in message and "quotaExceeded" in message and "access" not in message
    assert "\n" not in message


def test_web_application_client_is_refused_with_a_hint(
    standin: CalendarStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("calendars.gcal_auth.LOGIN_TIMEOUT", 2)  # before the fix, login waited for a redirect
    secrets = client_secrets(tmp_path / "client_secret.json", standin, kind="web")

    result = login(secrets, monkeypatch)

    assert result.exit_code == 2
    lines = errors(result.stderr)
    assert len(lines) == 1 and "'Web application'" in lines[0] and "'Desktop app'" in lines[0], result.stderr
    assert standin.authorizations == []  # refused before the browser opened
    assert not token_path().exists()
