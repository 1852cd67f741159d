"""The landing page in real headless Chromium at a phone's size, with JavaScript off.

Served by `aftercal serve` (see conftest.py); every request the page makes is recorded and any
request that would leave 127.0.0.1 is aborted, and then reported as a failure.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from icalendar import Calendar

from calendars.feeds.landing import GoogleSection, render_landing_page
from reminders import Clinic, PlanOptions, load_protocol, make_plan

from .conftest import DAYS_AGO, FeedSite, PageSite, add_treatment, aftercal

PHONE_WIDTH = 390
# Everything a patient taps on the served page; each must be big enough for a finger.
TAP_TARGETS = ("call", "apple", "google", "outlook", "outlook-work", "download")


def open_page(phone: Any, site: FeedSite) -> Any:
    response = phone.goto(site.page, wait_until="load")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    return response


def stayed_on_loopback(phone: Any) -> list[str]:
    return [url for url in phone.requests if urlsplit(url).hostname != "127.0.0.1"]


def assert_fits(phone: Any, width: int) -> None:
    """No horizontal scroll, and no element pokes out to the right."""
    sizes = phone.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,"
        " body: document.body.scrollWidth, right: Math.max(...Array.from(document.querySelectorAll('body *'),"
        " e => e.getBoundingClientRect().right))})"
    )
    assert sizes["client"] == width
    assert sizes["scroll"] <= width and sizes["body"] <= width and sizes["right"] <= width, (width, sizes)


def assert_tappable(phone: Any, *selectors: str) -> None:
    """Buttons are big enough to tap (Apple's guideline: 44 pt) and about as wide as the screen."""
    for selector in selectors:
        box = phone.locator(selector).bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 200, (selector, box)


def test_page_fits_a_phone_without_horizontal_scroll(phone: Any, feed_site: FeedSite, tmp_path: Path) -> None:
    open_page(phone, feed_site)
    assert phone.title() == "Microneedling aftercare"
    assert phone.locator("h1").inner_text() == "Microneedling aftercare"
    sizes = phone.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,"
        " body: document.body.scrollWidth, inner: window.innerWidth})"
    )
    assert sizes["inner"] == PHONE_WIDTH
    assert sizes["scroll"] <= sizes["client"] and sizes["body"] <= sizes["client"], sizes
    # Every element stays inside the screen's width (nothing pokes out to the right).
    widest = phone.evaluate(
        "() => Math.max(...Array.from(document.querySelectorAll('body *'), e => e.getBoundingClientRect().right))"
    )
    assert widest <= PHONE_WIDTH
    assert_tappable(phone, *(f"#{ident}" for ident in TAP_TARGETS))
    # The clinic at the top, one tap from a call; today marked; the days before it folded.
    assert phone.locator("#clinic").inner_text() == "Riverside Skin Clinic"
    assert phone.locator("#call").get_attribute("href") == "tel:+12125550100"
    assert phone.locator("#clinic").bounding_box()["y"] < phone.locator("h1").bounding_box()["y"]
    assert phone.locator("#today").is_visible()
    assert phone.locator("#today").inner_text().startswith("Today · ")
    assert phone.locator(".past > details > summary").inner_text() == f"{DAYS_AGO} earlier days"
    assert not phone.locator(".past li.entry").first.is_visible()
    box = phone.locator(".past > details > summary").bounding_box()
    assert box is not None and box["height"] >= 44
    # Text is readable: the body font is at least 16 px.
    font = phone.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
    assert font >= 16
    shot = tmp_path / "landing-phone.png"
    phone.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stayed_on_loopback(phone) == []


def test_opened_timeline_fits_the_smallest_phones(phone: Any, feed_site: FeedSite) -> None:
    open_page(phone, feed_site)
    opened = phone.evaluate("() => { const d = document.querySelectorAll('details'); d.forEach(x => x.open = true);"
                            " return d.length; }")  # fmt: skip
    assert opened >= 10
    for width in (PHONE_WIDTH, 360, 320):
        phone.set_viewport_size({"width": width, "height": 640})
        sizes = phone.evaluate(
            "() => ({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,"
            " right: Math.max(...Array.from(document.querySelectorAll('body *'),"
            " e => e.getBoundingClientRect().right))})"
        )
        assert sizes["client"] == width
        assert sizes["scroll"] <= width and sizes["right"] <= width, (width, sizes)
    assert phone.locator("li.entry .body li").first.is_visible()


