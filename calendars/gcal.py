"""Google Calendar publishing: a care plan's events pushed with the Calendar v3 API.

The module is named `gcal` (not `google`) so that it can never shadow the `google` namespace
package that google-auth lives in.

How it works:

* Every event gets a deterministic id from (treatment id, step key), in Google's alphabet
  (base32hex, lowercase, 32 characters), so a re-publish addresses the same events.
* `extendedProperties.private` tags each event with the plan tag (an opaque hash of the treatment
  id), the event's UID, step key and content hash. `fetch` lists exactly one treatment's events
  with the `privateExtendedProperty` filter; events without aftercal's tags are never touched.
* Writes go in batch requests to the Calendar batch endpoint. Parts that answer 403
  rateLimitExceeded / userRateLimitExceeded, 409 conflict, or a status calendars/http.py's
  `RetryPolicy` retries (429, 500, 502, 503, 504), are re-queued after its backoff; an insert
  that answers 409 duplicate (the id exists, even as a cancelled event) becomes an update that sets
  the event back to `confirmed`; 404 / 410 on delete count as done; a 404 for the calendar is
  asked again a few times (a calendar just made or shared may not be visible yet). Calls refused
  by a rate limit go again until the waits span Google's sliding quota window.
* What the credentials may do is checked before anything is sent: the scope a stored sign-in was
  granted (`check_scope`), and for a service account, a calendar shared with it
  (`check_service_account`): its own `primary` and the calendars it would make are seen by nobody.
* Many treatments at once: `GooglePublisher.publish_jobs` (calendars.base.BatchPublisher) lists
  all of them in shared batch requests, then sends all their writes in shared batches; a
  permanent error fails only the treatment it belongs to.
* Redirects are never followed (httplib2 would follow any GET's, and a POST's 303/308, and take
  the answer of wherever it lands for the API's): a 3xx, for a whole request or a batch part, is
  a one-line error naming it, and the call it answered is not counted as done.
* Sign-in, the stored token and key files live in calendars/gcal_auth.py; the calendars aftercal
  creates (for the calendar.app.created scope) are remembered here, in the same config folder.

googleapiclient, google-auth and httplib2 are imported inside the functions that need them.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import hashlib
import http.client
import json
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from calendars.base import (
    BatchProgressCallback,
    BatchPublisher,
    JobResult,
    ProgressCallback,
    Publisher,
    PublishJob,
    RemoteEvent,
    SyncActions,
    SyncSummary,
    diff_plan,
)
from calendars.gcal_auth import (
    SCOPE_APP_CREATED,
    SCOPE_CALENDAR,
    SCOPE_EVENTS,
    authorized_http,
    config_dir,
    ensure_config_dir,
    granted_scopes,
    key_file_from_env,
    load_credentials,
    new_http,
    save_token,
    service_account_email,
    sign_in_refused,
)
from calendars.http import (
    LOOPBACK_NAMES,
    Retryable,
    RetryPolicy,
    check_base_url,
    is_loopback,
    parse_retry_after,
    require_https_unless_loopback,
)
from calendars.tags import GOOGLE_FORMAT, GOOGLE_HASH, GOOGLE_PLAN, GOOGLE_STEP, GOOGLE_UID
from reminders.errors import AuthError, ChannelError, InputError, NotFoundError, TransientError
from reminders.files import write_atomic
from reminders.schedule import CarePlan, Reminder

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

DEFAULT_ENDPOINT = "https://www.googleapis.com/"
CALENDARS_FILE = "google-calendars.json"

# Bump when the mapping to Google's JSON changes: every event is then rewritten once.
BODY_FORMAT = "1"

BATCH_SIZE = 50  # calls per batch request (Google accepts up to 1000; each call still counts)
# Rounds for calls that keep failing with a retryable error; full-jitter backoff from 1 s, capped
# at 32 s (also the longest Retry-After honoured).
DEFAULT_RETRY = RetryPolicy(attempts=6, base_delay=1.0, max_delay=32.0)
RETRYABLE_403 = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
# Google's per-minute quotas (600 calls a minute per user) are counted over a sliding window: a
# burst past them is refused until its calls leave the window
# (https://developers.google.com/workspace/calendar/api/guides/quota). Calls refused by a rate
# limit therefore go again until the waits add up to RATE_PATIENCE, more than one window, however
# many rounds that takes (at most RATE_LIMIT_ROUNDS, for policies whose delays are tiny).
RATE_WINDOW = 60.0
RATE_PATIENCE = 1.5 * RATE_WINDOW
RATE_LIMIT_ROUNDS = 12
# A 404 for a calendar: "Suggested action: Use exponential backoff" (a calendar just made or
# shared may not be visible yet), https://developers.google.com/workspace/calendar/api/guides/errors#404_not_found;
# asked this many times in all, so that a mistyped calendar id is reported within seconds.
NOT_FOUND_ATTEMPTS = 3


# ---- ids, bodies ------------------------------------------------------------------------------------


def event_id(treatment_id: str, key: str, uid: str | None = None) -> str:
    """Google event id for (treatment id, step key): base32hex (0-9, a-v), 32 characters.

    With keyed ids (a clinic secret) it derives from the event's keyed `uid` instead, so that it
    does not reveal the treatment id either; without, it keeps its historic unkeyed form.
    """
    name = f"aftercal-google-uid\x1f{uid}" if uid is not None else f"aftercal-google\x1f{treatment_id}\x1f{key}"
    digest = hashlib.sha256(name.encode()).digest()[:20]
    return base64.b32hexencode(digest).decode("ascii").lower()


def _when(reminder_time: date | datetime, zone: str) -> dict[str, str]:
    if isinstance(reminder_time, datetime):
        return {"dateTime": reminder_time.isoformat(), "timeZone": zone}
    return {"date": reminder_time.isoformat()}


def event_body(plan: CarePlan, reminder: Reminder) -> dict[str, Any]:
    """The Calendar v3 event resource for one reminder (used for insert and for update)."""
    zone = plan.zone.key
    body: dict[str, Any] = {
        "id": event_id(plan.treatment_id, reminder.key, reminder.uid if plan.options.ids.keyed else None),
        "status": "confirmed",
        "summary": reminder.title,
        "description": reminder.description,
        "start": _when(reminder.start, zone),
        "end": _when(reminder.end, zone),
        # Never make the patient look busy, never show the event to people they share with.
        "transparency": "transparent",
        "visibility": "private",
        # No "sequence": Google raises it itself when times change and refuses a lower one (400).
        "extendedProperties": {
            "private": {
                GOOGLE_PLAN: plan.plan_tag,
                GOOGLE_UID: reminder.uid,
                GOOGLE_STEP: reminder.key,
                GOOGLE_HASH: reminder.content_hash(),
                GOOGLE_FORMAT: BODY_FORMAT,
            }
        },
    }
    if reminder.alarm_text and not reminder.all_day:
        # One popup at the event's start: the phone and its paired watch buzz then.
        body["reminders"] = {"useDefault": False, "overrides": [{"method": "popup", "minutes": 0}]}
    else:
        # Without useDefault=false, Google's default reminder would ring (all-day: the night before).
        body["reminders"] = {"useDefault": False}
    clinic = plan.options.clinic
    if clinic.url:
        body["source"] = {"title": clinic.name or clinic.url, "url": clinic.url}
    return body


def remote_event(item: dict[str, Any], plan_tag: str) -> RemoteEvent | None:
    """An event resource as the diff sees it; None when it is not one of this plan's events."""
    private = (item.get("extendedProperties") or {}).get("private") or {}
    uid = private.get(GOOGLE_UID)
    if not uid or private.get(GOOGLE_PLAN) != plan_tag:
        return None
    content_hash = private.get(GOOGLE_HASH) if private.get(GOOGLE_FORMAT) == BODY_FORMAT else None
    return RemoteEvent(
        uid=uid,
        content_hash=content_hash,
        sequence=int(item.get("sequence") or 0),
        cancelled=item.get("status") == "cancelled",
        handle=item.get("id"),
    )


