"""Subscription feeds: the library twins of `aftercal treatments ...` and `aftercal serve`.

Each function opens the treatment store (a file path, a postgresql:// URL, or None for
clinic.db in the user data folder), does one thing and closes it. A link's token exists in clear
only in what `add_treatment` and `rotate_link` return. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from calendars.feeds.limits import DEFAULT_DB_TIMEOUT as DEFAULT_DB_TIMEOUT
from calendars.feeds.limits import DEFAULT_HEADER_TIMEOUT as DEFAULT_HEADER_TIMEOUT
from calendars.feeds.limits import DEFAULT_MAX_CONNECTIONS as DEFAULT_MAX_CONNECTIONS
from reminders.errors import InputError
from reminders.schedule import DEFAULT_MORNING, DEFAULT_QUIET, get_patient_zone, parse_clock, parse_quiet_hours

if TYPE_CHECKING:
    from calendars.feeds.app import FeedLinks
    from calendars.feeds.store import Store, StoredOptions, Treatment

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


@contextmanager
def _store(db: str | Path | None) -> Iterator[Store]:
    from calendars.feeds.store import open_store

    store = open_store(db)
    try:
        yield store
    finally:
        store.close()


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
) -> NewLink:
    """Store a treatment (its protocol's text included, so its feed never reads files); returns its link."""
    from calendars.feeds.store import StoredOptions

    with _store(db) as store:
        treatment, token = store.add(
            protocol, at, tz, treatment_id, options or StoredOptions(), allow_fixed_zone=allow_fixed_zone
        )
    return NewLink(treatment, token)


def list_treatments(*, db: str | Path | None = None, check: bool = False) -> list[Treatment]:
    """Every stored treatment. A row that cannot be read has `problem` set instead of failing the
    list; with `check`, so does one whose feed would not render (its link answers 503)."""
    with _store(db) as store:
        return store.list(check=check)


def get_treatment(treatment_id: str, *, db: str | Path | None = None) -> Treatment:
    """One stored treatment (its link state, never its token)."""
    with _store(db) as store:
        return store.get(treatment_id)


def reschedule_treatment(
    treatment_id: str, at: str, tz: str | None = None, *, db: str | Path | None = None, allow_fixed_zone: bool = False
) -> Treatment:
    """Move a treatment (and, with `tz`, to another zone): same UIDs, SEQUENCE one higher."""
    if tz is not None:
        tz = get_patient_zone(tz, allow_fixed=allow_fixed_zone).key  # before the store is opened
    with _store(db) as store:
        return store.reschedule(treatment_id, at, tz, allow_fixed_zone=allow_fixed_zone)


def cancel_treatment(treatment_id: str, *, db: str | Path | None = None) -> Treatment:
    """Cancel a treatment: its feed shows cancelled events for a while, then none."""
    with _store(db) as store:
        return store.cancel(treatment_id)


def rotate_link(treatment_id: str, *, db: str | Path | None = None) -> NewLink:
    """A new link for a treatment; the old one stops working at once."""
    with _store(db) as store:
        treatment, token = store.rotate_link(treatment_id)
        return NewLink(treatment, token)


def revoke_link(treatment_id: str, *, db: str | Path | None = None) -> Treatment:
    """Switch a treatment's link off (404) until `rotate_link`."""
    with _store(db) as store:
        return store.revoke_link(treatment_id)


def check_base_url(base_url: str) -> str:
    """The feed server's public address without its trailing slash; an InputError for anything but http(s)."""
    from calendars.feeds.app import feed_base_url

    return feed_base_url(base_url)


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
) -> None:
    """Serve every stored treatment's feed and page under uvicorn until SIGINT/SIGTERM.

    At most `max_connections` open connections (lowered to fit the open-files limit), each closed
    if it sends no complete request headers within `header_timeout` seconds; every database call
    ends within `db_timeout` seconds (a 503 otherwise). `on_listening(address, public_address)` is
    called once the checks passed, just before the server starts.
    """
    from calendars.feeds.app import check_can_listen, serve

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
    if on_listening is not None:
        on_listening(f"http://{host}:{port}", public or f"http://{host}:{port}")
    serve(
        db,
        host=host,
        port=port,
        base_url=public,
        cancelled_for=timedelta(days=cancelled_days),
        log_level=log_level.lower(),
        max_connections=max_connections,
        header_timeout=header_timeout,
        db_timeout=db_timeout,
    )
