"""Every aftercal name the contract suite uses, imported here and nowhere else in tests/contract.

When a module moves or a constructor changes (calendars/caldav.py -> calendars/push/caldav.py,
a new keyword...), fix it here, once. The suite reads servers back without aftercal (raw HTTP +
vobject, the Google stand-in's own state), so only the code under test and the plan builder are
imported. (tests/caldav/conftest.py, whose `Server` the suite reuses, has its own imports.)
"""

from __future__ import annotations

from typing import Any

from calendars.base import (
    ProgressCallback,
    Publisher,
    RemoteEvent,
    SyncActions,
    SyncSummary,
    next_sequence,
    sync_plan,
    unpublish_treatment,
)
from calendars.caldav import CalDavConnection, CalDavPublisher, Password
from calendars.gcal import connect as _google_connect
from calendars.http import RetryPolicy
from reminders import load_protocol, make_plan
from reminders.errors import ChannelError, TransientError
from reminders.schedule import CarePlan, Reminder, treatment_tag

__all__ = [
    "CarePlan",
    "ChannelError",
    "ProgressCallback",
    "Publisher",
    "Reminder",
    "RemoteEvent",
    "SyncActions",
    "SyncSummary",
    "TransientError",
    "caldav_connection",
    "caldav_publisher",
    "google_publisher",
    "load_protocol",
    "make_plan",
    "next_sequence",
    "sync_plan",
    "treatment_tag",
    "unpublish_treatment",
]

# Retried once, without waiting: an injected failure ends a run at once, a real hiccup still passes.
NO_WAIT = RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0)


def caldav_connection(base_url: str, user: str, password: str) -> Any:
    """A CalDAV connection (has `.close()` and `.find_calendar(name, create=True)`)."""
    return CalDavConnection(base_url, user, Password(password, "test"), timeout=10, retry=NO_WAIT)


def caldav_publisher(connection: Any, calendar_url: str) -> Publisher:
    return CalDavPublisher(connection, calendar_url)


def google_publisher(api_endpoint: str, calendar_id: str) -> Any:
    """A Google publisher (a Publisher with `.close()`) on a Calendar v3 endpoint on loopback, without auth."""
    return _google_connect(api_endpoint=api_endpoint, no_auth=True, calendar_id=calendar_id, retry=NO_WAIT)
