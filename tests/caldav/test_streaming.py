"""A long appointments CSV streams (issue 14): plans are made and published a chunk at a time.

A 100,000-row CSV took 291 s and 3.4 GB before the first request: every plan was made (each
loading its protocol again) before any was sent. Now `jobs_from_csv` plans a row when the run
reaches it, each protocol is loaded once, and `publish_caldav` takes CHUNK_JOBS jobs at a time.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import aftercal.publishing as publishing
from aftercal import JobResult, PublishJob
from calendars.caldav import CalDavConnection, Password
from reminders import make_plan
from reminders.schedule import CarePlan
from tests.caldav.conftest import PASSWORD, USER, Server
from tests.caldav.helpers import stored_events

ZONES = ["Europe/Paris", "America/New_York", "Asia/Tokyo"]


def write_csv(path: Path, rows: int) -> Path:
    lines = ["id,protocol,start,zone"]
    lines += [
        f"T-{n:05d},microneedling,2026-12-{1 + n % 28:02d}T{8 + n % 10:02d}:00,{ZONES[n % 3]}" for n in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def jobs(csv: Path) -> Iterator[PublishJob]:
    """The CSV's jobs, lazily (as the CLI's `Jobs` gives them)."""
    return (row.job for row in publishing.jobs_from_csv(csv) if isinstance(row, publishing.JobRow))


class Alive:
    """The plans made so far that are still referenced somewhere."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref[CarePlan]] = []

    def __len__(self) -> int:
        return sum(ref() is not None for ref in self.refs)


class Recorder(publishing.PublishEvents):
    def __init__(self, alive: Alive) -> None:
        self.alive = alive
        self.chunks: list[int] = []
        self.alive_at_start: list[int] = []
        self.finished_with_actions = 0

    def started(self, jobs: Sequence[PublishJob]) -> None:
        self.chunks.append(len(jobs))
        self.alive_at_start.append(len(self.alive))

    def finished(self, job: PublishJob, result: JobResult) -> None:
        self.finished_with_actions += result.actions is not None


@pytest.fixture
def alive(monkeypatch: pytest.MonkeyPatch) -> Alive:
    """Every plan `jobs_from_csv` made that is still referenced somewhere."""
    plans = Alive()

    def tracked(*args: Any, **kwargs: Any) -> CarePlan:
        plan = make_plan(*args, **kwargs)
        plans.refs.append(weakref.ref(plan))
        return plan

    monkeypatch.setattr(publishing, "make_plan", tracked)
    return plans


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFTERCAL_CALDAV_PASSWORD", PASSWORD)


def test_long_csv_is_planned_and_sent_a_chunk_at_a_time(radicale: Server, tmp_path: Path, alive: Alive) -> None:
    csv = write_csv(tmp_path / "day.csv", 1100)
    events = Recorder(alive)
    run = publishing.publish_caldav(
        jobs(csv), url=radicale.url, user=USER, calendar="big", create_calendar=True,
        dry_run=True, keep_going=True, keep_actions=False, events=events,
    )  # fmt: skip
    assert events.chunks == [500, 500, 100]
    # The first requests go out once the first chunk is planned, and no more than a chunk of plans
    # is ever held (the finished chunks' plans are gone).
    assert max(events.alive_at_start) <= publishing.CHUNK_JOBS
    assert len(run.results) == 1100 and run.failed == 0
    assert events.finished_with_actions == 1100 and all(result.actions is None for result in run.results)


def test_chunked_publish_converges(radicale: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publishing, "CHUNK_JOBS", 3)
    csv = write_csv(tmp_path / "day.csv", 7)
    per_plan = len(make_plan("microneedling", "2026-12-01T08:00", "Europe/Paris", treatment_id="x").reminders)

    def publish() -> publishing.PublishRun:
        return publishing.publish_caldav(
            jobs(csv), url=radicale.url, user=USER, calendar="day", create_calendar=True,
            keep_going=True,
        )  # fmt: skip

    first = publish()
    assert first.failed == 0 and first.total().created == 7 * per_plan
    assert all(result.actions is not None for result in first.results)  # kept unless asked not to
    again = publish()
    assert again.total().unchanged == 7 * per_plan and again.total().created == 0
    with CalDavConnection(radicale.url, USER, Password(PASSWORD, "t")) as conn:
        url = conn.find_calendar("day", create=False)
        assert url is not None
        assert len(stored_events(conn, url)) == 7 * per_plan


def test_each_protocol_is_loaded_once_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    from reminders.protocol import load_protocol as original

    def counted(name: Any) -> Any:
        loads.append(str(name))
        return original(name)

    monkeypatch.setattr(publishing, "load_protocol", counted)
    csv = write_csv(tmp_path / "day.csv", 50)
    with csv.open("a", encoding="utf-8") as handle:
        handle.write("T-bad,nope/missing.toml,2026-12-01T08:00,Europe/Paris\n" * 3)
    rows = list(publishing.jobs_from_csv(csv))
    assert loads == ["microneedling", "nope/missing.toml"]
    assert sum(isinstance(row, publishing.JobRow) for row in rows) == 50
    assert [row.line for row in rows if not isinstance(row, publishing.JobRow)] == [52, 53, 54]
