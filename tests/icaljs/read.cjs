// Reads an iCalendar file with ical.js (Thunderbird's parser) and prints each event as JSON:
// uid, local start as written, its zone, the UTC instant ical.js computes from the VTIMEZONE,
// and the alarms. Usage: node read.cjs ICALJS_DIR FILE
const path = require("path");
const fs = require("fs");
const ICAL = require(path.join(process.argv[2], "node_modules", "ical.js", "dist", "ical.es5.cjs"));
const text = fs.readFileSync(process.argv[3], "utf8");
const root = new ICAL.Component(ICAL.parse(text));
for (const vtz of root.getAllSubcomponents("vtimezone")) {
  ICAL.TimezoneService.register(vtz);
}
const out = {
  name: root.getFirstPropertyValue("x-wr-calname"),
  refresh: String(root.getFirstPropertyValue("refresh-interval")),
  events: [],
};
for (const vevent of root.getAllSubcomponents("vevent")) {
  const event = new ICAL.Event(vevent);
  const start = event.startDate;
  out.events.push({
    uid: event.uid,
    summary: event.summary,
    isDate: start.isDate,
    local: start.toString(),
    zone: start.isDate ? null : start.zone.tzid,
    utc: start.isDate ? null : start.toUnixTime(),
    end: event.endDate.toString(),
    alarms: vevent.getAllSubcomponents("valarm").map((a) => ({
      action: a.getFirstPropertyValue("action"),
      description: a.getFirstPropertyValue("description"),
      trigger: a.getFirstPropertyValue("trigger").toSeconds(),
    })),
  });
}
process.stdout.write(JSON.stringify(out));
