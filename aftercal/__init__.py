"""aftercal: a skin treatment's aftercare as calendar reminders, from Python.

Every command of the `aftercal` command line has a twin here; the commands convert their
arguments, call it and print. Nothing here prints::

    import aftercal

    plan = aftercal.make_plan("microneedling", "2026-11-24T10:00", "America/New_York", treatment_id="T-1001")
    aftercal.write_plan(plan, "care.ics")

The packages under it, whose arrows only point down (tests/test_architecture.py):

    aftercal    this library and its command line (aftercal.cli, the only user of typer and rich)
    calendars   the channels: iCalendar, CalDAV, Google Calendar, subscription feeds, printed handouts
    reminders   the engine: protocols, the schedule, errors, appointments CSV, atomic files
"""

from __future__ import annotations

from aftercal.config import ClinicConfig, init_clinic, load_config
from aftercal.feeds import (
    Forgetting,
    NewLink,
    TreatmentState,
    add_treatment,
    cancel_treatment,
    ended_before,
    feed_links,
    forget_treatment,
    get_treatment,
    init_store,
    list_treatments,
    new_link,
    reschedule_treatment,
    revoke_link,
    rotate_link,
    serve_feeds,
    treatment_options,
    treatment_state,
)
from aftercal.handouts import default_paper, make_handout, write_handout, write_link_handout
from aftercal.plans import (
    PastStart,
    SourceTrace,
    TimelineRow,
    check_protocol,
    list_protocols,
    machine_zone,
    past_start,
    plan_options,
    render_plan,
    timeline,
    trace_protocol,
    write_plan,
)
from aftercal.publishing import (
    JobRow,
    PublishEvents,
    PublishRun,
    google_login,
    jobs_from_csv,
    publish_caldav,
    publish_google,
    unpublish_caldav,
    unpublish_google,
)
from aftercal.sync import ChannelOutcome, SyncReport, channel_target, sync_store
from calendars.base import JobResult, PublishJob, SyncActions, SyncSummary
from reminders import make_plan
from reminders.appointments import BadRow
from reminders.errors import AftercalError, ChannelError, InputError, OutputError, ProtocolError, ZoneError
from reminders.protocol import CareProtocol, Step, load_protocol
from reminders.schedule import CarePlan, Clinic, EventIds, PlanOptions, QuietHours, Reminder

__all__ = [
    "AftercalError",
    "BadRow",
    "CarePlan",
    "CareProtocol",
    "ChannelError",
    "ChannelOutcome",
    "Clinic",
    "ClinicConfig",
    "EventIds",
    "Forgetting",
    "InputError",
    "JobResult",
    "JobRow",
    "NewLink",
    "OutputError",
    "PastStart",
    "PlanOptions",
    "ProtocolError",
    "PublishEvents",
    "PublishJob",
    "PublishRun",
    "QuietHours",
    "Reminder",
    "SourceTrace",
    "Step",
    "SyncActions",
    "SyncReport",
    "SyncSummary",
    "TimelineRow",
    "TreatmentState",
    "ZoneError",
    "add_treatment",
    "cancel_treatment",
    "channel_target",
    "check_protocol",
    "default_paper",
    "ended_before",
    "feed_links",
    "forget_treatment",
    "get_treatment",
    "google_login",
    "init_clinic",
    "init_store",
    "jobs_from_csv",
    "list_protocols",
    "list_treatments",
    "load_config",
    "load_protocol",
    "machine_zone",
    "make_handout",
    "make_plan",
    "new_link",
    "past_start",
    "plan_options",
    "publish_caldav",
    "publish_google",
    "render_plan",
    "reschedule_treatment",
    "revoke_link",
    "rotate_link",
    "serve_feeds",
    "sync_store",
    "timeline",
    "trace_protocol",
    "treatment_options",
    "treatment_state",
    "unpublish_caldav",
    "unpublish_google",
    "write_handout",
    "write_link_handout",
    "write_plan",
]
