"""CalDAV publishing cost: HTTP requests per publish of one treatment, and wall time for 50 treatments.

Starts its own Radicale on 127.0.0.1 (free port, temporary storage, htpasswd auth), publishes
through the same code as `aftercal publish caldav`, counts HTTP requests with a response hook
on the client's session, and prints a table. Run:

    python benchmarks/bench_caldav.py [--treatments 50]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calendars.base import SyncSummary, sync_plan, unpublish_treatment
from calendars.caldav import CalDavConnection, CalDavPublisher, Password
from reminders import make_plan

USER, PASSWORD = "bench", "bench-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_radicale(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    (root / "users").write_text(f"{USER}:{PASSWORD}\n", encoding="utf-8")
    port = free_port()
    command = [
        sys.executable, "-m", "radicale", "--config", "", "--auth-type", "htpasswd",
        "--auth-htpasswd-filename", str(root / "users"), "--auth-htpasswd-encryption", "plain",
        "--auth-delay", "0", "--rights-type", "owner_only", "--server-hosts", f"127.0.0.1:{port}",
        "--storage-filesystem-folder", str(root / "storage"),
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("radicale did not start")


class Counted:
    """A fresh connection, as one CLI run makes, counting requests per HTTP method."""

    def __init__(self, url: str) -> None:
        self.conn = CalDavConnection(url, USER, Password(PASSWORD, "bench"))
        self.methods: Counter[str] = Counter()
        self.conn.client.session.hooks["response"].append(self._hook)

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.methods[response.request.method] += 1
        return response

    def breakdown(self) -> str:
        return ", ".join(f"{m} {n}" for m, n in sorted(self.methods.items()))


def one_run(url: str, calendar: str, action: Any) -> tuple[int, str, SyncSummary]:
    run = Counted(url)
    try:
        cal = run.conn.find_calendar(calendar, create=False)
        summary = action(CalDavPublisher(run.conn, cal))
    finally:
        run.conn.close()
    return sum(run.methods.values()), run.breakdown(), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--treatments", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_radicale(Path(tmp))
        try:
            setup = CalDavConnection(url, USER, Password(PASSWORD, "bench"))
            cal_url = setup.find_calendar("aftercare", create=True)
            setup.close()
            assert cal_url is not None
            rows = []
            for label, calendar, tid in (("by name", "aftercare", "T-1001"), ("by URL", cal_url, "T-1002")):
                plan = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id=tid)
                moved = make_plan("microneedling", "2026-11-26T15:00", "Europe/Paris", treatment_id=tid)
                journeys = [
                    ("first publish", lambda p, plan=plan: sync_plan(p, plan)[1]),
                    ("unchanged re-publish", lambda p, plan=plan: sync_plan(p, plan)[1]),
                    ("reschedule (new --at)", lambda p, moved=moved: sync_plan(p, moved)[1]),
                    ("unpublish", lambda p, tid=tid: unpublish_treatment(p, tid)[1]),
                ]
                for name, action in journeys:
                    total, breakdown, summary = one_run(url, calendar, action)
                    rows.append((f"{name}, --calendar {label}", total, breakdown, summary.line()))

            n = args.treatments
            timings = []
            for mode, prefix in (("query per treatment", "Q"), ("batch: one calendar read", "B")):
                plans = [
                    make_plan("microneedling", f"2026-11-{1 + i % 28:02d}T{9 + i % 8:02d}:00", "Europe/Paris",
                              treatment_id=f"{prefix}-{i:03d}")
                    for i in range(n)
                ]  # fmt: skip
                for name in ("first publish", "unchanged re-publish"):
                    run = Counted(url)
                    summed = SyncSummary()
                    started = time.perf_counter()
                    cal = run.conn.find_calendar("aftercare", create=False)
                    publisher = CalDavPublisher(run.conn, cal)
                    if prefix == "B":
                        publisher.prefetch({care.plan_tag for care in plans})
                    per_job = []
                    for care in plans:
                        job_started = time.perf_counter()
                        summed.add(sync_plan(publisher, care)[1])
                        per_job.append(time.perf_counter() - job_started)
                    elapsed = time.perf_counter() - started
                    run.conn.close()
                    spread = f"{per_job[0]:.2f}s / {per_job[-1]:.2f}s"
                    timings.append((f"{name}, {mode}", elapsed, spread, sum(run.methods.values()), summed.line()))
                with Counted(url).conn as conn:  # empty the calendar for the next mode
                    cleaner = CalDavPublisher(conn, cal)
                    for care in plans:
                        unpublish_treatment(cleaner, care.treatment_id)
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    events = len(make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris").reminders)
    print(f"CalDAV publish cost against Radicale on loopback (one treatment = {events} events)\n")
    print(f"| {'journey (a fresh connection each)':<43} | {'requests':>8} | {'by method':<32} | summary")
    print(f"|{'-' * 45}|{'-' * 10}|{'-' * 34}|{'-' * 50}")
    for name, total, breakdown, line in rows:
        print(f"| {name:<43} | {total:>8} | {breakdown:<32} | {line}")
    print(f"\n{n} treatments in one run ({n * events} events), one connection, calendar found by name:\n")
    print(f"| {'run':<46} | {'wall time':>9} | {'1st / last treatment':>20} | {'requests':>8} | summary")
    print(f"|{'-' * 48}|{'-' * 11}|{'-' * 22}|{'-' * 10}|{'-' * 50}")
    for name, elapsed, spread, requests, line in timings:
        print(f"| {name:<46} | {elapsed:>8.2f}s | {spread:>20} | {requests:>8} | {line}")
    print(
        "\nRadicale checks UID uniqueness on every new resource by scanning the collection, so a create"
        "\ncosts more as the calendar fills (compare the first and last treatment); updates skip that scan."
    )


if __name__ == "__main__":
    main()
