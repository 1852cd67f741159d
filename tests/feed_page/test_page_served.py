"""The page as the feed app serves it (the real Starlette app over httpx's ASGI transport): the
patient's date from the app's clock, and one friendly 404 page for every link that is not active."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from calendars.feeds.app import create_app
from calendars.feeds.store import Store, Treatment, open_store
from tests.feed.conftest import FakeClock, add_treatment

from .pagetools import parse_page


@pytest.fixture
def clock() -> FakeClock:
    # 23:30 UTC on Friday 27 Nov is already Saturday 28 Nov in Madrid (the treatment's zone).
    return FakeClock(datetime(2026, 11, 27, 23, 30, tzinfo=UTC))


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    opened = open_store(str(tmp_path / "clinic.db"), clock=clock)
    try:
        yield opened
    finally:
        opened.close()


def fetch(app: Any, *requests: tuple[str, str]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as client:
            return [await client.request(method, path) for method, path in requests]

    return asyncio.run(run())


def test_today_is_the_patients_date_from_the_apps_clock(store: Store, clock: FakeClock) -> None:
    token = add_treatment(store)  # 2026-11-24 10:00 Europe/Madrid
    [response] = fetch(create_app(store, clock=clock), ("GET", f"/f/{token}"))
    assert response.status_code == 200
    page = parse_page(response.text)
    assert page.by_id("today").text.startswith("Today · Sat 28 Nov 2026 (day 4)")
    assert page.find("summary")[0].text == "4 earlier days"


def test_inactive_links_get_one_friendly_page_with_the_same_404(store: Store, clock: FakeClock) -> None:
    token = add_treatment(store)
    app = create_app(store, clock=clock)
    lookups: list[str] = []
    lookup = store.lookup_token

    def counted(text: str) -> Treatment | None:
        lookups.append(text)
        return lookup(text)

    store.lookup_token = counted  # type: ignore[method-assign,assignment]
    guessed = fetch(app, ("GET", f"/f/{secrets.token_urlsafe(32)}"), ("GET", f"/f/{token[:-1]}"))
    _treatment, rotated_to = store.rotate_link("T-1001")
    rotated = fetch(app, ("GET", f"/f/{token}"))
    assert fetch(app, ("GET", f"/f/{rotated_to}"))[0].status_code == 200
    store.revoke_link("T-1001")
    revoked = fetch(app, ("GET", f"/f/{rotated_to}"))
    refused = [*guessed, *rotated, *revoked]
    assert [r.status_code for r in refused] == [404] * 4
    # Nothing tells them apart: the same bytes and headers, after the same one lookup each.
    assert len({(r.content, r.headers["content-type"], r.headers["content-length"]) for r in refused}) == 1
    assert len(lookups) == 5  # four refused pages and one served
    page = parse_page(refused[0].text)
    assert refused[0].headers["content-type"].startswith("text/html")
    assert page.find("title")[0].text == "Link not active"
    assert [e.text for e in page.find("h1") + page.find("p")] == [
        "This link is not active",
        "Ask your clinic for a new one.",
    ]
    assert "noindex" in (page.meta("robots") or "") and page.meta("referrer") == "no-referrer"
    assert refused[0].headers["referrer-policy"] == "no-referrer"
    assert not [e for e in page.elements if "href" in e.attrs or "action" in e.attrs]
    assert "T-1001" not in refused[0].text and "icroneedl" not in refused[0].text.lower()


def test_head_of_an_inactive_page_is_the_same_404(store: Store, clock: FakeClock) -> None:
    app = create_app(store, clock=clock)
    path = f"/f/{secrets.token_urlsafe(32)}"
    get, head = fetch(app, ("GET", path), ("HEAD", path))
    assert head.status_code == get.status_code == 404
    assert head.content == b"" and head.headers["content-length"] == get.headers["content-length"]


def test_the_feed_404_stays_plain_text(store: Store, clock: FakeClock) -> None:
    [feed] = fetch(create_app(store, clock=clock), ("GET", f"/f/{secrets.token_urlsafe(32)}.ics"))
    assert feed.status_code == 404
    assert feed.headers["content-type"].startswith("text/plain") and feed.text == "Not Found"
