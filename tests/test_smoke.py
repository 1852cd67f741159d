from reminders import make_plan


def test_plan_has_reminders() -> None:
    plan = make_plan("microneedling", "2026-11-24T10:00", "America/New_York", treatment_id="T-1")
    assert len(plan.reminders) > 10
