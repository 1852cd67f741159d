"""The command line: outputs, one-line errors, exit codes, nothing half-written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aftercal.cli import app
from reminders import load_protocol
from tests.helpers import events_by_uid

runner = CliRunner()
PLAN = ["plan", "microneedling", "--at", "2026-11-24T10:00", "--tz", "America/New_York", "--id", "T-1001"]


def test_plan_to_stdout_and_file(tmp_path: Path) -> None:
    result = runner.invoke(app, PLAN)
    assert result.exit_code == 0, result.output
    # One event per reminder: 1 per step, 2 for the rebooking step (its window and its reminder).
    steps = load_protocol("microneedling").steps
    wanted = len(steps) + sum(1 for s in steps if s.kind == "rebook")
    assert len(events_by_uid(result.stdout_bytes)) == wanted
    out = tmp_path / "care.ics"
    result = runner.invoke(app, [*PLAN, "-o", str(out)])
    assert result.exit_code == 0
    assert set(events_by_uid(out.read_bytes())) == set(events_by_uid(result.stdout_bytes or out.read_bytes()))
    assert f"Wrote {wanted} events" in result.stderr


def test_show_prints_a_timeline() -> None:
    result = runner.invoke(app, ["show", "microneedling", "--at", "2026-11-24T22:00", "--tz", "Europe/Paris"],
                           env={"COLUMNS": "160"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Thu 26 Nov 2026 09:00 CET" in result.stdout  # day 2 SPF
    assert "moved out of quiet hours" in result.stdout


def test_protocols_lists_shipped() -> None:
    result = runner.invoke(app, ["protocols"])
    assert result.exit_code == 0
    assert result.stdout.startswith("microneedling\t2.0.0\t")


def test_protocol_trace_links_every_source_item_to_its_steps() -> None:
    result = runner.invoke(app, ["protocol", "trace", "microneedling"])
    assert result.exit_code == 0, result.output
    proto = load_protocol("microneedling")
    for key in proto.seed:
        assert f"\n{key}: " in "\n" + result.stdout
        for step in proto.carriers(key):
            assert f"  -> {step.id} ({step.timing()}): {step.title}" in result.stdout
    assert "  -> avoid-starts (2 h after): " in result.stdout


def test_protocol_check_ok_and_bad(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["protocol", "check", str(Path("content/microneedling.toml").resolve())])
    assert ok.exit_code == 0 and "OK" in ok.stdout
    broken = tmp_path / "broken.toml"
    broken.write_text('[protocol]\nid = "x"\n', encoding="utf-8")
    result = runner.invoke(app, ["protocol", "check", str(broken)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and str(broken) in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "2026-02-30T10:00"], "cannot read start"),
        (["--tz", "Mars/Base"], "unknown time zone 'Mars/Base'"),
        (["--at", "2026-03-08T02:30"], "does not exist in America/New_York"),
        (["--morning", "9am"], "--morning '9am'"),
        (["--quiet", "late"], "--quiet 'late'"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    out = tmp_path / "care.ics"
    out.write_bytes(b"previous calendar")
    base = {"--at": "2026-11-24T10:00", "--tz": "America/New_York"}
    opts = dict(base)
    extra: list[str] = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag in opts:
            opts[flag] = value
        else:
            extra += [flag, value]
    argv = ["plan", "microneedling", *[x for kv in opts.items() for x in kv], *extra, "-o", str(out)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert out.read_bytes() == b"previous calendar"


def test_unknown_and_malformed_protocols(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", "tattoo", "--at", "2026-11-24T10:00", "--tz", "Asia/Tokyo"])
    assert result.exit_code == 2 and "unknown protocol (shipped: microneedling" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe not text")
    result = runner.invoke(app, ["plan", str(bad), "--at", "2026-11-24T10:00", "--tz", "Asia/Tokyo"])
    assert result.exit_code == 2 and "not UTF-8 text" in result.stderr
    missing = runner.invoke(app, ["plan", str(tmp_path / "nope.toml"), "--at", "2026-11-24T10:00", "--tz", "Japan"])
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_unwritable_output_leaves_nothing(tmp_path: Path) -> None:
    result = runner.invoke(app, [*PLAN, "-o", str(tmp_path / "missing-dir" / "care.ics")])
    assert result.exit_code == 1 and "does not exist" in result.stderr
    locked = tmp_path / "locked"
    locked.mkdir()
    target = locked / "care.ics"
    target.write_bytes(b"old")
    locked.chmod(0o500)
    try:
        result = runner.invoke(app, [*PLAN, "-o", str(target)])
        if os.geteuid() == 0:  # root ignores directory permissions: the write goes through
            assert result.exit_code == 0 and target.read_bytes().startswith(b"BEGIN:VCALENDAR")
        else:
            assert result.exit_code == 1 and "cannot write" in result.stderr
            assert target.read_bytes() == b"old"
        assert [p.name for p in locked.iterdir() if p.name != "care.ics"] == []  # no temp file left
    finally:
        locked.chmod(0o700)
    assert runner.invoke(app, [*PLAN, "-o", str(tmp_path)]).exit_code == 1  # a folder


def test_real_process_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aftercal.cli", "plan", "microneedling", "--at", "nope", "--tz", "Asia/Tokyo"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    expected = "aftercal: error: cannot read start 'nope': use local ISO time such as 2026-11-24T10:00"
    assert proc.stderr.strip() == expected
    debug = subprocess.run(
        [sys.executable, "-m", "aftercal.cli", "--debug", "plan", "microneedling", "--at", "nope", "--tz", "Japan"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert debug.returncode != 0 and "StartTimeError" in debug.stderr


def test_discreet_and_patient_name_flags() -> None:
    plain = runner.invoke(app, PLAN).stdout_bytes
    named = runner.invoke(app, [*PLAN, "--discreet", "--patient-name", "Ada"]).stdout_bytes
    assert b"Ada" not in plain and b"For Ada." in named
    summaries = [e.summary.value.lower() for e in events_by_uid(named).values()]
    assert not [s for s in summaries if "needling" in s or "treatment" in s]


def test_default_zone_comes_from_tz_env() -> None:
    result = runner.invoke(app, ["plan", "microneedling", "--at", "2026-11-24T10:00"], env={"TZ": "Asia/Kolkata"})
    assert result.exit_code == 0
    assert b"TZID=Asia/Kolkata" in result.stdout_bytes


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*PLAN, "--bogus"], "No such option: --bogus (see `aftercal plan --help`)"),
        (["plan", "microneedling", "--tz", "Asia/Tokyo"], "Missing option '--at'"),
        ([*PLAN, "--sequence", "abc"], "Invalid value for '--sequence'"),
        ([*PLAN, "--sequence", "99999999999999999999"], "Invalid value for '--sequence'"),
        (["nosuchcommand"], "No such command 'nosuchcommand'"),
    ],
)
def test_usage_errors_are_one_line(argv: list[str], message: str) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--at", "9999-12-31T23:00"], "between 1970 and 2199"),
        (["--at", "0001-01-01T00:00"], "between 1970 and 2199"),
        (["--at", "9999-12-31T23:00+01:00"], "between 1970 and 2199"),
        (["--patient-name", "Ada\nLovelace"], "patient name must be one line"),
        (["--clinic-url", "javascript:alert(1)"], "must be a web address"),
        (["--clinic-name", "Clinic\r\nX-INJECTED:1"], "clinic name must be one line"),
    ],
)
def test_out_of_range_and_unsafe_values(extra: list[str], message: str) -> None:
    argv = [
        "plan",
        "microneedling",
        "--tz",
        "Europe/Paris",
        *(["--at", "2026-11-24T10:00"] if "--at" not in extra else []),
    ]
    result = runner.invoke(app, [*argv, *extra])
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_missing_optional_dependency_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['caldav'] = None\n"
        "sys.argv = ['aftercal', 'publish', 'caldav', 'microneedling', '--at', '2099-11-24T10:00', '--tz', 'Japan',"
        " '--url', 'http://127.0.0.1:9/', '--user', 'u', '--calendar', 'c']\n"
        "from aftercal.cli import main\nmain()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env={**os.environ, "AFTERCAL_CALDAV_PASSWORD": "x"})  # fmt: skip
    assert proc.returncode == 1
    assert "needs the optional 'caldav' dependencies" in proc.stderr
    assert "pip install 'aftercal[caldav]'" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_date_without_time_and_zone_hints() -> None:
    no_time = runner.invoke(app, ["plan", "microneedling", "--at", "2026-11-24", "--tz", "Asia/Tokyo"])
    assert no_time.exit_code == 2 and "has no time of day" in no_time.stderr
    lower = runner.invoke(app, ["plan", "microneedling", "--at", "2026-11-24T10:00", "--tz", "europe/paris"])
    assert "did you mean Europe/Paris?" in lower.stderr
    utc = runner.invoke(app, ["plan", "microneedling", "--at", "2026-11-24T10:00", "--tz", "utc"])
    assert utc.exit_code == 2 and "utc is a fixed offset, not a place" in utc.stderr
    machine = runner.invoke(app, ["plan", "microneedling", "--at", "2026-11-24T10:00"], env={"TZ": "JST-9"})
    assert machine.exit_code == 2 and "machine's zone" in machine.stderr and "pass --tz" in machine.stderr


@pytest.mark.parametrize("value", ["-1", "nan", "soon"])
def test_backoff_environment_is_checked(value: str) -> None:
    from aftercal.publishing import env_seconds
    from reminders.errors import InputError

    os.environ["AFTERCAL_TEST_BACKOFF"] = value
    try:
        with pytest.raises(InputError, match="AFTERCAL_TEST_BACKOFF"):
            env_seconds("AFTERCAL_TEST_BACKOFF", 1.0)
    finally:
        del os.environ["AFTERCAL_TEST_BACKOFF"]
