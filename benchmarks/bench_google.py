"""HTTP requests to publish care plans to Google Calendar: aftercal's batches vs one request per event.

    .venv/bin/python benchmarks/bench_google.py [--treatments 1 50]

Starts the Calendar v3 stand-in of the tests (tests/google/standin.py) on a free port of
127.0.0.1, drives it with the real google-api-python-client, stops it again, and prints one table.
For each number of treatments (microneedling plans of ~16 events each), in an empty calendar per
approach, a first run and then an unchanged re-run:

* one request per event (how scripts and many tools do it): `events.insert` per event on the first
  run; on the re-run, not knowing what changed, `events.update` per event;
* aftercal, one treatment at a time (`calendars.base.sync_plan`): one list, then the treatment's
  writes in batch requests; an unchanged re-run writes nothing;
* aftercal `--from` CSV (`GooglePublisher.publish_jobs`): the lists of all treatments in shared batch
  requests, then all their writes in shared batches of 50 calls.

"HTTP requests" is what crosses the network; "API calls" is what counts against Google's quota
(600 per minute per user), since every call inside a batch still counts. Times are on loopback
and only indicative.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calendars.base import PublishJob, sync_plan  # noqa: E402
from calendars.gcal import GooglePublisher, connect, event_body, event_id  # noqa: E402
from reminders import make_plan  # noqa: E402
from reminders.schedule import CarePlan  # noqa: E402
from tests.google.standin import CalendarStandin  # noqa: E402


def plans(count: int, prefix: str) -> list[CarePlan]:
    zones = ["America/Chicago", "America/New_York", "Europe/Paris", "Asia/Tokyo"]
    out = []
    for i in range(count):
        minutes = 9 * 60 + 20 * i
        at = f"2026-11-24T{minutes // 60 % 24:02d}:{minutes % 60:02d}"
        out.append(make_plan("microneedling", at, zones[i % len(zones)], treatment_id=f"{prefix}-{i:03d}"))
    return out


def naive(client: GooglePublisher, calendar: str, care: list[CarePlan], first: bool) -> None:
    """One request per event: insert everything, or (re-run) update everything."""
    events = client.events_api()
    for plan in care:
        for reminder in plan.reminders:
            body = event_body(plan, reminder)
            if first:
                events.insert(calendarId=calendar, body=body).execute()
            else:
                events.update(
                    calendarId=calendar, eventId=event_id(plan.treatment_id, reminder.key), body=body
                ).execute()


def per_treatment(client: GooglePublisher, calendar: str, care: list[CarePlan], first: bool) -> None:
    publisher = client.for_calendar(calendar)
    for plan in care:
        sync_plan(publisher, plan)


def shared(client: GooglePublisher, calendar: str, care: list[CarePlan], first: bool) -> None:
    results = client.publish_jobs([PublishJob.publish(p, calendar) for p in care])
    failures = [r.error for r in results if r.error is not None]
    if failures:
        raise SystemExit(f"bench: {failures[0]}")


APPROACHES: list[tuple[str, Callable[[GooglePublisher, str, list[CarePlan], bool], None]]] = [
    ("one request per event", naive),
    ("aftercal, per treatment", per_treatment),
    ("aftercal --from (shared batches)", shared),
]


def measure(standin: CalendarStandin, counts: list[int]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for count in counts:
        for index, (name, run) in enumerate(APPROACHES):
            calendar = f"bench-{count}-{index}"
            standin.add_calendar(calendar, name)
            care = plans(count, f"B{count}x{index}")
            events = sum(len(p.reminders) for p in care)
            for first in (True, False):
                standin.reset_counts()
                # A fresh client per run, as a new `aftercal` process would be.
                with connect(api_endpoint=standin.url, no_auth=True) as client:
                    began = time.perf_counter()
                    run(client, calendar, care, first)
                    elapsed = timedelta(seconds=time.perf_counter() - began)
                held = len(standin.events(calendar))
                if held != events:
                    raise SystemExit(f"bench: {name} left {held} events, expected {events}")
                rows.append(
                    (
                        f"{count} treatment{'s' if count > 1 else ''}",
                        "first run" if first else "unchanged re-run",
                        name,
                        str(events),
                        str(standin.http_requests),
                        str(len(standin.calls)),
                        str(len(standin.writes())),
                        f"{elapsed.total_seconds() * 1000:.0f} ms",
                    )
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--treatments", type=int, nargs="+", default=[1, 50], help="treatment counts to measure")
    args = parser.parse_args()
    if any(n < 1 or n > 500 for n in args.treatments):
        parser.error("--treatments: 1 to 500")
    with CalendarStandin() as standin:
        rows = measure(standin, args.treatments)
    header = ("treatments", "run", "approach", "events", "HTTP requests", "API calls", "writes", "time")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
