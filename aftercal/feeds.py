"""The treatment store and its feeds: the library twins of `aftercal init`, `treatments ...` and `serve`.

Each function opens the treatment store (a file path, a postgresql:// URL, or None for
clinic.db in the user data folder), does one thing and closes it. A store must exist: `init_store`
makes one (a mistyped path is an error, never a new empty store). `secret` is the clinic secret
(None: there is none; not given: the one of aftercal's default configuration, if any); a store
bound to one needs it. A link's token
exists in clear only in what `add_treatment`, `rotate_link` and `new_link` return. Nothing here
prints. Pushing a treatment's changes to its CalDAV and Google channels is `aftercal.sync`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calendars.feeds.limits import DEFAULT_DB_TIMEOUT as DEFAULT_DB_TIMEOUT
from calendars.feeds.limits import DEFAULT_HEADER_TIMEOUT as DEFAULT_HEADER_TIMEOUT
from calendars.feeds.limits import DEFAULT_MAX_CONNECTIONS as DEFAULT_MAX_CONNECTIONS
from reminders.errors import InputError
from reminders.schedule import DEFAULT_MORNING, DEFAULT_QUIET, get_patient_zone, parse_clock, parse_quiet_hours

if TYPE_CHECKING:
    from calendars.feeds.app import FeedLinks
    from calendars.feeds.store import ChannelState, Store, StoredOptions, Treatment
    from calendars.gcal_web import WebClient

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class _FromConfig:
    """`secret` not given: the one of aftercal's default configuration, if any."""

    def __repr__(self) -> str:
        return "FROM_CONFIG"


FROM_CONFIG = _FromConfig()
Secret = bytes | None | _FromConfig  # None: this clinic has no secret


def clinic_secret(secret: Secret) -> bytes | None:
    """`secret` itself, or (FROM_CONFIG) the clinic secret of the default configuration."""
    if not isinstance(secret, _FromConfig):
        return secret
    from aftercal.config import load_config

    return load_config().secret()


@contextmanager
def opened_store(db: str | Path | None, secret: Secret = FROM_CONFIG, *, create: bool = False) -> Iterator[Store]:
    """The store `db` for the duration of a `with` block (it must exist unless `create`)."""
    from calendars.feeds.store import open_store

    store = open_store(db, create=create, secret=clinic_secret(secret))
    try:
        yield store
    finally:
        store.close()


def check_store_secret(db: str | Path | None, secret: bytes | None) -> None:
    """For `init`: an InputError if the store `db` exists and is bound to another clinic secret
    than `secret` (None: no secret here yet, so `init` would make a new one that cannot open it)."""
    from calendars.feeds.store import open_store
    from reminders.schedule import EventIds

    try:
        store = open_store(db, create=True, migrate=False)
    except InputError:  # its folder does not exist yet (init makes it): no store there to check
        return
    try:
        bound = store.clinic_setting("secret_fingerprint") if store.exists() and store.schema_version() >= 3 else None
        label = store.label
    finally:
        store.close()
    if bound is not None and (secret is None or EventIds(secret).fingerprint != bound):
        raise InputError(
            f"the treatment store {label} is bound to another clinic's secret: to set up a new clinic give it its "
            "own store (`aftercal init --db new.db`); to use this store here, copy the aftercal.secret of the "
            "machine that made it next to this configuration file first"
        )


def init_store(db: str | Path | None, secret: bytes | None) -> str:
    """Make the treatment store if there is none (SQLite file or PostgreSQL tables) and bind it to
    the clinic `secret` (its events' identifiers are then keyed with it). Returns one line that
    says what was done. Safe to run again."""
    from calendars.feeds.store import open_store

    store = open_store(db, create=True, migrate=False)
    try:
        existed = store.exists()
        store.migrate()
        bound = store.bind_secret(secret) if secret is not None else False
        count = store.count()
        label = store.label
    finally:
        store.close()
    if not existed:
        return f"Created the treatment store {label}" + (" (keyed with the clinic secret)" if secret else "")
    note = (
        "; bound it to the clinic secret: each treatment's events move to keyed identifiers at its next sync"
        if bound
        else ""
    )
    return f"The treatment store {label} already exists ({count} treatments){note}"


def treatment_options(
    *,
    discreet: bool = False,
    morning: str = DEFAULT_MORNING,
    quiet: str = DEFAULT_QUIET,
    clinic_name: str | None = None,
    clinic_phone: str | None = None,
    clinic_url: str | None = None,
    patient_name: str | None = None,
    name_in_feed: bool = False,
) -> StoredOptions:
    """A stored treatment's plan options, checked; the patient's name reaches the feed only with name_in_feed."""
    from calendars.feeds.store import StoredOptions

    if name_in_feed and not patient_name:
        raise InputError("--name-in-feed needs --patient-name")
    options = StoredOptions(
        discreet=discreet,
        morning=parse_clock(morning, "--morning").strftime("%H:%M"),
        quiet=quiet,
        clinic_name=clinic_name,
        clinic_phone=clinic_phone,
        clinic_url=clinic_url,
        patient_name=patient_name or None,
        name_in_feed=name_in_feed,
    )
    parse_quiet_hours(quiet)  # one-line error before anything is stored
    return options


