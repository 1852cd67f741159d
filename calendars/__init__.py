"""Channels that carry a care plan out: iCalendar export, CalDAV, Google Calendar, feeds.

Each channel is one module; heavy client libraries are imported only by the channel that needs
them, so `aftercal plan` never pays for CalDAV, Google or server imports.
"""
