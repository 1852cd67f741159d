// Prints the text values ical.js (Thunderbird's parser) reads from a calendar, as JSON.
// Usage: node icaljs_texts.cjs ICALJS_DIR FILE
const path = require("path");
const fs = require("fs");
const ICAL = require(path.join(process.argv[2], "node_modules", "ical.js", "dist", "ical.es5.cjs"));
const root = new ICAL.Component(ICAL.parse(fs.readFileSync(process.argv[3], "utf8")));
const out = {
  name: root.getFirstPropertyValue("name"),
  calname: root.getFirstPropertyValue("x-wr-calname"),
  events: root.getAllSubcomponents("vevent").map((e) => ({
    uid: e.getFirstPropertyValue("uid"),
    summary: e.getFirstPropertyValue("summary"),
    description: e.getFirstPropertyValue("description"),
    alarms: e.getAllSubcomponents("valarm").map((a) => a.getFirstPropertyValue("description")),
  })),
};
process.stdout.write(JSON.stringify(out));
