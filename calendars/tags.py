"""The names under which aftercal marks the events it writes, in every channel.

A publish finds a treatment's events by these marks and touches nothing without them; changing
a name orphans every event already published, so they are written down once, here.

iCalendar (`.ics` files, feeds, CalDAV): X- properties on each VEVENT.
Google Calendar: keys of `extendedProperties.private` (at most 44 characters each).
"""

from __future__ import annotations

# ---- iCalendar properties ------------------------------------------------------------------------
ICAL_PLAN = "X-AFTERCAL-PLAN"  # the plan tag: an opaque hash of the treatment id
ICAL_STEP = "X-AFTERCAL-STEP"  # the step key
ICAL_HASH = "X-AFTERCAL-HASH"  # a hash of what the patient sees (Reminder.content_hash)

# ---- Google extendedProperties.private keys -------------------------------------------------------
GOOGLE_PLAN = "aftercalPlan"
GOOGLE_UID = "aftercalUid"
GOOGLE_STEP = "aftercalStep"
GOOGLE_HASH = "aftercalHash"
GOOGLE_FORMAT = "aftercalFormat"  # version of the event mapping (calendars.gcal.BODY_FORMAT)
