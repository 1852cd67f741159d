"""What the commands share: the clinic's configuration; the patient's zone, the plan, the past-start warning."""

from __future__ import annotations

import typer
from typer._click.globals import get_current_context

from aftercal.cli.options import PlanArgs
from aftercal.config import ClinicConfig, load_config
from aftercal.plans import machine_zone, past_start
from reminders import make_plan
from reminders.schedule import CarePlan, EventIds, get_patient_zone


def current_config() -> ClinicConfig:
    """The configuration the root command loaded (`--config FILE`, $AFTERCAL_CONFIG or the default file).

    Outside a command (no click context), the default configuration is loaded. A configuration
    error that a request for help put aside is raised here.
    """
    ctx = get_current_context(silent=True)
    state = ctx.find_root().obj if ctx is not None else None
    config = getattr(state, "config", None)
    if isinstance(config, ClinicConfig):
        return config
    error = getattr(state, "config_error", None)
    if isinstance(error, Exception):
        raise error
    return load_config()


def event_ids() -> EventIds:
    """How treatment ids become UIDs and tags: keyed by the clinic secret if there is one, else as before."""
    return EventIds(current_config().secret())


def patient_zone(tz: str | None, *, allow_fixed: bool = False) -> str:
    """The patient's zone name: --tz, else the machine's zone (said on stderr); offsets refused unless allowed."""
    if tz is not None:
        return get_patient_zone(tz, allow_fixed=allow_fixed).key
    zone = machine_zone(allow_fixed=allow_fixed)
    typer.echo(f"aftercal: no --tz given; using this machine's zone {zone}", err=True)
    return zone


def build_plan(args: PlanArgs, protocol: str, at: str) -> CarePlan:
    """The plan for PROTOCOL, --at and the plan options."""
    options = args.plan_options()
    zone = patient_zone(args.tz, allow_fixed=args.allow_fixed_zone)
    return make_plan(
        protocol, at, zone, treatment_id=args.treatment_id, options=options, allow_fixed_zone=args.allow_fixed_zone
    )


def warn_if_past(care: CarePlan, where: str = "") -> None:
    """A warning on stderr (not an error: clinics enter yesterday's treatments) for a start in the past.

    Commands call it once their work is done, so that a failing command still says one line only.
    """
    past = past_start(care)
    if past is None:
        return
    typer.echo(
        f"aftercal: warning: {where}the treatment start {care.start:%Y-%m-%d %H:%M} {care.zone.key} is in the past: "
        f"{past.over} of {past.total} reminders are already over ({'check its start' if where else 'check --at'} "
        "if that is a typo)",
        err=True,
    )