@dataclass(frozen=True)
class NewLink:
    """A treatment and its new link token (shown once: the store keeps only its hash)."""

    treatment: Treatment
    token: str


def add_treatment(
    protocol: str,
    at: str,
    tz: str,
    treatment_id: str | None = None,
    *,
    options: StoredOptions | None = None,
    db: str | Path | None = None,
    allow_fixed_zone: bool = False,
    channels: Sequence[tuple[str, dict[str, Any]]] = (),
    secret: Secret = FROM_CONFIG,
) -> NewLink:
    """Store a treatment (its protocol's text included, so its feed never reads files) and the
    channels it is pushed to, as (name, target) pairs (see `aftercal.sync.channel_target`);
    returns its link. `aftercal.sync.sync_store` then pushes it."""
    from calendars.feeds.store import StoredOptions

    with opened_store(db, secret) as store:
        treatment, token = store.add(
            protocol, at, tz, treatment_id, options or StoredOptions(), allow_fixed_zone=allow_fixed_zone,
            channels=channels,
        )  # fmt: skip
    return NewLink(treatment, token)


def list_treatments(
    *, db: str | Path | None = None, check: bool = False, secret: Secret = FROM_CONFIG
) -> list[Treatment]:
    """Every stored treatment. A row that cannot be read has `problem` set instead of failing the
    list; with `check`, so does one whose feed would not render (its link answers 503)."""
    with opened_store(db, secret) as store:
        return store.list(check=check)


def get_treatment(treatment_id: str, *, db: str | Path | None = None, secret: Secret = FROM_CONFIG) -> Treatment:
    """One stored treatment (its link state, never its token)."""
    with opened_store(db, secret) as store:
        return store.get(treatment_id)


def reschedule_treatment(
    treatment_id: str,
    at: str,
    tz: str | None = None,
    *,
    db: str | Path | None = None,
    allow_fixed_zone: bool = False,
    secret: Secret = FROM_CONFIG,
) -> Treatment:
    """Move a treatment (and, with `tz`, to another zone): same UIDs, SEQUENCE one higher."""
    if tz is not None:
        tz = get_patient_zone(tz, allow_fixed=allow_fixed_zone).key  # before the store is opened
    with opened_store(db, secret) as store:
        return store.reschedule(treatment_id, at, tz, allow_fixed_zone=allow_fixed_zone)


def cancel_treatment(treatment_id: str, *, db: str | Path | None = None, secret: Secret = FROM_CONFIG) -> Treatment:
    """Cancel a treatment: its feed shows cancelled events for a while, then none."""
    with opened_store(db, secret) as store:
        return store.cancel(treatment_id)


def rotate_link(treatment_id: str, *, db: str | Path | None = None, secret: Secret = FROM_CONFIG) -> NewLink:
    """A new link for a treatment; the old one stops working at once."""
    with opened_store(db, secret) as store:
        treatment, token = store.rotate_link(treatment_id)
        return NewLink(treatment, token)


def new_link(treatment_id: str, *, db: str | Path | None = None, secret: Secret = FROM_CONFIG) -> NewLink:
    """Another link for a treatment; the ones it already has keep working."""
    with opened_store(db, secret) as store:
        treatment, token = store.new_link(treatment_id)
        return NewLink(treatment, token)


@dataclass(frozen=True)
class Forgetting:
    """What `forget_treatment` found: whether the treatment was stored, and the row still kept
    until its channels confirm its events removed (None: nothing of it is left)."""

    existed: bool
    kept: Treatment | None


def forget_treatment(treatment_id: str, *, db: str | Path | None = None, secret: Secret = FROM_CONFIG) -> Forgetting:
    """Switch a treatment's links off and erase the patient's name at once; its row goes once its
    channels confirmed its events removed (`aftercal.sync.sync_store` does that; at once when it
    has no channel). Safe to repeat."""
    with opened_store(db, secret) as store:
        existed = store.find(treatment_id) is not None
        return Forgetting(existed, store.forget(treatment_id) if existed else None)


def forget_treatments(
    treatment_ids: Sequence[str], *, db: str | Path | None = None, secret: Secret = FROM_CONFIG
) -> list[str]:
    """`forget_treatment` for each; returns the ids whose rows wait for a channel's removal."""
    with opened_store(db, secret) as store:
        return [tid for tid in treatment_ids if store.forget(tid) is not None]


def stored_ids(
    treatment_ids: Sequence[str], *, db: str | Path | None = None, secret: Secret = FROM_CONFIG
) -> list[str]:
    """Which of these treatments the store still holds."""
    with opened_store(db, secret) as store:
        return [tid for tid in treatment_ids if store.find(tid) is not None]