# ---- endpoint ----------------------------------------------------------------------------------------


def normalize_endpoint(url: str | None) -> str:
    """The API base URL with a trailing slash; Google's own when none is given.

    Checked by calendars/http.py's one rule: the OAuth bearer token travels with every request,
    so plain http is allowed only to loopback.
    """
    url = (url or "").strip() or DEFAULT_ENDPOINT
    text = check_base_url(url, what="--api-endpoint", example=DEFAULT_ENDPOINT)
    require_https_unless_loopback(text, what="--api-endpoint", secret="the sign-in token")
    return text if text.endswith("/") else text + "/"


# ---- errors ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Failure:
    status: int
    reason: str
    message: str
    method: str = ""  # the request's, for redirects
    uri: str = ""
    location: str = ""  # a redirect's Location


# The HTTP method of each kind of call (for messages: batch parts do not carry theirs).
_METHODS = {"insert": "POST", "update": "PUT", "delete": "DELETE", "list": "GET"}


def _failure(exc: BaseException, method: str = "") -> _Failure:
    """Status, Google's error reason and message of an HttpError (or a transport error: status 0)."""
    from googleapiclient.errors import HttpError

    if not isinstance(exc, HttpError):
        return _Failure(0, type(exc).__name__, str(exc) or type(exc).__name__)
    status = int(exc.resp.status)
    if status < 300:  # raised by `_checked` for a batch part: its 2xx body could not be read
        return _Failure(status, MALFORMED, "not JSON")
    if 300 <= status < 400:
        location = exc.resp.get("location") if hasattr(exc.resp, "get") else None
        uri = str(getattr(exc, "uri", "") or "")
        return _Failure(
            status, "redirect", str(exc.resp.reason or ""), method, uri, urljoin(uri, location) if location else ""
        )
    reason = ""
    message = ""
    try:
        data = json.loads(exc.content.decode("utf-8"))
        error = data.get("error", {}) if isinstance(data, dict) else {}
        message = str(error.get("message", ""))
        errors = error.get("errors") or []
        if errors and isinstance(errors[0], dict):
            reason = str(errors[0].get("reason", ""))
        if not reason:
            reason = str(error.get("status", ""))
    except (ValueError, AttributeError, UnicodeDecodeError):
        pass
    return _Failure(status, reason, (message or str(exc.resp.reason or "")).splitlines()[0][:200])


def _redirect_error(failure: _Failure) -> ChannelError:
    """A 3xx: name the request and where it pointed (a redirected write did not happen)."""
    parts = urlsplit(failure.uri)
    request = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))  # the query holds plan tags
    target = failure.location or "nowhere (no Location header)"
    writes = " for writes" if failure.method not in ("", "GET") else ""
    return ChannelError(
        f"the Calendar API answered {failure.method or 'a request to'} {request} with {failure.status} redirect "
        f"to {target}: aftercal does not follow redirects{writes}; check --api-endpoint"
    )


