"""Every error aftercal raises on purpose, in one tree.

    AftercalError                 anything aftercal reports as one line
    ├── InputError                the caller's input is wrong: exit code 2
    │   ├── ProtocolError         a protocol file is missing or invalid (names file, step, field)
    │   ├── ZoneError             an unknown IANA time zone
    │   ├── StartTimeError        a treatment start that cannot be read or does not exist
    │   └── UnknownTreatmentError no treatment with that id in the store
    ├── OutputError               an output file cannot be written (nothing was changed)
    └── ChannelError              a calendar channel failed (CalDAV, Google, feed): exit code 1
        ├── AuthError             credentials missing or refused
        ├── NotFoundError         calendar / collection / resource unknown to the server
        ├── TransientError        the server kept failing after bounded retries
        ├── ConflictError         a UID held by an event aftercal did not make for this treatment
        ├── RedirectError         a server redirected a request aftercal never follows (writes)
        └── StoreError            the treatment store cannot be opened or used

Outside the tree on purpose: `calendars.http.Retryable` is control flow inside one retry loop
(an attempt that deserves another); it never reaches a person.

The CLI catches AftercalError once and prints `str(error)`; messages must therefore be one line,
say what to do next, and never contain a secret.
"""

from __future__ import annotations


class AftercalError(Exception):
    """Base of every error aftercal reports to a person."""

    exit_code = 1


class InputError(AftercalError):
    """The input given to aftercal is wrong; re-running with other input fixes it."""

    exit_code = 2


class ProtocolError(InputError):
    """A protocol file is missing, unreadable or violates the schema."""

    def __init__(self, source: str, message: str, *, step: str | None = None, field: str | None = None):
        self.source = source
        self.step = step
        self.field = field
        where = source
        if step is not None:
            where += f": step {step!r}"
        if field is not None:
            where += f": field {field!r}"
        super().__init__(f"{where}: {message}")


class ZoneError(InputError):
    """An unknown IANA time zone name."""


class StartTimeError(InputError):
    """The treatment start cannot be parsed or does not exist in the zone."""


class OutputError(AftercalError):
    """An output could not be written; the previous file, if any, is untouched."""


class ChannelError(AftercalError):
    """A publishing channel failed."""


class AuthError(ChannelError):
    """Credentials are missing or were refused."""


class NotFoundError(ChannelError):
    """The server does not know the calendar or resource."""


class TransientError(ChannelError):
    """The server kept failing (network, timeout, 5xx, 429) after bounded retries."""


class ConflictError(ChannelError):
    """The calendar holds an event with one of our UIDs that aftercal did not make for this treatment."""


class RedirectError(ChannelError):
    """The server answered a request aftercal does not follow redirects for (writes, calendar queries)."""


class StoreError(ChannelError):
    """The treatment database cannot be opened or used."""


class UnknownTreatmentError(InputError):
    """No treatment with that id in the store."""
