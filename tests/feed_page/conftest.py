from __future__ import annotations

from datetime import date

import pytest

from reminders import CarePlan, Clinic, PlanOptions, make_plan

ICS_URL = "https://clinic.example/feed/k3yS3cr3t/care.ics"
WEBCAL_URL = "webcal://clinic.example/feed/k3yS3cr3t/care.ics"
TODAY = date(2026, 11, 24)  # the treatment day of the plans below, in their zone


@pytest.fixture
def plan() -> CarePlan:
    return make_plan("microneedling", "2026-11-24T10:00", "America/New_York", treatment_id="T-1")


@pytest.fixture
def named_plan() -> CarePlan:
    options = PlanOptions(patient_name="Zoë Quartermain", clinic=Clinic(name="Skin & Co", phone="+1 555 0100"))
    return make_plan("microneedling", "2026-11-24T10:00", "America/New_York", treatment_id="T-2", options=options)
