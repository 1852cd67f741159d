"""Options that several commands take, each declared once.

The plan options (--tz, --id, --discreet, --patient-name, --morning, --quiet, --clinic-*,
--sequence, --allow-fixed-zone) are one group: a command that builds a plan declares one
parameter `args: PlanArgs`, and `@with_plan_options()` puts the group's options in its place in
the signature typer reads, then hands the command one PlanArgs with their values.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import typer

from aftercal.plans import plan_options
from reminders.schedule import DEFAULT_MORNING, DEFAULT_QUIET, PlanOptions

ProtocolArg = Annotated[
    str, typer.Argument(help="A shipped protocol name (see `aftercal protocols`) or a path to a .toml file.")
]
AtOpt = Annotated[str, typer.Option("--at", help="Treatment start in local time, e.g. 2026-11-24T10:00.")]
# PROTOCOL and --at for commands that also take --from (a CSV replaces both).
BatchProtocolArg = Annotated[
    str | None, typer.Argument(help="A shipped protocol name or a .toml path (omit with --from).")
]
BatchAtOpt = Annotated[str | None, typer.Option("--at", help="Treatment start in local time, e.g. 2026-11-24T10:00.")]
FromOpt = Annotated[
    Path | None,
    typer.Option(
        "--from",
        help="CSV of treatments (columns id,protocol,start,zone[,calendar]) instead of PROTOCOL/--at.",
    ),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print what would change; change nothing.")]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="AFTERCAL_DB",
        help="Treatment database: a file path or a postgresql:// URL (default: clinic.db in the user data dir, "
        "or in $AFTERCAL_DATA_DIR).",
    ),
]


# ---- the plan options -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanArgs:
    """The plan options of one command line, as typed (the defaults are the options' defaults)."""

    tz: str | None = None
    treatment_id: str | None = None
    discreet: bool = False
    patient_name: str | None = None
    morning: str = DEFAULT_MORNING
    quiet: str = DEFAULT_QUIET
    clinic_name: str | None = None
    clinic_phone: str | None = None
    clinic_url: str | None = None
    sequence: int = 0
    allow_fixed_zone: bool = False

    def plan_options(self) -> PlanOptions:
        """The options as the engine takes them (an InputError for a bad --morning or --quiet), with
        event ids keyed by the clinic secret when there is one."""
        from aftercal.cli.common import event_ids  # common imports this module

        return plan_options(
            ids=event_ids(),
            morning=self.morning,
            quiet=self.quiet,
            discreet=self.discreet,
            patient_name=self.patient_name,
            clinic_name=self.clinic_name,
            clinic_phone=self.clinic_phone,
            clinic_url=self.clinic_url,
            sequence=self.sequence,
        )


TzOpt = Annotated[
    str | None,
    typer.Option(
        "--tz", help="The patient's IANA city zone, e.g. Europe/Paris (default: this machine's zone, said on stderr)."
    ),
]
IdOpt = Annotated[
    str | None,
    typer.Option(
        "--id",
        help="Treatment id; the same id updates the same events (default: derived from protocol, start and zone).",
    ),
]
DiscreetOpt = Annotated[
    bool,
    typer.Option(
        "--discreet/--no-discreet",
        help="Neutral titles and alarm texts for lock screens and watches (--no-discreet overrides the "
        "configuration file's [plan] discreet).",
    ),
]
PatientOpt = Annotated[
    str | None,
    typer.Option(
        "--patient-name", help="Add the patient's name to the calendar name and descriptions (never added otherwise)."
    ),
]
MorningOpt = Annotated[str, typer.Option("--morning", help="Local time of day reminders, HH:MM.")]
QuietOpt = Annotated[
    str, typer.Option("--quiet", help="Quiet hours HH:MM-HH:MM in which no alarm fires ('off' for none).")
]
ClinicNameOpt = Annotated[
    str | None,
    typer.Option("--clinic-name", envvar="AFTERCAL_CLINIC_NAME", help="Clinic name shown in every reminder."),
]
ClinicPhoneOpt = Annotated[
    str | None,
    typer.Option("--clinic-phone", envvar="AFTERCAL_CLINIC_PHONE", help="Clinic phone shown in every reminder."),
]
ClinicUrlOpt = Annotated[
    str | None,
    typer.Option("--clinic-url", envvar="AFTERCAL_CLINIC_URL", help="Clinic web page, set as each event's URL."),
]
SequenceOpt = Annotated[
    int,
    typer.Option(
        "--sequence",
        min=0,
        max=2**31 - 1,
        help="iCalendar SEQUENCE; raise it when re-sending a changed plan as a file.",
    ),
]
AllowFixedZoneOpt = Annotated[
    bool,
    typer.Option(
        "--allow-fixed-zone",
        help="Accept an offset or abbreviation (UTC, EST, Etc/GMT+5, PST8PDT...) as the patient's zone; "
        "refused otherwise, as no place's daylight saving time applies to it.",
    ),
]
# The declaration of each PlanArgs field, in the order --help lists them.
_PLAN_OPTIONS: dict[str, object] = {
    "tz": TzOpt,
    "treatment_id": IdOpt,
    "discreet": DiscreetOpt,
    "patient_name": PatientOpt,
    "morning": MorningOpt,
    "quiet": QuietOpt,
    "clinic_name": ClinicNameOpt,
    "clinic_phone": ClinicPhoneOpt,
    "clinic_url": ClinicUrlOpt,
    "sequence": SequenceOpt,
    "allow_fixed_zone": AllowFixedZoneOpt,
}
_DEFAULTS = {f.name: f.default for f in fields(PlanArgs)}
assert list(_PLAN_OPTIONS) == list(_DEFAULTS), "declare every PlanArgs field, in the same order"
_CLINIC = ("clinic_name", "clinic_phone", "clinic_url")
# Every parameter of a decorated command: options with defaults may then come before ones without.
_KEYWORD = inspect.Parameter.KEYWORD_ONLY

Command = Callable[..., None]


def with_plan_options(
    *, clinic: bool = True, sequence: bool = True, patient_name_help: str | None = None
) -> Callable[[Command], Command]:
    """Give a command the plan options in place of its `PlanArgs` parameter.

    `clinic=False` leaves out --clinic-name/--clinic-phone/--clinic-url, `sequence=False`
    --sequence (their PlanArgs fields keep their defaults); `patient_name_help` words --patient-name
    for a command that uses the name differently.
    """
    declared = dict(_PLAN_OPTIONS)
    for name in (*(() if clinic else _CLINIC), *(() if sequence else ("sequence",))):
        del declared[name]
    if patient_name_help is not None:
        declared["patient_name"] = Annotated[str | None, typer.Option("--patient-name", help=patient_name_help)]

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        group = [name for name, param in signature.parameters.items() if param.annotation is PlanArgs]
        if len(group) != 1:
            raise TypeError(f"{command.__name__} needs exactly one parameter annotated PlanArgs")
        params: list[inspect.Parameter] = []
        for name, param in signature.parameters.items():
            if name == group[0]:
                params += [
                    inspect.Parameter(option, _KEYWORD, annotation=kind, default=_DEFAULTS[option])
                    for option, kind in declared.items()
                ]
            else:
                params.append(param.replace(kind=_KEYWORD))

        @functools.wraps(command)
        def run(**values: Any) -> None:
            args = PlanArgs(**{name: values.pop(name) for name in declared})
            command(**values, **{group[0]: args})

        # What typer reads: this signature (not the wrapped one) and its annotations, as objects.
        run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {param.name: param.annotation for param in params} | {"return": None}
        return run

    return decorate