def _permanent_error(failure: _Failure, what: str, calendar_id: str) -> ChannelError:
    if 300 <= failure.status < 400:
        return _redirect_error(failure)
    detail = f"{failure.status} {failure.reason}".strip() + (f": {failure.message}" if failure.message else "")
    if failure.status == 401:
        return AuthError(f"Google refused the credentials while trying to {what} ({detail}); sign in again")
    if failure.status == 403 and failure.reason == "quotaExceeded":
        # Not the per-minute rate limit: the Calendar use limits (events or calendars made in a short
        # period...), past which the calendar is read-only "for a few hours"
        # (https://support.google.com/a/answer/2905486).
        return ChannelError(
            f"Google's Calendar usage limits for this Google account are reached while trying to {what} ({detail}): "
            "Google keeps its calendars read-only for a few hours (https://support.google.com/a/answer/2905486); "
            "run the same command again later, it goes on where this run stopped"
        )
    if failure.status == 403 and failure.reason == "insufficientPermissions":
        return AuthError(
            f"the sign-in's scope does not let aftercal {what} in calendar {calendar_id!r} ({detail}): sign in "
            "again with `aftercal google login` (add --app-created-only for calendars aftercal makes)"
        )
    if failure.status == 403 and failure.reason == "requiredAccessLevel":
        return AuthError(
            f"the account may see calendar {calendar_id!r} but not change its events ({detail}): share the "
            "calendar with it with 'Make changes to events'"
        )
    if failure.status == 403:
        return AuthError(
            f"Google refused to {what} in calendar {calendar_id!r} ({detail}); check the account's access "
            "to that calendar and the scope it signed in with"
        )
    if failure.status == 404:
        return NotFoundError(
            f"Google does not know calendar {calendar_id!r}, or does not share it with this account ({detail}); "
            "check --calendar-id"
        )
    if failure.status == 0:
        return TransientError(f"cannot reach the Calendar API to {what} ({failure.message})")
    return ChannelError(f"Google answered {detail} while trying to {what}")


def _transport_errors() -> tuple[type[BaseException], ...]:
    import google.auth.exceptions
    import httplib2  # type: ignore[import-untyped]

    # google.auth's TransportError: a token refresh in the middle of a call could not reach Google.
    # http.client's HTTPException: an answer cut short (IncompleteRead) or not HTTP at all.
    return (
        httplib2.HttpLib2Error, OSError, socket.timeout, http.client.HTTPException,
        google.auth.exceptions.TransportError,
    )  # fmt: skip


# _Failure.reason of a 2xx answer whose body is not the JSON the API documents (a proxy's page,
# a body cut short): the server's fault, retried like a 503 where that is safe.
MALFORMED = "malformedAnswer"


def _malformed(exc: BaseException, status: int = 200) -> _Failure:
    detail = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
    return _Failure(status, MALFORMED, f"not JSON: {detail}")


