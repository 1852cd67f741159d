"""The stand-in's web-server OAuth flow (issue 11) answers as Google documents it: PKCE, single-use
codes that expire, the consent page, revocation, and the calendar.app.created scope kept to the
calendars its own client made. Driven over HTTP with httpx, and with google_auth_oauthlib's Flow."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.google.standin import DEFAULT_USER, SCOPE_APP_CREATED, CalendarStandin, ManualClock

CLIENT, SECRET = "web-client.apps.example", "web-client-secret"
REDIRECT = "https://clinic.example/oauth2callback"
# RFC 7636 Appendix B: this verifier's S256 challenge (https://www.rfc-editor.org/rfc/rfc7636#appendix-B).
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
PKCE = {"code_challenge": CHALLENGE, "code_challenge_method": "S256"}


@pytest.fixture
def web(standin: CalendarStandin) -> CalendarStandin:
    """The stand-in with a "Web application" OAuth client registered."""
    standin.register_client(CLIENT, SECRET, kind="web", redirect_uris=(REDIRECT,))
    return standin


def authorize(standin: CalendarStandin, **extra: str) -> httpx.Response:
    """The browser opens Google's authorization URL (redirects not followed)."""
    query = {
        "client_id": CLIENT, "redirect_uri": REDIRECT, "response_type": "code", "scope": SCOPE_APP_CREATED,
        "state": "state-1", "access_type": "offline", **extra,
    }  # fmt: skip
    return httpx.get(standin.auth_url, params=query)


def redirected(response: httpx.Response) -> dict[str, str]:
    """The query Google sent the browser back to the redirect URI with."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(standin: CalendarStandin, code: str, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code", "code": code, "client_id": CLIENT, "client_secret": SECRET,
        "redirect_uri": REDIRECT, **extra,
    }  # fmt: skip
    return httpx.post(standin.token_url, data=form)


def refresh(standin: CalendarStandin, refresh_token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT, "client_secret": SECRET}
    return httpx.post(standin.token_url, data=form)


def connect(standin: CalendarStandin, client_id: str = CLIENT, secret: str = SECRET) -> dict[str, Any]:
    """A whole consent with PKCE: the token endpoint's answer (access and refresh token)."""
    code = redirected(authorize(standin, client_id=client_id, **PKCE))["code"]
    answer = exchange(standin, code, client_id=client_id, client_secret=secret, code_verifier=VERIFIER)
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


def api(standin: CalendarStandin, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, standin.url + "calendar/v3/" + path, headers=headers, **kwargs)


