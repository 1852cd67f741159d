"""The patient's landing page behind a subscription feed link: one self-contained HTML5 page.

`render_landing_page` is pure (no clock, no I/O): the feed server passes the plan and the two
URLs of the feed and serves the string. The page is made for a phone: a viewport meta tag and
small inline CSS, no JavaScript, no fonts, images or scripts by URL (its Content-Security-Policy
forbids them), `noindex` and `no-referrer` (the link is a secret). Its only links that leave the
page are the three calendar services' "subscribe" addresses, which must carry the feed URL.

Every text that comes from a protocol, a plan option or a URL is HTML-escaped. No patient name
appears unless `plan.options.patient_name` is set (it is then part of the calendar name).
"""

from __future__ import annotations

import html
from datetime import date, datetime, timedelta
from urllib.parse import quote, urlsplit

from reminders.errors import InputError
from reminders.schedule import CarePlan, Reminder

GOOGLE_SUBSCRIBE = "https://calendar.google.com/calendar/render?cid="
OUTLOOK_SUBSCRIBE = "https://outlook.live.com/calendar/0/addfromweb?url="

# English names, not strftime's %a/%b: those follow the server's locale.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Nothing may load from anywhere: inline styles only, no scripts, no forms.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

_CSS = """
:root{color-scheme:light dark;--bg:#fbfaf8;--fg:#1d1d1f;--muted:#5b5b60;--card:#fff;--line:#e3e1dc;
--accent:#0b5cad;--accent-fg:#fff;--soft:#eef4fb;--warn:#fff6e0;--warn-line:#e8c66a}
@media (prefers-color-scheme:dark){:root{--bg:#151517;--fg:#f2f2f4;--muted:#a9a9b0;--card:#1f1f23;
--line:#34343a;--accent:#5aa3f0;--accent-fg:#0b1320;--soft:#1c2733;--warn:#2b2515;--warn-line:#7a6422}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);
font:17px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
overflow-wrap:break-word}
main{max-width:40rem;margin:0 auto;padding:1.25rem 1rem 2.5rem}
h1{font-size:1.55rem;line-height:1.25;margin:.25rem 0 .5rem}
h2{font-size:1.2rem;margin:2rem 0 .75rem}
p{margin:.5rem 0}
.lead{color:var(--muted);margin-bottom:1.25rem}
.buttons{display:grid;gap:.65rem;margin:1rem 0}
.button{display:block;padding:.9rem 1rem;border-radius:.8rem;background:var(--accent);color:var(--accent-fg);
text-align:center;text-decoration:none;font-weight:600;min-height:3rem}
.button.secondary{background:var(--card);color:var(--accent);border:1.5px solid var(--accent)}
.button small{display:block;font-weight:400;font-size:.85rem;opacity:.9}
.note{background:var(--warn);border:1px solid var(--warn-line);border-radius:.8rem;padding:.75rem 1rem;
margin:1.25rem 0}
.note h2{margin:.25rem 0 .5rem;font-size:1.05rem}
.note ul{margin:.25rem 0;padding-left:1.2rem}
.note li{margin:.35rem 0}
.timeline{list-style:none;margin:0;padding:0}
.day{margin:0 0 1rem}
.day>h3{font-size:1rem;margin:0 0 .4rem;color:var(--muted);font-weight:600}
.entry{background:var(--card);border:1px solid var(--line);border-radius:.8rem;margin:.45rem 0}
.entry summary{padding:.7rem .9rem;cursor:pointer;list-style-position:outside;margin-left:1rem;
-webkit-tap-highlight-color:transparent;border-radius:.8rem}
.entry summary:focus{outline:none}
.entry summary:focus-visible{outline:2px solid var(--accent)}
.entry .when{display:block;font-size:.9rem;color:var(--muted)}
.entry .title{font-weight:600}
.entry .body{padding:0 .9rem .8rem 1.9rem}
.entry .body ul{margin:.5rem 0;padding-left:1.1rem}
.entry .body li{margin:.3rem 0}
.period{background:var(--soft)}
.tag{display:inline-block;font-size:.78rem;padding:0 .4rem;border-radius:.4rem;border:1px solid var(--line);
margin-left:.35rem;color:var(--muted);font-weight:400;vertical-align:.1em}
footer{margin-top:2rem;color:var(--muted);font-size:.9rem}
"""