def ended_before(day: date, *, db: str | Path | None = None, secret: Secret = FROM_CONFIG) -> list[Treatment]:
    """The treatments whose aftercare ended (last reminder day, or cancellation) before `day`."""
    with opened_store(db, secret) as store:
        return [t for t in store.list() if t.problem is None and t.ends_on() < day]


@dataclass(frozen=True)
class TreatmentState:
    """A treatment with where its events are: its feed links and each channel's state."""

    treatment: Treatment
    channels: list[ChannelState]


def treatment_state(treatment_id: str, *, db: str | Path | None = None, secret: Secret = FROM_CONFIG) -> TreatmentState:
    with opened_store(db, secret) as store:
        treatment = store.get(treatment_id)
        return TreatmentState(treatment, store.channels(treatment.pk))


def revoke_link(treatment_id: str, *, db: str | Path | None = None, secret: Secret = FROM_CONFIG) -> Treatment:
    """Switch a treatment's link off (404) until `rotate_link`."""
    with opened_store(db, secret) as store:
        return store.revoke_link(treatment_id)


def check_base_url(base_url: str) -> str:
    """The feed server's public address without its trailing slash; an InputError for anything but http(s)."""
    from calendars.feeds.app import feed_base_url

    return feed_base_url(base_url)


def link_base_problem(base_url: str) -> str | None:
    """Why links on `base_url` would fail a patient (loopback: no phone reaches it; plain http:
    sent in clear, and refused by some calendar apps), or None for a public https address."""
    from urllib.parse import urlsplit

    from calendars.http import is_loopback

    base = check_base_url(base_url)
    if is_loopback(base):
        host = urlsplit(base).hostname
        return f"these links point at {base}: {host} is this machine, which no patient's phone can reach"
    if base.lower().startswith("http://"):
        return f"these links use plain http ({base}): they travel unencrypted and some calendar apps refuse them"
    return None


def feed_links(base_url: str, token: str) -> FeedLinks:
    """A token's feed, webcal and page addresses on the server at `base_url`."""
    from calendars.feeds.app import feed_links

    return feed_links(base_url, token)


def check_qr_file(path: str | Path | None) -> None:
    """Fail now, before a link is made, if its QR code could not be drawn (or written to `path`) later."""
    from calendars.feeds.qr import preflight

    preflight(path)


def qr_text(data: str) -> str:
    """The QR code of `data` drawn with block characters, for a terminal."""
    from calendars.feeds.qr import qr_terminal

    return qr_terminal(data)


def write_qr(data: str, path: str | Path) -> None:
    """The QR code of `data` as an .svg or .png file (by its suffix)."""
    from calendars.feeds.qr import write_qr

    write_qr(data, path)


def serve_feeds(
    db: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    base_url: str | None = None,
    cancelled_days: int = 30,
    log_level: str = "info",
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    db_timeout: float = DEFAULT_DB_TIMEOUT,
    on_listening: Callable[[str, str], None] | None = None,
    on_empty: Callable[[str], None] | None = None,
    secret: Secret = FROM_CONFIG,
    google_web: WebClient | None = None,
) -> None:
    """Serve every stored treatment's feed and page under uvicorn until SIGINT/SIGTERM.

    At most `max_connections` open connections (lowered to fit the open-files limit), each closed
    if it sends no complete request headers within `header_timeout` seconds; every database call
    ends within `db_timeout` seconds (a 503 otherwise). `on_listening(address, public_address)` is
    called once the checks passed, just before the server starts; `on_empty(store)` before that
    if the store holds no treatment yet (every link would answer 404).
    """
    import uvicorn  # noqa: F401 - the serve extra: missing, the command says so before anything else

    from calendars.feeds.app import check_can_listen, serve
    from calendars.feeds.store import open_store

    if log_level.lower() not in LOG_LEVELS:
        raise InputError(f"--log-level {log_level!r}: use critical, error, warning, info or debug")
    if max_connections < 1:
        raise InputError("--max-connections must be at least 1")
    if not header_timeout > 0:
        raise InputError("--header-timeout must be more than 0 seconds")
    if not db_timeout >= 2:
        raise InputError("--db-timeout must be at least 2 seconds (libpq's shortest connect timeout)")
    public = check_base_url(base_url) if base_url else None
    check_can_listen(host, port)
    store = open_store(db, create=False, timeout=db_timeout, secret=clinic_secret(secret))
    try:
        if on_empty is not None and store.count() == 0:
            on_empty(store.label)
    except BaseException:
        store.close()
        raise
    if on_listening is not None:
        on_listening(f"http://{host}:{port}", public or f"http://{host}:{port}")
    serve(
        store,
        host=host,
        port=port,
        base_url=public,
        cancelled_for=timedelta(days=cancelled_days),
        log_level=log_level.lower(),
        max_connections=max_connections,
        header_timeout=header_timeout,
        db_timeout=db_timeout,
        google_web=google_web,
    )
