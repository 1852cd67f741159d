"""The patient connects their own Google Calendar from their page: the three routes of the flow.

GET  /f/<token>/google             starts Google's OAuth web-server flow for this link
GET  /oauth/google/callback        Google sends the browser back here: tokens, calendar, first push
POST /f/<token>/google/disconnect  deletes the calendar, revokes the grant, forgets the token

The `state` is 256 random bits, stored hashed, single-use (deleted as it is read), expiring after
STATE_TTL, bound to the link that started it (a link rotated or revoked meanwhile voids it) and to
the browser (a random value in an HttpOnly cookie that only this flow's path receives): a state
or a callback URL taken from someone else's browser attaches nothing. The PKCE verifier and the
link token travel sealed in the state's row (AES-GCM under the clinic secret), never in a URL.
The refresh token is stored sealed in the channel's row; the disconnect form carries a token
derived from the link and the clinic secret, and cross-site posts are refused.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from calendars.base import PublishJob
from calendars.feeds.store import hash_token
from calendars.gcal_web import (
    WebClient,
    authorization_url,
    create_calendar,
    delete_calendar,
    exchange_code,
    patient_publisher,
    revoke,
)
from reminders.errors import AftercalError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from calendars.feeds.app import FeedApp
    from calendars.feeds.landing import GoogleSection
    from calendars.feeds.store import Store, Treatment

CHANNEL = "patient_google"
CALLBACK_PATH = "/oauth/google/callback"
COOKIE = "aftercal_google_flow"
STATE_TTL = timedelta(minutes=10)
_LOG = logging.getLogger("aftercal.feed")


def channel_context(treatment_pk: int) -> str:
    """What a channel's sealed credentials are bound to (a row copied elsewhere does not open)."""
    return f"channel:{treatment_pk}:{CHANNEL}"


