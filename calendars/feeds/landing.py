"""The patient's landing page behind a subscription feed link: one self-contained HTML5 page.

`render_landing_page` is pure (no clock, no I/O): the feed server passes the plan, the two URLs
of the feed, the patient's local date (`today`, from the server's clock in the plan's zone) and,
when the patient's own Google Calendar can be connected, a `GoogleSection`; it serves the string.
The page is made for a phone: a viewport meta tag and small inline CSS, no JavaScript, no fonts,
images or scripts by URL (its Content-Security-Policy forbids them), `noindex` and `no-referrer`
(the link is a secret). Its only links that leave the page are the calendar services' "subscribe"
addresses (which must carry the feed URL), the clinic's `tel:` number, and the Google section's
connect address; its only form is the Google section's disconnect button (a POST to this site).

Every text that comes from a protocol, a plan option, a URL or the Google section is
HTML-escaped. No patient name appears unless `plan.options.patient_name` is set (it is then part
of the calendar name). `inactive_link_page` is the page for a link that is not (or no longer)
active: the same bytes whatever the reason, so that it tells a guessed link from a revoked one by
nothing.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from urllib.parse import quote, urlsplit

from reminders.errors import InputError
from reminders.schedule import CarePlan, Reminder

GOOGLE_SUBSCRIBE = "https://calendar.google.com/calendar/render?cid="
OUTLOOK_SUBSCRIBE = "https://outlook.live.com/calendar/0/addfromweb?url="
# The same deeplink for work or school (Microsoft 365) accounts, which live on outlook.office.com.
OUTLOOK_WORK_SUBSCRIBE = "https://outlook.office.com/calendar/0/addfromweb?url="

# English names, not strftime's %a/%b: those follow the server's locale.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Nothing may load from anywhere: inline styles only, no scripts; a form may post to this site only
# (the Google section's disconnect button), and none at all on a page without that form.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action {form}"

# A phone number in free text: an optional leading +, then digits and the usual separators, up to
# its last digit (so "+1 212 555 0100 ext. 12" or "555 0100 (mobile)" stop before the words).
_PHONE = re.compile(r"\+?[\d(][\d\s().\-/]*\d")

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
.clinic{margin:0;font-weight:600;color:var(--muted)}
.note .count{font-weight:600}
.connect .message{background:var(--soft);border-radius:.8rem;padding:.65rem .9rem;margin:.75rem 0}
.connect form{margin:1rem 0}
button.button{width:100%;font:inherit;font-weight:600;cursor:pointer}
.past>details>summary{padding:.7rem .9rem;min-height:2.75rem;border:1px dashed var(--line);border-radius:.8rem;
color:var(--muted);font-weight:600;cursor:pointer;margin-bottom:1rem}
.past>details>summary:focus{outline:none}
.past>details>summary:focus-visible{outline:2px solid var(--accent)}
.today-marker,.day.today{border-left:4px solid var(--accent);padding-left:.75rem;margin:0 0 1rem}
.today-label{margin:0 0 .3rem;font-weight:700;color:var(--accent)}
.ongoing{margin:.3rem 0 .5rem;padding-left:1.1rem;font-size:.95rem}
footer{margin-top:2rem;color:var(--muted);font-size:.9rem}
"""


@dataclass(frozen=True)
class GoogleSection:
    """What the page says about connecting the patient's own Google Calendar.

    `connect_url`: where "Connect Google Calendar" leads (a GET link: this site's route that starts
    Google's sign-in, or Google's own address); `connected`: whether the patient's Google Calendar is
    connected; `disconnect_url` and `csrf_token`: the disconnect form's target (a POST to this site)
    and its hidden `csrf` field; `message`: one line to show, e.g. the outcome of the last connect.
    URLs must be absolute http(s) addresses or paths of this site (never `javascript:` and the like).
    """

    connect_url: str | None
    connected: bool
    disconnect_url: str | None
    csrf_token: str | None
    message: str | None

    def __post_init__(self) -> None:
        for what in ("connect_url", "disconnect_url"):
            url = getattr(self, what)
            if url is not None:
                _check_link(url, what)
        if self.disconnect_url is not None and not self.csrf_token:
            raise InputError("disconnect_url needs a csrf_token: the disconnect form must carry one")