class _AnswerLost(Exception):
    """A write's answer never arrived, or was unreadable: it may have been done (control flow)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


# ---- the publisher -----------------------------------------------------------------------------------


@dataclass
class _Op:
    kind: str  # insert | update | delete | list
    calendar_id: str
    event_id: str = ""
    body: dict[str, Any] | None = None
    counts_as: str = ""  # created | updated | deleted (writes only)
    label: str = ""  # step key or uid, for progress
    owner: int = 0  # index of the job (treatment) the call belongs to
    summary: SyncSummary | None = None  # where a finished write is counted
    plan_tag: str = ""  # list calls: whose events
    page: str | None = None  # list calls: page token
    hops: int = 0  # insert -> update -> insert conversions, bounded
    misses: int = 0  # 404s for the calendar so far (asked again up to NOT_FOUND_ATTEMPTS times in all)
    job: str = ""  # label of the job (treatment), for progress


# What a finished write is reported as to a progress callback (the verbs CalDAV reports too).
_PROGRESS_ACTION = {"created": "create", "updated": "update", "deleted": "delete"}


@dataclass
class RequestStats:
    """What this client sent: HTTP requests and API calls (a batch is one request, n calls)."""

    http_requests: int = 0
    api_calls: int = 0


class GooglePublisher(BatchPublisher):
    """`Publisher` for one Google calendar and `BatchPublisher` for a day's treatments (calendars.base).

    `service` is a googleapiclient Calendar v3 resource (untyped library); `retry` decides how
    often and how long to wait (DEFAULT_RETRY: 6 attempts, 1 s doubling to 32 s).
    """

    name = "google"

    def __init__(
        self,
        service: Any,
        *,
        calendar_id: str = "primary",
        batch_uri: str,
        batch_size: int = BATCH_SIZE,
        retry: RetryPolicy = DEFAULT_RETRY,
        credentials: Credentials | None = None,
    ) -> None:
        self.service = service
        self.calendar_id = calendar_id
        self.batch_uri = batch_uri
        self.batch_size = max(1, min(batch_size, 1000))
        self.retry = retry
        self.credentials = credentials
        self.host = urlsplit(batch_uri).netloc  # names the server in errors
        self.stats = RequestStats()
        # The access token as loaded from aftercal's token file (None: credentials from elsewhere).
        self.stored_token: str | None = None
        self.page_size = 2500  # events per list page (Google's maximum)
        self._cancelled_ids: set[tuple[str, str]] = set()  # (calendar id, event id) seen cancelled
        self._events_resource: Any = None
        self._can_list: bool | None = None  # may the calendar list be read (None: not asked yet)

    def events_api(self) -> Any:
        """The events collection; built once (googleapiclient builds it anew, at ~7 ms, per call)."""
        if self._events_resource is None:
            self._events_resource = self.service.events()
        return self._events_resource

    def close(self) -> None:
        """Store a token the client refreshed during the run; close its HTTP connections."""
        try:
            credentials = self.credentials
            if self.stored_token is not None and credentials is not None and credentials.token != self.stored_token:
                from google.oauth2.credentials import Credentials as UserCredentials

                if isinstance(credentials, UserCredentials):  # only a user's token is ever stored
                    save_token(credentials)
                self.stored_token = credentials.token
        finally:
            self.service.close()

    def __enter__(self) -> GooglePublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def for_calendar(self, calendar_id: str) -> GooglePublisher:
        """The same client (connections, counters, memory of cancelled ids) on another calendar."""
        other = copy.copy(self)
        other.calendar_id = calendar_id
        return other

    # -- single requests with retries --

    def _retryable(self, failure: _Failure) -> bool:
        """Transport errors (status 0), the policy's statuses, Google's 403 rate limits, 409 conflict
        and answers that are not JSON (every call aftercal makes through here may be made again).

        409 `conflict`: "An individual request in a batch request couldn't be completed due to a
        conflict with another request in it", to be retried (unlike 409 `duplicate`, an id that
        exists), https://developers.google.com/workspace/calendar/api/guides/errors#409_conflict
        """
        if failure.status == 0 or failure.reason == MALFORMED or self.retry.is_retryable(failure.status):
            return True
        if failure.status == 409 and failure.reason == "conflict":
            return True
        return failure.status == 403 and failure.reason in RETRYABLE_403

    def _execute(
        self, request: Any, what: str, *, once: bool = False, valid: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        """One API call answered by a JSON object (`valid` checks it further), retried by the policy
        on 429 / 5xx / 403 rate limits / network errors / answers that are not JSON.

        `once`: a call that must not be made twice (calendars.insert). An answer that may hide a
        done call (lost, 5xx, unreadable) raises _AnswerLost instead of a retry; refusals Google
        did not act on (429, 403 rate limits) are still retried.
        """
        import google.auth.exceptions
        from googleapiclient.errors import HttpError

        method = str(getattr(request, "method", "") or "")
        last = _Failure(0, "", "")
        misses = 0  # 404s so far

        def attempt() -> dict[str, Any]:
            nonlocal last, misses
            self.stats.http_requests += 1
            self.stats.api_calls += 1
            retry_after = None
            try:
                answer = request.execute(num_retries=0)
            except google.auth.exceptions.RefreshError:
                raise sign_in_refused() from None
            except (HttpError, *_transport_errors()) as exc:
                last = _failure(exc, method)
                retry_after = _retry_after(exc)
            except ValueError as exc:  # googleapiclient could not decode a 2xx answer
                last = _malformed(exc)
            else:
                if isinstance(answer, dict) and (valid is None or valid(answer)):
                    return answer
                last = _Failure(200, MALFORMED, f"not the JSON object of the API ({type(answer).__name__})")
            if once and (last.status == 0 or last.status >= 500 or last.reason == MALFORMED):
                raise _AnswerLost(f"{last.reason or last.status}: {last.message}" if last.status else last.message)
            if last.status == 404 and misses < NOT_FOUND_ATTEMPTS - 1:
                misses += 1
                raise Retryable("404 notFound")
            if not self._retryable(last):
                raise _permanent_error(last, what, self.calendar_id)
            raise Retryable(f"{last.status} {last.reason}", retry_after=retry_after)

        def gave_up(_: Retryable) -> Exception:
            if last.reason == MALFORMED:
                return TransientError(
                    f"the Calendar API at {self.host} kept sending answers that are not what the API documents "
                    f"while trying to {what} ({last.message}; {self.retry.attempts} attempts); run the same command "
                    "again later, and check --api-endpoint if it keeps happening"
                )
            if last.status == 0:
                return TransientError(
                    f"cannot reach the Calendar API to {what} ({last.reason}, {self.retry.attempts} attempts); "
                    "check the network (or --api-endpoint) and run the same command again"
                )
            return TransientError(
                f"Google kept failing while trying to {what} ({last.status} {last.reason}, "
                f"{self.retry.attempts} attempts); run the same command again later"
            )

        result: dict[str, Any] = self.retry.call(attempt, gave_up=gave_up)
        return result

    # -- Publisher --

    def fetch(self, plan_tag: str) -> dict[str, RemoteEvent]:
        """Every event of one treatment in this calendar, cancelled ones included, by UID."""
        events: dict[str, RemoteEvent] = {}
        page: str | None = None
        while True:
            response = self._execute(
                self._list_request(self.calendar_id, plan_tag, page), "list events", valid=_is_list_page
            )
            page = self._collect(self.calendar_id, plan_tag, response, events)
            if not page:
                return events

    def _list_request(self, calendar_id: str, plan_tag: str, page: str | None) -> Any:
        return self.events_api().list(
            calendarId=calendar_id,
            privateExtendedProperty=f"{GOOGLE_PLAN}={plan_tag}",
            showDeleted=True,
            maxResults=self.page_size,
            pageToken=page,
        )

    def _collect(
        self, calendar_id: str, plan_tag: str, response: dict[str, Any], events: dict[str, RemoteEvent]
    ) -> str | None:
        """Add one list page's events to `events`; returns the next page token."""
        for item in response.get("items", []):
            if item.get("status") == "cancelled" and item.get("id"):
                self._cancelled_ids.add((calendar_id, item["id"]))
            held = remote_event(item, plan_tag)
            if held is None:
                continue
            current = events.get(held.uid)
            # Two events with one UID cannot come from aftercal's ids; prefer the live one.
            if current is None or (current.cancelled and not held.cancelled):
                events[held.uid] = held
        page = response.get("nextPageToken")
        return str(page) if page else None

    def apply(
        self, plan: CarePlan | None, actions: SyncActions, progress: ProgressCallback | None = None
    ) -> SyncSummary:
        """Carry out `actions` in batch requests; safe to re-run after a failure at any point."""
        summary = SyncSummary(unchanged=len(actions.unchanged))
        batch_progress: BatchProgressCallback | None = None
        if progress is not None:
            report = progress

            def batch_progress(_job: str, action: str, key: str) -> None:
                report(action, key)

        errors = self.run(self._write_ops(self.calendar_id, plan, actions, summary, 0, ""), batch_progress)
        if errors:
            raise errors[0]
        return summary

    def _write_ops(
        self,
        calendar_id: str,
        plan: CarePlan | None,
        actions: SyncActions,
        summary: SyncSummary,
        owner: int,
        job: str,
    ) -> list[_Op]:
        ops: list[_Op] = []
        if plan is not None:
            for reminder in actions.create:
                body = event_body(plan, reminder)
                kind = "update" if (calendar_id, body["id"]) in self._cancelled_ids else "insert"
                ops.append(_Op(kind, calendar_id, body["id"], body, "created", reminder.key, owner, summary, job=job))
            for reminder, held in actions.update:
                body = event_body(plan, reminder)
                body["id"] = held.handle if isinstance(held.handle, str) and held.handle else body["id"]
                ops.append(
                    _Op("update", calendar_id, body["id"], body, "updated", reminder.key, owner, summary, job=job)
                )
        for held in actions.delete:
            if isinstance(held.handle, str) and held.handle:
                ops.append(_Op("delete", calendar_id, held.handle, None, "deleted", held.uid, owner, summary, job=job))
        return ops

    # -- BatchPublisher --

    def publish_jobs(
        self,
        jobs: Sequence[PublishJob],
        *,
        dry_run: bool = False,
        progress: BatchProgressCallback | None = None,
    ) -> list[JobResult]:
        """Publish / unpublish many treatments with as few HTTP requests as Google allows.

        The lists of all treatments go in shared batch requests, then all their writes do. A
        permanent error fails only the treatment it belongs to; the others go on. A job's
        calendar is a calendar id (None: this publisher's `calendar_id`).
        """
        results = [JobResult(job.label) for job in jobs]
        calendars = [job.calendar or self.calendar_id for job in jobs]
        remote: list[dict[str, RemoteEvent]] = [{} for _ in jobs]
        lists = [
            _Op("list", calendars[i], owner=i, plan_tag=tag, job=job.label)
            for i, job in enumerate(jobs)
            for tag in job.tags
        ]
        for owner, error in self.run(lists, None, remote=remote).items():
            results[owner].error = error
        writes: list[_Op] = []
        for owner, (job, result) in enumerate(zip(jobs, results, strict=True)):
            if result.error is not None:
                continue
            actions = diff_plan(job.plan, remote[owner])
            result.actions = actions
            result.summary = SyncSummary(unchanged=len(actions.unchanged))
            if not dry_run:
                writes += self._write_ops(calendars[owner], job.plan, actions, result.summary, owner, job.label)
        for owner, error in self.run(writes, progress).items():
            results[owner].error = error
        return results

    def run(
        self,
        ops: Iterable[_Op],
        progress: BatchProgressCallback | None = None,
        *,
        remote: list[dict[str, RemoteEvent]] | None = None,
    ) -> dict[int, ChannelError]:
        """Send `ops` in batches until each is done or failed for good; retryable parts go again.

        Returns the first permanent error of each owner (job); that owner's other calls still run.
        """
        pending = list(ops)
        errors: dict[int, ChannelError] = {}
        attempt = 0  # rounds with a retryable failure other than a rate limit
        limited_rounds, limited_wait = 0, 0.0  # rounds refused by rate limits only, and their waits
        last = _Failure(0, "", "")  # the last retryable failure, for the message when retries run out
        while pending:
            again: list[_Op] = []
            retry: list[_Op] = []
            only_rate_limits = True
            for start in range(0, len(pending), self.batch_size):
                chunk = pending[start : start + self.batch_size]
                for op, response, failure in self._send_batch(chunk):
                    if failure is None:
                        if op.kind == "list":
                            assert remote is not None
                            page = self._collect(op.calendar_id, op.plan_tag, response or {}, remote[op.owner])
                            if page:
                                again.append(dataclasses.replace(op, page=page))
                            continue
                        self._done(op, progress)
                        continue
                    follow = _follow_up(op, failure)
                    if isinstance(follow, str):  # "done": a delete of something already gone
                        self._done(op, progress)
                    elif follow is not None:
                        again.append(follow)
                    elif failure.status == 404 and op.kind in ("list", "insert") and op.misses < NOT_FOUND_ATTEMPTS - 1:
                        retry.append(dataclasses.replace(op, misses=op.misses + 1))  # the calendar, not yet visible?
                        last, only_rate_limits = failure, False
                    elif self._retryable(failure):
                        retry.append(op)
                        last = failure
                        only_rate_limits = only_rate_limits and _rate_limited(failure)
                    elif op.owner not in errors:
                        what = "list events" if op.kind == "list" else f"{op.kind} event {op.label}"
                        errors[op.owner] = _permanent_error(failure, what, op.calendar_id)
            if retry:
                if only_rate_limits:  # a quota: wait for its sliding window to pass, not N rounds
                    limited_rounds += 1
                    give_up = limited_wait >= RATE_PATIENCE or limited_rounds >= RATE_LIMIT_ROUNDS
                    if not give_up:
                        limited_wait += self._wait_for_quota(limited_rounds - 1)
                else:
                    attempt += 1
                    give_up = attempt >= self.retry.attempts
                    if not give_up:
                        self.retry.wait(attempt - 1)
                if give_up:
                    rounds = attempt + limited_rounds
                    for op in retry:
                        errors.setdefault(
                            op.owner,
                            TransientError(
                                f"Google kept failing ({len(retry)} call(s) still failing after {rounds} attempts, "
                                f"last: {self._describe(last)}); run the same command again later"
                            ),
                        )
                    # Give up on these, but still send the follow-ups (409 -> update, next list
                    # page): dropping them would report success for work never done.
                    retry = []
            pending = again + retry
        return errors

    def _wait_for_quota(self, round_: int) -> float:
        """Wait after a round refused by rate limits; returns the seconds waited.

        The policy's exponential ceiling with "equal jitter" (at least half of it): the waits then
        surely add up to RATE_PATIENCE within RATE_LIMIT_ROUNDS rounds (from 1 s: 10 rounds at most).
        """
        ceiling = self.retry.ceiling(round_)
        delay = self.retry.uniform(ceiling / 2, ceiling)
        self.retry.sleep(delay)
        return delay

    def _describe(self, failure: _Failure) -> str:
        if failure.reason == MALFORMED:
            return f"the Calendar API at {self.host} answered with a body that is not JSON"
        if failure.status == 0:
            return f"cannot reach {self.host}: {failure.reason}"
        return f"{failure.status} {failure.reason}".strip()

    def _done(self, op: _Op, progress: BatchProgressCallback | None) -> None:
        if op.summary is not None:
            setattr(op.summary, op.counts_as, getattr(op.summary, op.counts_as) + 1)
        if op.kind == "delete":
            self._cancelled_ids.add((op.calendar_id, op.event_id))
        if progress is not None:
            progress(op.job, _PROGRESS_ACTION.get(op.counts_as, op.counts_as), op.label)

    def _request(self, op: _Op) -> Any:
        events = self.events_api()
        if op.kind == "insert":
            return events.insert(calendarId=op.calendar_id, body=op.body)
        if op.kind == "update":
            return events.update(calendarId=op.calendar_id, eventId=op.event_id, body=op.body)
        if op.kind == "delete":
            return events.delete(calendarId=op.calendar_id, eventId=op.event_id)
        return self._list_request(op.calendar_id, op.plan_tag, op.page)

    def _send_batch(self, chunk: list[_Op]) -> list[tuple[_Op, Any, _Failure | None]]:
        """One batch request; a failure of the whole request fails each part (retryable or not)."""
        import google.auth.exceptions
        from googleapiclient.errors import BatchError, HttpError
        from googleapiclient.http import BatchHttpRequest

        results: dict[str, tuple[_Op, Any, _Failure | None]] = {}

        def callback(request_id: str, response: Any, exception: BaseException | None) -> None:
            op = chunk[int(request_id)]
            failure = None if exception is None else _failure(exception, _METHODS.get(op.kind, ""))
            if failure is None and op.kind != "delete" and not _is_answer(op.kind, response):
                # googleapiclient hands over a 2xx body that is not JSON as text (a delete has no body)
                failure = _Failure(200, MALFORMED, "not JSON")
            results[request_id] = (op, response, failure)

        # Not service.new_batch_http_request(): that one ignores a custom API endpoint.
        batch = BatchHttpRequest(callback=callback, batch_uri=self.batch_uri)
        for index, op in enumerate(chunk):
            batch.add(_checked(self._request(op)), request_id=str(index))
        self.stats.http_requests += 1
        self.stats.api_calls += len(chunk)
        try:
            batch.execute()
        except google.auth.exceptions.RefreshError:
            raise sign_in_refused() from None
        except BatchError as exc:  # before HttpError: BatchError is one
            failure = _Failure(502, "badBatchResponse", str(getattr(exc, "reason", "") or "malformed batch answer"))
            return [(op, None, failure) for op in chunk]
        except (HttpError, *_transport_errors()) as exc:
            failure = _failure(exc, "POST")
            return [(op, None, failure) for op in chunk]
        except (ValueError, IndexError) as exc:
            # googleapiclient could not read the batch answer, or one of its parts: the parts
            # already handed over keep their answers, the others are asked again.
            failure = _malformed(exc)
            return [results.get(str(index), (op, None, failure)) for index, op in enumerate(chunk)]
        missing = _Failure(502, "missingPart", "the batch answer left this call out")
        return [results.get(str(index), (op, None, missing)) for index, op in enumerate(chunk)]

    # -- what the credentials may do, checked before anything is sent --

    @property
    def service_account(self) -> str | None:
        """The service account this client signs in as (None: a person's sign-in, or none)."""
        return service_account_email(self.credentials) if self.credentials is not None else None

    def check_scope(self, calendar_id: str, *, named_calendar: bool) -> None:
        """Refuse what the scope the sign-in was granted cannot do, before anything is sent.

        Google answers 403 to calendars.insert and calendarList.list under calendar.events, and to
        any call on a calendar aftercal did not make under calendar.app.created (the "Authorization"
        section of each method's reference, e.g.
        https://developers.google.com/workspace/calendar/api/v3/reference/calendars/insert#auth).
        `named_calendar`: the run finds or makes aftercal's calendar by name (--calendar NAME).
        """
        scopes = granted_scopes(self.credentials) if self.credentials is not None else None
        if scopes is None or SCOPE_CALENDAR in scopes:
            return
        if named_calendar and SCOPE_APP_CREATED not in scopes:
            raise AuthError(
                "--calendar NAME needs a sign-in with the calendar.app.created scope (to make and find aftercal's "
                "own calendar), and this one has only calendar.events: run `aftercal google login "
                "--app-created-only --client-secrets client_secret.json`, or publish with --calendar-id"
            )
        if not named_calendar and calendar_id == "primary" and SCOPE_EVENTS not in scopes:
            raise AuthError(
                "this sign-in (calendar.app.created) may change only calendars aftercal made, not 'primary': use "
                "--calendar NAME (or such a calendar's id with --calendar-id), or run `aftercal google login "
                "--client-secrets client_secret.json` without --app-created-only"
            )

    def check_service_account(self, calendar_id: str, *, named_calendar: bool) -> None:
        """With a service account, refuse calendars nobody sees and check that `calendar_id` is shared.

        A service account is an identity of its own: its `primary` is its own calendar, and a
        calendar it makes is its own ("If you use a service account for authentication, the service
        account is the data owner", calendars insert reference); no person sees either. So it needs
        a calendar a person shared with it, read here once (a 404 says it is not shared).
        """
        account = self.service_account
        if account is None:
            return
        share = f"share a calendar with {account} ('Make changes to events') and give its id with --calendar-id"
        if named_calendar:
            raise InputError(
                f"--calendar and --create-calendar would make and use a calendar that the service account {account} "
                f"owns, which no person sees (Google advises against it): {share}"
            )
        if calendar_id in ("primary", account):
            raise InputError(
                f"calendar 'primary' of the service account {account} is its own, which no person sees: {share}"
            )
        probe = self.events_api().list(calendarId=calendar_id, maxResults=1, fields="kind")
        try:
            self.for_calendar(calendar_id)._execute(probe, "read the calendar")
        except NotFoundError:
            raise NotFoundError(
                f"calendar {calendar_id!r} is not shared with the service account {account} (or does not exist): "
                f"share it with {account} ('Make changes to events') in Google Calendar, then run the same command "
                "again"
            ) from None

    # -- calendars (for calendar.app.created) --

    def find_calendar(self, name: str) -> str | None:
        """Id of the calendar aftercal created under `name`, if it still exists: the one remembered
        in the config dir, else one found in the account's calendar list (when the scope allows)."""
        key = f"{self.batch_uri}|{name}"
        known = _load_calendars().get(key)
        if known:
            with contextlib.suppress(NotFoundError):
                self._execute(self.service.calendars().get(calendarId=known), "read the calendar")
                return known
        found = self._listed_calendar(name)
        if found is not None:
            _remember_calendar(key, found)
        return found

    def ensure_calendar(self, name: str, zone: str) -> str:
        """Id of the calendar aftercal created under `name`, or a new one made now and remembered.

        Google chooses calendar ids, so a calendars.insert cannot be made idempotent. It is sent
        once: an answer that is lost (or unreadable, or a 5xx) may hide a made calendar, so aftercal
        looks for it in the calendar list (matching the name and the tag it writes in the
        description) before inserting again. With only the calendar.app.created scope Google
        refuses that list: the run then stops and says so instead of risking a second calendar.
        """
        known = self.find_calendar(name)
        if known:
            return known
        body = {"summary": name, "timeZone": zone, "description": f"Aftercare reminders made by aftercal. {_tag(name)}"}
        for attempt in range(self.retry.attempts):
            # Never on a kept-alive connection: one the server closed meanwhile would lose the answer.
            self.service.close()
            try:
                created = self._execute(self.service.calendars().insert(body=body), "create a calendar", once=True)
            except _AnswerLost as lost:
                problem = lost.problem
            else:
                calendar_id = created.get("id")
                if isinstance(calendar_id, str) and calendar_id:
                    _remember_calendar(f"{self.batch_uri}|{name}", calendar_id)
                    return calendar_id
                problem = "the answer holds no calendar id"
            if self._can_list is False:
                raise ChannelError(
                    f"Google may have made calendar {name!r} but its answer was lost ({self.host}: {problem}); "
                    "with the calendar.app.created scope aftercal cannot look for it, so it did not ask again: "
                    f"delete an empty calendar {name!r} in Google Calendar if there is one, then run the same "
                    "command again"
                )
            self.retry.wait(attempt)
            found = self._listed_calendar(name)
            if found is not None:
                _remember_calendar(f"{self.batch_uri}|{name}", found)
                return found
        raise TransientError(
            f"Google kept losing the answer to creating calendar {name!r} ({self.host}, {self.retry.attempts} "
            "attempts); run the same command again later"
        )

    def _listed_calendar(self, name: str) -> str | None:
        """The id of the calendar aftercal made under `name`, from the account's calendar list.

        None when there is none, or when the list may not be read: Google refuses calendarList.list
        to the calendar.app.created scope (403); remembered in `_can_list`, it is not asked again.
        """
        if self._can_list is False:
            return None
        tag = _tag(name)
        page: str | None = None
        while True:
            request = self.service.calendarList().list(minAccessRole="owner", showHidden=True, pageToken=page)
            try:
                answer = self._execute(request, "list calendars", valid=_is_list_page)
            except (AuthError, NotFoundError):  # the scope does not allow it; an endpoint without it
                self._can_list = False
                return None
            self._can_list = True
            for item in answer.get("items", []):
                same_name = str(item.get("summary", "")).casefold() == name.casefold()
                if same_name and tag in str(item.get("description") or "") and item.get("id"):
                    return str(item["id"])
            page = answer.get("nextPageToken")
            if not page:
                return None


