"""Benchmark `aftercal plan`: start-up cost and plans per second, each beside its baseline.

    python benchmarks/bench_plan.py [--runs 15] [--treatments 10000] [--no-startup]

Both measurements run side by side in one process run (interleaved), since these machines are
noisy: compare the ratios, not the absolute numbers. Throughput compares the export as written
(`render_ics`: the zone's VTIMEZONE rendered once per zone, long lines folded once) with the
straightforward path it must equal byte for byte (`plan_calendar(...).to_ical()`: the whole
Calendar, VTIMEZONE parsed and serialised again for every plan) and with bare icalendar.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from icalendar import Alarm, Calendar, Event

from calendars.ics import plan_calendar, render_ics
from reminders import load_protocol
from reminders.schedule import CarePlan, build_plan, localize_start

STAMP = datetime(2026, 11, 25, tzinfo=UTC)
ZONES = ["America/New_York", "Europe/Paris", "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Kiritimati"]


def time_command(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def startup(runs: int) -> list[tuple[str, float]]:
    aftercal = shutil.which("aftercal") or str(Path(sys.executable).with_name("aftercal"))
    plan_cmd = [aftercal, "plan", "microneedling", "--at", "2026-11-24T10:00", "--tz", "America/New_York", "-o", "-"]
    import_cmd = [sys.executable, "-c", "import typer, icalendar"]
    plan_times, import_times = [], []
    for _ in range(runs):  # interleaved, so both see the same machine load
        plan_times.append(time_command(plan_cmd))
        import_times.append(time_command(import_cmd))
    return [("aftercal plan (whole command)", statistics.median(plan_times)),
            ('python -c "import typer, icalendar"', statistics.median(import_times))]  # fmt: skip


def bare_icalendar(plan: CarePlan) -> bytes:
    """The same events serialised with icalendar directly: no engine, no checks, no extras."""
    cal = Calendar()
    cal.add("prodid", "-//bench//EN")
    cal.add("version", "2.0")
    for r in plan.reminders:
        event = Event()
        event.add("uid", r.uid)
        event.add("dtstamp", STAMP)
        event.add("dtstart", r.start)
        event.add("dtend", r.end)
        event.add("summary", r.title)
        event.add("description", r.description)
        if r.alarm_text:
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", r.alarm_text)
            alarm.add("trigger", timedelta(0))
            event.add_component(alarm)
        cal.add_component(event)
    cal.add_missing_timezones(first_date=plan.first_date(), last_date=plan.last_date())
    data: bytes = cal.to_ical()
    return data


def throughput(treatments: int) -> list[tuple[str, float]]:
    protocol = load_protocol("microneedling")
    starts = []
    for i in range(treatments):
        naive = datetime(2026, 1, 1, 8, 0) + timedelta(days=i % 365, minutes=15 * (i % 40))  # noqa: DTZ001
        starts.append((f"T-{i}", naive, ZONES[i % len(ZONES)]))
    from zoneinfo import ZoneInfo

    plans = [build_plan(protocol, tid, localize_start(naive, ZoneInfo(z))) for tid, naive, z in starts]
    before = after = bare = 0.0
    chunk = 500
    for offset in range(0, treatments, chunk):  # interleave chunks of all three
        batch = starts[offset : offset + chunk]
        t0 = time.perf_counter()
        for tid, naive, zone in batch:
            plan = build_plan(protocol, tid, localize_start(naive, ZoneInfo(zone)))
            plan_calendar(plan, stamp=STAMP).to_ical()
        t1 = time.perf_counter()
        for tid, naive, zone in batch:
            render_ics(build_plan(protocol, tid, localize_start(naive, ZoneInfo(zone))), stamp=STAMP)
        t2 = time.perf_counter()
        for plan in plans[offset : offset + chunk]:
            bare_icalendar(plan)
        t3 = time.perf_counter()
        before += t1 - t0
        after += t2 - t1
        bare += t3 - t2
    return [
        ("aftercal: engine + export, uncached", treatments / before),
        ("aftercal: engine + export, render once", treatments / after),
        ("bare icalendar: serialise same events", treatments / bare),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--treatments", type=int, default=10_000)
    parser.add_argument("--no-startup", action="store_true", help="only the throughput table")
    args = parser.parse_args()
    if not args.no_startup:
        rows = startup(args.runs)
        print(f"\nStart-up, median of {args.runs} interleaved runs")
        print(f"{'command':<40} {'seconds':>8} {'ratio':>6}")
        for name, seconds in rows:
            print(f"{name:<40} {seconds:>8.3f} {seconds / rows[1][1]:>6.2f}")
    rates = throughput(args.treatments)
    print(f"\nThroughput, {args.treatments} treatments (16 events each), interleaved in chunks of 500")
    print(f"{'what':<40} {'plans/s':>8} {'vs bare':>8} {'vs uncached':>12}")
    for name, rate in rates:
        print(f"{name:<40} {rate:>8.0f} {rate / rates[2][1]:>8.2f} {rate / rates[0][1]:>12.2f}")


if __name__ == "__main__":
    main()
