"""Treatment protocols: TOML data files validated against the schema in content/SCHEMA.md.

A protocol is looked up by name among the files shipped in the `reminders.content` package (the
repository's `content/` folder, mapped there by pyproject.toml), or read from a path given by a
clinic. Every validation error names the file, the step and the field.

A clinic's file may extend another protocol (`extends = "microneedling"`): it inherits the base's
seed items and steps and adds its own, so the shipped advice stays unchanged and the clinic's
additions stay traceable to the clinic's own source.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import time
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from reminders.errors import ProtocolError
from reminders.files import read_bounded_text

StepKind = Literal["timed", "milestone", "window", "rebook", "expect", "contact"]
STEP_KINDS: tuple[str, ...] = ("timed", "milestone", "window", "rebook", "expect", "contact")
QuietPolicy = Literal["defer", "silent"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")
# Control characters (C0 but newline, DEL, C1) must never reach a calendar or a terminal: an ESC
# in a title could repaint a clinic's screen, a NUL truncates the line in some parsers.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
# A category naming a day ("Day 0") turns false when quiet hours move a reminder to the next day.
_DAY_CATEGORY = re.compile(r"^\s*day\s*\d+\s*$", re.IGNORECASE)
# How deep `extends` may chain (base -> clinic -> branch); also stops a file extending itself.
MAX_EXTENDS_DEPTH = 3
# A protocol file is a few kilobytes; anything far larger is a wrong path, not a protocol.
MAX_PROTOCOL_BYTES = 1_000_000
# Longest plausible aftercare: a year. Bounds keep a typo from producing a calendar in 2090.
MAX_DAY = 366
MAX_AFTER_MINUTES = MAX_DAY * 24 * 60
# Where the shipped protocols live once installed (pyproject.toml maps the `content/` folder here).
CONTENT_PACKAGE = "reminders.content"


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

    def timing(self) -> str:
        """When the step reaches the patient, in words ("24 h after", "day 2 at 19:00")."""
        if self.days is not None:
            return f"days {self.days[0]}-{self.days[1]}, all day"
        if self.weeks is not None:
            return f"weeks {self.weeks[0]}-{self.weeks[1]}"
        if self.after_minutes is not None:
            hours, minutes = divmod(self.after_minutes, 60)
            return f"{hours} h after" if not minutes else f"{self.after_minutes} min after"
        at = f"at {self.time:%H:%M}" if self.time else "in the morning"
        return f"day {self.day} {at}"


@dataclass(frozen=True)
class CareProtocol:
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
    # Per seed item, the facts (numbers, durations, actions) a carrying step must state.
    facts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    extends: str | None = None

    def uncarried_seed_items(self) -> list[str]:
        """Seed keys that no step carries (a complete protocol has none)."""
        carried = {key for step in self.steps for key in step.carries}
        return [key for key in self.seed if key not in carried]

    def carriers(self, seed_key: str) -> list[Step]:
        """The steps that deliver one seed item."""
        return [step for step in self.steps if seed_key in step.carries]

    def missing_facts(self) -> list[tuple[str, str]]:
        """(seed key, fact) pairs that no carrying step states; a faithful protocol has none."""
        missing = []
        for key, facts in self.facts.items():
            texts = [normalise_text(f"{step.title} {step.body}") for step in self.carriers(key)]
            missing += [(key, fact) for fact in facts if not any(normalise_text(fact) in t for t in texts)]
        return missing


def normalise_text(text: str) -> str:
    """Lower case, one space between words, plain dashes and apostrophes: how facts are matched."""
    text = text.lower().replace("\u2019", "'").replace("\u2013", "-").replace("\u2014", "-")
    return " ".join(text.split())


def shipped_protocols() -> list[str]:
    """Names of the protocols shipped inside the installed package."""
    folder = resources.files(CONTENT_PACKAGE)
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def shipped_protocol_text(name: str) -> str:
    """The TOML text of a shipped protocol, by name (``microneedling``)."""
    resource = resources.files(CONTENT_PACKAGE).joinpath(f"{name}.toml")
    if not _SLUG.match(name) or not resource.is_file():
        known = ", ".join(shipped_protocols()) or "none"
        raise ProtocolError(name, f"unknown protocol (shipped: {known}; or give a path to a .toml file)")
    return resource.read_text(encoding="utf-8")


def load_protocol(name_or_path: str | Path) -> CareProtocol:
    """Load a shipped protocol by name (``microneedling``) or a clinic's own file by path."""
    return _load(name_or_path, depth=0)