def render_landing_page(
    plan: CarePlan,
    *,
    ics_url: str,
    webcal_url: str,
    today: date,
    cancelled: bool = False,
    google: GoogleSection | None = None,
) -> str:
    """The complete HTML page for a treatment's feed link (or a short page if it was cancelled).

    `ics_url` is the feed over http(s); `webcal_url` the same feed as webcal(s):// for Apple's
    subscribe sheet. Both are checked so that a wrong caller cannot put `javascript:` in a link.
    `today` is the patient's local date (the server's clock in `plan.zone`): the timeline marks it
    and folds the days before it. `google`: the "Google Calendar (Android)" section, or None for
    none (the page then only explains what a Google subscription does). A cancelled plan's page
    shows the Google section only while it is connected, so that it can still be disconnected.
    """
    _check_url(ics_url, ("http", "https"), "ics_url")
    _check_url(webcal_url, ("webcal", "webcals", "http", "https"), "webcal_url")
    if cancelled:
        return _cancelled_page(plan, google=google if google is not None and google.connected else None)
    return _page(plan, ics_url=ics_url, webcal_url=webcal_url, today=today, google=google)


def subscribe_links(plan: CarePlan, *, ics_url: str, webcal_url: str) -> dict[str, str]:
    """The page's links: Apple (webcal), Google, Outlook.com, Outlook for work or school (Microsoft
    365 accounts, on outlook.office.com) and the one-time download."""
    separator = "&" if urlsplit(ics_url).query else "?"
    outlook_query = quote(ics_url, safe="") + "&name=" + quote(plan.calendar_name, safe="")
    return {
        "apple": webcal_url,
        "google": GOOGLE_SUBSCRIBE + quote(webcal_url, safe=""),
        "outlook": OUTLOOK_SUBSCRIBE + outlook_query,
        "outlook_work": OUTLOOK_WORK_SUBSCRIBE + outlook_query,
        "download": ics_url + separator + "download=1",
    }


def tel_link(phone: str) -> str | None:
    """A `tel:` URI one tap calls, from a phone number as a clinic writes it, or None.

    Keeps the first number in the text: its digits, with a leading + when it has one
    ("+1 (212) 555-0100 ext. 12" is tel:+12125550100); None when it has fewer than 3 digits.
    """
    match = _PHONE.search(phone)
    if match is None:
        return None
    digits = re.sub(r"\D", "", match.group(0))
    if len(digits) < 3:
        return None
    return "tel:" + ("+" if match.group(0).startswith("+") else "") + digits


@cache
def inactive_link_page() -> str:
    """The page for /f/<token> when the link is not active: unknown, rotated, revoked or forgotten
    alike (the same bytes each time: it must not tell a guessed link from one that was revoked)."""
    body = (
        "<body>\n<main>\n"
        "<h1>This link is not active</h1>\n"
        "<p>Ask your clinic for a new one.</p>\n"
        "</main>\n</body>\n</html>\n"
    )
    return _head("Link not active") + body


