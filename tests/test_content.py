"""The shipped protocol: complete, traceable to the source, in our own words."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reminders import load_protocol, shipped_protocols
from reminders.errors import ProtocolError
from reminders.protocol import parse_protocol

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "microneedling-post-treatment-instructions.txt"
CONTENT = Path(__file__).resolve().parents[1] / "content" / "microneedling.toml"


def test_microneedling_is_shipped_and_versioned() -> None:
    assert "microneedling" in shipped_protocols()
    proto = load_protocol("microneedling")
    assert re.fullmatch(r"\d+\.\d+\.\d+", proto.version)


def test_every_seed_item_is_carried_by_a_step() -> None:
    proto = load_protocol("microneedling")
    assert proto.uncarried_seed_items() == []


def test_seed_lists_every_item_of_the_source() -> None:
    # One seed key per bullet of the source document (12 instructions + 8 reactions), plus the
    # "if reactions continue" advice split out of the last bullet.
    if not SEED.exists():
        pytest.skip(f"source document not present at {SEED}")
    bullets = [line for line in SEED.read_text(encoding="utf-8").splitlines() if line.startswith("- ")]
    proto = load_protocol("microneedling")
    assert len(bullets) == 17
    assert len(proto.seed) >= len(bullets)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9+]+", text.lower())


def test_patient_text_is_not_pasted_from_the_source() -> None:
    if not SEED.exists():
        pytest.skip(f"source document not present at {SEED}")
    source = words(SEED.read_text(encoding="utf-8"))
    source_grams = {tuple(source[i : i + 7]) for i in range(len(source) - 6)}
    proto = load_protocol("microneedling")
    for step in proto.steps:
        text = words(" ".join([step.title, step.body]))
        copied = [" ".join(text[i : i + 7]) for i in range(len(text) - 6) if tuple(text[i : i + 7]) in source_grams]
        assert not copied, f"step {step.id} repeats the source verbatim: {copied[0]!r}"


@pytest.mark.parametrize(
    ("step_id", "kind", "timing"),
    [
        ("cleanse-and-cool", "timed", {"after_minutes": 30}),
        ("expect-tonight", "expect", {"after_minutes": 240}),
        ("resume-skincare", "timed", {"after_minutes": 1440}),
        ("start-spf", "milestone", {"day": 2}),
        ("activity-allowed", "milestone", {"day": 7}),
        ("actives-allowed", "milestone", {"day": 14}),
        ("no-harsh-products", "window", {"days": (0, 13)}),
        ("no-heat-sun-activity", "window", {"days": (0, 6)}),
        ("rebook", "rebook", {"weeks": (6, 8)}),
        ("check-in-1-month", "expect", {"day": 30}),
        ("check-in-3-months", "expect", {"day": 90}),
        ("when-to-call", "contact", {}),
    ],
)
def test_key_steps_of_the_issue(step_id: str, kind: str, timing: dict[str, object]) -> None:
    step = next(s for s in load_protocol("microneedling").steps if s.id == step_id)
    assert step.kind == kind
    for name, value in timing.items():
        assert getattr(step, name) == value


def test_facts_that_must_reach_the_patient() -> None:
    text = " ".join(s.title + " " + s.body for s in load_protocol("microneedling").steps).lower()
    for fact in ["spf 30", "2 to 4", "6 to 8 weeks", "dermaplaning", "alcohol", "exfoliant", "saline", "ice pack",
                 "do not pick", "call the clinic", "hydrocortisone", "infection", "bruis"]:  # fmt: skip
        assert fact in text, fact


def bad(text: str) -> str:
    with pytest.raises(ProtocolError) as info:
        parse_protocol(text, origin="clinic.toml")
    return str(info.value)


def minimal(step: str = "", seed: str = 'a = "x"', head: str = "") -> str:
    return f"""
[protocol]
id = "p"
name = "P"
version = "1.0"
treatment_words = ["laser"]
{head}
[seed]
{seed}
[[steps]]
id = "s1"
kind = "milestone"
day = 2
title = "T"
discreet_title = "D"
body = "B"
carries = ["a"]
{step}
"""


def test_minimal_protocol_is_valid() -> None:
    assert parse_protocol(minimal(), origin="clinic.toml").steps[0].day == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not toml [", "clinic.toml: not valid TOML"),
        (minimal(step='after_minutes = 5'), "clinic.toml: step 's1': field 'kind': a milestone step needs exactly day"),
        (minimal(step='colour = "red"'), "clinic.toml: step 's1': unknown key(s): colour"),
        (minimal().replace("day = 2", "day = -1"), "step 's1': field 'day': must be a whole number from 0 to 366"),
        (minimal().replace('carries = ["a"]', 'carries = ["zz"]'),
         "step 's1': field 'carries': unknown seed item 'zz'"),
        (minimal().replace('discreet_title = "D"', 'discreet_title = "Laser day"'),
         "step 's1': field 'discreet_title': must not name the treatment ('laser')"),
        (minimal().replace('version = "1.0"', 'version = "one"'), "field 'protocol.version'"),
        (minimal(step='time = "25:00"'), "step 's1': field 'time': must be a local time"),
        (minimal().replace('kind = "milestone"', 'kind = "party"'), "step 's1': field 'kind': must be one of"),
        (minimal().replace('title = "T"\n', ""), "step 's1': field 'title': is required"),
        (minimal().replace('kind = "milestone"\nday = 2', 'kind = "window"\ndays = [3, 1]'),
         "step 's1': field 'days': must be [first, last]"),
        (minimal().replace('kind = "milestone"\nday = 2', 'kind = "window"\ndays = [0, 3]\nalarm = true'),
         "step 's1': field 'alarm': all-day windows never ring"),
    ],
)  # fmt: skip
def test_validation_errors_name_file_step_and_field(text: str, expected: str) -> None:
    message = bad(text)
    assert expected in message
    assert "\n" not in message


def test_duplicate_step_ids() -> None:
    text = minimal() + minimal().split("[[steps]]")[1].join(["[[steps]]", ""])
    assert "duplicate step id" in bad(text)


def test_shipped_file_is_the_one_the_tests_read() -> None:
    # The installed package ships the same content as the repository file.
    assert load_protocol(CONTENT).steps == load_protocol("microneedling").steps