def _tag(name: str) -> str:
    """What marks, in its description, the calendar aftercal made under `name` (case-insensitive, as names are)."""
    return f"[aftercal:{hashlib.sha256(name.casefold().encode('utf-8')).hexdigest()[:16]}]"


def _remember_calendar(key: str, calendar_id: str) -> None:
    remembered = _load_calendars()
    if remembered.get(key) == calendar_id:
        return
    remembered[key] = calendar_id
    ensure_config_dir()
    write_atomic(config_dir() / CALENDARS_FILE, json.dumps(remembered, indent=2).encode(), mode=0o600)


def _checked(request: Any) -> Any:
    """`request`, whose 2xx answer that is not JSON fails its own batch part, retried as a 503 is.

    googleapiclient decodes each part inside `BatchHttpRequest.execute` and lets a ValueError out,
    losing the answers of the whole batch; an HttpError instead reaches the part's callback.
    """
    from googleapiclient.errors import HttpError

    decode = request.postproc

    def postproc(resp: Any, content: bytes) -> Any:
        try:
            return decode(resp, content)
        except ValueError:
            raise HttpError(resp, content, uri=request.uri) from None

    request.postproc = postproc
    return request


def _is_answer(kind: str, response: Any) -> bool:
    """Whether a batch part's decoded answer is what its call answers: a JSON object (a page for a list)."""
    return _is_list_page(response) if kind == "list" else isinstance(response, dict)


