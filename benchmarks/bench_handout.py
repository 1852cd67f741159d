"""Benchmark the printed handout: milliseconds to make one PDF and one PNG, beside the same plan's .ics.

    python benchmarks/bench_handout.py [--runs 20]

Each row is the median of N runs, interleaved in one process run (these machines are noisy:
compare the ratios to the .ics row, not the absolute numbers). The first run of each, which
imports PyMuPDF and segno and loads the fonts, is timed apart as "first in a process": that is
what a single `aftercal handout` command pays on top of its start-up.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from calendars.handout import handout_sheet, render_handout
from calendars.ics import render_ics
from reminders import make_plan
from reminders.schedule import CarePlan, Clinic, PlanOptions

STAMP = datetime(2026, 11, 25, tzinfo=UTC)
LINK = "https://care.example/f/Zx3k9QmV0pLr7TnB2yWc5Hd8JfKa1GsE4uIo6PqRtYw"


def new_york() -> CarePlan:
    clinic = Clinic("Lumière Skin Clinic", "+1 212 555 0142", "https://lumiere.example/aftercare")
    options = PlanOptions(patient_name="Zoë Núñez", clinic=clinic)
    return make_plan("microneedling", "2026-11-24T10:00", "America/New_York", treatment_id="T-1001", options=options)


def timed(make: Callable[[], bytes]) -> tuple[float, int]:
    started = time.perf_counter()
    data = make()
    return time.perf_counter() - started, len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    plan = new_york()
    makers: dict[str, Callable[[], bytes]] = {
        ".ics (render_ics, the reference)": lambda: render_ics(plan, stamp=STAMP),
        "handout PDF, A4 (with QR code)": lambda: render_handout(handout_sheet(plan, link=LINK), fmt="pdf").data,
        "handout PNG, A4 at 150 dpi": lambda: render_handout(handout_sheet(plan, link=LINK), fmt="png").data,
    }
    first = {name: timed(make) for name, make in makers.items()}
    times: dict[str, list[float]] = {name: [] for name in makers}
    sizes: dict[str, int] = {}
    for _ in range(args.runs):
        for name, make in makers.items():  # interleaved, so all see the same machine load
            seconds, size = timed(make)
            times[name].append(seconds)
            sizes[name] = size
    reference = statistics.median(times[next(iter(makers))])
    print(f"One New York plan (17 reminders), median of {args.runs} runs")
    print(f"{'output':<36} {'median ms':>10} {'x .ics':>8} {'bytes':>9} {'first in a process ms':>22}")
    for name in makers:
        median = statistics.median(times[name])
        print(
            f"{name:<36} {median * 1000:>10.1f} {median / reference:>8.1f} {sizes[name]:>9,} "
            f"{first[name][0] * 1000:>22.1f}"
        )


if __name__ == "__main__":
    main()