class GoogleConnect:
    """The handlers; `FeedApp` holds the store, the clock and the public address."""

    def __init__(self, feed: FeedApp, client: WebClient) -> None:
        self.feed = feed
        self.client = client

    @property
    def store(self) -> Store:
        return self.feed.store

    def redirect_uri(self, request: Request) -> str:
        return f"{self.feed.base(request)}{CALLBACK_PATH}"

    def csrf_token(self, link_token: str) -> str:
        return self.store.mac(f"disconnect\x1f{hash_token(link_token)}")

    # -- the page's section

    def section(self, link_token: str, treatment: Treatment, outcome: str | None) -> GoogleSection:
        from calendars.feeds.landing import GoogleSection

        states = {state.channel: state for state in self.store.channels(treatment.pk)}
        state = states.get(CHANNEL)
        connected = state is not None and state.disconnected_at is None
        message = {
            "connected": "Connected: your reminders are in the 'Aftercare' calendar of your Google account.",
            "disconnected": "Disconnected: the 'Aftercare' calendar was removed from your Google account.",
            "disconnected-partly": "Disconnected here, but Google did not confirm the removal: delete the 'Aftercare' "
            "calendar in Google Calendar and remove this app's access in your Google account.",
            "denied": "Google Calendar was not connected (access was not allowed).",
            "failed": "Google Calendar could not be connected. Please try again later.",
            "expired": "That sign-in took too long or was already used. Please try again.",
        }.get(outcome or "")
        if state is not None and state.disconnected_at is not None and message is None:
            message = "Google Calendar was disconnected from your Google account."
        return GoogleSection(
            connect_url=None if connected or not treatment.active else f"/f/{link_token}/google",
            connected=connected,
            disconnect_url=f"/f/{link_token}/google/disconnect" if connected else None,
            csrf_token=self.csrf_token(link_token) if connected else None,
            message=message,
        )

    # -- the routes

    async def start(self, request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import RedirectResponse

        link_token = request.path_params["token"]
        treatment = await run_in_threadpool(self.store.lookup_token, link_token)
        if treatment is None:
            return self.feed.not_found_page()
        if not treatment.active:
            return self._back(link_token, None)
        state, verifier, browser = secrets.token_urlsafe(32), secrets.token_urlsafe(48), secrets.token_urlsafe(32)
        sealed = self.store.seal(json.dumps({"token": link_token, "verifier": verifier}), _state_context(state))
        await run_in_threadpool(self.store.start_oauth, state, treatment.pk, link_token, browser, sealed, STATE_TTL)
        target = authorization_url(self.client, redirect_uri=self.redirect_uri(request), state=state, verifier=verifier)
        response = RedirectResponse(target, status_code=303, headers=_NO_STORE)
        response.set_cookie(
            COOKIE,
            browser,
            max_age=int(STATE_TTL.total_seconds()),
            path="/oauth/google/",
            secure=self.feed.base(request).startswith("https://"),
            httponly=True,
            samesite="lax",  # sent on Google's top-level redirect back, never on a cross-site POST
        )
        return response

    async def callback(self, request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        state = request.query_params.get("state", "")
        flow = await run_in_threadpool(self.store.take_oauth, state) if state else None
        browser = request.cookies.get(COOKIE, "")
        if flow is None or not hmac.compare_digest(hash_token(browser), flow.browser_hash):
            return _refused()
        try:
            secrets_ = json.loads(self.store.unseal(flow.sealed, _state_context(state)))
        except AftercalError:
            return _refused()
        link_token, verifier = str(secrets_["token"]), str(secrets_["verifier"])
        if not await run_in_threadpool(self.store.link_is_active, flow.treatment_pk, flow.link_hash):
            return _refused()
        if request.query_params.get("error"):
            return self._back(link_token, "denied")
        code = request.query_params.get("code", "")
        try:
            outcome = await run_in_threadpool(self._connect, link_token, code, self.redirect_uri(request), verifier)
        except AftercalError as exc:
            _LOG.warning("a patient's Google Calendar could not be connected: %s", exc)
            outcome = "failed"
        return self._back(link_token, outcome)

    def _connect(self, link_token: str, code: str, redirect_uri: str, verifier: str) -> str:
        """Tokens for the code, the patient's "Aftercare" calendar, and the plan pushed into it."""
        grant = exchange_code(self.client, code=code, redirect_uri=redirect_uri, verifier=verifier)
        treatment = self.store.lookup_token(link_token)
        if treatment is None:
            revoke(self.client, grant.refresh_token)
            return "expired"
        publisher = patient_publisher(self.client, grant.refresh_token, access_token=grant.access_token)
        try:
            old = {state.channel: state for state in self.store.channels(treatment.pk)}.get(CHANNEL)
            calendar_id = create_calendar(publisher, treatment.zone)
            sealed = self.store.seal(grant.refresh_token, channel_context(treatment.pk))
            self.store.set_channel(treatment.pk, CHANNEL, {"calendar_id": calendar_id}, credentials=sealed)
            if old is not None and old.credentials:  # connected before: that grant and calendar go
                self._remove(treatment.pk, old.target, old.credentials)
            (result,) = publisher.publish_jobs([PublishJob.publish(treatment.plan(), calendar_id)])
        finally:
            publisher.close()
        if result.error is None:
            self.store.mark_synced(treatment.pk, CHANNEL, revision=treatment.revision, removed=False)
        else:  # connected all the same: `aftercal sync` finishes the push
            self.store.mark_failed(treatment.pk, CHANNEL, str(result.error))
        return "connected"

    async def disconnect(self, request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import PlainTextResponse

        link_token = request.path_params["token"]
        treatment = await run_in_threadpool(self.store.lookup_token, link_token)
        if treatment is None:
            return self.feed.not_found_page()
        given = await _form_field(request, "csrf")
        if not self._same_origin(request) or not hmac.compare_digest(given, self.csrf_token(link_token)):
            return PlainTextResponse("Forbidden", status_code=403, headers=_NO_STORE)
        state = {state.channel: state for state in self.store.channels(treatment.pk)}.get(CHANNEL)
        removed = True
        if state is not None:
            if state.credentials:
                removed = await run_in_threadpool(self._remove, treatment.pk, state.target, state.credentials)
            await run_in_threadpool(self.store.drop_channel, treatment.pk, CHANNEL)
        # Said removed only when Google confirmed it; else the patient is told what is left to do.
        return self._back(link_token, "disconnected" if removed else "disconnected-partly")

    def _remove(self, treatment_pk: int, target: dict[str, Any], sealed: str) -> bool:
        """Delete the patient's calendar (its events go with it) and revoke the grant; True only if
        Google confirmed both. The token is forgotten whatever Google answers."""
        try:
            refresh = self.store.unseal(sealed, channel_context(treatment_pk))
            publisher = patient_publisher(self.client, refresh)
        except AftercalError as exc:  # unreadable, or the grant is gone already
            _LOG.warning("a patient's Google calendar could not be reached to remove it: %s", exc)
            return False
        try:
            if target.get("calendar_id"):
                delete_calendar(publisher, str(target["calendar_id"]))
            return revoke(self.client, refresh)
        except AftercalError as exc:
            _LOG.warning("a patient's Google calendar or grant could not be removed: %s", exc)
            return False
        finally:
            publisher.close()

    def _same_origin(self, request: Request) -> bool:
        """Not a cross-site post: Fetch Metadata when the browser sends it, else the Origin (the
        page's no-referrer policy makes a browser send "Origin: null" even for its own form, so
        null proves nothing either way); the form token is checked besides, always."""
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None:
            return fetch_site == "same-origin"
        origin = request.headers.get("origin")
        if origin and origin != "null":
            base = urlsplit(self.feed.base(request))
            return origin.rstrip("/") == f"{base.scheme}://{base.netloc}"
        return True

    def _back(self, link_token: str, outcome: str | None) -> Response:
        from starlette.responses import RedirectResponse

        query = f"?google={outcome}" if outcome else ""
        response = RedirectResponse(f"/f/{link_token}{query}", status_code=303, headers=_NO_STORE)
        response.delete_cookie(COOKIE, path="/oauth/google/")
        return response


_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


async def _form_field(request: Request, name: str) -> str:
    """One field of a small urlencoded form (the disconnect button's), read without a multipart
    parser; a body over 4 KiB or of another type gives ""."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return ""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > 4096:
            return ""
    values = parse_qs(body.decode("utf-8", "replace"), max_num_fields=8).get(name, [""])
    return values[0]


def _state_context(state: str) -> str:
    return f"oauth:{hash_token(state)}"


def _refused() -> Response:
    """A state that is unknown, used, expired, from another browser, or of a link since replaced:
    one answer for all, with the way back."""
    from starlette.responses import HTMLResponse

    page = (
        "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        "<title>Sign-in not valid</title><p>This sign-in is not valid any more (it was used already, took "
        "too long, or was started elsewhere). Open your care plan's link again and choose Google Calendar.</p>"
    )
    return HTMLResponse(page, status_code=400, headers=_NO_STORE)