def _is_list_page(response: Any) -> bool:
    """A page of events.list or calendarList.list: a JSON object whose items (if any) are objects."""
    if not isinstance(response, dict):
        return False
    items = response.get("items", [])
    return isinstance(items, list) and all(isinstance(item, dict) for item in items)


def _load_calendars() -> dict[str, str]:
    path = config_dir() / CALENDARS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _retry_after(exc: BaseException) -> float | None:
    """The Retry-After of an HttpError's answer, in seconds (calendars.http.parse_retry_after)."""
    resp = getattr(exc, "resp", None)
    value = resp.get("retry-after") if resp is not None and hasattr(resp, "get") else None
    return parse_retry_after(value if isinstance(value, str) else None)


def _rate_limited(failure: _Failure) -> bool:
    """Refused by a rate limit: 429, or 403 rateLimitExceeded / userRateLimitExceeded (guides/quota)."""
    return failure.status == 429 or (failure.status == 403 and failure.reason in RETRYABLE_403)


def _follow_up(op: _Op, failure: _Failure) -> _Op | str | None:
    """What a part's error means besides retry/permanent: 'done', a converted op, or None."""
    if op.kind == "delete" and failure.status in (404, 410):
        return "done"  # already gone
    if op.hops >= 3:
        return None
    if op.kind == "insert" and failure.status == 409 and failure.reason != "conflict":
        # The id exists (perhaps cancelled): overwrite it, which also sets it back to confirmed.
        return dataclasses.replace(op, kind="update", hops=op.hops + 1)
    if op.kind == "update" and failure.status in (404, 410) and op.body is not None:
        return dataclasses.replace(op, kind="insert", hops=op.hops + 1)
    return None


