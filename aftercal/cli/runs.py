"""What `publish` and `unpublish` share on every channel: the jobs, the progress line, the results."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import typer

from aftercal import JobResult, PublishJob, SyncActions
from aftercal.cli.common import build_plan, warn_if_past
from aftercal.cli.options import PlanArgs
from aftercal.publishing import JobRow, PublishEvents, PublishRun, jobs_from_csv
from reminders.appointments import BadRow
from reminders.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from rich.progress import Progress, TaskID


class Jobs:
    """A run's jobs: PROTOCOL/--at's one job (planned at once), or a CSV's, each row made into a
    plan only when the run reaches it (a long file streams).

    Iterating a CSV's reports each bad row (and a row starting in the past) as it is read and
    counts the bad ones in `skipped`. The file and its header are checked when this is made.
    """

    def __init__(self, single: PublishJob | None, from_csv: Path | None = None, args: PlanArgs | None = None) -> None:
        self.single = single
        self.path = from_csv
        self.rows: Iterator[JobRow | BadRow] | None = None
        if from_csv is not None and args is not None:
            self.rows = jobs_from_csv(from_csv, options=args.plan_options(), allow_fixed_zone=args.allow_fixed_zone)
        self.skipped = 0

    def __iter__(self) -> Iterator[PublishJob]:
        if self.single is not None:
            yield self.single
        for row in self.rows or ():
            if isinstance(row, BadRow):
                typer.echo(f"aftercal: error: {self.path}: line {row.line}: {row.message} (row skipped)", err=True)
                self.skipped += 1
                continue
            assert row.job.plan is not None
            warn_if_past(row.job.plan, f"{self.path}: line {row.line}: ")  # each row as it is read
            yield row.job


def collect_jobs(protocol: str | None, at: str | None, args: PlanArgs, from_csv: Path | None) -> Jobs:
    """The jobs of PROTOCOL/--at, or of a CSV (bad rows are reported and skipped as the run reads them).

    A CSV row starting in the past is warned about as it is read; a single treatment by
    `warn_single_job` once published.
    """
    if from_csv is None:
        if not protocol or not at:
            raise InputError("give PROTOCOL and --at, or --from appointments.csv")
        return Jobs(PublishJob.publish(build_plan(args, protocol, at)))
    if protocol or at or args.treatment_id:
        raise InputError("--from replaces PROTOCOL, --at and --id: give one or the other")
    return Jobs(None, from_csv, args)


def warn_single_job(jobs: Jobs) -> None:
    """The past-start warning of a PROTOCOL/--at publish, once it is done (CSV rows were warned about)."""
    if jobs.single is not None and jobs.single.plan is not None:
        warn_if_past(jobs.single.plan)


class Reporter(PublishEvents):
    """Prints a run as it goes: a live progress line on a terminal (gone before the results), results.

    Use it as a context manager: the progress line is cleared however the run ends.
    """

    def __init__(self, *, dry_run: bool) -> None:
        from rich.console import Console

        self.dry_run = dry_run
        self.console = Console(stderr=True)
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._clear()

    def _clear(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = self.task = None

    def started(self, jobs: Sequence[PublishJob]) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn

        self._clear()
        self.bar = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} written"),
            console=self.console, transient=True, disable=not self.console.is_terminal,
        )  # fmt: skip
        self.bar.start()
        self.task = self.bar.add_task(f"reading {len(jobs)} treatment(s)", total=None)

    def progress(self, label: str, action: str, key: str) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, advance=1, description=f"{label}: {action} {key}")

    def calendar_ready(self, name: str, calendar_id: str | None) -> None:
        if calendar_id is None:
            typer.echo(f"would publish into the calendar named {name!r} (created if needed)")
        else:
            typer.echo(f"calendar {name!r}: {calendar_id}", err=True)

    def finished(self, job: PublishJob, result: JobResult) -> None:
        self._clear()
        label = result.label
        if result.error is not None:
            typer.echo(f"aftercal: error: {label}: {result.error}", err=True)
            return
        assert result.actions is not None
        if result.would_create_calendar:
            typer.echo(f"{label}: would create calendar {job.calendar!r}")
        if self.dry_run:
            print_actions(label, result.actions)
        else:
            typer.echo(f"{label}: {result.summary.line()}")
        actions = result.actions
        if not (actions.create or actions.update or actions.delete or actions.unchanged):
            # Most often a mistyped id or the wrong calendar: say so rather than look like success.
            typer.echo(f"{label}: no events of this treatment were found in that calendar", err=True)


def print_actions(label: str, actions: SyncActions) -> None:
    """--dry-run output: one line per event that would change, then counts."""
    for reminder in actions.create:
        typer.echo(f"{label}: would create {reminder.key}")
    for reminder, _held in actions.update:
        typer.echo(f"{label}: would update {reminder.key}")
    for held in actions.delete:
        typer.echo(f"{label}: would delete {held.uid}")
    typer.echo(
        f"{label}: would create {len(actions.create)}, update {len(actions.update)}, "
        f"delete {len(actions.delete)}, leave {len(actions.unchanged)} unchanged"
    )


def end_run(run: PublishRun, *, batch: bool, dry_run: bool, skipped: int = 0) -> None:
    """A batch's closing total line, then exit 1 if anything failed.

    `skipped` (bad CSV rows, already reported) counts as failed, as a treatment that failed does.
    """
    failed = run.failed + skipped
    if batch and not dry_run:
        typer.echo(f"total: {run.done} treatment(s) done, {failed} failed: {run.total().line()}")
    if failed:
        raise typer.Exit(1)