def render_landing_page(plan: CarePlan, *, ics_url: str, webcal_url: str, cancelled: bool = False) -> str:
    """The complete HTML page for a treatment's feed link (or a short page if it was cancelled).

    `ics_url` is the feed over http(s); `webcal_url` the same feed as webcal(s):// for Apple's
    subscribe sheet. Both are checked so that a wrong caller cannot put `javascript:` in a link.
    """
    _check_url(ics_url, ("http", "https"), "ics_url")
    _check_url(webcal_url, ("webcal", "webcals", "http", "https"), "webcal_url")
    if cancelled:
        return _cancelled_page(plan)
    return _page(plan, ics_url=ics_url, webcal_url=webcal_url)


def subscribe_links(plan: CarePlan, *, ics_url: str, webcal_url: str) -> dict[str, str]:
    """The four links of the page: Apple (webcal), Google, Outlook and the one-time download."""
    separator = "&" if urlsplit(ics_url).query else "?"
    return {
        "apple": webcal_url,
        "google": GOOGLE_SUBSCRIBE + quote(webcal_url, safe=""),
        "outlook": OUTLOOK_SUBSCRIBE + quote(ics_url, safe="") + "&name=" + quote(plan.calendar_name, safe=""),
        "download": ics_url + separator + "download=1",
    }


def _check_url(url: str, schemes: tuple[str, ...], what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes or not parts.netloc or any(c.isspace() or ord(c) < 32 for c in url):
        raise InputError(f"{what} must be an absolute {'/'.join(schemes)} URL, got {url[:80]!r}")


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _head(title: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n'
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex, nofollow">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">\n'
        '<meta name="format-detection" content="telephone=no">\n'
        f"<title>{_e(title)}</title>\n"
        f"<style>{_CSS}</style>\n"
        "</head>\n"
    )


def _day_label(day: date) -> str:
    return f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def _short_day(day: date) -> str:
    return f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def _text_block(text: str) -> str:
    """Plain text as escaped HTML: blank lines part paragraphs, runs of "- " lines become lists."""
    out: list[str] = []
    for paragraph in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line.strip() for line in paragraph.split("\n") if line.strip()]
        prose: list[str] = []
        items: list[str] = []
        for line in [*lines, ""]:
            if line.startswith(("- ", "* ", "• ")):
                if prose:
                    out.append("<p>" + "<br>".join(prose) + "</p>")
                    prose = []
                items.append(_e(line[2:].strip()))
                continue
            if items:
                out.append("<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>")
                items = []
            if line:
                prose.append(_e(line))
        if prose:
            out.append("<p>" + "<br>".join(prose) + "</p>")
    return "".join(out)


def _last_day(reminder: Reminder) -> date:
    """The last local day a reminder covers (all-day ends are exclusive)."""
    if isinstance(reminder.start, datetime):
        return reminder.start.date()
    assert isinstance(reminder.end, date)
    return reminder.end - timedelta(days=1)


def _day_number(plan: CarePlan, day: date) -> int:
    return (day - plan.start.date()).days


def _entry(plan: CarePlan, reminder: Reminder) -> str:
    if reminder.all_day:
        assert isinstance(reminder.start, date) and isinstance(reminder.end, date)
        last = reminder.end - timedelta(days=1)
        first_n, last_n = _day_number(plan, reminder.start), _day_number(plan, last)
        when = f"{_short_day(reminder.start)} to {_short_day(last)} (days {first_n}–{last_n}), all day"
        css = "entry period"
        tag = ""
    else:
        assert isinstance(reminder.start, datetime)
        when = f"{reminder.start:%H:%M}"
        css = "entry"
        tag = '<span class="tag">alert</span>' if reminder.alarm_text else '<span class="tag">no alert</span>'
    note = f"<p><em>{_e(reminder.note[:1].upper() + reminder.note[1:])}.</em></p>" if reminder.note else ""
    return (
        f'<li class="{css}"><details><summary><span class="when">{_e(when)}</span>'
        f'<span class="title">{_e(reminder.title)}</span>{tag}</summary>'
        f'<div class="body">{_text_block(reminder.description)}{note}</div></details></li>\n'
    )


