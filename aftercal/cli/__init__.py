"""The `aftercal` command line: the only package that imports typer, rich or click.

One module per command group (plan.py, caldav.py, google.py, treatments.py, serve.py, config.py);
options that several commands take are declared once in options.py. A command converts its
arguments, calls its twin in the library (aftercal.plans, aftercal.publishing, aftercal.feeds,
aftercal.config) and prints. The root callback loads the clinic's configuration file, whose
settings become the defaults of the options they name (config.py). Every AftercalError is caught
once, in `_Root.invoke` (also one raised by the root callback), and printed as one line (the
traceback only with --debug).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from aftercal.cli import caldav, config, google, handout, plan, serve, sync, treatments
from aftercal.cli.command import App, sub_app
from aftercal.config import ClinicConfig
from reminders.errors import AftercalError, InputError

__all__ = ["app", "main"]


@dataclass
class _State:
    debug: bool = False
    config: ClinicConfig | None = None  # None only while --help puts a configuration error aside
    config_error: InputError | None = None


# Libraries of the optional extras (pyproject.toml), imported only by the commands that need them.
_EXTRA_OF_MODULE = {
    "caldav": "caldav",
    "keyring": "caldav",
    "googleapiclient": "google",
    "google_auth_oauthlib": "google",
    "google_auth_httplib2": "google",
    "google": "google",
    "uvicorn": "serve",
    "starlette": "serve",
    "segno": "serve",
    "psycopg": "serve",
    "cryptography": "serve",
}


def _debug(ctx: Any) -> bool:
    """Whether --debug was given (the root callback has run by the time a command fails)."""
    return isinstance(ctx.obj, _State) and ctx.obj.debug


class _Root(TyperGroup):
    """Root group that turns aftercal's errors into one line and an exit code."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        config.remember_args(ctx, args)
        rest: list[str] = super().parse_args(ctx, args)
        return rest

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except AftercalError as exc:
            if _debug(ctx):
                raise
            typer.echo(f"aftercal: error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except ModuleNotFoundError as exc:
            extra = _EXTRA_OF_MODULE.get((exc.name or "").split(".")[0])
            if extra is None or _debug(ctx):
                raise
            typer.echo(
                f"aftercal: error: this command needs the optional '{extra}' dependencies ({exc.name} is missing): "
                f"pip install 'aftercal[{extra}]' (from a clone: pip install '.[{extra}]')",
                err=True,
            )
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("aftercal: interrupted", err=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader went away (`aftercal ... | head`): stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(1) from None
        except Exception as exc:
            mro = {klass.__name__ for klass in type(exc).__mro__}
            if "UsageError" in mro and "NoArgsIsHelpError" not in mro:
                # A wrong or missing option: one line, like every other input error.
                where = getattr(getattr(exc, "ctx", None), "command_path", "aftercal")
                typer.echo(f"aftercal: error: {exc.format_message()} (see `{where} --help`)", err=True)  # type: ignore[attr-defined]
                raise typer.Exit(2) from None
            # Other exits belong to click/typer; anything else is a bug: one line, no locals
            # (they may hold secrets), the traceback with --debug.
            if type(exc).__module__.split(".")[0] in ("click", "typer") or _debug(ctx):
                raise
            first_line = (str(exc).splitlines() or [""])[0][:200]
            typer.echo(
                f"aftercal: internal error: {type(exc).__name__}: {first_line} (run with --debug before the command "
                "for the traceback, and please report it)",
                err=True,
            )
            raise typer.Exit(1) from None


app = App(
    rich_markup_mode="markdown",
    cls=_Root,
    name="aftercal",
    help="Turn a skin treatment into a calendar of aftercare reminders.",
    no_args_is_help=True,
    # Locals may hold passwords and tokens: never print them.
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="The clinic's configuration file (default: $AFTERCAL_CONFIG, else aftercal.toml in aftercal's "
            "config folder); options given on the command line override it. See `aftercal config show`.",
        ),
    ] = None,
) -> None:
    state = _State(debug=debug)
    ctx.obj = state
    state.config, state.config_error = config.apply_config(ctx, config_file)


# The command tree. Apps added without a name give their commands to the group they join.
app.add_typer(plan.app)  # plan, show, protocols
app.add_typer(serve.app)  # serve
app.add_typer(handout.app)  # handout
app.add_typer(plan.protocol_app, name="protocol")  # protocol check|trace
publish_app = sub_app("Push a care plan's events to a calendar server (idempotent).")
publish_app.add_typer(caldav.publish_app)  # publish caldav
publish_app.add_typer(google.publish_app)  # publish google
app.add_typer(publish_app, name="publish")
unpublish_app = sub_app("Remove exactly one treatment's events from a calendar server.")
unpublish_app.add_typer(caldav.unpublish_app)  # unpublish caldav
unpublish_app.add_typer(google.unpublish_app)  # unpublish google
app.add_typer(unpublish_app, name="unpublish")
app.add_typer(google.google_app, name="google")  # google login
app.add_typer(treatments.app, name="treatments")  # treatments add|list|show|reschedule|cancel|link|forget|purge
app.add_typer(sync.app)  # sync
app.add_typer(config.app)  # init
app.add_typer(config.config_app, name="config")  # config show


def main() -> None:
    """Console entry point."""
    app()
