"""`aftercal handout`: the plan as a printed sheet (PDF or PNG); and the `--handout` options that
`treatments add` and `treatments link --rotate` take, declared here once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aftercal import handouts
from aftercal.cli.command import sub_app
from aftercal.cli.common import build_plan, warn_if_past
from aftercal.cli.options import AtOpt, PlanArgs, ProtocolArg, with_plan_options
from reminders.errors import InputError

if TYPE_CHECKING:
    from aftercal.feeds import NewLink

app = sub_app()

PaperOpt = Annotated[
    str | None,
    typer.Option(
        "--paper",
        help="a4 or letter (default: the locale's: letter when LC_ALL, LC_PAPER or LANG names the US, Canada, "
        "Mexico, the Philippines or another US Letter territory, else a4).",
    ),
]
HandoutOpt = Annotated[
    Path | None,
    typer.Option(
        "--handout",
        help="Also write a printed handout with the new link's QR code: .pdf, or .png (readable by you only).",
    ),
]


@app.command()
@with_plan_options(sequence=False)
def handout(
    protocol: ProtocolArg,
    at: AtOpt,
    args: PlanArgs,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The file to write: .pdf to print, .png for e-mail or a screen.")
    ],
    paper: PaperOpt = None,
    link: Annotated[
        str | None,
        typer.Option("--link", help="The patient's page link to print with its QR code (`treatments add` shows it)."),
    ] = None,
) -> None:
    """Print a care plan as a one-page handout: the timeline as a picture, the key days, when to call the clinic.

    Example:

        aftercal handout microneedling --at 2026-11-24T10:00 --tz America/New_York --paper letter -o handout.pdf
    """
    handouts.handout_format(output)
    paper_name = handouts.paper_size(paper)
    handouts.check_link(link)
    care = build_plan(args, protocol, at)
    handouts.write_handout(care, output, link=link, paper=paper_name)
    typer.echo(f"Wrote the handout ({paper_name}) to {output}", err=True)
    warn_if_past(care)


def check_handout(path: Path | None, paper: str | None) -> str | None:
    """Before a link is made: the paper to use, or an error now if the handout could not be written later."""
    if path is None:
        if paper is not None:
            raise InputError("--paper is for the handout: give --handout FILE.pdf too")
        return None
    handouts.check_handout_file(path)
    return handouts.paper_size(paper)


def write_link_handout(link: NewLink, base_url: str, path: Path | None, paper: str | None) -> None:
    """Write the handout of a link just made (its links have been printed already)."""
    if path is None:
        return
    handouts.write_link_handout(link, path, base_url=base_url, paper=paper)
    typer.echo(f"Wrote the handout with the page link and its QR code ({paper}) to {path}", err=True)