def _timeline(plan: CarePlan) -> str:
    groups: dict[date, list[Reminder]] = {}
    for reminder in plan.reminders:
        start = reminder.start.date() if isinstance(reminder.start, datetime) else reminder.start
        groups.setdefault(start, []).append(reminder)
    parts = ['<ol class="timeline">\n']
    for day, reminders in groups.items():
        n = _day_number(plan, day)
        label = "Treatment day" if n == 0 else f"Day {n}"
        parts.append(f'<li class="day"><h3>{_e(label)} · {_e(_day_label(day))}</h3><ul class="timeline">\n')
        parts.extend(_entry(plan, r) for r in reminders)
        parts.append("</ul></li>\n")
    parts.append("</ol>\n")
    return "".join(parts)


def _clinic_line(plan: CarePlan) -> str:
    footer = plan.options.clinic.footer()
    # Shown as text, not as a link: the page links to nothing but the calendar services.
    return f"<p>{_e(footer)}</p>" if footer else ""


def _page(plan: CarePlan, *, ics_url: str, webcal_url: str) -> str:
    links = subscribe_links(plan, ics_url=ics_url, webcal_url=webcal_url)
    count = len(plan.reminders)
    alerts = sum(1 for r in plan.reminders if r.alarm_text)
    first = plan.first_date()
    last = max((_last_day(r) for r in plan.reminders), default=first)
    zone_abbr = plan.start.tzname() or ""
    zone_text = plan.zone.key + (f" ({zone_abbr})" if zone_abbr and zone_abbr != plan.zone.key else "")
    name = plan.calendar_name
    body = [
        "<body>\n<main>\n<header>\n",
        f"<h1>{_e(name)}</h1>\n",
        f'<p class="lead">{count} reminders from {_e(_day_label(first))} to {_e(_day_label(last))}; '
        f"{alerts} of them ring on your phone (and watch) at the right moment. "
        f"Times are in {_e(zone_text)}.</p>\n</header>\n",
        '<section aria-labelledby="add">\n<h2 id="add">Add them to your calendar</h2>\n',
        "<p>Pick the calendar you use. You subscribe once; if the clinic changes your plan, "
        "your calendar updates by itself.</p>\n",
        '<div class="buttons">\n',
        f'<a class="button" id="apple" href="{_e(links["apple"])}">Apple Calendar'
        "<small>iPhone, iPad, Mac</small></a>\n",
        f'<a class="button" id="google" href="{_e(links["google"])}" rel="noopener noreferrer">Google Calendar'
        "<small>Android, Gmail</small></a>\n",
        f'<a class="button" id="outlook" href="{_e(links["outlook"])}" rel="noopener noreferrer">Outlook'
        "<small>Outlook.com, Microsoft 365</small></a>\n",
        f'<a class="button secondary" id="download" href="{_e(links["download"])}" download>'
        "Download once (.ics)<small>A copy that will not update</small></a>\n",
        "</div>\n</section>\n",
        '<section class="note" aria-labelledby="alerts">\n<h2 id="alerts">Keep the alerts on</h2>\n<ul>\n',
        "<li><strong>iPhone, iPad, Mac:</strong> when Calendar asks, leave <em>Remove Alerts</em> "
        "switched off, otherwise the reminders arrive silently.</li>\n",
        "<li><strong>Google Calendar:</strong> it ignores the alerts of subscribed calendars. In Google "
        "Calendar's settings, open this calendar and add a notification, or ask the clinic to send the "
        "reminders to your Google Calendar directly.</li>\n",
        "<li><strong>Outlook:</strong> check that reminders are on for this calendar.</li>\n",
        "</ul>\n</section>\n",
        '<section aria-labelledby="plan">\n<h2 id="plan">Your timeline</h2>\n',
        "<p>Tap a reminder to read it.</p>\n",
        _timeline(plan),
        "</section>\n<footer>\n",
        _clinic_line(plan),
        "<p>This page and its calendar link are private: anyone who has the link can read them, "
        "so please do not share it.</p>\n",
        "</footer>\n</main>\n</body>\n</html>\n",
    ]
    return _head(name) + "".join(body)


def _cancelled_page(plan: CarePlan) -> str:
    body = (
        "<body>\n<main>\n"
        "<h1>This aftercare calendar was cancelled</h1>\n"
        f'<p class="lead">{_e(plan.calendar_name)}</p>\n'
        "<p>The clinic cancelled these reminders. If you subscribed to them, your calendar removes them "
        "at its next refresh; you can also delete the subscription yourself.</p>\n"
        "<p>If you have questions about your aftercare, please contact the clinic.</p>\n"
        f"<footer>\n{_clinic_line(plan)}</footer>\n"
        "</main>\n</body>\n</html>\n"
    )
    return _head("Aftercare calendar cancelled") + body
