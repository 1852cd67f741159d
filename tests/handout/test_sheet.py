"""What the handout says, before any drawing: the paper rule, the wording, the key days and bars."""

from __future__ import annotations

from datetime import date

import pytest

from aftercal.handouts import default_paper, handout_format, paper_size
from calendars.handout import excerpt, handout_sheet, neutral_wording, short_title
from reminders import make_plan
from reminders.errors import InputError
from reminders.schedule import PlanOptions
from tests.handout.conftest import LINK, new_york_plan


@pytest.mark.parametrize(
    ("env", "paper"),
    [
        ({"LANG": "en_US.UTF-8"}, "letter"),
        ({"LANG": "fr_CA.UTF-8"}, "letter"),
        ({"LANG": "es_MX"}, "letter"),
        ({"LANG": "fil_PH.UTF-8"}, "letter"),
        ({"LANG": "es_CL.UTF-8"}, "letter"),
        ({"LANG": "en_GB.UTF-8"}, "a4"),
        ({"LANG": "de_DE.UTF-8@euro"}, "a4"),
        ({"LANG": "en_US.UTF-8", "LC_PAPER": "de_DE.UTF-8"}, "a4"),  # LC_PAPER outranks LANG
        ({"LC_PAPER": "en_GB.UTF-8", "LC_ALL": "en_US.UTF-8"}, "letter"),  # LC_ALL outranks both
        ({"LANG": "C.UTF-8"}, "a4"),
        ({"LANG": "POSIX"}, "a4"),
        ({}, "a4"),
    ],
)
def test_the_default_paper_follows_the_locale(env: dict[str, str], paper: str) -> None:
    assert default_paper(env) == paper


def test_paper_and_format_are_checked() -> None:
    assert paper_size("A4") == "a4" and paper_size(" Letter ") == "letter"
    with pytest.raises(InputError, match="use a4 or letter"):
        paper_size("a5")
    assert handout_format("x/handout.PDF") == "pdf" and handout_format("h.png") == "png"
    with pytest.raises(InputError, match=r"\.pdf or \.png"):
        handout_format("handout.svg")


def test_titles_lose_the_protocol_prefix_and_excerpts_keep_a_sentence_or_so() -> None:
    assert short_title("Microneedling day 2: start SPF 30+ sunscreen") == "Start SPF 30+ sunscreen"
    assert short_title("No prefix here") == "No prefix here"
    body = "One week has passed. Vigorous activity was to be avoided: contact the clinic.\n\nMore text."
    assert excerpt(body) == "One week has passed. Vigorous activity was to be avoided: contact the clinic."
    assert excerpt("Right after:\n\n- Clean it.\n- Dry it.") == "Right after: Clean it. Dry it."
    long = "word " * 80
    cut = excerpt(long, limit=50)
    assert len(cut) <= 50 and cut.endswith("…")


def test_neutral_wording_says_visit() -> None:
    neutral = neutral_wording(["treatment", "microneedling"])
    assert neutral("Treatments: after your treatment, microneedling.") == "Visits: after your visit, visit."


def test_the_sheet_has_every_timed_reminder_as_a_key_day_and_every_window_as_a_bar() -> None:
    plan = new_york_plan()
    sheet = handout_sheet(plan, link=LINK)
    timed = [r for r in plan.reminders if not r.all_day]
    assert sum(len(day.entries) for day in sheet.days) == len(timed)
    assert sheet.days[0].label == "Today" and sheet.days[0].date == date(2026, 11, 24)
    assert [day.date_text for day in sheet.days][:3] == ["Tue 24 Nov", "Wed 25 Nov", "Thu 26 Nov"]
    assert "Tue 5 Jan 2027" in [day.date_text for day in sheet.days]  # another year: with it
    bars = {(p.first, p.last, p.rebook): p.dates_text for p in sheet.periods}
    assert bars == {
        (0, 6, False): "until Mon 30 Nov",
        (0, 13, False): "until Mon 7 Dec",
        (42, 56, True): "Tue 5 Jan 2027 to Tue 19 Jan 2027",
    }
    assert sheet.axis_end == 57
    assert [c.title for c in sheet.contacts] == ["If irritation, itching or burning continues"]
    assert sheet.patient_name == "Zoë Núñez"
    assert sheet.link == LINK


def test_a_dst_change_inside_the_plan_is_said() -> None:
    plan = make_plan("microneedling", "2026-10-20T10:00", "America/New_York", treatment_id="T-1")
    assert "clocks change on Sun 1 Nov" in handout_sheet(plan).zone_text
    assert "clocks" not in handout_sheet(new_york_plan()).zone_text  # November to February: no change


def test_discreet_wording_has_no_treatment_word() -> None:
    plan = new_york_plan(discreet=True)
    sheet = handout_sheet(plan, link=LINK)
    text = " ".join(sheet.texts()).lower()
    assert plan.protocol.treatment_words
    for word in plan.protocol.treatment_words:
        assert word.lower() not in text
    assert sheet.title == "Skin care reminders"
    assert sheet.start_text.startswith("Visit: ")


def test_no_patient_name_unless_given() -> None:
    plan = make_plan("microneedling", "2026-11-24T10:00", "America/New_York", options=PlanOptions())
    assert handout_sheet(plan).patient_name is None
