"""aftercal's engine: treatment protocols and the schedule. It imports neither `calendars` nor `aftercal`.

`make_plan` turns (protocol, local start, IANA zone) into a CarePlan; the public API, with a
twin of every command, is the `aftercal` package (`import aftercal`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from reminders.errors import AftercalError, InputError, ProtocolError, StartTimeError, ZoneError
from reminders.protocol import CareProtocol, Step, load_protocol, shipped_protocols
from reminders.schedule import (
    CarePlan,
    Clinic,
    EventIds,
    PlanOptions,
    QuietHours,
    Reminder,
    build_plan,
    default_treatment_id,
    get_patient_zone,
    parse_start,
)

__all__ = [
    "AftercalError",
    "CarePlan",
    "CareProtocol",
    "Clinic",
    "EventIds",
    "InputError",
    "PlanOptions",
    "ProtocolError",
    "QuietHours",
    "Reminder",
    "StartTimeError",
    "Step",
    "ZoneError",
    "build_plan",
    "load_protocol",
    "make_plan",
    "shipped_protocols",
]


def make_plan(
    protocol: str | Path | CareProtocol,
    at: str | datetime,
    tz: str,
    *,
    treatment_id: str | None = None,
    options: PlanOptions | None = None,
    allow_fixed_zone: bool = False,
) -> CarePlan:
    """Protocol name/path, local start and IANA zone name in; a complete CarePlan out.

    `tz` is the patient's place (America/New_York); fixed offsets and abbreviations (EST, UTC,
    Etc/GMT+5) are refused unless `allow_fixed_zone` (see `get_patient_zone`).
    """
    proto = protocol if isinstance(protocol, CareProtocol) else load_protocol(protocol)
    zone = get_patient_zone(tz, allow_fixed=allow_fixed_zone)
    start = parse_start(at.isoformat() if isinstance(at, datetime) else at, zone)
    tid = treatment_id if treatment_id is not None else default_treatment_id(proto.id, start, zone)
    return build_plan(proto, tid, start, options)
