"""A Calendar v3 stand-in: just enough of Google's API, over real HTTP on 127.0.0.1, for aftercal.

What it models, as Google documents and behaves:

* events insert / get / list / update (PUT) / patch / delete, calendars insert / get,
  calendarList list (refused with 403 when `calendar_list_refused`, as Google refuses it to the
  calendar.app.created scope);
* the batch endpoint (`POST /batch/calendar/v3`, multipart/mixed of application/http parts,
  answered as multipart/mixed with `Content-ID: <response-...>` parts);
* event ids validated as base32hex (0-9, a-v), 5-1024 characters;
* insert with an id that exists, even as a cancelled event, answers 409; delete of a cancelled
  event answers 410, of an unknown one 404; update with `status: confirmed` restores a cancelled
  event; a body `sequence` below the stored one answers 400; the sequence rises when times change;
* reminders: `useDefault` with overrides, more than 5 overrides, minutes outside 0-40320 -> 400;
* list filters `privateExtendedProperty` / `sharedExtendedProperty` (all must match),
  `showDeleted` (cancelled events come back with only id, status, etag: Google guarantees no more),
  `iCalUID`, and paginates with `maxResults` / `nextPageToken`;
* optional bearer-token check (401) and a `/token` endpoint that refreshes it, like Google's;
* injected faults (any status and error reason) on matching calls, direct or inside a batch,
  or on whole batch requests; or, with `answer`, the call is done and its answer spoiled: "lost"
  (the connection closes before any answer), "truncated" (cut half-way), "not-json" (200 with an
  HTML page; also inside a batch), "bad-part" (a batch part without a reason phrase and not
  JSON); every HTTP request and every API call is counted.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    410: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
DEFAULT_REASONS = {
    400: "invalid",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    409: "duplicate",
    410: "deleted",
    429: "rateLimitExceeded",
    500: "backendError",
    503: "backendError",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason or DEFAULT_REASONS.get(status, "error")

    def body(self) -> dict[str, Any]:
        domain = "usageLimits" if self.reason in ("rateLimitExceeded", "userRateLimitExceeded") else "global"
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"domain": domain, "reason": self.reason, "message": self.message}],
                "status": STATUS_NAMES.get(self.status, "UNKNOWN"),
            }
        }


@dataclass
class Fault:
    """Answer `status` instead of doing the call, for calls that match (after `after` matches)."""

    status: int
    reason: str | None = None
    method: str | None = None  # GET, POST, PUT, PATCH, DELETE
    path: str | None = None  # substring of the call's path
    scope: str = "call"  # call: direct calls and batch parts; batch: whole batch requests
    after: int = 0  # let this many matching calls through first
    times: int = 1  # then fail this many (-1: forever)
    seen: int = 0
    answer: str = "status"  # status | lost | truncated | not-json | bad-part (the call is done, its answer spoiled)

    def matches(self, method: str, path: str, scope: str) -> bool:
        if scope != self.scope or (self.method and method != self.method) or (self.path and self.path not in path):
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.times == 0:
            return False
        if self.times > 0:
            self.times -= 1
        return True


@dataclass
class Call:
    method: str
    path: str
    via: str  # direct | batch
    status: int


class SpoiledAnswer(dict[str, Any]):
    """The answer of a call that was done, to be spoiled on its way back (Fault.answer)."""

    def __init__(self, answer: dict[str, Any] | None, mode: str) -> None:
        super().__init__(answer or {})
        self.mode = mode


NOT_JSON = b"<html><body>Temporarily unavailable</body></html>"


@dataclass
class Calendar:
    id: str
    summary: str = ""
    time_zone: str = "UTC"
    description: str = ""
    events: dict[str, dict[str, Any]] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class CalendarStandin:
    """In-memory calendars behind a threaded HTTP server on 127.0.0.1 (port chosen by the OS)."""

    def __init__(self, *, token: str | None = None) -> None:
        self.calendars: dict[str, Calendar] = {"primary": Calendar("primary", "Primary", "UTC")}
        self.token = token  # required bearer token; None: no check
        # Whether cancelled events still match extended-property filters (Google does not promise it).
        self.cancelled_match_filters = True
        self.calendar_list_refused = False  # as for a token with only the calendar.app.created scope
        self.refreshed_tokens: list[str] = []
        self.grants: list[str] = []  # grant types the token endpoint answered
        self.faults: list[Fault] = []
        self.calls: list[Call] = []
        self.http_requests = 0
        self.batch_requests = 0
        self.lock = threading.RLock()
        self._etags = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self) -> str:
        standin = self

        class Handler(_Handler):
            owner = standin

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="calendar-standin", daemon=True
        )
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server: typeshed also allows bytes for AF_UNIX
        return f"http://{host}:{port}/"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> CalendarStandin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test helpers --

    def inject(self, status: int, reason: str | None = None, **options: Any) -> Fault:
        fault = Fault(status, reason, **options)
        with self.lock:
            self.faults.append(fault)
        return fault

    def reset_counts(self) -> None:
        with self.lock:
            self.calls.clear()
            self.http_requests = 0
            self.batch_requests = 0

    def writes(self) -> list[Call]:
        """Calls that tried to change something (whatever they answered)."""
        return [c for c in self.calls if c.method in ("POST", "PUT", "PATCH", "DELETE")]

    def events(self, calendar_id: str = "primary", *, include_cancelled: bool = False) -> list[dict[str, Any]]:
        with self.lock:
            items = list(self.calendars[calendar_id].events.values())
        return [dict(e) for e in items if include_cancelled or e.get("status") != "cancelled"]

    def add_calendar(self, calendar_id: str, summary: str = "") -> None:
        with self.lock:
            self.calendars[calendar_id] = Calendar(calendar_id, summary)

    def put_event(self, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Insert an event directly (e.g. the patient's own), bypassing HTTP."""
        with self.lock:
            return self._insert(self._calendar(calendar_id), dict(body))

    # -- the API --

    def _calendar(self, calendar_id: str) -> Calendar:
        calendar = self.calendars.get(calendar_id)
        if calendar is None:
            raise ApiError(404, "Not Found")
        return calendar

    def _stamp(self, event: dict[str, Any]) -> None:
        event["etag"] = f'"{next(self._etags)}"'
        event["updated"] = _now()

    def call(
        self, method: str, target: str, body: bytes, headers: dict[str, str], via: str
    ) -> tuple[int, dict[str, Any] | None]:
        """One API call (direct or from a batch part): (status, JSON answer or None)."""
        parts = urlsplit(target)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        with self.lock:
            spoil = None
            try:
                for fault in self.faults:
                    if fault.matches(method, path, "call"):
                        if fault.answer != "status":
                            spoil = fault.answer
                            break
                        raise ApiError(fault.status, f"Injected {fault.status}", fault.reason)
                self._check_auth(headers)
                data = json.loads(body) if body.strip() else None
                status, answer = self._route(method, path, query, data)
                if spoil is not None:
                    answer = SpoiledAnswer(answer, spoil)
            except ApiError as exc:
                status, answer = exc.status, exc.body()
            except (ValueError, TypeError) as exc:
                status, answer = 400, ApiError(400, f"Parse Error: {exc}", "parseError").body()
            self.calls.append(Call(method, path, via, status))
        return status, answer

    def _check_auth(self, headers: dict[str, str]) -> None:
        if self.token is None:
            return
        if headers.get("authorization") != f"Bearer {self.token}":
            raise ApiError(401, "Request had invalid authentication credentials.", "authError")

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], data: Any
    ) -> tuple[int, dict[str, Any] | None]:
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if segments[:2] != ["calendar", "v3"]:
            raise ApiError(404, "Not Found")
        rest = segments[2:]
        if rest == ["calendars"] and method == "POST":
            return 200, self._create_calendar(data or {})
        if rest == ["users", "me", "calendarList"] and method == "GET":
            return 200, self._calendar_list()
        if len(rest) == 2 and rest[0] == "calendars" and method == "GET":
            calendar = self._calendar(rest[1])
            return 200, {"kind": "calendar#calendar", "id": calendar.id, "summary": calendar.summary}
        if len(rest) >= 3 and rest[0] == "calendars" and rest[2] == "events":
            calendar = self._calendar(rest[1])
            if len(rest) == 3:
                if method == "GET":
                    return 200, self._list(calendar, query)
                if method == "POST":
                    return 200, self._insert(calendar, _object(data))
            elif len(rest) == 4:
                event_id = rest[3]
                if method == "GET":
                    return 200, dict(self._get(calendar, event_id))
                if method == "PUT":
                    return 200, self._update(calendar, event_id, _object(data), replace=True)
                if method == "PATCH":
                    return 200, self._update(calendar, event_id, _object(data), replace=False)
                if method == "DELETE":
                    self._delete(calendar, event_id)
                    return 204, None
        raise ApiError(404, "Not Found")

    def _create_calendar(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("summary"):
            raise ApiError(400, "Missing summary.", "required")
        calendar_id = f"{uuid.uuid4().hex}@group.calendar.google.com"
        self.calendars[calendar_id] = Calendar(
            calendar_id, str(data["summary"]), str(data.get("timeZone", "UTC")), str(data.get("description", ""))
        )
        return {"kind": "calendar#calendar", "id": calendar_id, "summary": data["summary"]}

    def _calendar_list(self) -> dict[str, Any]:
        if self.calendar_list_refused:
            raise ApiError(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
        items = [
            {"kind": "calendar#calendarListEntry", "id": c.id, "summary": c.summary, "description": c.description,
             "timeZone": c.time_zone, "accessRole": "owner"}
            for c in self.calendars.values()
        ]  # fmt: skip
        return {"kind": "calendar#calendarList", "items": items}

    def named(self, summary: str) -> list[Calendar]:
        """The calendars with that name."""
        with self.lock:
            return [c for c in self.calendars.values() if c.summary == summary]

    def _get(self, calendar: Calendar, event_id: str) -> dict[str, Any]:
        event = calendar.events.get(event_id)
        if event is None:
            raise ApiError(404, "Not Found")
        return event

    def _insert(self, calendar: Calendar, data: dict[str, Any]) -> dict[str, Any]:
        event_id = data.get("id") or uuid.uuid4().hex
        if not isinstance(event_id, str) or not ID_RE.match(event_id):
            raise ApiError(400, "Invalid resource id value.", "invalid")
        if event_id in calendar.events:
            raise ApiError(409, "The requested identifier already exists.", "duplicate")
        _validate(data, full=True)
        if int(data.get("sequence") or 0) < 0:
            raise ApiError(400, "Invalid sequence value.", "invalid")
        event = dict(data)
        event.update(
            kind="calendar#event",
            id=event_id,
            status=data.get("status", "confirmed"),
            sequence=int(data.get("sequence") or 0),
            created=_now(),
            iCalUID=data.get("iCalUID") or f"{event_id}@google.com",
        )
        self._stamp(event)
        calendar.events[event_id] = event
        return dict(event)

    def _update(self, calendar: Calendar, event_id: str, data: dict[str, Any], *, replace: bool) -> dict[str, Any]:
        old = self._get(calendar, event_id)
        if "id" in data and data["id"] != event_id:
            raise ApiError(400, "Invalid value for id: it cannot be changed.", "invalid")
        if "sequence" in data and int(data["sequence"] or 0) < int(old.get("sequence", 0)):
            raise ApiError(
                400,
                "Invalid sequence value. The specified sequence number is below the current sequence number "
                "of the resource. Re-fetch the resource and use its sequence number on the following request.",
                "invalidSequenceValue",
            )
        if replace:
            event: dict[str, Any] = {k: old[k] for k in ("kind", "id", "created", "iCalUID") if k in old}
            event.update(data)
            event.setdefault("status", "confirmed")
        else:
            event = _merge(old, data)  # patch semantics: objects merge, other values replace
        _validate(event, full=True)
        sequence = max(int(old.get("sequence", 0)), int(data.get("sequence") or 0))
        if event.get("start") != old.get("start") or event.get("end") != old.get("end"):
            sequence += 1
        event["sequence"] = sequence
        event["id"] = event_id
        self._stamp(event)
        calendar.events[event_id] = event
        return dict(event)

    def _delete(self, calendar: Calendar, event_id: str) -> None:
        event = self._get(calendar, event_id)
        if event.get("status") == "cancelled":
            raise ApiError(410, "Resource has been deleted", "deleted")
        event["status"] = "cancelled"
        self._stamp(event)

    def _list(self, calendar: Calendar, query: dict[str, list[str]]) -> dict[str, Any]:
        show_deleted = query.get("showDeleted", ["false"])[0] == "true"
        wanted_private = [_property_filter(v) for v in query.get("privateExtendedProperty", [])]
        wanted_shared = [_property_filter(v) for v in query.get("sharedExtendedProperty", [])]
        ical_uid = query.get("iCalUID", [None])[0]
        try:
            max_results = min(int(query.get("maxResults", ["250"])[0]), 2500)
            offset = int(query.get("pageToken", ["0"])[0] or 0)
        except ValueError:
            raise ApiError(400, "Invalid value for maxResults or pageToken.", "invalid") from None
        if max_results < 1:
            raise ApiError(400, "Invalid value for maxResults.", "invalid")
        matching = []
        for event in calendar.events.values():
            cancelled = event.get("status") == "cancelled"
            if cancelled and (not show_deleted or (not self.cancelled_match_filters and wanted_private)):
                continue
            properties = event.get("extendedProperties") or {}
            private = properties.get("private") or {}
            shared = properties.get("shared") or {}
            if any(private.get(k) != v for k, v in wanted_private) or any(shared.get(k) != v for k, v in wanted_shared):
                continue
            if ical_uid is not None and event.get("iCalUID") != ical_uid:
                continue
            if event.get("status") == "cancelled":
                matching.append({k: event[k] for k in ("kind", "etag", "id", "status", "updated")})
            else:
                matching.append(dict(event))
        page = matching[offset : offset + max_results]
        answer: dict[str, Any] = {"kind": "calendar#events", "summary": calendar.summary, "items": page}
        if offset + max_results < len(matching):
            answer["nextPageToken"] = str(offset + max_results)
        return answer

    # -- batch --

    def batch(self, content_type: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """Answer a multipart/mixed batch: (status, content type, body)."""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        if not message.is_multipart():
            raise ApiError(400, "Batch request is not multipart/mixed.", "invalid")
        parts = list(message.iter_parts())
        if len(parts) > 1000:
            raise ApiError(400, "Too many calls in one batch request (max 1000).", "invalid")
        boundary = f"batch_{uuid.uuid4().hex}"
        out: list[str] = []
        for part in parts:
            content_id = str(part.get("Content-ID", "<>"))
            raw = part.get_payload(decode=True) or b""
            assert isinstance(raw, bytes)  # decode=True on a part that is not multipart
            method, target, part_headers, part_body = _parse_inner_request(raw)
            if "authorization" not in part_headers and "authorization" in headers:
                part_headers["authorization"] = headers["authorization"]
            status, answer = self.call(method, target, part_body, part_headers, "batch")
            out.append(f"--{boundary}\r\n")
            out.append("Content-Type: application/http\r\n")
            out.append(f"Content-ID: <response-{content_id.strip('<>')}>\r\n\r\n")
            if isinstance(answer, SpoiledAnswer):  # a 2xx part whose body is not JSON
                # "bad-part": no reason phrase either, which googleapiclient fails to split (ValueError).
                out.append("HTTP/1.1 200\r\n" if answer.mode == "bad-part" else "HTTP/1.1 200 OK\r\n")
                out.append("Content-Type: application/json; charset=UTF-8\r\n")
                out.append(f"Content-Length: {len(NOT_JSON)}\r\n\r\n{NOT_JSON.decode()}\r\n")
                continue
            out.append(f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n")
            if answer is None:
                out.append("Content-Length: 0\r\n\r\n\r\n")
            else:
                text = json.dumps(answer)
                out.append("Content-Type: application/json; charset=UTF-8\r\n")
                out.append(f"Content-Length: {len(text.encode())}\r\n\r\n{text}\r\n")
        out.append(f"--{boundary}--\r\n")
        return 200, f"multipart/mixed; boundary={boundary}", "".join(out).encode("utf-8")


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ApiError(400, "Required request body is missing.", "required")
    return data


def _property_filter(value: str) -> tuple[str, str]:
    name, sep, wanted = value.partition("=")
    if not sep:
        raise ApiError(400, "Invalid extended property filter: use propertyName=value.", "invalid")
    return name, wanted


def _when(value: Any, which: str) -> tuple[str, datetime | date]:
    if not isinstance(value, dict):
        raise ApiError(400, f"Missing {which} time.", "required")
    if value.get("dateTime"):
        moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
        zone = value.get("timeZone")
        if zone:
            try:
                ZoneInfo(str(zone))
            except (ZoneInfoNotFoundError, ValueError):
                raise ApiError(400, f"Invalid time zone definition for {which} time.", "timeRangeEmpty") from None
        elif moment.tzinfo is None:
            raise ApiError(400, f"Missing time zone definition for {which} time.", "required")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(str(zone)))
        return "dateTime", moment
    if value.get("date"):
        return "date", date.fromisoformat(str(value["date"]))
    raise ApiError(400, f"Missing {which} time.", "required")


def _validate(event: dict[str, Any], *, full: bool) -> None:
    if full:
        start_kind, start = _when(event.get("start"), "start")
        end_kind, end = _when(event.get("end"), "end")
        if start_kind != end_kind:
            raise ApiError(400, "Start and end times must either both be date or both be dateTime.", "invalid")
        if end <= start:
            raise ApiError(400, "The specified time range is empty.", "timeRangeEmpty")
    reminders = event.get("reminders")
    if reminders is not None:
        overrides = reminders.get("overrides") or []
        if reminders.get("useDefault") and overrides:
            raise ApiError(
                400,
                "Cannot specify both default reminders and overrides at the same time.",
                "cannotUseDefaultRemindersAndSpecifyOverride",
            )
        if len(overrides) > 5:
            raise ApiError(400, "Too many reminders (max 5).", "tooManyReminders")
        for override in overrides:
            minutes = override.get("minutes")
            if override.get("method") not in ("popup", "email") or not isinstance(minutes, int):
                raise ApiError(400, "Invalid reminder method or minutes.", "invalid")
            if not 0 <= minutes <= 40320:
                raise ApiError(400, "Invalid reminder minutes (0-40320).", "invalid")
    if event.get("transparency", "opaque") not in ("opaque", "transparent"):
        raise ApiError(400, "Invalid transparency value.", "invalid")
    if event.get("visibility", "default") not in ("default", "public", "private", "confidential"):
        raise ApiError(400, "Invalid visibility value.", "invalid")
    if event.get("status", "confirmed") not in ("confirmed", "tentative", "cancelled"):
        raise ApiError(400, "Invalid status value.", "invalid")
    for scope in ("private", "shared"):
        for key, value in ((event.get("extendedProperties") or {}).get(scope) or {}).items():
            if len(key) > 44 or len(str(value)) > 1024:
                raise ApiError(400, "Extended property key or value too long.", "invalid")


def _parse_inner_request(raw: bytes) -> tuple[str, str, dict[str, str], bytes]:
    text = raw.replace(b"\r\n", b"\n")
    head, _, body = text.partition(b"\n\n")
    lines = head.decode("utf-8").split("\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers, body


class _Handler(BaseHTTPRequestHandler):
    owner: CalendarStandin
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, content_type: str | None, body: bytes) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _dispatch(self) -> None:
        owner = self.owner
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        with owner.lock:
            owner.http_requests += 1
        path = urlsplit(self.path).path
        if path == "/token" and self.command == "POST":
            self._token(body)
            return
        if path == "/batch/calendar/v3" and self.command == "POST":
            with owner.lock:
                owner.batch_requests += 1
                fault = next((f for f in owner.faults if f.matches("POST", path, "batch")), None)
            try:
                if fault is not None:
                    raise ApiError(fault.status, f"Injected {fault.status}", fault.reason)
                status, content_type, answer = owner.batch(headers.get("content-type", ""), body, headers)
            except ApiError as exc:
                status, content_type, answer = exc.status, "application/json", json.dumps(exc.body()).encode()
            self._send(status, content_type, answer)
            return
        status, data = owner.call(self.command, self.path, body, headers, "direct")
        if isinstance(data, SpoiledAnswer):
            self._spoiled(status, data)
            return
        if data is None:
            self._send(status, None, b"")
        else:
            self._send(status, "application/json; charset=UTF-8", json.dumps(data).encode())

    def _spoiled(self, status: int, data: SpoiledAnswer) -> None:
        """The call was done; its answer is lost, cut half-way, or replaced by a page that is not JSON."""
        self.close_connection = True
        if data.mode == "lost":
            return  # closed without a status line
        if data.mode == "not-json":
            self._send(200, "text/html", NOT_JSON)
            return
        text = json.dumps(dict(data)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text[: len(text) // 2])

    def _token(self, body: bytes) -> None:
        """OAuth token endpoint: refresh_token, authorization_code and jwt-bearer (service account) grants."""
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        grant = form.get("grant_type", "")
        answer: dict[str, Any] = {"expires_in": 3600, "token_type": "Bearer"}
        if grant == "refresh_token" and form.get("refresh_token") and form["refresh_token"] != "revoked":
            pass
        elif grant == "authorization_code" and form.get("code") == "good-code":
            answer["refresh_token"] = f"refresh-{uuid.uuid4().hex}"
            answer["scope"] = "https://www.googleapis.com/auth/calendar.events"
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer" and form.get("assertion", "").count(".") == 2:
            pass
        else:
            error = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
            self._send(400, "application/json", json.dumps(error).encode())
            return
        new = f"access-{uuid.uuid4().hex}"
        answer["access_token"] = new
        with self.owner.lock:
            self.owner.token = new
            self.owner.refreshed_tokens.append(new)
            self.owner.grants.append(grant)
        self._send(200, "application/json", json.dumps(answer).encode())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch
