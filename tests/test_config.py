"""The clinic's configuration file, `aftercal init` and `aftercal config show` (issue 10).

Precedence is observed through real commands: an option typed on the command line beats the
environment variable it reads, which beats the configuration file, which beats the option's
declared default. Every error in the file is one line that names the file and the key.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner, Result

from aftercal import config as clinic_config
from aftercal.cli import app
from reminders.errors import InputError

runner = CliRunner()
SHOW = ["show", "microneedling", "--at", "2026-11-24T22:00", "--tz", "Europe/Paris"]
PLAN = ["plan", "microneedling", "--at", "2026-11-24T10:00", "--tz", "Europe/Paris", "--id", "T-1"]
ADD = ["treatments", "add", "microneedling", "--at", "2026-11-24T10:00", "--tz", "Europe/Madrid", "--no-qr"]
# Variables that would make a test read the caller's settings instead of its own.
_CALLER = ("AFTERCAL_", "GOOGLE_APPLICATION_CREDENTIALS", "PGPASSWORD")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """aftercal's config and data folders in tmp_path (empty), no AFTERCAL_* variable of the caller."""
    for name in list(os.environ):
        if name.startswith(_CALLER):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AFTERCAL_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("AFTERCAL_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def write_config(folder: Path, text: str, name: str = "clinic.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, args, env={"COLUMNS": "200", **(env or {})})


def unfolded(ics: str) -> str:
    return re.sub(r"\r?\n[ \t]", "", ics)


# ---- precedence, through real commands ----------------------------------------------------------------


