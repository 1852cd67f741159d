"""Treatment protocols: TOML data files validated against the schema in content/SCHEMA.md.

A protocol is looked up by name among the files shipped in the `content` package, or read from a
path given by a clinic. Every validation error names the file, the step and the field.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import time
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from reminders.errors import ProtocolError

StepKind = Literal["timed", "milestone", "window", "rebook", "expect", "contact"]
STEP_KINDS: tuple[str, ...] = ("timed", "milestone", "window", "rebook", "expect", "contact")
QuietPolicy = Literal["defer", "silent"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")
# Longest plausible aftercare: a year. Bounds keep a typo from producing a calendar in 2090.
MAX_DAY = 366
MAX_AFTER_MINUTES = MAX_DAY * 24 * 60


@dataclass(frozen=True)
class Step:
    """One instruction of a protocol and when it reaches the patient."""

    id: str
    kind: StepKind
    title: str
    discreet_title: str
    body: str
    categories: tuple[str, ...]
    carries: tuple[str, ...]
    after_minutes: int | None = None
    day: int | None = None
    time: time | None = None
    days: tuple[int, int] | None = None
    weeks: tuple[int, int] | None = None
    window_title: str | None = None
    discreet_window_title: str | None = None
    if_quiet: QuietPolicy = "defer"
    duration_minutes: int = 15
    alarm: bool = True


@dataclass(frozen=True)
class Protocol:
    """A validated treatment protocol."""

    id: str
    name: str
    version: str
    summary: str
    source: str
    treatment_words: tuple[str, ...]
    discreet_name: str
    seed: dict[str, str]
    steps: tuple[Step, ...]
    origin: str

    def uncarried_seed_items(self) -> list[str]:
        """Seed keys that no step carries (a complete protocol has none)."""
        carried = {key for step in self.steps for key in step.carries}
        return [key for key in self.seed if key not in carried]


def shipped_protocols() -> list[str]:
    """Names of the protocols shipped inside the installed package."""
    folder = resources.files("content")
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_protocol(name_or_path: str | Path) -> Protocol:
    """Load a shipped protocol by name (``microneedling``) or a clinic's own file by path."""
    text_name = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or "/" in text_name or text_name.endswith(".toml")
    if not looks_like_path:
        if not _SLUG.match(text_name):
            raise ProtocolError(text_name, "not a protocol name or a path to a .toml file")
        resource = resources.files("content").joinpath(f"{text_name}.toml")
        if not resource.is_file():
            known = ", ".join(shipped_protocols()) or "none"
            raise ProtocolError(text_name, f"unknown protocol (shipped: {known}; or give a path to a .toml file)")
        return parse_protocol(resource.read_text(encoding="utf-8"), origin=f"{text_name}.toml")
    path = Path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProtocolError(str(path), "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError(str(path), f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_protocol(text, origin=str(path))


def parse_protocol(text: str, *, origin: str) -> Protocol:
    """Parse and validate protocol TOML text; `origin` names the file in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(origin, f"not valid TOML: {exc}") from None
    return _Validator(origin).protocol(data)


class _Validator:
    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, message: str, *, step: str | None = None, field: str | None = None) -> ProtocolError:
        return ProtocolError(self.origin, message, step=step, field=field)

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key)
        if not isinstance(value, dict):
            raise self.fail(f"missing [{key}] table", field=key)
        return value

    def text(self, data: dict[str, Any], key: str, *, step: str | None = None, required: bool = True) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail("is required", step=step, field=key)
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail("must be a non-empty string", step=step, field=key)
        return value.strip()

    def integer(self, data: dict[str, Any], key: str, low: int, high: int, *, step: str) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(f"must be a whole number from {low} to {high}", step=step, field=key)
        return value

    def pair(self, data: dict[str, Any], key: str, high: int, *, step: str) -> tuple[int, int] | None:
        value = data.get(key)
        if value is None:
            return None
        ok = (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            and 0 <= value[0] <= value[1] <= high
        )
        if not ok:
            raise self.fail(f"must be [first, last] with 0 <= first <= last <= {high}", step=step, field=key)
        return (value[0], value[1])

    def strings(self, data: dict[str, Any], key: str, *, step: str | None = None) -> tuple[str, ...]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail("must be a list of non-empty strings", step=step, field=key)
        return tuple(v.strip() for v in value)

    def protocol(self, data: dict[str, Any]) -> Protocol:
        head = self.table(data, "protocol")
        unknown = set(data) - {"protocol", "seed", "steps"}
        if unknown:
            raise self.fail(f"unknown top-level key(s): {', '.join(sorted(unknown))}")
        pid = self.text(head, "id") or ""
        if not _SLUG.match(pid):
            raise self.fail("must be lower-case letters, digits and dashes", field="protocol.id")
        version = self.text(head, "version") or ""
        if not _VERSION.match(version):
            raise self.fail("must look like 1, 1.2 or 1.2.3", field="protocol.version")
        seed = self.table(data, "seed")
        for key, value in seed.items():
            if not _SLUG.match(key) or not isinstance(value, str) or not value.strip():
                raise self.fail('seed items are short-key = "paraphrase" strings', field=f"seed.{key}")
        treatment_words = tuple(w.lower() for w in self.strings(head, "treatment_words"))
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise self.fail("a protocol needs at least one [[steps]] table", field="steps")
        steps: list[Step] = []
        seen: set[str] = set()
        for index, raw in enumerate(raw_steps, start=1):
            step = self.step(raw, index, seed, treatment_words)
            if step.id in seen:
                raise self.fail("duplicate step id", step=step.id, field="id")
            seen.add(step.id)
            steps.append(step)
        return Protocol(
            id=pid,
            name=self.text(head, "name") or "",
            version=version,
            summary=self.text(head, "summary", required=False) or "",
            source=self.text(head, "source", required=False) or "",
            treatment_words=treatment_words,
            discreet_name=self.text(head, "discreet_name", required=False) or "Reminder",
            seed={k: v.strip() for k, v in seed.items()},
            steps=tuple(steps),
            origin=self.origin,
        )

    def step(self, raw: Any, index: int, seed: dict[str, Any], treatment_words: tuple[str, ...]) -> Step:
        if not isinstance(raw, dict):
            raise self.fail("must be a table", step=f"#{index}")
        sid = raw.get("id")
        if not isinstance(sid, str) or not _SLUG.match(sid):
            raise self.fail("must be lower-case letters, digits and dashes", step=f"#{index}", field="id")
        allowed = {
            "id", "kind", "title", "discreet_title", "body", "categories", "carries", "after_minutes",
            "day", "time", "days", "weeks", "window_title", "discreet_window_title", "if_quiet",
            "duration_minutes", "alarm",
        }  # fmt: skip
        unknown = set(raw) - allowed
        if unknown:
            raise self.fail(f"unknown key(s): {', '.join(sorted(unknown))}", step=sid)
        kind = raw.get("kind")
        if kind not in STEP_KINDS:
            raise self.fail(f"must be one of {', '.join(STEP_KINDS)}", step=sid, field="kind")
        title = self.text(raw, "title", step=sid) or ""
        discreet_title = self.text(raw, "discreet_title", step=sid) or ""
        for field, value in (
            ("discreet_title", discreet_title),
            ("discreet_window_title", raw.get("discreet_window_title") or ""),
        ):
            leaked = [w for w in treatment_words if w in value.lower()]
            if leaked:
                raise self.fail(f"must not name the treatment ({leaked[0]!r})", step=sid, field=field)
        body = self.text(raw, "body", step=sid) or ""
        carries = self.strings(raw, "carries", step=sid)
        if not carries:
            raise self.fail("must name at least one seed item", step=sid, field="carries")
        for key in carries:
            if key not in seed:
                raise self.fail(f"unknown seed item {key!r}", step=sid, field="carries")
        after = self.integer(raw, "after_minutes", 0, MAX_AFTER_MINUTES, step=sid)
        day = self.integer(raw, "day", 0, MAX_DAY, step=sid)
        days = self.pair(raw, "days", MAX_DAY, step=sid)
        weeks = self.pair(raw, "weeks", MAX_DAY // 7, step=sid)
        at = self.clock(raw, "time", step=sid)
        timing = {"after_minutes": after, "day": day, "days": days, "weeks": weeks}
        given = {k for k, v in timing.items() if v is not None}
        expected: dict[str, list[set[str]]] = {
            "timed": [{"after_minutes"}],
            "milestone": [{"day"}],
            "expect": [{"day"}, {"after_minutes"}],
            "contact": [{"day"}, {"after_minutes"}],
            "window": [{"days"}],
            "rebook": [{"weeks"}],
        }
        if given not in expected[kind]:
            wanted = " or ".join("+".join(sorted(s)) for s in expected[kind])
            raise self.fail(f"a {kind} step needs exactly {wanted}", step=sid, field="kind")
        if at is not None and day is None:
            raise self.fail("only day-based steps take a time", step=sid, field="time")
        if_quiet = raw.get("if_quiet", "defer")
        if if_quiet not in ("defer", "silent"):
            raise self.fail('must be "defer" or "silent"', step=sid, field="if_quiet")
        duration = self.integer(raw, "duration_minutes", 1, 24 * 60, step=sid) or 15
        alarm = raw.get("alarm", kind not in ("window",))
        if not isinstance(alarm, bool):
            raise self.fail("must be true or false", step=sid, field="alarm")
        if kind == "window" and alarm:
            raise self.fail("all-day windows never ring (phones fire them at odd hours)", step=sid, field="alarm")
        return Step(
            id=sid,
            kind=kind,
            title=title,
            discreet_title=discreet_title,
            body=body,
            categories=self.strings(raw, "categories", step=sid),
            carries=carries,
            after_minutes=after,
            day=day,
            time=at,
            days=days,
            weeks=weeks,
            window_title=self.text(raw, "window_title", step=sid, required=False),
            discreet_window_title=self.text(raw, "discreet_window_title", step=sid, required=False),
            if_quiet=if_quiet,
            duration_minutes=duration,
            alarm=alarm,
        )

    def clock(self, raw: dict[str, Any], key: str, *, step: str) -> time | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, time):  # TOML local time literal, e.g. time = 19:00:00
            return value.replace(second=0, microsecond=0)
        if isinstance(value, str) and re.fullmatch(r"\d{2}:\d{2}", value):
            try:
                return time.fromisoformat(value)
            except ValueError:
                pass
        raise self.fail('must be a local time "HH:MM"', step=step, field=key)
