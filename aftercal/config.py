"""A clinic's configuration file and its secret: the library twins of `aftercal init` and `aftercal config show`.

* `config_path`: which file, and why: `--config FILE`, else $AFTERCAL_CONFIG, else `aftercal.toml`
  in aftercal's config folder ($AFTERCAL_CONFIG_DIR, else the platform's user config folder).
* `load_config`: the file read into a `ClinicConfig`; every problem is one InputError line naming
  the file, the key (`[plan] morning`) and what is expected. Secrets are refused in it.
* `read_secret` / `create_secret`: the clinic secret, 32 random bytes kept as one line of hex in
  `aftercal.secret` next to the config file ($AFTERCAL_SECRET_FILE overrides), readable by its
  owner only. It keys the identifiers aftercal derives from treatment ids.
* `starter_config_text` and `init_clinic`: a commented starting file, the secret and the store.

Nothing here prints; command-line options override these settings (aftercal.cli does that).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from calendars.gcal_auth import CONFIG_ENV, config_dir
from calendars.http import check_base_url
from reminders.errors import InputError, OutputError
from reminders.files import read_bounded_text, write_atomic
from reminders.schedule import DEFAULT_QUIET, parse_clock, parse_quiet_hours

if TYPE_CHECKING:
    from calendars.gcal_web import WebClient


__all__ = [
    "CONFIG_FILE_ENV",
    "CONFIG_FILE_NAME",
    "SECRET_FILE_ENV",
    "SECRET_FILE_NAME",
    "ClinicConfig",
    "ClinicInit",
    "Setting",
    "config_path",
    "create_secret",
    "default_db_path",
    "init_clinic",
    "load_config",
    "mask_url",
    "read_secret",
    "starter_config_text",
]

CONFIG_FILE_ENV = "AFTERCAL_CONFIG"
CONFIG_FILE_NAME = "aftercal.toml"
SECRET_FILE_ENV = "AFTERCAL_SECRET_FILE"
SECRET_FILE_NAME = "aftercal.secret"
SECRET_BYTES = 32
# A configuration file is a few dozen lines; anything near this is not one.
_MAX_CONFIG_BYTES = 1 << 20
_MAX_SECRET_BYTES = 4096

# Every section and key, in the order `config show` and the starting file list them, with the
# ClinicConfig field each fills and its kind: "text", "url" (http/https), "clock" (HH:MM),
# "quiet" (HH:MM-HH:MM or off), "bool", "db" (path or postgresql:// URL), "path".
_SCHEMA: dict[str, dict[str, tuple[str, str]]] = {
    "clinic": {"name": ("clinic_name", "text"), "phone": ("clinic_phone", "text"), "url": ("clinic_url", "url")},
    "plan": {"morning": ("morning", "clock"), "quiet": ("quiet", "quiet"), "discreet": ("discreet", "bool")},
    "store": {"db": ("db", "db")},
    "feeds": {"base_url": ("base_url", "url")},
    "caldav": {"url": ("caldav_url", "url"), "user": ("caldav_user", "text"), "calendar": ("caldav_calendar", "text")},
    "google": {
        "calendar_id": ("google_calendar_id", "text"),
        "credentials": ("google_credentials", "path"),
        "api_endpoint": ("google_api_endpoint", "url"),
        "no_auth": ("google_no_auth", "bool"),
    },
    # Patients connect their own Google Calendar from their page (a "Web application" OAuth
    # client; its secret stays in its own file). The endpoints are overridable for tests.
    "google_web": {
        "client_secrets": ("google_web_client_secrets", "path"),
        "auth_uri": ("google_web_auth_uri", "url"),
        "token_uri": ("google_web_token_uri", "url"),
        "revoke_uri": ("google_web_revoke_uri", "url"),
        "api_endpoint": ("google_web_api_endpoint", "url"),
    },
}
_EXPECTED = {
    "text": "a string in quotes, on one line",
    "url": 'an http(s) URL in quotes, e.g. "https://clinic.example"',
    "clock": 'a time "HH:MM" in quotes, e.g. "09:00"',
    "quiet": f'quiet hours "HH:MM-HH:MM" in quotes, e.g. "{DEFAULT_QUIET}", or "off"',
    "bool": "true or false (no quotes)",
    "db": 'a database file path (relative to this file\'s folder) or a "postgresql://" URL, in quotes',
    "path": "a file path in quotes (relative to this file's folder)",
}
# Key names that hold a secret: refused in every section, with where that secret lives instead.
_SECRET_KEYS = re.compile(r"pass(word|wd|phrase)?|secret|client_secret|token|.*_token|api_key|private_key|key")
_WHERE_SECRETS_LIVE = {
    "caldav": "use AFTERCAL_CALDAV_PASSWORD, the keyring or netrc",
    "store": "libpq reads the database password from ~/.pgpass or PGPASSWORD",
    "google": "sign in with `aftercal google login`, or name a key file in [google] credentials",
}


def config_path(explicit: Path | None = None) -> tuple[Path, str]:
    """The configuration file to read and where that choice came from.

    `--config FILE` (`explicit`), else $AFTERCAL_CONFIG, else `aftercal.toml` in aftercal's config
    folder ($AFTERCAL_CONFIG_DIR, else the platform's user config folder, e.g. ~/.config/aftercal).
    """
    if explicit is not None and str(explicit):
        return _absolute(explicit), "--config"
    named = os.environ.get(CONFIG_FILE_ENV, "")
    if named.strip():
        return _absolute(Path(named)), f"${CONFIG_FILE_ENV}"
    where = f"${CONFIG_ENV}" if os.environ.get(CONFIG_ENV, "").strip() else "the user config folder"
    return _absolute(config_dir() / CONFIG_FILE_NAME), f"default: {CONFIG_FILE_NAME} in {where}"


def _absolute(path: Path) -> Path:
    """An absolute path, symbolic links kept (the path a person gave, made absolute)."""
    return Path(os.path.abspath(path.expanduser()))


@dataclass(frozen=True)
class Setting:
    """One key of the file: `[plan] morning`, its value as read (None: not in the file) and its source."""

    section: str
    key: str
    value: str | bool | Path | None
    source: str | None  # "FILE: [plan] morning" when the file sets it

    @property
    def name(self) -> str:
        return f"[{self.section}] {self.key}"


@dataclass(frozen=True)
class ClinicConfig:
    """A clinic's settings as read from its configuration file (None: not set there).

    `location` is the configuration file chosen (`location_source` says why), `path` the file
    actually read (None when the default file does not exist). Relative paths in the file are
    resolved against its folder. `secret_path` is the clinic secret file, whether or not it exists.
    """

    location: Path
    location_source: str
    secret_path: Path
    secret_path_source: str
    path: Path | None = None
    clinic_name: str | None = None
    clinic_phone: str | None = None
    clinic_url: str | None = None
    morning: str | None = None
    quiet: str | None = None
    discreet: bool | None = None
    db: str | None = None
    base_url: str | None = None
    caldav_url: str | None = None
    caldav_user: str | None = None
    caldav_calendar: str | None = None
    google_calendar_id: str | None = None
    google_credentials: Path | None = None
    google_api_endpoint: str | None = None
    google_no_auth: bool | None = None
    google_web_client_secrets: Path | None = None
    google_web_auth_uri: str | None = None
    google_web_token_uri: str | None = None
    google_web_revoke_uri: str | None = None
    google_web_api_endpoint: str | None = None

    def value(self, section: str, key: str) -> str | bool | Path | None:
        """The value of `[section] key` (None: not set in the file); a KeyError for an unknown key."""
        field_name, _kind = _SCHEMA[section][key]
        value: str | bool | Path | None = getattr(self, field_name)
        return value

    def settings(self) -> list[Setting]:
        """Every key of the file format, in order, with its value and source (`FILE: [section] key`)."""
        found = []
        for section, keys in _SCHEMA.items():
            for key in keys:
                value = self.value(section, key)
                source = f"{self.path}: [{section}] {key}" if value is not None else None
                found.append(Setting(section, key, value, source))
        return found

    def secret(self) -> bytes | None:
        """The clinic secret (None when it has not been created: `aftercal init` does)."""
        return read_secret(self.secret_path)

    def google_web_client(self) -> WebClient | None:
        """The OAuth web client through which patients connect their Google Calendar (None: not set up)."""
        if self.google_web_client_secrets is None:
            return None
        from calendars.gcal_web import load_web_client

        return load_web_client(
            self.google_web_client_secrets,
            auth_uri=self.google_web_auth_uri,
            token_uri=self.google_web_token_uri,
            revoke_uri=self.google_web_revoke_uri,
            api_endpoint=self.google_web_api_endpoint,
        )


def _secret_location(config_file: Path) -> tuple[Path, str]:
    named = os.environ.get(SECRET_FILE_ENV, "")
    if named.strip():
        return _absolute(Path(named)), f"${SECRET_FILE_ENV}"
    return config_file.parent / SECRET_FILE_NAME, "next to the configuration file"


def load_config(explicit: Path | None = None, *, missing_ok: bool = False) -> ClinicConfig:
    """The configuration chosen by `config_path(explicit)`; an empty one when the default file is missing.

    A file named by --config or $AFTERCAL_CONFIG must exist (unless `missing_ok`: `aftercal init`
    is about to write it). Unknown sections and keys, wrong
    types, bad values and secrets are InputErrors of one line naming the file and the key.
    """
    location, source = config_path(explicit)
    secret_path, secret_source = _secret_location(location)
    empty = ClinicConfig(
        location=location, location_source=source, secret_path=secret_path, secret_path_source=secret_source
    )
    if not os.path.lexists(location):
        if missing_ok or source.startswith("default"):
            return empty
        init = f"aftercal --config {location} init" if source == "--config" else "aftercal init"
        raise InputError(f"{location}: no such configuration file ({source}); create it with `{init}`")
    text = read_bounded_text(location, _MAX_CONFIG_BYTES, "an aftercal configuration file")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(_toml_error(location, exc)) from None
    values: dict[str, Any] = {}
    for section, table in document.items():
        if section not in _SCHEMA:
            if not isinstance(table, dict):
                raise InputError(
                    f"{location}: {section}: every key belongs in a section ({_sections()}), e.g. morning under [plan]"
                )
            raise InputError(f"{location}: [{section}]: unknown section; the sections are {_sections()}")
        if not isinstance(table, dict):
            raise InputError(f"{location}: {section}: expected a section [{section}] with keys, not a value")
        for key, raw in table.items():
            values.update(_read_value(location, section, key, raw))
    morning = values.get("morning")
    if morning is not None:
        quiet_text = values.get("quiet") or DEFAULT_QUIET
        quiet = parse_quiet_hours(quiet_text)
        if quiet.contains(parse_clock(morning, "[plan] morning")):
            where = "[plan] quiet" if values.get("quiet") else "the default quiet hours"
            raise InputError(
                f"{location}: [plan] morning: {morning} is inside the quiet hours {quiet_text} ({where}): day "
                "reminders would all move to their end; expected a morning time outside them"
            )
    return ClinicConfig(
        location=location, location_source=source, path=location, secret_path=secret_path,
        secret_path_source=secret_source, **values,
    )  # fmt: skip


def _sections() -> str:
    return ", ".join(f"[{name}]" for name in _SCHEMA)


def _toml_error(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    """One line: the file, the line, what tomllib found wrong (its message, without its position)."""
    message = str(exc)
    found = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if found is None:
        return f"{path}: not valid TOML: {message}"
    reason = message[: found.start()].strip().rstrip(".")
    return f"{path}: line {found.group(1)}, column {found.group(2)}: not valid TOML: {reason}"


def _read_value(path: Path, section: str, key: str, raw: object) -> dict[str, Any]:
    """The ClinicConfig field and value of one key, checked; an InputError naming file and key."""
    name = f"[{section}] {key}"
    keys = _SCHEMA[section]
    if key not in keys:
        if _SECRET_KEYS.fullmatch(key.lower()):
            where = _WHERE_SECRETS_LIVE.get(section, "keep it in the environment or the system keyring")
            raise InputError(f"{path}: {name}: secrets never live in the config file: {where}")
        raise InputError(f"{path}: {name}: unknown key; [{section}] takes {', '.join(keys)}")
    field_name, kind = keys[key]
    expected = _EXPECTED[kind]

    def bad(why: str = "") -> InputError:
        return InputError(f"{path}: {name}: expected {expected}{why}")

    if kind == "bool":
        if not isinstance(raw, bool):
            raise bad(f", not {_toml_type(raw)}")
        return {field_name: raw}
    if not isinstance(raw, str):
        raise bad(f", not {_toml_type(raw)}")
    text = raw.strip()
    if not text:
        raise bad(", not an empty string")
    if any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in text):
        raise bad(", without line breaks or control characters")
    if kind == "clock":
        try:
            parse_clock(text, name)
        except InputError:
            raise bad(f", not {text!r}") from None
    elif kind == "quiet":
        try:
            parse_quiet_hours(text)
        except InputError:
            raise bad(f", not {text!r}") from None
    elif kind == "url":
        _check_url(path, section, key, text)
    elif kind == "db":
        return {field_name: _db_value(path, name, text)}
    elif kind == "path":
        return {field_name: _absolute(path.parent / Path(text).expanduser())}
    return {field_name: text}


# An example for each URL key's errors.
_URL_EXAMPLES = {
    "clinic": "https://clinic.example/aftercare",
    "feeds": "https://care.example",
    "caldav": "https://caldav.example.com/",
    "google": "https://www.googleapis.com/",
}


def _check_url(path: Path, section: str, key: str, text: str) -> None:
    """An http(s) URL: a base URL (as the options check it), or for [clinic] url any web page address.

    The errors name the key and never repeat the URL (it may hold a password).
    """
    name = f"[{section}] {key}"
    example = _URL_EXAMPLES[section]
    if section != "clinic":
        try:
            check_base_url(text, what=name, example=example)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        return
    try:
        parts = urlsplit(text)
    except ValueError:
        raise InputError(f"{path}: {name}: expected a web address such as {example}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or " " in text:
        raise InputError(f"{path}: {name}: expected a web address starting with https://, such as {example}")
    if "@" in parts.netloc:
        raise InputError(f"{path}: {name} must not contain a user name or password")


def _db_value(path: Path, name: str, text: str) -> str:
    """A database: a postgresql:// URL as is (without a password), or a path made absolute."""
    if text.startswith(("postgresql://", "postgres://")):
        try:
            password = urlsplit(text).password
        except ValueError:
            raise InputError(f"{path}: {name}: not a valid postgresql:// URL") from None
        if password:
            raise InputError(
                f"{path}: {name}: secrets never live in the config file: leave the password out of the URL; "
                f"{_WHERE_SECRETS_LIVE['store']}"
            )
        return text
    if text.startswith("sqlite:///"):
        text = text[len("sqlite://") :]
    elif "://" in text:
        raise InputError(f"{path}: {name}: expected {_EXPECTED['db']}, not another kind of URL")
    return str(_absolute(path.parent / Path(text).expanduser()))


def default_db_path() -> Path:
    """The store used when none is given: clinic.db in $AFTERCAL_DATA_DIR, else in the user data folder."""
    from calendars.feeds.store import default_db_path as store_default

    return store_default()


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return "a date or time"


def mask_url(text: str) -> str:
    """A setting fit to show: the password of a URL in it (postgresql://user:pw@host/db) replaced by ***."""
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return "(a URL that cannot be read)"
    if not password:
        return text
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


# ---- the clinic secret ------------------------------------------------------------------------------


def read_secret(path: Path) -> bytes | None:
    """The clinic secret in `path`, or None when there is no such file.

    An InputError when it cannot be read, is not one line of 64 hex digits, or is readable by
    anyone but its owner (mode & 0o077): `chmod 600` it.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the clinic secret: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode) and os.name == "posix" and stat.S_IMODE(mode) & 0o077:
        shown = f"{stat.S_IMODE(mode):04o}"
        raise InputError(f"{path}: the clinic secret is readable by others (mode {shown}): run `chmod 600 {path}`")
    text = read_bounded_text(
        path, _MAX_SECRET_BYTES, "a clinic secret", error=lambda problem: InputError(f"{path}: {problem}")
    ).strip()
    if len(text) != 2 * SECRET_BYTES or not re.fullmatch(r"[0-9a-fA-F]+", text):
        raise InputError(
            f"{path}: not an aftercal clinic secret (expected one line of {2 * SECRET_BYTES} hex digits); restore "
            "it from the clinic's copy: a new secret changes every identifier derived from it"
        )
    return bytes.fromhex(text)


def create_secret(path: Path) -> bytes:
    """Make a new clinic secret (32 random bytes) in `path`, readable by its owner only (0600).

    Never replaces a secret: an existing file is an InputError (the identifiers published with it
    depend on it). The file appears whole or not at all, even when two runs race.
    """
    secret = secrets.token_bytes(SECRET_BYTES)
    _create_file(path, (secret.hex() + "\n").encode("ascii"), mode=0o600, what="a clinic secret")
    return secret


def _create_file(path: Path, data: bytes, *, mode: int | None, what: str) -> None:
    """Write a new file atomically; an InputError if `path` exists (nothing is replaced)."""
    if os.path.lexists(path):
        raise InputError(f"{path}: {what} is there already; aftercal never replaces it")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder {path.parent}: {exc.strerror or exc}") from None
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.new")
    write_atomic(temporary, data, private=True, mode=mode)
    try:
        # A hard link appears whole, and never over an existing file (as rename would).
        os.link(temporary, path)
    except FileExistsError:
        raise InputError(f"{path}: {what} is there already; aftercal never replaces it") from None
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


# ---- a starting file, and `aftercal init` -----------------------------------------------------------


def starter_config_text(db: str) -> str:
    """A commented configuration file: every section and key explained, all commented out but [store] db."""
    return f"""\
# aftercal's clinic configuration (TOML). Written by `aftercal init`; edit it freely.
# Command-line options override these settings, and so do the environment variables that
# options read (AFTERCAL_CLINIC_NAME, AFTERCAL_DB, ...). `aftercal config show` prints every
# effective setting and where it came from. Remove the leading "# " of a line to use it.
#
# Secrets never live here: the CalDAV password comes from AFTERCAL_CALDAV_PASSWORD, the system
# keyring or netrc; a PostgreSQL password from ~/.pgpass or PGPASSWORD; Google's sign-in from
# `aftercal google login`. The clinic secret is the file aftercal.secret next to this one.

[clinic]
# Shown at the foot of every reminder (as --clinic-name, --clinic-phone, --clinic-url).
# name = "Riverside Skin Clinic"
# phone = "+1 212 555 0100"
# The clinic's web page, set as each event's URL (http:// or https://).
# url = "https://riverside.example"

[plan]
# Local time of the day reminders, "HH:MM" (as --morning; default 09:00).
# morning = "09:00"
# Quiet hours in which no alarm rings, "HH:MM-HH:MM", or "off" (as --quiet; default {DEFAULT_QUIET}).
# quiet = "{DEFAULT_QUIET}"
# Neutral titles and alarm texts, nothing that names the treatment on a lock screen (as --discreet).
# discreet = false

[store]
# The treatment store: a SQLite file (a relative path is relative to this file's folder) or a
# PostgreSQL URL without its password, e.g. "postgresql://aftercal@db.example/aftercal" (as --db).
db = {json.dumps(db, ensure_ascii=False)}

[feeds]
# Public address of the feed server, used in every link and QR code given to patients (as --base-url).
# base_url = "https://care.example"

[caldav]
# Where `publish caldav` and `unpublish caldav` push events (as --url, --user, --calendar).
# url = "https://caldav.example.com/"
# user = "clinic"
# calendar = "aftercare"

[google]
# Where `publish google` and `unpublish google` write (as --calendar-id; default "primary").
# calendar_id = "primary"
# A service-account or authorized-user key file (as --credentials; relative to this file's folder).
# credentials = "service-account.json"
# A Calendar-v3-compatible API instead of Google's (as --api-endpoint), and no credentials at all
# (as --no-auth, only for an endpoint on this machine: tests).
# api_endpoint = "http://127.0.0.1:8000/"
# no_auth = false

[google_web]
# Patients connect their own Google Calendar from their page, so that reminders ring on Android:
# the JSON file of a "Web application" OAuth client (Google Cloud console), whose authorized
# redirect URI is <[feeds] base_url>/oauth/google/callback. Its secret stays in that file.
# client_secrets = "google-web-client.json"
# Google's endpoints (the defaults are Google's), overridable for tests:
# auth_uri = "https://accounts.google.com/o/oauth2/v2/auth"
# token_uri = "https://oauth2.googleapis.com/token"
# revoke_uri = "https://oauth2.googleapis.com/revoke"
# api_endpoint = "https://www.googleapis.com/"
"""


@dataclass(frozen=True)
class ClinicInit:
    """What `init_clinic` did: each part made now (True) or found already there (False)."""

    config_file: Path
    config_created: bool
    secret_file: Path
    secret_created: bool
    store: str  # the store, in one line (aftercal.feeds.init_store)


def init_clinic(config: ClinicConfig, db: str | None = None) -> ClinicInit:
    """Set a clinic up: the configuration file, the clinic secret and the store, each made only when missing.

    `db` is the store (a path or a postgresql:// URL); None: the configuration's [store] db, else
    the default file. A new configuration file names that store in [store] db. Nothing that exists
    is replaced, so running it again changes nothing; a run that stopped half-way completes.
    """
    from aftercal import feeds

    db = db if db is not None else config.db
    if db is not None and db.startswith(("postgresql://", "postgres://")) and mask_url(db) != db:
        raise InputError(
            "--db: leave the password out of the URL (it would show in the process list and the configuration "
            f"file); {_WHERE_SECRETS_LIVE['store']}"
        )
    feeds.check_store_secret(db, config.secret())  # before anything is written: never a half-done set-up
    created = False
    if not os.path.lexists(config.location):
        if db is None:
            written = str(default_db_path())
        elif "://" in db and not db.startswith("sqlite:///"):
            written = db
        else:
            written = str(_absolute(Path(db.removeprefix("sqlite://"))))
        with contextlib.suppress(InputError):  # made meanwhile by another run: kept
            _create_file(config.location, starter_config_text(written).encode("utf-8"), mode=None, what="a file")
            created = True
    secret = config.secret()
    secret_created = secret is None
    if secret is None:
        try:
            secret = create_secret(config.secret_path)
        except InputError:  # made meanwhile by another run: use it
            secret = config.secret()
            secret_created = False
            assert secret is not None
    store = feeds.init_store(db, secret)
    return ClinicInit(
        config_file=config.location, config_created=created, secret_file=config.secret_path,
        secret_created=secret_created, store=store,
    )  # fmt: skip
