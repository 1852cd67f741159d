"""`aftercal plan`, `show`, `protocols`, `protocol check` and `protocol trace`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from aftercal import plans
from aftercal.cli.command import sub_app
from aftercal.cli.common import build_plan, warn_if_past
from aftercal.cli.options import AtOpt, PlanArgs, ProtocolArg, with_plan_options

app = sub_app()
protocol_app = sub_app("Work with protocol files.")


@app.command()
@with_plan_options()
def plan(
    protocol: ProtocolArg,
    at: AtOpt,
    args: PlanArgs,
    output: Annotated[str, typer.Option("-o", "--output", help="File to write, or - for standard output.")] = "-",
) -> None:
    """Write a treatment's aftercare as an iCalendar (.ics) file.

    Example:

        aftercal plan microneedling --at 2026-11-24T10:00 --tz America/New_York -o care.ics
    """
    care = build_plan(args, protocol, at)
    if output == "-":
        sys.stdout.buffer.write(plans.render_plan(care))
        sys.stdout.buffer.flush()
    else:
        plans.write_plan(care, output)
        typer.echo(f"Wrote {len(care.reminders)} events to {output}", err=True)
    warn_if_past(care)


@app.command()
@with_plan_options(clinic=False, sequence=False)
def show(protocol: ProtocolArg, at: AtOpt, args: PlanArgs) -> None:
    """Print the same plan as a readable timeline.

    Example:

        aftercal show microneedling --at 2026-11-24T10:00 --tz Europe/Paris
    """
    from rich.console import Console
    from rich.table import Table

    care = build_plan(args, protocol, at)
    table = Table(title=f"{care.calendar_name} ({care.zone.key})", title_justify="left")
    table.add_column("Day", justify="right")
    table.add_column("When")
    table.add_column("Reminder")
    table.add_column("Alarm")
    for row in plans.timeline(care):
        title = row.title + (f"\n[dim]{row.note}[/dim]" if row.note else "")
        table.add_row(row.day, row.when, title, "yes" if row.alarm else "-")
    Console().print(table)
    warn_if_past(care)


@app.command()
def protocols() -> None:
    """List the protocols shipped with aftercal.

    Example:

        aftercal protocols
    """
    for proto in plans.list_protocols():
        typer.echo(f"{proto.id}\t{proto.version}\t{proto.name}: {proto.summary}")


@protocol_app.command("check")
def protocol_check(
    file: Annotated[str, typer.Argument(help="Path of a protocol .toml file (or a shipped name).")],
) -> None:
    """Validate a protocol file against the schema.

    Example:

        aftercal protocol check examples/clinic-microneedling.toml
    """
    proto = plans.check_protocol(file)
    typer.echo(
        f"{proto.origin}: OK ({proto.id} {proto.version}, {len(proto.steps)} steps, {len(proto.seed)} seed items)"
    )


@protocol_app.command("trace")
def protocol_trace(
    file: Annotated[str, typer.Argument(help="A shipped protocol name or a path to a .toml file.")],
) -> None:
    """Show how each source item reaches the patient: its facts and the steps that carry it.

    Example:

        aftercal protocol trace microneedling
    """
    for item in plans.trace_protocol(file):
        typer.echo(f"{item.key}: {item.text}")
        if item.facts:
            typer.echo(f"  facts: {'; '.join(item.facts)}")
        for step in item.steps:
            typer.echo(f"  -> {step.id} ({step.timing()}): {step.title}")
