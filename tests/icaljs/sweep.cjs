// Reads many calendars with ical.js in one process, for tests/test_vtimezone.py.
// Usage: node sweep.cjs ICALJS_DIR JOBS.json, where JOBS.json is a list of
//   {"ics": "BEGIN:VCALENDAR...", "tzid": "America/New_York" or null, "local": ["2026-11-01T01:30:00", ...]}
// Prints a list of {"events": {uid: UTC instant of DTSTART (Unix seconds)}, "local": [UTC offsets of
// the wall times in tzid, in seconds]}: what ical.js derives from each calendar's own VTIMEZONE.
const path = require("path");
const fs = require("fs");
const ICAL = require(path.join(process.argv[2], "node_modules", "ical.js", "dist", "ical.es5.cjs"));
const jobs = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const out = [];
for (const job of jobs) {
  // Each calendar is read on its own, with only its own definitions, as a client would.
  ICAL.TimezoneService.reset();
  const root = new ICAL.Component(ICAL.parse(job.ics));
  for (const vtz of root.getAllSubcomponents("vtimezone")) {
    ICAL.TimezoneService.register(vtz);
    // ical.js expands a zone's changes again (appending copies) each time a later year is asked
    // for; asking for the last year first expands once. The offsets found are the same.
    ICAL.TimezoneService.get(vtz.getFirstPropertyValue("tzid")).utcOffset(ICAL.Time.fromDateTimeString("2210-12-31T00:00:00"));
  }
  const events = {};
  for (const vevent of root.getAllSubcomponents("vevent")) {
    const event = new ICAL.Event(vevent);
    if (!event.startDate.isDate) {
      events[event.uid] = event.startDate.toUnixTime();
    }
  }
  const local = [];
  if (job.tzid) {
    const zone = ICAL.TimezoneService.get(job.tzid);
    for (const text of job.local || []) {
      local.push(zone.utcOffset(ICAL.Time.fromDateTimeString(text)));
    }
  }
  out.push({ events, local });
}
process.stdout.write(JSON.stringify(out));