# ---- wiring ------------------------------------------------------------------------------------------


def connect(
    *,
    api_endpoint: str | None = None,
    credentials_file: Path | None = None,
    no_auth: bool = False,
    calendar_id: str = "primary",
    scopes: list[str] | None = None,
    batch_size: int = BATCH_SIZE,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> GooglePublisher:
    """A publisher on the real client: Google's API, or a Calendar-v3-compatible endpoint.

    Credentials as calendars.gcal_auth.load_credentials finds them; `no_auth` sends none and is
    refused unless the endpoint is on loopback (calendars.http.is_loopback).
    """

    base = normalize_endpoint(api_endpoint)
    credentials: Credentials | None = None
    from_store = False
    if no_auth:
        if not is_loopback(base):
            raise InputError(f"--no-auth is only allowed with an --api-endpoint on loopback ({LOOPBACK_NAMES})")
        http = new_http()
    else:
        credentials = load_credentials(credentials_file, scopes or [SCOPE_EVENTS])
        from_store = credentials_file is None and key_file_from_env() is None
        http = authorized_http(credentials)
    publisher = _publisher(base, http, credentials, calendar_id=calendar_id, batch_size=batch_size, retry=retry)
    if from_store and credentials is not None:
        publisher.stored_token = credentials.token
    return publisher


def publisher_for(
    credentials: Credentials,
    *,
    api_endpoint: str | None = None,
    calendar_id: str = "primary",
    retry: RetryPolicy = DEFAULT_RETRY,
) -> GooglePublisher:
    """A publisher on given credentials (a patient's own grant: calendars.gcal_web)."""
    base = normalize_endpoint(api_endpoint)
    return _publisher(
        base, authorized_http(credentials), credentials, calendar_id=calendar_id, batch_size=BATCH_SIZE, retry=retry
    )


def _publisher(
    base: str, http: Any, credentials: Credentials | None, *, calendar_id: str, batch_size: int, retry: RetryPolicy
) -> GooglePublisher:
    from googleapiclient.discovery import build

    service = build(
        "calendar",
        "v3",
        http=http,
        client_options={"api_endpoint": base + "calendar/v3/"},
        static_discovery=True,
        cache_discovery=False,
    )
    return GooglePublisher(
        service,
        calendar_id=calendar_id,
        batch_uri=base + "batch/calendar/v3",
        batch_size=batch_size,
        retry=retry,
        credentials=credentials,
    )


# Conformance with calendars.base, checked by mypy.
_publisher_check: type[Publisher] = GooglePublisher
