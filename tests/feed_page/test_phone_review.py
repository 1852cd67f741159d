"""The page after a review on a phone: the clinic at the top and one tap to call it, today marked
and the days before it folded, an honest count of what rings where, Outlook for work or school,
and the Google Calendar (Android) section in each of its states."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from calendars.feeds.landing import GoogleSection, render_landing_page, tel_link
from reminders import CarePlan, Clinic, InputError

from .conftest import ICS_URL, TODAY, WEBCAL_URL
from .pagetools import ParsedPage, parse_page

CONNECT = GoogleSection(
    connect_url="/f/tok/google", connected=False, disconnect_url=None, csrf_token=None, message=None
)
CONNECTED = GoogleSection(
    connect_url=None,
    connected=True,
    disconnect_url="/f/tok/google/disconnect",
    csrf_token="c5rf-t0ken",
    message="Connected: your reminders are in the 'Aftercare' calendar of your Google account",
)


def render(plan: CarePlan, **kwargs: object) -> str:
    kwargs.setdefault("today", TODAY)
    return render_landing_page(plan, ics_url=ICS_URL, webcal_url=WEBCAL_URL, **kwargs)  # type: ignore[arg-type]


def csp(page: ParsedPage) -> str:
    found = [e for e in page.find("meta") if (e.attrs.get("http-equiv") or "").lower() == "content-security-policy"]
    assert len(found) == 1
    return found[0].attrs.get("content") or ""


def with_clinic(plan: CarePlan, **clinic: str) -> CarePlan:
    return dataclasses.replace(plan, options=dataclasses.replace(plan.options, clinic=Clinic(**clinic)))


# ---- the clinic -----------------------------------------------------------------------------------


def test_clinic_name_at_the_top_and_a_number_one_tap_calls(named_plan: CarePlan) -> None:
    markup = render(named_plan)
    page = parse_page(markup)
    assert page.by_id("clinic").text == "Skin & Co"
    assert markup.index('id="clinic"') < markup.index("<h1>")
    call = page.by_id("call")
    assert call.attrs["href"] == "tel:+15550100"
    assert "+1 555 0100" in call.text
    assert markup.index('id="call"') < markup.index('id="apple"')  # in the header, before the choices


def test_no_clinic_no_name_and_no_call(plan: CarePlan) -> None:
    page = parse_page(render(plan))
    assert not [e for e in page.elements if e.attrs.get("id") in ("clinic", "call")]
    assert not [e for e in page.elements if (e.attrs.get("href") or "").startswith("tel:")]


@pytest.mark.parametrize(
    ("written", "href"),
    [
        ("+1 555 0100", "tel:+15550100"),
        ("+1 (212) 555-0100", "tel:+12125550100"),
        ("+44 20 7946 0958", "tel:+442079460958"),
        ("+1 212 555 0100 ext. 12", "tel:+12125550100"),
        ("Tel: 0800 123 456", "tel:0800123456"),
        ("020 7946 0958 (mobile)", "tel:02079460958"),
        ("01.23.45.67.89", "tel:0123456789"),
        ("call the desk", None),
        ("12", None),
    ],
)
def test_phone_numbers_become_digits_with_a_leading_plus(written: str, href: str | None) -> None:
    assert tel_link(written) == href


def test_a_phone_without_a_number_stays_text(plan: CarePlan) -> None:
    page = parse_page(render(with_clinic(plan, name="Skin & Co", phone="ask at the desk")))
    assert not [e for e in page.elements if e.attrs.get("id") == "call"]
    assert "ask at the desk" in page.text  # still in the footer line


def test_cancelled_page_keeps_the_clinic_and_its_number(named_plan: CarePlan) -> None:
    page = parse_page(render(named_plan, cancelled=True))
    assert page.by_id("clinic").text == "Skin & Co"
    assert [e.attrs["href"] for e in page.elements if "href" in e.attrs] == ["tel:+15550100"]


# ---- today and the days before it --------------------------------------------------------------------


def day_headings(markup: str) -> list[str]:
    return [e.text for e in parse_page(markup).find("h3")]


def test_past_days_fold_and_today_is_marked_between_days(plan: CarePlan) -> None:
    markup = render(plan, today=date(2026, 11, 28))  # day 4: no reminder starts that day
    page = parse_page(markup)
    past = page.find("li", **{"class": "past"})
    assert len(past) == 1
    folded = page.find("details")[0]  # the first <details> is the fold, closed: no JavaScript needed
    assert "open" not in folded.attrs
    assert page.find("summary")[0].text == "4 earlier days"
    fold = markup[markup.index('<li class="past">') : markup.index('id="today"')]
    assert day_headings(fold) == [
        "Treatment day · Tue 24 Nov 2026",
        "Day 1 · Wed 25 Nov 2026",
        "Day 2 · Thu 26 Nov 2026",
        "Day 3 · Fri 27 Nov 2026",
    ]
    marker = page.by_id("today")
    assert marker.attrs["class"] == "today-marker"
    assert "Today · Sat 28 Nov 2026 (day 4)" in marker.text and "Nothing rings today." in marker.text
    # The periods that began before today and still run are not hidden in the fold.
    assert "no harsh products, exfoliants, alcohol-based toners or dermaplaning, until Mon 7 Dec" in marker.text
    assert "no vigorous activity, excessive heat or sun exposure, until Mon 30 Nov" in marker.text
    after = markup[markup.index('id="today"') :]
    assert day_headings(after)[0] == "Day 7 · Tue 1 Dec 2026"
    # Nothing is lost: every reminder is still on the page, folded or not.
    assert len([e for e in page.find("li") if "entry" in (e.attrs.get("class") or "")]) == len(plan.reminders)


def test_today_with_reminders_is_that_day(plan: CarePlan) -> None:
    markup = render(plan, today=date(2026, 11, 25))
    page = parse_page(markup)
    today = page.by_id("today")
    assert today.attrs["class"] == "day today"
    assert today.text.startswith("Today")
    assert day_headings(markup[markup.index('id="today"') :])[0] == "Day 1 · Wed 25 Nov 2026"
    assert page.find("summary")[0].text == "1 earlier day"
    assert "until Mon 7 Dec" in today.text  # still running since the treatment day


def test_treatment_day_is_today_and_nothing_is_folded(plan: CarePlan) -> None:
    markup = render(plan, today=TODAY)
    page = parse_page(markup)
    assert not page.find("li", **{"class": "past"})
    assert page.by_id("today").attrs["class"] == "day today"
    assert day_headings(markup[markup.index('id="today"') :])[0] == "Treatment day · Tue 24 Nov 2026"
    assert "Still running" not in page.by_id("today").text  # its periods start today: they are listed below


def test_before_the_treatment_the_marker_comes_first(plan: CarePlan) -> None:
    markup = render(plan, today=date(2026, 11, 20))
    page = parse_page(markup)
    assert not page.find("li", **{"class": "past"})
    marker = page.by_id("today")
    assert marker.text.startswith("Today · Fri 20 Nov 2026") and "(day" not in marker.text
    assert markup.index('id="today"') < markup.index("Treatment day ·")


def test_after_the_plan_everything_is_folded(plan: CarePlan) -> None:
    markup = render(plan, today=date(2027, 3, 1))
    page = parse_page(markup)
    groups = {(r.start.date() if isinstance(r.start, datetime) else r.start) for r in plan.reminders}
    assert page.find("summary")[0].text == f"{len(groups)} earlier days"
    marker = page.by_id("today")
    assert "all behind you" in marker.text and "Still running" not in marker.text
    assert markup.index('id="today"') > markup.rindex('class="entry')
    # Every folded day is inside the closed fold.
    assert day_headings(markup[: markup.index('id="today"')]) == day_headings(markup)


@pytest.mark.parametrize("today", [date(2026, 11, 20), TODAY, date(2026, 11, 28), date(2027, 3, 1)])
def test_exactly_one_today(plan: CarePlan, today: date) -> None:
    assert render(plan, today=today).count('id="today"') == 1


# ---- what rings where --------------------------------------------------------------------------------


def test_counts_what_rings_on_each_platform(plan: CarePlan) -> None:
    alerts = sum(1 for r in plan.reminders if r.alarm_text)
    timed = [r for r in plan.reminders if r.alarm_text and isinstance(r.start, datetime)]
    ahead = sum(1 for r in timed if isinstance(r.start, datetime) and r.start.date() >= date(2026, 11, 28))
    assert 0 < ahead < alerts
    page = parse_page(render(plan, today=date(2026, 11, 28)))
    items = [e.text for e in page.find("li") if e.text.startswith(("iPhone", "Google Calendar on Android", "Outlook"))]
    apple, google, outlook = (" ".join(i.split()) for i in items)
    assert f"{alerts} reminders ring ({ahead} of them from today on), as long as Remove Alerts is switched off" in apple
    assert "subscribed: none ring" in google and "ignores the alerts of subscribed calendars" in google
    assert "about once a day" in google and "ask the clinic" in google
    assert "not promised" in outlook
    # On the treatment day every alert is still ahead: no "from today on".
    assert "from today on" not in parse_page(render(plan)).text


def test_counts_follow_the_google_section(plan: CarePlan) -> None:
    alerts = sum(1 for r in plan.reminders if r.alarm_text)
    offered = parse_page(render(plan, google=CONNECT)).text
    assert "subscribed: none ring" in offered and "Google Calendar ignores the alerts" in offered
    assert f"Connect your Google Calendar below and {alerts} reminders ring." in offered
    connected = parse_page(render(plan, google=CONNECTED)).text
    assert f"connected: {alerts} reminders ring" in connected
    assert "ask the clinic to send" not in offered + connected


# ---- Outlook for work or school --------------------------------------------------------------------------


def test_outlook_for_work_or_school(plan: CarePlan) -> None:
    page = parse_page(render(plan))
    work = page.by_id("outlook-work")
    href = urlsplit(work.attrs["href"] or "")
    assert (href.scheme, href.netloc, href.path) == ("https", "outlook.office.com", "/calendar/0/addfromweb")
    assert parse_qs(href.query) == {"url": [ICS_URL], "name": [plan.calendar_name]}
    assert "work or school" in work.text
    personal = urlsplit(page.by_id("outlook").attrs["href"] or "")
    assert personal.netloc == "outlook.live.com" and parse_qs(personal.query) == parse_qs(href.query)


# ---- the Google Calendar (Android) section ----------------------------------------------------------------


def test_without_a_google_section_only_the_subscription_is_explained(plan: CarePlan) -> None:
    page = parse_page(render(plan))
    assert not [e for e in page.elements if e.attrs.get("id") in ("google-connect", "google-connect-button")]
    assert not page.find("form") and "form-action 'none'" in csp(page)


def test_not_connected_offers_a_connect_link(plan: CarePlan) -> None:
    page = parse_page(render(plan, google=CONNECT))
    assert page.by_id("google-connect").text == "Google Calendar (Android): reminders that ring"
    button = page.by_id("google-connect-button")
    assert button.tag == "a" and button.attrs["href"] == "/f/tok/google"
    assert button.text.startswith("Connect Google Calendar")
    assert not page.find("form") and "form-action 'none'" in csp(page)


def test_connected_shows_a_disconnect_form_with_its_csrf_token(plan: CarePlan) -> None:
    page = parse_page(render(plan, google=CONNECTED))
    assert page.by_id("google-message").text == CONNECTED.message
    [form] = page.find("form")
    assert form.attrs["method"] == "post" and form.attrs["action"] == "/f/tok/google/disconnect"
    [hidden] = page.find("input")
    assert hidden.attrs == {"type": "hidden", "name": "csrf", "value": "c5rf-t0ken"}
    button = page.by_id("google-disconnect")
    assert button.tag == "button" and button.text.startswith("Disconnect Google Calendar")
    assert not [e for e in page.elements if e.attrs.get("id") == "google-connect-button"]
    assert "form-action 'self'" in csp(page)  # the page may post to its own site, nowhere else


def test_an_error_message_is_shown_with_the_connect_link(plan: CarePlan) -> None:
    failed = dataclasses.replace(CONNECT, message="Google did not connect: access was denied")
    page = parse_page(render(plan, google=failed))
    assert page.by_id("google-message").text == "Google did not connect: access was denied"
    assert page.by_id("google-connect-button").attrs["href"] == "/f/tok/google"


def test_no_connect_url_and_not_connected_says_to_ask(plan: CarePlan) -> None:
    section = GoogleSection(connect_url=None, connected=False, disconnect_url=None, csrf_token=None, message=None)
    page = parse_page(render(plan, google=section))
    assert "not available right now" in page.text
    assert not page.find("form") and not [e for e in page.elements if e.attrs.get("id") == "google-connect-button"]


def test_google_section_is_escaped(plan: CarePlan) -> None:
    evil = "<script>alert('x')</script> & \"quoted\""
    connect = GoogleSection(
        connect_url='https://accounts.example/auth?a=1&b="><script>x</script>',
        connected=False,
        disconnect_url=None,
        csrf_token=None,
        message=evil,
    )
    connected = GoogleSection(
        connect_url=None,
        connected=True,
        disconnect_url='/f/tok/google/disconnect?x="><b>',
        csrf_token='"><script>alert(1)</script>',
        message=evil,
    )
    for section in (connect, connected):
        markup = render(plan, google=section)
        page = parse_page(markup)
        assert "<script>" not in markup and not page.find("script") and not page.find("b")
        assert page.by_id("google-message").text == evil
    page = parse_page(render(plan, google=connect))
    assert page.by_id("google-connect-button").attrs["href"] == connect.connect_url
    page = parse_page(render(plan, google=connected))
    assert page.find("form")[0].attrs["action"] == connected.disconnect_url
    assert page.find("input")[0].attrs["value"] == connected.csrf_token


@pytest.mark.parametrize(
    "fields",
    [
        {"connect_url": "javascript:alert(1)"},
        {"connect_url": "//evil.example/connect"},
        {"connect_url": "data:text/html,hi"},
        {"connect_url": "/f/tok/google x"},
        {"disconnect_url": "javascript:alert(1)", "csrf_token": "t"},
        {"disconnect_url": "/f/tok/google/disconnect"},  # a form without its csrf token
    ],
)
def test_google_section_refuses_links_that_are_not_links(fields: dict[str, str]) -> None:
    base: dict[str, object] = {
        "connect_url": None, "connected": False, "disconnect_url": None, "csrf_token": None, "message": None
    }  # fmt: skip
    with pytest.raises(InputError):
        GoogleSection(**{**base, **fields})  # type: ignore[arg-type]


def test_cancelled_page_shows_google_only_to_disconnect(plan: CarePlan) -> None:
    offered = parse_page(render(plan, cancelled=True, google=CONNECT))
    assert not [e for e in offered.elements if "href" in e.attrs] and not offered.find("form")
    connected = parse_page(render(plan, cancelled=True, google=CONNECTED))
    assert connected.find("form")[0].attrs["action"] == "/f/tok/google/disconnect"
    assert "still connected" in connected.text
    assert "form-action 'self'" in csp(connected)
