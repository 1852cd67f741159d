"""The shipped protocol: complete, traceable to the source, in our own words."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reminders import load_protocol, shipped_protocols
from reminders.errors import ProtocolError
from reminders.protocol import normalise_text, parse_protocol
from reminders.schedule import PlanOptions, build_plan

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "microneedling-post-treatment-instructions.txt"
CONTENT = Path(__file__).resolve().parents[1] / "content" / "microneedling.toml"
EXAMPLE_CLINIC = Path(__file__).resolve().parents[1] / "examples" / "clinic-microneedling.toml"


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


# Claims a review found in an earlier version that the source does not make. The shipped protocol
# says what the source says and nothing else: a clinic adds such advice in its own file.
NOT_IN_SOURCE = [
    "pus", "fever", "yellow crust", "retinol", "retinoid", "vitamin c", "aha", "bha", "benzoyl", "wax",
    "sauna", "tanning", "steam", "hot tub", "yoga", "pillowcase", "photo", "one at a time", "never ice",
    "hands off", "wash your hands", "every morning", "no rubbing", "within a day", "collagen", "scratch",
    "leave marks", "ok again", "can return", "sunburn",
]  # fmt: skip


def source_sentences() -> list[str]:
    text = " ".join(line[2:] for line in SEED.read_text(encoding="utf-8").splitlines() if line.startswith("- "))
    return [s.strip() for s in re.split(r"(?<=[.:])\s+", text) if len(s.split()) >= 6]


def test_no_source_sentence_is_pasted() -> None:
    # Our own words, but the source's facts: short runs such as "in 1 to 3 days" are the facts
    # themselves, so only a whole source sentence copied verbatim counts as pasting.
    if not SEED.exists():
        pytest.skip(f"source document not present at {SEED}")
    proto = load_protocol("microneedling")
    text = normalise_text(" ".join(s.title + " " + s.body for s in proto.steps))
    sentences = source_sentences()
    assert len(sentences) > 20
    for sentence in sentences:
        assert normalise_text(sentence.rstrip(".")) not in text, sentence


def test_every_seed_item_lists_its_facts() -> None:
    proto = load_protocol("microneedling")
    assert set(proto.facts) == set(proto.seed)
    assert all(proto.facts[key] for key in proto.seed)


def rendered_texts(discreet: bool) -> dict[str, list[str]]:
    """Per seed key, the patient-visible text (title and description) of every reminder carrying it."""
    proto = load_protocol("microneedling")
    start = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    plan = build_plan(proto, "T-1", start, PlanOptions(discreet=discreet))
    texts: dict[str, list[str]] = {key: [] for key in proto.seed}
    for reminder in plan.reminders:
        for key in reminder.carries:
            texts[key].append(normalise_text(reminder.title + " " + reminder.description))
    return texts


@pytest.mark.parametrize("discreet", [False, True])
def test_every_fact_of_the_source_reaches_the_patient(discreet: bool) -> None:
    proto = load_protocol("microneedling")
    texts = rendered_texts(discreet)
    for key, facts in proto.facts.items():
        assert texts[key], f"{key}: no reminder carries it"
        for fact in facts:
            assert any(normalise_text(fact) in t for t in texts[key]), f"{key}: {fact!r} reaches no patient"


def test_facts_are_the_sources_numbers() -> None:
    # The numbers of each seed item's facts are numbers of the source (written as words or digits).
    if not SEED.exists():
        pytest.skip(f"source document not present at {SEED}")
    source = SEED.read_text(encoding="utf-8").lower()
    source_numbers = set(re.findall(r"\d+", source)) | {"1", "2"}  # "one week", "two weeks"
    proto = load_protocol("microneedling")
    for key, facts in proto.facts.items():
        for fact in facts:
            for number in re.findall(r"\d+", fact):
                assert number in source_numbers, f"{key}: {fact!r} has a number the source does not give"


def test_shipped_protocol_adds_nothing_the_source_does_not_say() -> None:
    proto = load_protocol("microneedling")
    for step in proto.steps:
        text = normalise_text(" ".join([step.title, step.discreet_title, step.body, *(step.window_title or "",)]))
        for claim in NOT_IN_SOURCE:
            assert not re.search(rf"\b{re.escape(claim)}\b", text), f"step {step.id} says {claim!r}"


def test_discreet_windows_name_every_restriction() -> None:
    # An all-day window shows its title all period long: the neutral one must not drop a restriction.
    for step in load_protocol("microneedling").steps:
        if step.kind == "window":
            assert step.discreet_title.split(":", 1)[1] == step.title.split(":", 1)[1], step.id


def test_restrictions_ring_on_day_0() -> None:
    # The patient learns what to avoid when the periods start, on a lock screen, not when they end.
    proto = load_protocol("microneedling")
    start = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
    plan = build_plan(proto, "T-1", start)
    ringing_day0 = [r for r in plan.reminders if r.alarm_text and r.start.date() == start.date()]  # type: ignore[union-attr]
    carried = {key for r in ringing_day0 for key in r.carries}
    assert {"no-activity-heat-sun-1w", "no-harsh-products-2w", "no-dermaplaning-2w"} <= carried


def test_a_quiet_hours_move_never_leaves_a_wrong_day_in_categories() -> None:
    proto = load_protocol("microneedling")
    start = datetime(2026, 11, 24, 20, 30, tzinfo=ZoneInfo("Europe/Paris"))
    plan = build_plan(proto, "T-1", start)
    moved = [r for r in plan.reminders if r.note == "moved out of quiet hours"]
    assert moved
    for reminder in plan.reminders:
        assert not any(re.search(r"\bday\s*\d", c, re.IGNORECASE) for c in reminder.categories), reminder.key


def test_a_missing_fact_is_an_error_naming_the_seed_item() -> None:
    text = minimal(seed='[seed.a]\ntext = "x"\nfacts = ["6 to 8 weeks"]')
    text = text.replace('body = "B"', 'body = "Wait 6-8 weeks"')
    message = bad(text)
    assert "field 'seed.a.facts': fact '6 to 8 weeks' appears in no step that carries it (s1)" in message
    ok = parse_protocol(text.replace('body = "Wait 6-8 weeks"', 'body = "Wait 6 to 8 weeks"'), origin="c.toml")
    assert ok.facts == {"a": ("6 to 8 weeks",)}


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x07", "\t", "\r", "\x7f", "\x9b"])
def test_control_characters_are_refused(char: str) -> None:
    escaped = f"\\u{ord(char):04X}"  # a TOML escape, so the file itself stays printable
    message = bad(minimal().replace('title = "T"', f'title = "T{escaped}x"'))
    assert f"step 's1': field 'title': contains the control character U+{ord(char):04X}" in message
    message = bad(minimal(seed=f'a = "x{escaped}"'))
    assert "field 'seed.a': contains the control character" in message


def test_windows_line_ends_are_read_as_newlines() -> None:
    text = minimal().replace('body = "B"', 'body = """\nline one\nline two"""').replace("\n", "\r\n")
    assert parse_protocol(text, origin="c.toml").steps[0].body == "line one\nline two"


def test_a_day_category_is_refused() -> None:
    assert "field 'categories': 'Day 0': a category must not name a day" in bad(minimal(step='categories = ["Day 0"]'))


@pytest.mark.parametrize("path", ["/dev/zero", "fifo"])
def test_endless_or_blocking_inputs_are_refused(path: str, tmp_path: Path) -> None:
    if path == "fifo":
        path = str(tmp_path / "p.toml")
        os.mkfifo(path)
    elif not Path(path).exists():
        pytest.skip(f"{path} missing")
    with pytest.raises(ProtocolError, match="not a regular file"):
        load_protocol(path)


def test_a_huge_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * 1_000_001)
    with pytest.raises(ProtocolError, match="larger than"):
        load_protocol(big)


def test_the_clinic_example_extends_the_shipped_protocol_unchanged() -> None:
    base = load_protocol("microneedling")
    clinic = load_protocol(EXAMPLE_CLINIC)
    assert clinic.extends == "microneedling"
    assert clinic.steps[: len(base.steps)] == base.steps
    own = clinic.steps[len(base.steps) :]
    assert own and all(set(step.carries) <= set(clinic.seed) - set(base.seed) for step in own)
    assert clinic.missing_facts() == [] and clinic.uncarried_seed_items() == []
    # The clinic's advice never leaks into the shipped file.
    assert "pillowcase" not in CONTENT.read_text(encoding="utf-8")


def test_extends_errors_name_the_file(tmp_path: Path) -> None:
    clinic = tmp_path / "c.toml"
    clinic.write_text(EXAMPLE_CLINIC.read_text(encoding="utf-8").replace('"clinic-tonight"', '"cleanse-and-cool"'))
    with pytest.raises(ProtocolError, match=r"c.toml: step 'cleanse-and-cool': field 'id': duplicate step id"):
        load_protocol(clinic)
    loop = tmp_path / "loop.toml"
    loop.write_text(minimal(head='extends = "loop.toml"'))
    with pytest.raises(ProtocolError, match="levels of extends"):
        load_protocol(loop)
    clash = tmp_path / "clash.toml"
    clash.write_text(minimal(head='extends = "microneedling"', seed='interval-6-8w = "x"'))
    with pytest.raises(ProtocolError, match="seed item 'interval-6-8w' is already in microneedling"):
        load_protocol(clash)


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