def test_subscribe_links_point_at_the_feed(phone: Any, feed_site: FeedSite) -> None:
    open_page(phone, feed_site)
    apple = phone.locator("#apple").get_attribute("href")
    assert apple == feed_site.subscribe
    assert apple.startswith("webcal://127.0.0.1:") and apple.endswith(".ics")

    google = urlsplit(phone.locator("#google").get_attribute("href"))
    assert (google.scheme, google.hostname, google.path) == ("https", "calendar.google.com", "/calendar/render")
    assert parse_qs(google.query)["cid"] == [feed_site.subscribe]

    outlook = urlsplit(phone.locator("#outlook").get_attribute("href"))
    assert (outlook.scheme, outlook.hostname, outlook.path) == ("https", "outlook.live.com", "/calendar/0/addfromweb")
    query = parse_qs(outlook.query)
    assert query["url"] == [feed_site.feed] and query["name"] == ["Microneedling aftercare"]

    assert phone.locator("#download").get_attribute("href") == feed_site.feed + "?download=1"
    for ident in ("apple", "google", "outlook", "download"):
        assert phone.locator(f"#{ident}").is_visible()


def test_download_link_fetches_the_calendar(phone: Any, feed_site: FeedSite) -> None:
    open_page(phone, feed_site)
    with phone.expect_download() as info:
        phone.locator("#download").click()
    download = info.value
    assert download.suggested_filename.endswith(".ics")
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"BEGIN:VCALENDAR\r\n") and data.rstrip().endswith(b"END:VCALENDAR")
    first_step = load_protocol("microneedling").steps[0]
    assert first_step.title in {str(e["SUMMARY"]) for e in Calendar.from_ical(data).walk("VEVENT")}
    assert download.url == feed_site.feed + "?download=1"
    # The same link fetched by the browser's own network stack, from a page of the same origin that
    # has no Content-Security-Policy (the landing page's forbids fetch): its status and headers.
    phone.goto(f"http://127.0.0.1:{feed_site.port}/", wait_until="load")
    status, kind, disposition, text = phone.evaluate(
        """async (url) => {
            const r = await fetch(url);
            return [r.status, r.headers.get('content-type'), r.headers.get('content-disposition'), await r.text()];
        }""",
        download.url,
    )
    assert status == 200 and kind.startswith("text/calendar"), (status, kind)
    assert disposition is not None and disposition.startswith("attachment")
    assert text.encode() == data
    assert stayed_on_loopback(phone) == []


def test_works_without_javascript(phone: Any, feed_site: FeedSite) -> None:
    open_page(phone, feed_site)
    assert phone.evaluate("() => document.scripts.length") == 0
    # The timeline's details open with a tap, natively.
    first = phone.locator("#today ~ li.day li.entry details").first
    body = first.locator(".body")
    assert not body.is_visible()
    first.locator("summary").tap()
    assert body.is_visible()
    assert len(body.inner_text()) > 40
    entries = phone.locator("li.entry").count()
    assert entries >= 10
    assert "Remove Alerts" in phone.locator(".note").inner_text()
    # The folded days open with a tap too, natively.
    folded = phone.locator(".past li.entry").first
    assert not folded.is_visible()
    phone.locator(".past > details > summary").tap()
    assert folded.is_visible()


def test_page_policy_blocks_any_load(phone: Any, feed_site: FeedSite) -> None:
    """The page's Content-Security-Policy is enforced: even a same-origin fetch is refused."""
    open_page(phone, feed_site)
    blocked = phone.evaluate(
        "async (url) => { try { await fetch(url); return false; } catch (e) { return true; } }", feed_site.feed
    )
    assert blocked is True
    assert phone.evaluate("() => document.querySelectorAll('img, script, link, iframe').length") == 0


def test_no_request_leaves_loopback(phone: Any, feed_site: FeedSite) -> None:
    phone.goto(feed_site.page, wait_until="networkidle")
    phone.locator(".past > details > summary").tap()
    for summary in phone.locator("li.entry summary").all()[:3]:
        summary.tap()
    phone.wait_for_load_state("networkidle")
    assert phone.requests, "nothing was recorded: the request guard is not working"
    assert all(url.startswith(f"http://127.0.0.1:{feed_site.port}/") for url in phone.requests), phone.requests
    assert stayed_on_loopback(phone) == []