def reason(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["errors"][0]["reason"]


EVENT = {
    "id": "abcde12345",
    "summary": "Aftercare",
    "start": {"dateTime": "2027-03-16T10:00:00", "timeZone": "America/Chicago"},
    "end": {"dateTime": "2027-03-16T10:15:00", "timeZone": "America/Chicago"},
}


# ---- PKCE, single-use codes, expiry ---------------------------------------------------------------------


def test_pkce_s256_with_the_rfc_test_vector(web: CalendarStandin) -> None:
    back = redirected(authorize(web, **PKCE))
    assert back["state"] == "state-1" and back["scope"] == SCOPE_APP_CREATED
    answer = exchange(web, back["code"], code_verifier=VERIFIER)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert tokens["refresh_token"].startswith("refresh-") and tokens["scope"] == SCOPE_APP_CREATED


@pytest.mark.parametrize(
    "verifier",
    [
        None,  # missing
        "x" * 43,  # well formed, not the one
        VERIFIER[:42],  # 42 characters: too short
        VERIFIER + "a" * 86,  # 129 characters: too long
        VERIFIER[:-1] + "+",  # "+" is not an unreserved character
        CHALLENGE,  # the challenge itself, as if the method were plain
    ],
)
def test_pkce_refuses_a_missing_malformed_or_wrong_verifier(web: CalendarStandin, verifier: str | None) -> None:
    code = redirected(authorize(web, **PKCE))["code"]
    answer = exchange(web, code, **({} if verifier is None else {"code_verifier": verifier}))
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert web.refresh_tokens == {}


def test_pkce_plain_is_the_default_method(web: CalendarStandin) -> None:
    code = redirected(authorize(web, code_challenge=VERIFIER))["code"]  # no code_challenge_method: plain
    assert exchange(web, code, code_verifier=VERIFIER).status_code == 200
    code = redirected(authorize(web, code_challenge=VERIFIER, code_challenge_method="plain"))["code"]
    assert exchange(web, code, code_verifier=CHALLENGE).json()["error"] == "invalid_grant"


@pytest.mark.parametrize("extra", [{"code_challenge_method": "S512"}, {"code_challenge": "too-short"}])
def test_an_unsupported_challenge_is_an_error_page(web: CalendarStandin, extra: dict[str, str]) -> None:
    answer = authorize(web, **{**PKCE, **extra})
    assert answer.status_code == 400 and "invalid_request" in answer.text
    assert "location" not in answer.headers and web.codes == {}


def test_a_code_is_exchanged_once(web: CalendarStandin) -> None:
    code = redirected(authorize(web, **PKCE))["code"]
    assert exchange(web, code, code_verifier=VERIFIER).status_code == 200
    again = exchange(web, code, code_verifier=VERIFIER)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert len(web.refresh_tokens) == 1


def test_a_code_expires_after_ten_minutes(web: CalendarStandin, clock: ManualClock) -> None:
    code = redirected(authorize(web, **PKCE))["code"]
    clock.advance(599)
    assert exchange(web, code, code_verifier=VERIFIER).status_code == 200
    code = redirected(authorize(web, **PKCE))["code"]
    clock.advance(601)
    late = exchange(web, code, code_verifier=VERIFIER)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


def test_the_flow_with_google_auth_oauthlib(web: CalendarStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    from google_auth_oauthlib.flow import Flow

    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the stand-in's token endpoint is plain http
    config = {"web": {"client_id": CLIENT, "client_secret": SECRET, "auth_uri": web.auth_url,
                      "token_uri": web.token_url, "redirect_uris": [REDIRECT]}}  # fmt: skip
    flow = Flow.from_client_config(config, scopes=[SCOPE_APP_CREATED], redirect_uri=REDIRECT)
    url, state = flow.authorization_url(access_type="offline", prompt="consent")
    sent = parse_qs(urlsplit(url).query)
    assert sent["code_challenge_method"] == ["S256"] and len(sent["code_challenge"][0]) == 43
    back = redirected(httpx.get(url))
    assert back["state"] == state
    try:
        flow.fetch_token(code=back["code"])
    finally:
        flow.oauth2session.close()  # its requests session keeps the connection open otherwise
    credentials = flow.credentials
    assert credentials.refresh_token.startswith("refresh-")
    made = api(web, "POST", "calendars", credentials.token, json={"summary": "Aftercare"})
    assert made.status_code == 200, made.text


# ---- the consent page -------------------------------------------------------------------------------------


class Form(HTMLParser):
    """The consent page's form: its action and method, hidden inputs, and buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.form: dict[str, str] = {}
        self.hidden: dict[str, str] = {}
        self.buttons: dict[str, tuple[str, str]] = {}  # value -> (name, text)
        self._button: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.form = values
        elif tag == "input" and values.get("type") == "hidden":
            self.hidden[values["name"]] = values["value"]
        elif tag == "button":
            self._button = (values["name"], values["value"])

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            name, value = self._button
            self.buttons[value] = (name, data.strip())
            self._button = None


def consent(standin: CalendarStandin, decision: str, **extra: str) -> dict[str, str]:
    """Open the authorization URL, see the consent page, press a button: where Google sends the browser."""
    page = authorize(standin, **extra)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
    form = Form()
    form.feed(page.text)
    assert form.form == {"method": "post", "action": "/auth/decide"}
    assert form.buttons == {"allow": ("decision", "Allow"), "deny": ("decision", "Deny")}
    answer = httpx.post(standin.url + "auth/decide", data={**form.hidden, "decision": decision})
    return redirected(answer)


def test_consent_page_shows_the_client_and_scopes_and_allow_gives_a_code(web: CalendarStandin) -> None:
    web.consent_page = True
    state = 'a b/+=&é"<x>'  # given back unchanged, whatever it holds
    page = authorize(web, state=state, **PKCE)
    assert page.status_code == 200 and "location" not in page.headers
    assert CLIENT in page.text and SCOPE_APP_CREATED in page.text and DEFAULT_USER in page.text
    assert web.codes == {}  # nothing granted before the person decides

    back = consent(web, "allow", state=state, **PKCE)
    assert back["state"] == state and back["scope"] == SCOPE_APP_CREATED
    tokens = exchange(web, back["code"], code_verifier=VERIFIER).json()
    assert tokens["refresh_token"].startswith("refresh-")
    assert web.decisions == ["allow"]


def test_consent_page_deny_sends_access_denied_and_the_state(web: CalendarStandin) -> None:
    web.consent_page = True
    back = consent(web, "deny", state="state-9", **PKCE)
    assert back == {"error": "access_denied", "state": "state-9"}
    assert web.codes == {} and web.refresh_tokens == {}
    assert not web.consents  # nothing was granted: the next visit asks again
    assert authorize(web, **PKCE).status_code == 200


def test_consent_page_only_when_google_shows_its_consent_screen(web: CalendarStandin) -> None:
    web.consent_page = True
    consent(web, "allow")
    # Scopes granted before and no prompt=consent: Google skips the screen, and gives no refresh token.
    back = redirected(authorize(web, **PKCE))
    assert "refresh_token" not in exchange(web, back["code"], code_verifier=VERIFIER).json()
    assert authorize(web, prompt="consent").status_code == 200


def test_consent_page_is_off_by_default(standin: CalendarStandin) -> None:
    assert CalendarStandin().consent_page is False
    standin.register_client(CLIENT, SECRET, kind="web", redirect_uris=(REDIRECT,))
    assert "code" in redirected(authorize(standin))


def test_a_tampered_decision_is_refused(web: CalendarStandin) -> None:
    web.consent_page = True
    query = {"client_id": CLIENT, "redirect_uri": "https://evil.example/cb", "scope": SCOPE_APP_CREATED, "state": "s"}
    answer = httpx.post(web.url + "auth/decide", data={**query, "decision": "allow"})
    assert answer.status_code == 400 and "redirect_uri_mismatch" in answer.text and web.codes == {}


# ---- revocation -----------------------------------------------------------------------------------------


def test_revoking_the_refresh_token_ends_the_grant(web: CalendarStandin) -> None:
    tokens = connect(web)
    assert api(web, "POST", "calendars", tokens["access_token"], json={"summary": "Aftercare"}).status_code == 200
    assert web.granted(DEFAULT_USER, CLIENT)

    answer = httpx.post(web.revoke_url, data={"token": tokens["refresh_token"]})
    assert (answer.status_code, answer.json()) == (200, {})
    assert not web.granted(DEFAULT_USER, CLIENT)
    assert refresh(web, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert reason(api(web, "POST", "calendars", tokens["access_token"], json={"summary": "x"})) == (401, "authError")
    again = httpx.post(web.revoke_url, data={"token": tokens["refresh_token"]})
    assert (again.status_code, again.json()["error"]) == (400, "invalid_token")
    # The grant is gone: the next authorization shows the consent screen, and gives a refresh token again.
    assert "refresh_token" in connect(web)


def test_revoking_an_access_token_also_revokes_its_refresh_token(web: CalendarStandin) -> None:
    tokens = connect(web)
    answer = httpx.post(web.revoke_url, params={"token": tokens["access_token"]})  # the query string works too
    assert answer.status_code == 200
    assert refresh(web, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_revoking_an_unknown_token_is_invalid_token(web: CalendarStandin) -> None:
    answer = httpx.post(web.revoke_url, data={"token": "never-issued"})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_token"


def test_revoke_all_is_the_person_removing_the_app(web: CalendarStandin) -> None:
    patient = connect(web)
    web.browser_user = "other@example.com"
    other = connect(web)
    assert web.revoke_all(DEFAULT_USER) == 2  # the refresh token and the access token
    assert refresh(web, patient["refresh_token"]).json()["error"] == "invalid_grant"
    assert api(web, "GET", "calendars/primary", patient["access_token"]).status_code == 401
    assert refresh(web, other["refresh_token"]).status_code == 200  # another person's grant stays
    assert web.granted("other@example.com") and not web.granted(DEFAULT_USER)


# ---- calendar.app.created -------------------------------------------------------------------------------


def test_app_created_reaches_only_the_calendars_its_client_made(web: CalendarStandin) -> None:
    token = connect(web)["access_token"]
    made = api(web, "POST", "calendars", token, json={"summary": "Aftercare"}).json()
    (calendar,) = web.calendars_of(DEFAULT_USER, made_by=CLIENT)
    assert calendar.id == made["id"] and calendar.owner == DEFAULT_USER and calendar.made_by == CLIENT

    events = f"calendars/{made['id']}/events"
    assert api(web, "GET", f"calendars/{made['id']}", token).status_code == 200
    assert api(web, "POST", events, token, json=EVENT).status_code == 200
    assert api(web, "PATCH", f"{events}/abcde12345", token, json={"summary": "Moved"}).status_code == 200
    assert [e["summary"] for e in api(web, "GET", events, token).json()["items"]] == ["Moved"]
    assert api(web, "DELETE", f"{events}/abcde12345", token).status_code == 204

    refused = (403, "insufficientPermissions")
    assert reason(api(web, "GET", "calendars/primary/events", token)) == refused
    assert reason(api(web, "POST", "calendars/primary/events", token, json=EVENT)) == refused
    assert reason(api(web, "GET", "calendars/primary", token)) == refused
    assert reason(api(web, "DELETE", "calendars/primary", token)) == refused
    assert reason(api(web, "GET", "users/me/calendarList", token)) == refused
    web.add_calendar("family@group.calendar.google.com", "Family")  # the person made it in Google Calendar
    assert reason(api(web, "GET", "calendars/family@group.calendar.google.com/events", token)) == refused
    assert reason(api(web, "DELETE", "calendars/family@group.calendar.google.com", token)) == refused

    # Another app's calendar in the same account is out of reach too.
    web.register_client("other-app", "other-secret", kind="web", redirect_uris=(REDIRECT,))
    theirs = api(web, "POST", "calendars", connect(web, "other-app", "other-secret")["access_token"],
                 json={"summary": "Theirs"}).json()  # fmt: skip
    assert reason(api(web, "GET", f"calendars/{theirs['id']}/events", token)) == refused
    assert reason(api(web, "DELETE", f"calendars/{theirs['id']}", token)) == refused
    assert web.events(made["id"], identity=DEFAULT_USER) == []


def test_deleting_its_calendar_removes_it_with_its_events(web: CalendarStandin) -> None:
    token = connect(web)["access_token"]
    made = api(web, "POST", "calendars", token, json={"summary": "Aftercare"}).json()
    api(web, "POST", f"calendars/{made['id']}/events", token, json=EVENT)
    assert [e["id"] for e in web.events(made["id"])] == ["abcde12345"]

    assert api(web, "DELETE", f"calendars/{made['id']}", token).status_code == 204
    assert reason(api(web, "GET", f"calendars/{made['id']}", token)) == (404, "notFound")
    assert reason(api(web, "GET", f"calendars/{made['id']}/events", token)) == (404, "notFound")
    assert web.calendars_of(DEFAULT_USER, made_by=CLIENT) == [] and web.named("Aftercare") == []
    assert list(web.deleted_calendars[made["id"]].events) == ["abcde12345"]
    with pytest.raises(KeyError):
        web.events(made["id"])


def test_a_primary_calendar_cannot_be_deleted(standin: CalendarStandin) -> None:
    # No token issued yet: a --no-auth call, with the full calendar scope.
    assert reason(api(standin, "DELETE", "calendars/primary")) == (403, "cannotDeletePrimaryCalendar")


# ---- helpers: calendars and events of an identity, what a flow cost ---------------------------------------------


def test_helpers_read_an_identitys_calendars_and_count_a_flows_requests(web: CalendarStandin) -> None:
    web.browser_user = "other@example.com"
    web.reset_counts()
    token = connect(web)["access_token"]
    made = api(web, "POST", "calendars", token, json={"summary": "Aftercare"}).json()
    api(web, "POST", f"calendars/{made['id']}/events", token, json=EVENT)
    assert web.requests == [
        ("GET", "/auth"),
        ("POST", "/token"),
        ("POST", "/calendar/v3/calendars"),
        ("POST", f"/calendar/v3/calendars/{made['id']}/events"),
    ]
    assert web.http_requests == 4 and len(web.calls) == 2  # calls: the API calls only

    assert [c.id for c in web.calendars_of("other@example.com")] == [made["id"]]
    assert [e["id"] for e in web.events(made["id"], identity="other@example.com")] == ["abcde12345"]
    with pytest.raises(KeyError):
        web.events(made["id"], identity=DEFAULT_USER)  # not that identity's calendar
    web.put_event("primary", dict(EVENT, id="fghij12345"), identity="other@example.com")  # their own calendar
    assert [e["id"] for e in web.events("primary", identity="other@example.com")] == ["fghij12345"]
    assert [c.id for c in web.calendars_of("other@example.com")] == ["other@example.com", made["id"]]
    assert web.events() == []  # DEFAULT_USER's own calendar is another one
