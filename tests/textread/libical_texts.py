"""Prints the text values libical (Evolution's parser) reads from a calendar, as JSON.

Run with Debian's /usr/bin/python3, which has python3-gi and gir1.2-ical-3.0 (not the venv).
Usage: /usr/bin/python3 libical_texts.py FILE
"""

import json
import sys

import gi

gi.require_version("ICalGLib", "3.0")
from gi.repository import ICalGLib  # noqa: E402


def value(comp, kind):
    prop = comp.get_first_property(kind)
    if prop is None:
        return None
    val = prop.get_value()
    return val.get_text() if val is not None else None


def x_value(comp, name):
    prop = comp.get_first_property(ICalGLib.PropertyKind.X_PROPERTY)
    while prop is not None:
        if prop.get_x_name() == name:
            return prop.get_x()
        prop = comp.get_next_property(ICalGLib.PropertyKind.X_PROPERTY)
    return None


with open(sys.argv[1], encoding="utf-8") as handle:
    root = ICalGLib.Component.new_from_string(handle.read())
events = []
event = root.get_first_component(ICalGLib.ComponentKind.VEVENT_COMPONENT)
while event is not None:
    alarms = []
    alarm = event.get_first_component(ICalGLib.ComponentKind.VALARM_COMPONENT)
    while alarm is not None:
        alarms.append(value(alarm, ICalGLib.PropertyKind.DESCRIPTION_PROPERTY))
        alarm = event.get_next_component(ICalGLib.ComponentKind.VALARM_COMPONENT)
    events.append({
        "uid": event.get_uid(),
        "summary": event.get_summary(),
        "description": event.get_description(),
        "alarms": alarms,
    })
    event = root.get_next_component(ICalGLib.ComponentKind.VEVENT_COMPONENT)
name_prop = root.get_first_property(ICalGLib.PropertyKind.NAME_PROPERTY) if hasattr(
    ICalGLib.PropertyKind, "NAME_PROPERTY") else None
print(json.dumps({
    "name": name_prop.get_name() if name_prop is not None else None,
    "calname": x_value(root, "X-WR-CALNAME"),
    "events": events,
}))