def test_unknown_link_is_a_friendly_404(phone: Any, feed_site: FeedSite) -> None:
    response = phone.goto(feed_site.page[:-3] + "xyz", wait_until="load")
    assert response is not None and response.status == 404
    assert "aftercare" not in phone.content().lower()
    assert phone.locator("h1").inner_text() == "This link is not active"
    assert phone.locator("main p").inner_text() == "Ask your clinic for a new one."
    assert_fits(phone, PHONE_WIDTH)
    assert stayed_on_loopback(phone) == []


def test_cancelled_treatment_shows_the_cancelled_page(phone: Any, feed_site: FeedSite) -> None:
    links = add_treatment(feed_site.db, f"http://127.0.0.1:{feed_site.port}", "T-cancel")
    phone.goto(links["Page"], wait_until="load")
    assert phone.locator("#apple").count() == 1  # active: the full page
    cancelled = aftercal("treatments", "cancel", "T-cancel", "--db", str(feed_site.db))
    assert cancelled.returncode == 0, cancelled.stderr
    response = phone.goto(links["Page"], wait_until="load")
    assert response is not None and response.status == 200
    assert phone.locator("h1").inner_text() == "This aftercare calendar was cancelled"
    assert phone.locator("a").count() == 0
    assert stayed_on_loopback(phone) == []


# ---- the page function's Google states, served by a tiny local server ------------------------------

CONNECTED = GoogleSection(
    connect_url=None,
    connected=True,
    disconnect_url="/f/tok/google/disconnect",
    csrf_token="c5rf-t0ken",
    message="Connected: your reminders are in the 'Aftercare' calendar of your Google account",
)
CONNECT = GoogleSection(
    connect_url="/f/tok/google", connected=False, disconnect_url=None, csrf_token=None, message=None
)


def google_page(site: PageSite, section: GoogleSection) -> str:
    """The page of a plan with a clinic, in a Google state, served at /f/tok; returns its URL."""
    clinic = Clinic(name="Riverside Skin Clinic", phone="+1 (212) 555-0100")
    plan = make_plan(
        "microneedling", "2026-11-24T10:00", "America/New_York", treatment_id="T-1", options=PlanOptions(clinic=clinic)
    )
    ics = f"{site.base}/f/tok.ics"
    site.pages["/f/tok"] = render_landing_page(
        plan, ics_url=ics, webcal_url="webcal://" + ics.split("://", 1)[1], today=date(2026, 11, 28), google=section
    )
    return f"{site.base}/f/tok"


@pytest.mark.parametrize(
    ("section", "button"), [(CONNECT, "#google-connect-button"), (CONNECTED, "#google-disconnect")]
)
def test_google_section_fits_the_smallest_phones(
    phone: Any, page_site: PageSite, section: GoogleSection, button: str
) -> None:
    phone.goto(google_page(page_site, section), wait_until="load")
    assert phone.locator("#google-connect").is_visible()
    phone.evaluate("() => document.querySelectorAll('details').forEach(x => x.open = true)")
    for width in (PHONE_WIDTH, 360, 320):
        phone.set_viewport_size({"width": width, "height": 640})
        assert_fits(phone, width)
        assert_tappable(phone, button, "#call", "#outlook-work")
    assert stayed_on_loopback(phone) == []


def test_disconnect_button_posts_its_csrf_token(phone: Any, page_site: PageSite) -> None:
    """The page's own policy lets its one form post to its own site, and the form carries the token."""
    phone.goto(google_page(page_site, CONNECTED), wait_until="load")
    assert phone.locator("#google-message").inner_text() == CONNECTED.message
    with phone.expect_navigation():
        phone.locator("#google-disconnect").tap()
    assert page_site.posts == [("/f/tok/google/disconnect", "csrf=c5rf-t0ken")]
    assert stayed_on_loopback(phone) == []


def test_connect_is_a_plain_link(phone: Any, page_site: PageSite) -> None:
    phone.goto(google_page(page_site, CONNECT), wait_until="load")
    link = phone.locator("#google-connect-button")
    assert link.evaluate("e => e.tagName") == "A" and link.get_attribute("href") == "/f/tok/google"
    assert phone.locator("form").count() == 0
