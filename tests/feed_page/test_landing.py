"""The patient's landing page: structure, links, escaping and privacy, read back with html.parser."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from calendars.feeds.landing import render_landing_page
from reminders import CarePlan, InputError, PlanOptions, make_plan

from .conftest import ICS_URL, TODAY, WEBCAL_URL
from .pagetools import ParsedPage, parse_page

SUBSCRIBE_SERVICES = ("https://calendar.google.com/", "https://outlook.live.com/", "https://outlook.office.com/")


def render(plan: CarePlan, **kwargs: object) -> str:
    kwargs.setdefault("today", TODAY)
    return render_landing_page(plan, ics_url=ICS_URL, webcal_url=WEBCAL_URL, **kwargs)  # type: ignore[arg-type]


def all_urls(page: ParsedPage, markup: str) -> list[str]:
    """Every address the page could load or link to: attributes and CSS url()/@import."""
    urls = []
    for element in page.elements:
        for name in ("href", "src", "srcset", "action", "formaction", "poster", "data", "background", "cite"):
            value = element.attrs.get(name)
            if value is not None:
                urls.append(value)
    for css in page.styles:
        urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", css)
        urls += re.findall(r"@import\s+['\"]?([^'\";\s]+)", css)
    return urls


def test_is_a_complete_html5_page_for_phones(plan: CarePlan) -> None:
    markup = render(plan)
    page = parse_page(markup)
    assert page.doctype is not None and page.doctype.lower() == "doctype html"
    assert page.find("html")[0].attrs.get("lang") == "en"
    assert page.find("meta", charset="utf-8")
    assert "width=device-width" in (page.meta("viewport") or "")
    assert "noindex" in (page.meta("robots") or "")
    assert page.meta("referrer") == "no-referrer"
    csp = [e for e in page.find("meta") if (e.attrs.get("http-equiv") or "").lower() == "content-security-policy"]
    assert len(csp) == 1 and "default-src 'none'" in (csp[0].attrs.get("content") or "")
    assert page.find("title")[0].text == plan.calendar_name
    assert page.find("h1")[0].text == plan.calendar_name
    assert "@media" in "".join(page.styles)


def test_no_script_no_external_assets(plan: CarePlan) -> None:
    markup = render(plan)
    page = parse_page(markup)
    for tag in ("script", "link", "img", "iframe", "object", "embed", "form", "noscript"):
        assert not page.find(tag), f"unexpected <{tag}>"
    assert not any(name.startswith("on") for e in page.elements for name in e.attrs), "inline event handlers"
    for url in all_urls(page, markup):
        allowed = url.startswith(SUBSCRIBE_SERVICES) or url in (WEBCAL_URL, ICS_URL + "?download=1")
        assert allowed, f"page refers to {url!r}"
    # The CSS names no font file and no remote resource.
    css = "".join(page.styles)
    assert "url(" not in css and "@import" not in css and "@font-face" not in css


def test_subscribe_links_carry_the_feed(plan: CarePlan) -> None:
    page = parse_page(render(plan))
    assert page.by_id("apple").attrs["href"] == WEBCAL_URL

    google = urlsplit(page.by_id("google").attrs["href"] or "")
    assert (google.scheme, google.netloc, google.path) == ("https", "calendar.google.com", "/calendar/render")
    assert parse_qs(google.query) == {"cid": [WEBCAL_URL]}
    # Encoded, so that the feed's own ? and & cannot be read as Google's parameters.
    assert "cid=webcal%3A%2F%2Fclinic.example%2Ffeed" in google.query

    outlook = urlsplit(page.by_id("outlook").attrs["href"] or "")
    assert (outlook.netloc, outlook.path) == ("outlook.live.com", "/calendar/0/addfromweb")
    assert parse_qs(outlook.query) == {"url": [ICS_URL], "name": [plan.calendar_name]}

    download = page.by_id("download")
    assert download.attrs["href"] == ICS_URL + "?download=1"
    assert "download" in download.attrs


def test_download_link_keeps_an_existing_query(plan: CarePlan) -> None:
    ics = "https://clinic.example/feed.ics?token=a%20b&x=1"
    page = parse_page(
        render_landing_page(plan, ics_url=ics, webcal_url="webcals://clinic.example/feed.ics?token=a", today=TODAY)
    )
    assert page.by_id("download").attrs["href"] == ics + "&download=1"
    assert parse_qs(urlsplit(page.by_id("outlook").attrs["href"] or "").query)["url"] == [ics]
    assert parse_qs(urlsplit(page.by_id("google").attrs["href"] or "").query)["cid"] == [
        "webcals://clinic.example/feed.ics?token=a"
    ]


def test_alerts_note_covers_apple_and_google(plan: CarePlan) -> None:
    text = parse_page(render(plan)).text
    assert "Remove Alerts" in text
    assert "Google Calendar" in text and "ignores the alerts of subscribed calendars" in text
    assert "ask the clinic to send the reminders to your Google Calendar directly" in text


def test_timeline_lists_every_reminder_in_its_zone(plan: CarePlan) -> None:
    page = parse_page(render(plan))
    entries = [e for e in page.find("li") if "entry" in (e.attrs.get("class") or "")]
    assert len(entries) == len(plan.reminders)
    for entry, reminder in zip(entries, plan.reminders, strict=True):
        title = [e for e in page.elements if e.attrs.get("class") == "title" and e.text == reminder.title]
        assert title, f"missing {reminder.title!r}"
        assert reminder.title in entry.text
        first_paragraph = reminder.description.split("\n\n")[0].split("\n")[0].strip()
        assert first_paragraph in entry.text
        if isinstance(reminder.start, datetime):
            assert reminder.start.strftime("%H:%M") in entry.text
            assert ("no alert" in entry.text) == (reminder.alarm_text is None)
        else:
            assert "all day" in entry.text
    days = {(r.start.date() if isinstance(r.start, datetime) else r.start) for r in plan.reminders}
    headings = [e.text for e in page.find("h3")]
    assert len(headings) == len(days)
    assert headings[0] == "Treatment day · Tue 24 Nov 2026"
    assert "America/New_York" in page.text


def test_times_follow_the_plan_zone() -> None:
    paris = make_plan("microneedling", "2026-11-24T10:00", "Europe/Paris", treatment_id="T-1")
    tokyo = make_plan("microneedling", "2026-11-24T10:00", "Asia/Tokyo", treatment_id="T-1")
    for plan in (paris, tokyo):
        text = parse_page(render(plan)).text
        assert plan.zone.key in text
        timed = [r for r in plan.reminders if isinstance(r.start, datetime)]
        assert all(r.start.strftime("%H:%M") in text for r in timed)


def test_everything_is_escaped(plan: CarePlan) -> None:
    evil = "<script>alert(\"x\")</script> & <b onclick='1'>"
    hostile = dataclasses.replace(
        plan,
        options=dataclasses.replace(plan.options, patient_name=evil),
        reminders=tuple(
            dataclasses.replace(r, title=f"{r.title} {evil}", description=f"{evil}\n\nline <i>two</i>")
            for r in plan.reminders
        ),
    )
    ics = "https://clinic.example/f.ics?a=\"><script>x</script>&b='1'"
    markup = render_landing_page(hostile, ics_url=ics, webcal_url="webcal://clinic.example/f.ics", today=TODAY)
    page = parse_page(markup)
    assert not page.find("script") and not page.find("b") and not page.find("i")
    assert not any(name.startswith("on") for e in page.elements for name in e.attrs)
    assert "<script>" not in markup
    # Read back, the texts are exactly what was given: escaped, not dropped or mangled.
    assert page.find("title")[0].text == hostile.calendar_name
    assert evil in page.find("h1")[0].text
    assert page.text.count('<script>alert("x")</script>') >= 2 * len(plan.reminders)
    assert page.by_id("download").attrs["href"] == ics + "&download=1"
    assert parse_qs(urlsplit(page.by_id("outlook").attrs["href"] or "").query)["url"] == [ics]


@pytest.mark.parametrize(
    ("ics_url", "webcal_url"),
    [
        ("javascript:alert(1)", WEBCAL_URL),
        (ICS_URL, "javascript:alert(1)"),
        ("/relative/care.ics", WEBCAL_URL),
        ("https://clinic.example/a b.ics", WEBCAL_URL),
        ("ftp://clinic.example/care.ics", WEBCAL_URL),
    ],
)
def test_refuses_urls_that_are_not_feed_links(plan: CarePlan, ics_url: str, webcal_url: str) -> None:
    with pytest.raises(InputError, match="must be an absolute"):
        render_landing_page(plan, ics_url=ics_url, webcal_url=webcal_url, today=TODAY)


def test_no_patient_name_unless_given(plan: CarePlan, named_plan: CarePlan) -> None:
    anonymous = render(plan)
    named = render(named_plan)
    assert "Zoë" not in anonymous and "Quartermain" not in anonymous
    assert parse_page(named).text.count("For Zoë Quartermain.") == len(named_plan.reminders)
    assert parse_page(named).find("h1")[0].text == "Microneedling aftercare - Zoë Quartermain"
    assert "Questions? Skin & Co | +1 555 0100" in parse_page(named).text


def test_discreet_plan_keeps_the_treatment_out_of_title_and_heading() -> None:
    plan = make_plan(
        "microneedling", "2026-11-24T10:00", "America/New_York", treatment_id="T-3", options=PlanOptions(discreet=True)
    )
    page = parse_page(render(plan))
    for text in (page.find("title")[0].text, page.find("h1")[0].text):
        assert "icroneedl" not in text.lower()
    titles = [e.text for e in page.elements if e.attrs.get("class") == "title"]
    assert titles and not any("microneedling" in t.lower() for t in titles)


def test_cancelled_page_is_short_and_offers_no_subscription(plan: CarePlan) -> None:
    page = parse_page(render(plan, cancelled=True))
    assert "this aftercare calendar was cancelled" in page.find("h1")[0].text.lower()
    assert "noindex" in (page.meta("robots") or "") and page.meta("referrer") == "no-referrer"
    assert not [e for e in page.elements if "href" in e.attrs]
    assert WEBCAL_URL not in render(plan, cancelled=True)
    assert not any(r.title in page.text for r in plan.reminders)


def test_same_input_same_page(plan: CarePlan) -> None:
    assert render(plan) == render(plan)
    assert render(plan) != render(plan, cancelled=True)


def test_lead_names_the_first_and_last_day(plan: CarePlan) -> None:
    lead = parse_page(render(plan)).find("p", **{"class": "lead"})[0].text
    timed_days = [r.start.date() for r in plan.reminders if isinstance(r.start, datetime)]
    all_day_last = [r.end.toordinal() - 1 for r in plan.reminders if not isinstance(r.start, datetime)]
    last = max(max(timed_days).toordinal(), *all_day_last)
    assert f"from Tue 24 Nov 2026 to {_label(last)};" in lead
    assert f"{len(plan.reminders)} reminders" in lead
    assert f"{sum(1 for r in plan.reminders if r.alarm_text)} of them come with an alert" in lead


def _label(ordinal: int) -> str:
    day = date.fromordinal(ordinal)
    return f"{day:%a} {day.day} {day:%b %Y}"


def test_dash_lines_become_a_list(plan: CarePlan) -> None:
    first = dataclasses.replace(plan.reminders[0], description="Intro <x>\n- one & two\n- three\nOutro\n\n- solo")
    markup = render(dataclasses.replace(plan, reminders=(first,)))
    body = markup[markup.index('<div class="body">') :]
    body = body[: body.index("</div>") + len("</div>")]
    page = parse_page(body)
    assert [e.text for e in page.find("li")] == ["one & two", "three", "solo"]
    assert len(page.find("ul")) == 2
    assert [e.text for e in page.find("p")] == ["Intro <x>", "Outro"]