def test_morning_from_the_file_and_the_command_line_wins(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[plan]\nmorning = "08:00"\n')
    default = invoke(SHOW)
    assert default.exit_code == 0, default.output
    assert "Thu 26 Nov 2026 09:00 CET" in default.stdout  # day 2, at the declared default
    from_file = invoke(["--config", str(path), *SHOW])
    assert from_file.exit_code == 0, from_file.output
    assert "Thu 26 Nov 2026 08:00 CET" in from_file.stdout
    typed = invoke(["--config", str(path), *SHOW, "--morning", "10:30"])
    assert typed.exit_code == 0, typed.output
    assert "Thu 26 Nov 2026 10:30 CET" in typed.stdout


def test_clinic_name_command_line_over_environment_over_file_over_default(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[clinic]\nname = "File Clinic"\nphone = "+1 212 555 0100"\n')

    def questions(args: list[str], env: dict[str, str] | None = None) -> str:
        result = invoke(args, env)
        assert result.exit_code == 0, result.output
        lines = [line for line in unfolded(result.stdout).splitlines() if "Questions?" in line]
        assert lines
        return lines[0]

    assert "Questions?" not in invoke(PLAN).stdout  # default: no clinic
    assert "File Clinic | +1 212 555 0100" in questions(["--config", str(path), *PLAN])
    by_env = questions(["--config", str(path), *PLAN], {"AFTERCAL_CLINIC_NAME": "Env Clinic"})
    assert "Env Clinic | +1 212 555 0100" in by_env and "File Clinic" not in by_env
    typed = questions(
        ["--config", str(path), *PLAN, "--clinic-name", "Typed Clinic"], {"AFTERCAL_CLINIC_NAME": "Env Clinic"}
    )
    assert "Typed Clinic | +1 212 555 0100" in typed and "Env Clinic" not in typed


def test_the_environment_names_the_file_and_config_beats_it(tmp_path: Path) -> None:
    by_env = write_config(tmp_path, '[plan]\nmorning = "07:30"\nquiet = "22:00-07:00"\n', "env.toml")
    by_option = write_config(tmp_path, '[plan]\nmorning = "10:15"\n', "option.toml")
    result = invoke(SHOW, {"AFTERCAL_CONFIG": str(by_env)})
    assert result.exit_code == 0, result.output
    assert "Thu 26 Nov 2026 07:30 CET" in result.stdout
    result = invoke(["--config", str(by_option), *SHOW], {"AFTERCAL_CONFIG": str(by_env)})
    assert result.exit_code == 0, result.output
    assert "Thu 26 Nov 2026 10:15 CET" in result.stdout


def test_the_default_file_is_read(tmp_path: Path) -> None:
    write_config(tmp_path / "config", '[plan]\nmorning = "08:45"\n', "aftercal.toml")
    result = invoke(SHOW)
    assert result.exit_code == 0, result.output
    assert "Thu 26 Nov 2026 08:45 CET" in result.stdout


def test_discreet_from_the_file_and_no_discreet_overrides_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[plan]\ndiscreet = true\n")
    discreet = invoke(["--config", str(path), *PLAN])
    assert discreet.exit_code == 0, discreet.output
    assert "Microneedling" not in discreet.stdout and "SUMMARY:Skin care:" in discreet.stdout
    plain = invoke(["--config", str(path), *PLAN, "--no-discreet"])
    assert plain.exit_code == 0, plain.output
    assert "SUMMARY:Microneedling aftercare:" in plain.stdout


def test_treatments_use_the_store_of_the_file_relative_to_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clinic = tmp_path / "clinic"
    path = write_config(clinic, '[store]\ndb = "treatments.db"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a relative [store] db is relative to the file's folder, not to the working one
    made = invoke(["--config", str(path), "init"])
    assert made.exit_code == 0, made.output
    added = invoke(["--config", str(path), *ADD, "--id", "T-77"])
    assert added.exit_code == 0, added.output
    listed = invoke(["--config", str(path), "treatments", "list"])
    assert listed.exit_code == 0, listed.output
    assert "T-77" in listed.stdout
    assert (clinic / "treatments.db").is_file()
    assert not (elsewhere / "treatments.db").exists()
    # --db on the command line wins over the file: that store is empty.
    other = invoke(["--config", str(path), "treatments", "list", "--db", str(tmp_path / "other.db")])
    assert "T-77" not in other.stdout


def parsed(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """The parameters the command of `args` would be called with (nothing runs, nothing is sent)."""
    seen: dict[str, Any] = {}
    root = get_command(app)

    def replace(command: Any) -> None:
        for child in (getattr(command, "commands", None) or {}).values():
            replace(child)
        if not getattr(command, "commands", None):
            command.callback = lambda **params: seen.update(params)

    replace(root)
    with runner.isolation(env=env):
        root.main(args, prog_name="aftercal", standalone_mode=False)
    return seen


def test_channel_settings_reach_publish_and_unpublish(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[caldav]\nurl = "https://caldav.example.com/"\nuser = "clinic"\ncalendar = "aftercare"\n'
        '[google]\ncalendar_id = "c1@group.calendar.google.com"\ncredentials = "keys/sa.json"\n'
        'api_endpoint = "http://127.0.0.1:9/"\nno_auth = true\n',
    )
    at = ["microneedling", "--at", "2026-11-24T10:00", "--tz", "Europe/Paris"]
    caldav = parsed(["--config", str(path), "publish", "caldav", *at])
    assert (caldav["url"], caldav["user"], caldav["calendar"]) == ("https://caldav.example.com/", "clinic", "aftercare")
    gone = parsed(["--config", str(path), "unpublish", "caldav", "--id", "T-1", "--user", "typed"])
    assert (gone["url"], gone["user"]) == ("https://caldav.example.com/", "typed")
    by_env = parsed(["--config", str(path), "unpublish", "caldav", "--id", "T-1"], {"AFTERCAL_CALDAV_USER": "env"})
    assert by_env["user"] == "env"
    google = parsed(["--config", str(path), "publish", "google", *at])
    assert google["calendar_id"] == "c1@group.calendar.google.com"
    assert google["credentials"] == tmp_path / "keys" / "sa.json"
    assert (google["api_endpoint"], google["no_auth"]) == ("http://127.0.0.1:9/", True)
    assert google["calendar"] is None  # [caldav] calendar is CalDAV's only
    assert parsed(["--config", str(path), "unpublish", "google", "--id", "T-1"])["calendar_id"].startswith("c1@")


def test_without_the_file_the_caldav_options_stay_required(tmp_path: Path) -> None:
    result = invoke(["publish", "caldav", "microneedling", "--at", "2026-11-24T10:00", "--tz", "Europe/Paris"])
    assert result.exit_code == 2
    assert "--url" in result.stderr


# ---- errors: one line, the file and the key ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[plan]\nmornin = "08:00"\n', ["[plan] mornin", "unknown key", "morning, quiet, discreet"]),
        ('[plans]\nmorning = "08:00"\n', ["[plans]", "unknown section", "[plan]"]),
        ('morning = "08:00"\n', ["morning", "section"]),
        ('[plan]\nmorning = "9am"\n', ["[plan] morning", "HH:MM", "'9am'"]),
        ('[plan]\nmorning = "22:30"\n', ["[plan] morning", "inside the quiet hours"]),
        ('[plan]\nquiet = "late"\n', ["[plan] quiet", "HH:MM-HH:MM", "off"]),
        ("[plan]\nmorning = 9\n", ["[plan] morning", "not the number 9"]),
        ('[plan]\ndiscreet = "yes"\n', ["[plan] discreet", "true or false"]),
        ('[clinic]\nname = ""\n', ["[clinic] name", "empty"]),
        ('[clinic]\nurl = "riverside.example"\n', ["[clinic] url", "https://"]),
        ('[feeds]\nbase_url = "ftp://care.example"\n', ["[feeds] base_url", "http(s) URL"]),
        ('[caldav]\nurl = "https://clinic:pw@caldav.example.com/"\n', ["[caldav] url", "password"]),
        ('[google]\napi_endpoint = "localhost:8000"\n', ["[google] api_endpoint", "http(s) URL"]),
        ('[store]\ndb = "mysql://db.example/aftercal"\n', ["[store] db", "postgresql://"]),
        ('[caldav]\npassword = "hunter2"\n', ["[caldav] password", "secrets never live in the config file",
                                            "AFTERCAL_CALDAV_PASSWORD, the keyring or netrc"]),
        ('[store]\ndb = "postgresql://clinic:hunter2@db.example/aftercal"\n', ["[store] db", "secrets never live",
                                                                              "PGPASSWORD"]),
        ('[google]\ntoken = "ya29.hunter2"\n', ["[google] token", "secrets never live", "aftercal google login"]),
        ('[plan]\nmorning = "08:00"\n[plan\n', ["line 3", "not valid TOML"]),
        ('[plan]\nmorning = \n', ["line 2", "not valid TOML"]),
    ],
)  # fmt: skip
def test_every_error_names_the_file_and_the_key(tmp_path: Path, text: str, names: list[str]) -> None:
    path = write_config(tmp_path, text)
    result = invoke(["--config", str(path), "protocols"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"aftercal: error: {path}: ")
    for name in names:
        assert name in result.stderr
    assert "hunter2" not in result.stderr  # a secret in the file is never repeated


def test_a_named_file_that_does_not_exist_is_an_error_the_default_one_is_not(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    for args, env in (
        (["--config", str(missing), "protocols"], {}),
        (["protocols"], {"AFTERCAL_CONFIG": str(missing)}),
    ):
        result = invoke(args, env)
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1
        assert str(missing) in result.stderr and "aftercal" in result.stderr and "init`" in result.stderr
    assert invoke(["protocols"]).exit_code == 0  # no file in the default place: no settings


def test_help_works_whatever_the_file_holds(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[plan]\nmorning = "9am"\n')
    for args in (["--help"], ["plan", "--help"], ["publish", "caldav", "--help"], ["config", "show", "--help"]):
        result = invoke(["--config", str(path), *args])
        assert result.exit_code == 0, (args, result.output)
        assert "Usage" in result.stdout
    assert invoke(["--config", str(path), "config", "show"]).exit_code == 2


def test_help_shows_the_defaults_of_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[plan]\nmorning = "08:00"\n')
    result = invoke(["--config", str(path), "plan", "--help"])
    assert result.exit_code == 0
    assert "[default: 08:00]" in result.stdout


def test_library_reads_the_file_with_paths_from_its_folder(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "etc",
        '[clinic]\nname = "Riverside"\n[store]\ndb = "../var/clinic.db"\n[google]\ncredentials = "sa.json"\n'
        '[caldav]\nurl = "https://caldav.example.com/"\n',
    )
    loaded = clinic_config.load_config(path)
    assert loaded.path == path and loaded.location_source == "--config"
    assert loaded.clinic_name == "Riverside" and loaded.morning is None and loaded.discreet is None
    assert loaded.db == str(tmp_path / "var" / "clinic.db")
    assert loaded.google_credentials == tmp_path / "etc" / "sa.json"
    assert loaded.secret_path == tmp_path / "etc" / "aftercal.secret"
    sources = {setting.name: setting.source for setting in loaded.settings()}
    assert sources["[clinic] name"] == f"{path}: [clinic] name"
    assert sources["[clinic] phone"] is None
    postgres = write_config(tmp_path, '[store]\ndb = "postgresql://aftercal@db.example/clinic"\n', "pg.toml")
    assert clinic_config.load_config(postgres).db == "postgresql://aftercal@db.example/clinic"


def test_config_path_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert clinic_config.config_path(None) == (tmp_path / "config" / "aftercal.toml", clinic_config.config_path()[1])
    assert "AFTERCAL_CONFIG_DIR" in clinic_config.config_path(None)[1]
    monkeypatch.setenv("AFTERCAL_CONFIG", str(tmp_path / "env.toml"))
    assert clinic_config.config_path(None) == (tmp_path / "env.toml", "$AFTERCAL_CONFIG")
    assert clinic_config.config_path(tmp_path / "x.toml") == (tmp_path / "x.toml", "--config")
    monkeypatch.setenv("AFTERCAL_SECRET_FILE", str(tmp_path / "s" / "clinic.secret"))
    loaded = clinic_config.load_config(tmp_path / "x.toml", missing_ok=True)
    assert loaded.path is None and loaded.secret_path == tmp_path / "s" / "clinic.secret"


# ---- the clinic secret ---------------------------------------------------------------------------------


def test_secret_is_created_once_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "folder" / "aftercal.secret"
    assert clinic_config.read_secret(path) is None
    secret = clinic_config.create_secret(path)
    assert len(secret) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="ascii") == secret.hex() + "\n"
    assert clinic_config.read_secret(path) == secret
    with pytest.raises(InputError, match="never replaces"):
        clinic_config.create_secret(path)
    assert clinic_config.read_secret(path) == secret
    assert [p.name for p in path.parent.iterdir()] == ["aftercal.secret"]  # no temporary file left


def test_secret_readable_by_others_or_malformed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "aftercal.secret"
    clinic_config.create_secret(path)
    path.chmod(0o644)
    with pytest.raises(InputError, match=r"chmod 600") as caught:
        clinic_config.read_secret(path)
    assert str(path) in str(caught.value)
    path.write_text("not hex\n", encoding="ascii")
    path.chmod(0o600)
    with pytest.raises(InputError, match="64 hex digits"):
        clinic_config.read_secret(path)


# ---- aftercal init ---------------------------------------------------------------------------------------


def test_init_on_a_fresh_machine_then_again(tmp_path: Path) -> None:
    first = invoke(["init"])
    assert first.exit_code == 0, first.output
    config_file = tmp_path / "config" / "aftercal.toml"
    secret_file = tmp_path / "config" / "aftercal.secret"
    store = tmp_path / "data" / "clinic.db"
    assert config_file.is_file() and store.is_file()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert f"Wrote the configuration file {config_file}" in first.stdout
    assert f"Created the clinic secret {secret_file}" in first.stdout
    assert "aftercal config show" in first.stdout
    # The file it wrote is a valid configuration naming the store; every key is there, commented.
    loaded = clinic_config.load_config()
    assert loaded.path == config_file and loaded.db == str(store)
    text = config_file.read_text(encoding="utf-8")
    for setting in loaded.settings():
        assert f"[{setting.section}]" in text and f"{setting.key} = " in text
    before = (text, secret_file.read_bytes(), sorted(p.name for p in tmp_path.rglob("*")))

    again = invoke(["init"])
    assert again.exit_code == 0, again.output
    assert f"Kept the configuration file {config_file}" in again.stdout
    assert f"Kept the clinic secret {secret_file}" in again.stdout
    assert "already exists" in again.stdout
    assert (config_file.read_text(encoding="utf-8"), secret_file.read_bytes()) == before[:2]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before[2]


def test_init_with_config_and_db_and_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "site" / "clinic.toml"
    made = invoke(["--config", str(path), "init", "--db", str(tmp_path / "site" / "clinic.db")])
    assert made.exit_code == 0, made.output
    assert clinic_config.load_config(path).db == str(tmp_path / "site" / "clinic.db")
    assert (tmp_path / "site" / "aftercal.secret").is_file() and (tmp_path / "site" / "clinic.db").is_file()
    assert f"aftercal --config {path} config show" in made.stdout
    # A file the clinic wrote itself is kept, and its store is the one made.
    own = write_config(tmp_path / "own", '[clinic]\nname = "Riverside"\n[store]\ndb = "own.db"\n')
    kept = invoke(["--config", str(own), "init"])
    assert kept.exit_code == 0, kept.output
    assert "Kept the configuration file" in kept.stdout
    assert own.read_text(encoding="utf-8").startswith("[clinic]")
    assert (tmp_path / "own" / "own.db").is_file()


def test_init_refuses_a_password_in_the_database_url(tmp_path: Path) -> None:
    result = invoke(["init", "--db", "postgresql://clinic:hunter2@127.0.0.1:9/aftercal"])
    assert result.exit_code == 2
    assert "hunter2" not in result.output and "PGPASSWORD" in result.stderr
    assert not (tmp_path / "config").exists()


# ---- aftercal config show ----------------------------------------------------------------------------------


def test_config_show_says_where_each_setting_comes_from_and_masks_secrets(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[clinic]\nname = "Riverside"\n[plan]\nmorning = "08:00"\n')
    secret = clinic_config.create_secret(tmp_path / "aftercal.secret")
    env = {
        "AFTERCAL_DB": "postgresql://clinic:hunter2@db.example/aftercal",
        "AFTERCAL_CALDAV_PASSWORD": "caldav-hunter2",
        "AFTERCAL_CLINIC_PHONE": "+1 212 555 0100",
    }
    result = invoke(["--config", str(path), "config", "show"], env)
    assert result.exit_code == 0, result.output
    rows = {line.split("  ")[0]: line for line in result.stdout.splitlines()}
    assert f"{path}: [clinic] name" in rows["[clinic] name"] and "Riverside" in rows["[clinic] name"]
    assert "$AFTERCAL_CLINIC_PHONE" in rows["[clinic] phone"]
    assert f"{path}: [plan] morning" in rows["[plan] morning"]
    assert "21:00-08:00" in rows["[plan] quiet"] and "default" in rows["[plan] quiet"]
    assert "postgresql://clinic:***@db.example/aftercal" in rows["[store] db"] and "$AFTERCAL_DB" in rows["[store] db"]
    assert "primary" in rows["[google] calendar_id"]
    assert f"Configuration file: {path} (--config)" in result.stdout
    assert f"Clinic secret file: {tmp_path / 'aftercal.secret'}" in result.stdout and "exists" in result.stdout
    assert "AFTERCAL_CALDAV_PASSWORD: set" in result.stdout
    assert "hunter2" not in result.stdout and secret.hex() not in result.stdout
    bare = invoke(["config", "show"])
    assert bare.exit_code == 0, bare.output
    assert "not found" in bare.stdout and "AFTERCAL_CALDAV_PASSWORD: not set" in bare.stdout
    assert str(tmp_path / "data" / "clinic.db") in bare.stdout