def _check_url(url: str, schemes: tuple[str, ...], what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes or not parts.netloc or any(c.isspace() or ord(c) < 32 for c in url):
        raise InputError(f"{what} must be an absolute {'/'.join(schemes)} URL, got {url[:80]!r}")


def _check_link(url: str, what: str) -> None:
    """An absolute http(s) URL, or a path of this site ("/...", not "//host/...")."""
    if url.startswith("/") and not url.startswith("//") and "\\" not in url:
        if any(c.isspace() or ord(c) < 32 for c in url):
            raise InputError(f"{what} must be an http(s) URL or a path of this site, got {url[:80]!r}")
        return
    try:
        _check_url(url, ("http", "https"), what)
    except InputError:
        raise InputError(f"{what} must be an http(s) URL or a path of this site, got {url[:80]!r}") from None


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _head(title: str, *, form: bool = False) -> str:
    csp = _CSP.format(form="'self'" if form else "'none'")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n'
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex, nofollow">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">\n'
        # Numbers in the text (dates, times) are not phone links; the clinic's number is a real one.
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


def _first_day(reminder: Reminder) -> date:
    return reminder.start.date() if isinstance(reminder.start, datetime) else reminder.start


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


def _day(plan: CarePlan, day: date, reminders: list[Reminder], *, today_extra: str | None = None) -> str:
    """One day of the timeline; `today_extra` (the today marker's lines) makes it today's."""
    n = _day_number(plan, day)
    label = "Treatment day" if n == 0 else f"Day {n}"
    opening = (
        f'<li class="day today" id="today"><p class="today-label">Today</p>{today_extra}'
        if today_extra is not None
        else '<li class="day">'
    )
    return (
        f'{opening}<h3>{_e(label)} · {_e(_day_label(day))}</h3><ul class="timeline">\n'
        + "".join(_entry(plan, r) for r in reminders)
        + "</ul></li>\n"
    )


def _ongoing(plan: CarePlan, today: date) -> str:
    """The all-day periods that began before today and still run: they stay visible today."""
    running = [r for r in plan.reminders if r.all_day and _first_day(r) < today <= _last_day(r)]
    if not running:
        return ""
    items = "".join(f"<li>{_e(r.title)}, until {_e(_short_day(_last_day(r)))}</li>" for r in running)
    return f'<p>Still running today:</p><ul class="ongoing">{items}</ul>'


def _today_marker(plan: CarePlan, today: date, *, over: bool) -> str:
    n = _day_number(plan, today)
    number = f" (day {n})" if n > 0 else ""
    said = "<p>Your aftercare reminders are all behind you.</p>" if over else "<p>Nothing rings today.</p>"
    return (
        f'<li class="today-marker" id="today"><p class="today-label">Today · {_e(_day_label(today))}{number}</p>'
        f"{said}{_ongoing(plan, today)}</li>\n"
    )


def _timeline(plan: CarePlan, today: date) -> str:
    """The days with reminders in order; the days before `today` folded in one <details> (closed),
    and a marker for today: today's own day when it has reminders, else a line where it falls."""
    groups: dict[date, list[Reminder]] = {}
    for reminder in plan.reminders:
        groups.setdefault(_first_day(reminder), []).append(reminder)
    days = sorted(groups)
    past = [day for day in days if day < today]
    parts = ['<ol class="timeline">\n']
    if past:
        label = f"{len(past)} earlier day" + ("" if len(past) == 1 else "s")
        parts.append(f'<li class="past"><details><summary>{_e(label)}</summary><ol class="timeline">\n')
        parts.extend(_day(plan, day, groups[day]) for day in past)
        parts.append("</ol></details></li>\n")
    if today not in groups:
        over = today > max((_last_day(r) for r in plan.reminders), default=today)
        parts.append(_today_marker(plan, today, over=over))
    for day in days[len(past) :]:
        extra = _ongoing(plan, today) if day == today else None
        parts.append(_day(plan, day, groups[day], today_extra=extra))
    parts.append("</ol>\n")
    return "".join(parts)


def _clinic_line(plan: CarePlan) -> str:
    footer = plan.options.clinic.footer()
    return f"<p>{_e(footer)}</p>" if footer else ""


def _clinic_header(plan: CarePlan) -> str:
    name = plan.options.clinic.name
    return f'<p class="clinic" id="clinic">{_e(name)}</p>\n' if name else ""


def _call_button(plan: CarePlan) -> str:
    phone = plan.options.clinic.phone
    href = tel_link(phone) if phone else None
    if phone is None or href is None:
        return ""
    return (
        f'<div class="buttons"><a class="button secondary" id="call" href="{_e(href)}">Call the clinic'
        f"<small>{_e(phone)}</small></a></div>\n"
    )


def _counts(plan: CarePlan, today: date, google: GoogleSection | None) -> str:
    """What rings where, counted: subscribed calendars differ, and the page says how."""
    alerts = [r for r in plan.reminders if r.alarm_text]
    ahead = sum(1 for r in alerts if _first_day(r) >= today)
    still = f" ({ahead} of them from today on)" if ahead < len(alerts) else ""
    rings = f"{len(alerts)} reminder{'' if len(alerts) == 1 else 's'} ring{'s' if len(alerts) == 1 else ''}"
    if google is not None and google.connected:
        google_line = (
            f'<span class="count">connected: {rings}</span>{still}, from a calendar of their own in your '
            "Google account (see below). A subscription alone would ring none: Google Calendar ignores "
            "the alerts of subscribed calendars."
        )
    elif google is not None and google.connect_url:
        google_line = (
            '<span class="count">subscribed: none ring</span>. Google Calendar ignores the alerts of subscribed '
            f"calendars (and refreshes them about once a day). Connect your Google Calendar below and {rings}."
        )
    else:
        google_line = (
            '<span class="count">subscribed: none ring</span>. Google Calendar ignores the alerts of subscribed '
            "calendars (and refreshes them about once a day): ask the clinic to send the reminders to your "
            "Google Calendar directly."
        )
    return (
        '<section class="note" aria-labelledby="alerts">\n<h2 id="alerts">What rings, where</h2>\n<ul>\n'
        f'<li><strong>iPhone, iPad, Mac</strong> (Apple Calendar, subscribed): <span class="count">{rings}</span>'
        f"{still}, as long as <em>Remove Alerts</em> is switched off: leave it off when Calendar asks, "
        "otherwise the reminders arrive silently.</li>\n"
        f"<li><strong>Google Calendar on Android</strong>, {google_line}</li>\n"
        '<li><strong>Outlook</strong> (subscribed): <span class="count">not promised</span>. Whether the alerts '
        "of a subscribed calendar ring depends on the Outlook app: check that reminders are on for this "
        "calendar.</li>\n"
        "</ul>\n</section>\n"
    )


def _google_section(google: GoogleSection, *, cancelled: bool = False) -> str:
    parts = ['<section class="connect" aria-labelledby="google-connect">\n']
    parts.append('<h2 id="google-connect">Google Calendar (Android): reminders that ring</h2>\n')
    if google.message:
        parts.append(f'<p class="message" id="google-message" role="status">{_e(google.message)}</p>\n')
    if google.connected:
        if cancelled:
            parts.append(
                "<p>Your Google Calendar is still connected. Disconnect it to remove these reminders from it "
                "and end the access you gave to your Google account.</p>\n"
            )
        else:
            parts.append(
                "<p>Your Google Calendar is connected: these reminders are in a calendar of their own in your "
                "Google account, with alerts that ring on your phone and watch, and they follow any change "
                "the clinic makes.</p>\n"
            )
        if google.disconnect_url and google.csrf_token:
            parts.append(
                f'<form method="post" action="{_e(google.disconnect_url)}">'
                f'<input type="hidden" name="csrf" value="{_e(google.csrf_token)}">'
                '<button class="button secondary" id="google-disconnect" type="submit">'
                "Disconnect Google Calendar<small>Removes these reminders from your Google Calendar</small>"
                "</button></form>\n"
            )
    elif google.connect_url:
        parts.append(
            "<p>Google Calendar ignores the alerts of a subscription. Connect your Google account once instead: "
            "the reminders go into a new calendar of their own in it, with alerts that ring on your Android "
            "phone and watch, and follow any change the clinic makes. It can touch no other calendar of yours, "
            "and you can disconnect here at any time.</p>\n"
            f'<div class="buttons"><a class="button" id="google-connect-button" href="{_e(google.connect_url)}">'
            "Connect Google Calendar<small>Sign in with Google</small></a></div>\n"
        )
    else:
        parts.append("<p>Connecting Google Calendar is not available right now: please ask your clinic.</p>\n")
    parts.append("</section>\n")
    return "".join(parts)


def _page(plan: CarePlan, *, ics_url: str, webcal_url: str, today: date, google: GoogleSection | None) -> str:
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
        _clinic_header(plan),
        f"<h1>{_e(name)}</h1>\n",
        f'<p class="lead">{count} reminders from {_e(_day_label(first))} to {_e(_day_label(last))}; '
        f"{alerts} of them come with an alert for your phone (and watch); where it rings depends on your "
        "calendar (see below). "
        f"Times are in {_e(zone_text)}.</p>\n",
        _call_button(plan),
        "</header>\n",
        '<section aria-labelledby="add">\n<h2 id="add">Add them to your calendar</h2>\n',
        "<p>Pick the calendar you use. You subscribe once; if the clinic changes your plan, "
        "your calendar updates by itself.</p>\n",
        '<div class="buttons">\n',
        f'<a class="button" id="apple" href="{_e(links["apple"])}">Apple Calendar'
        "<small>iPhone, iPad, Mac</small></a>\n",
        f'<a class="button" id="google" href="{_e(links["google"])}" rel="noopener noreferrer">Google Calendar'
        "<small>Android, Gmail: without alerts</small></a>\n",
        f'<a class="button" id="outlook" href="{_e(links["outlook"])}" rel="noopener noreferrer">Outlook.com'
        "<small>Personal account: Outlook.com, Hotmail, Live</small></a>\n",
        f'<a class="button" id="outlook-work" href="{_e(links["outlook_work"])}" rel="noopener noreferrer">'
        "Outlook for work or school<small>Microsoft 365 account of an employer or school</small></a>\n",
        f'<a class="button secondary" id="download" href="{_e(links["download"])}" download>'
        "Download once (.ics)<small>A copy that will not update</small></a>\n",
        "</div>\n</section>\n",
        _counts(plan, today, google),
        _google_section(google) if google is not None else "",
        '<section aria-labelledby="plan">\n<h2 id="plan">Your timeline</h2>\n',
        "<p>Tap a reminder to read it.</p>\n",
        _timeline(plan, today),
        "</section>\n<footer>\n",
        _clinic_line(plan),
        "<p>This page and its calendar link are private: anyone who has the link can read them, "
        "so please do not share it.</p>\n",
        "</footer>\n</main>\n</body>\n</html>\n",
    ]
    has_form = google is not None and google.connected and bool(google.disconnect_url)
    return _head(name, form=has_form) + "".join(body)


def _cancelled_page(plan: CarePlan, *, google: GoogleSection | None) -> str:
    body = (
        "<body>\n<main>\n"
        f"{_clinic_header(plan)}"
        "<h1>This aftercare calendar was cancelled</h1>\n"
        f'<p class="lead">{_e(plan.calendar_name)}</p>\n'
        "<p>The clinic cancelled these reminders. If you subscribed to them, your calendar removes them "
        "at its next refresh; you can also delete the subscription yourself.</p>\n"
        "<p>If you have questions about your aftercare, please contact the clinic.</p>\n"
        f"{_call_button(plan)}"
        f"{_google_section(google, cancelled=True) if google is not None else ''}"
        f"<footer>\n{_clinic_line(plan)}</footer>\n"
        "</main>\n</body>\n</html>\n"
    )
    has_form = google is not None and google.connected and bool(google.disconnect_url)
    return _head("Aftercare calendar cancelled", form=has_form) + body