def _load(name_or_path: str | Path, *, depth: int) -> CareProtocol:
    text_name = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or "/" in text_name or text_name.endswith(".toml")
    if not looks_like_path:
        if not _SLUG.match(text_name):
            raise ProtocolError(text_name, "not a protocol name or a path to a .toml file")
        return _parse(shipped_protocol_text(text_name), f"{text_name}.toml", None, depth)
    path = Path(name_or_path)
    text = _read_protocol_file(path)
    return _parse(text, str(path), path.parent, depth)


def _read_protocol_file(path: Path) -> str:
    """The text of a protocol file: a regular file of bounded size (not /dev/zero, not a FIFO)."""
    return read_bounded_text(
        path, MAX_PROTOCOL_BYTES, "a protocol file", error=lambda problem: ProtocolError(str(path), problem)
    )


def parse_protocol(text: str, *, origin: str) -> CareProtocol:
    """Parse and validate protocol TOML text; `origin` names the file in errors.

    An `extends` naming a path is read relative to the current folder.
    """
    return _parse(text, origin, None, 0)


def _parse(text: str, origin: str, folder: Path | None, depth: int) -> CareProtocol:
    # Files saved on Windows keep CRLF inside multi-line strings: one newline per line break.
    text = text.replace("\r\n", "\n")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(origin, f"not valid TOML: {exc}") from None
    validator = _Validator(origin)
    base: CareProtocol | None = None
    head = data.get("protocol")
    extends = head.get("extends") if isinstance(head, dict) else None
    if extends is not None:
        if not isinstance(extends, str) or not extends.strip():
            raise validator.fail("must name a shipped protocol or a path to a .toml file", field="protocol.extends")
        if depth >= MAX_EXTENDS_DEPTH:
            raise validator.fail(f"more than {MAX_EXTENDS_DEPTH} levels of extends (a loop?)", field="protocol.extends")
        target: str | Path = extends.strip()
        if folder is not None and ("/" in extends or extends.endswith(".toml")):
            target = folder / extends.strip()
        base = _load(target, depth=depth + 1)
    protocol = validator.protocol(data, base)
    missing = protocol.missing_facts()
    if missing:
        key, fact = missing[0]
        names = ", ".join(s.id for s in protocol.carriers(key))
        raise ProtocolError(
            origin, f"fact {fact!r} appears in no step that carries it ({names})", field=f"seed.{key}.facts"
        )
    return protocol


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
        self.printable(value, step=step, field=key)
        return value.strip()

    def printable(self, value: str, *, step: str | None, field: str) -> None:
        bad = _CONTROL.search(value)
        if bad:
            raise self.fail(
                f"contains the control character U+{ord(bad.group()):04X}; only printable text and line breaks",
                step=step,
                field=field,
            )

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
        for item in value:
            self.printable(item, step=step, field=key)
        return tuple(v.strip() for v in value)

    def seed(self, data: dict[str, Any], *, required: bool) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
        """Seed items: `key = "paraphrase"`, or a table with `text` and the `facts` it must carry."""
        if "seed" not in data and not required:
            return {}, {}
        texts: dict[str, str] = {}
        facts: dict[str, tuple[str, ...]] = {}
        for key, value in self.table(data, "seed").items():
            where = f"seed.{key}"
            if not _SLUG.match(key):
                raise self.fail("seed keys are lower-case letters, digits and dashes", field=where)
            if isinstance(value, str) and value.strip():
                self.printable(value, step=None, field=where)
                texts[key] = value.strip()
                continue
            if not isinstance(value, dict):
                raise self.fail('a seed item is "paraphrase" or a table with text and facts', field=where)
            unknown = set(value) - {"text", "facts"}
            if unknown:
                raise self.fail(f"unknown key(s): {', '.join(sorted(unknown))}", field=where)
            texts[key] = self._seed_text(value, where)
            facts[key] = self.strings(value, "facts", step=None) if "facts" in value else ()
        return texts, facts

    def _seed_text(self, value: dict[str, Any], where: str) -> str:
        text = value.get("text")
        if not isinstance(text, str) or not text.strip():
            raise self.fail("must be a non-empty string", field=f"{where}.text")
        self.printable(text, step=None, field=f"{where}.text")
        return text.strip()

    def protocol(self, data: dict[str, Any], base: CareProtocol | None = None) -> CareProtocol:
        head = self.table(data, "protocol")
        unknown = set(data) - {"protocol", "seed", "steps"}
        if unknown:
            raise self.fail(f"unknown top-level key(s): {', '.join(sorted(unknown))}")
        head_keys = {"id", "name", "version", "summary", "source", "treatment_words", "discreet_name", "extends"}
        unknown = set(head) - head_keys
        if unknown:
            raise self.fail(f"unknown key(s): {', '.join(sorted(unknown))}", field="protocol")
        pid = self.text(head, "id") or ""
        if not _SLUG.match(pid):
            raise self.fail("must be lower-case letters, digits and dashes", field="protocol.id")
        version = self.text(head, "version") or ""
        if not _VERSION.match(version):
            raise self.fail("must look like 1, 1.2 or 1.2.3", field="protocol.version")
        own_seed, own_facts = self.seed(data, required=base is None)
        seed = dict(base.seed) if base else {}
        facts = dict(base.facts) if base else {}
        for key in own_seed:
            if key in seed:
                raise self.fail(f"seed item {key!r} is already in {base.id if base else ''}", field=f"seed.{key}")
        seed.update(own_seed)
        facts.update(own_facts)
        treatment_words = tuple(w.lower() for w in self.strings(head, "treatment_words"))
        if base is not None:
            treatment_words = tuple(dict.fromkeys(base.treatment_words + treatment_words))
        raw_steps = data.get("steps", [] if base is not None else None)
        if not isinstance(raw_steps, list) or (not raw_steps and base is None):
            raise self.fail("a protocol needs at least one [[steps]] table", field="steps")
        steps: list[Step] = list(base.steps) if base else []
        seen: set[str] = {step.id for step in steps}
        for index, raw in enumerate(raw_steps, start=1):
            step = self.step(raw, index, seed, treatment_words)
            if step.id in seen:
                raise self.fail("duplicate step id", step=step.id, field="id")
            seen.add(step.id)
            steps.append(step)
        name = self.text(head, "name", required=base is None) or (base.name if base else "")
        discreet_name = self.text(head, "discreet_name", required=False) or (base.discreet_name if base else "Reminder")
        return CareProtocol(
            id=pid,
            name=name,
            version=version,
            summary=self.text(head, "summary", required=False) or (base.summary if base else ""),
            source=self.text(head, "source", required=False) or "",
            treatment_words=treatment_words,
            discreet_name=discreet_name,
            seed=seed,
            steps=tuple(steps),
            origin=self.origin,
            facts=facts,
            extends=base.id if base else None,
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
        for field_name, value in (
            ("discreet_title", discreet_title),
            ("discreet_window_title", raw.get("discreet_window_title") or ""),
        ):
            leaked = [w for w in treatment_words if w in value.lower()]
            if leaked:
                raise self.fail(f"must not name the treatment ({leaked[0]!r})", step=sid, field=field_name)
        body = self.text(raw, "body", step=sid) or ""
        carries = self.strings(raw, "carries", step=sid)
        if not carries:
            raise self.fail("must name at least one seed item", step=sid, field="carries")
        for key in carries:
            if key not in seed:
                raise self.fail(f"unknown seed item {key!r}", step=sid, field="carries")
        timing = self.timing(raw, kind, sid)
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
            categories=self.categories(raw, step=sid),
            carries=carries,
            **timing,
            window_title=self.text(raw, "window_title", step=sid, required=False),
            discreet_window_title=self.text(raw, "discreet_window_title", step=sid, required=False),
            if_quiet=if_quiet,
            duration_minutes=duration,
            alarm=alarm,
        )

    def timing(self, raw: dict[str, Any], kind: str, sid: str) -> dict[str, Any]:
        """The step's timing keys, checked against what its kind needs."""
        timing: dict[str, Any] = {
            "after_minutes": self.integer(raw, "after_minutes", 0, MAX_AFTER_MINUTES, step=sid),
            "day": self.integer(raw, "day", 0, MAX_DAY, step=sid),
            "days": self.pair(raw, "days", MAX_DAY, step=sid),
            "weeks": self.pair(raw, "weeks", MAX_DAY // 7, step=sid),
        }
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
        timing["time"] = self.clock(raw, "time", step=sid)
        if timing["time"] is not None and timing["day"] is None:
            raise self.fail("only day-based steps take a time", step=sid, field="time")
        return timing

    def categories(self, raw: dict[str, Any], *, step: str) -> tuple[str, ...]:
        values = self.strings(raw, "categories", step=step)
        for value in values:
            if _DAY_CATEGORY.match(value):
                raise self.fail(
                    f"{value!r}: a category must not name a day (quiet hours can move a reminder to the next one)",
                    step=step,
                    field="categories",
                )
        return values

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
