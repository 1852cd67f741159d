"""Every example that a `--help` shows runs when pasted as shown (issue 8, part 6).

Typer's markdown help used to drop the trailing `\\` of multi-line examples: pasting the `plan`
example ran `aftercal plan` without `--tz` and printed the whole calendar.

The walk covers every command and sub-command of the app (groups too). Each `--help` is rendered
with CliRunner at COLUMNS=80 and COLUMNS=200, and by the real `aftercal` executable in a
subprocess at COLUMNS=80; the lines of its `Example:` section are taken exactly as shown (a line
as the terminal shows it, trailing padding included) and must be the same in all three.

* Commands that work offline (plan, show, protocols, protocol check, treatments ...) are run,
  every example line in one `bash -e` script, in a temporary folder that holds the files the
  examples name (the files under `examples/`, as in a clone of the repository; `clinic.db` with
  T-1001 for the treatments commands that need it), with a minimal environment: PATH to the venv,
  HOME, XDG and aftercal's config and data folders inside the temporary folder, no AFTERCAL_* or
  GOOGLE_* variables from the caller, and TZ=Etc/UTC, which a plan refuses as a patient's zone: an
  example that lost its --tz fails.
* Commands that need a server or a browser (publish/unpublish caldav and google, google login,
  serve) are only parsed: each line, after its VAR=value prefixes (given as environment), goes
  through the CLI's own click parser with every command's callback replaced by a recorder, and
  must reach the command whose help showed it, without a usage error. Nothing is sent anywhere.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.main import get_command
from typer.testing import CliRunner

from aftercal.cli import app
from tests.helpers import new_store

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# Commands only parsed, never run: they need a server, a browser or a listening socket.
PARSED_ONLY = {
    ("publish", "caldav"),
    ("publish", "google"),
    ("unpublish", "caldav"),
    ("unpublish", "google"),
    ("google", "login"),
    ("serve",),
}
# Variables that would point a command elsewhere than the temporary folder or pick credentials.
_CALLER_VARIABLES = ("AFTERCAL_", "GOOGLE_", "XDG_", "PG", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")


def all_paths() -> list[tuple[tuple[str, ...], bool]]:
    """Every command path, groups included, and whether it is a group: ((), True), (('plan',), False)..."""
    found: list[tuple[tuple[str, ...], bool]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        children = getattr(command, "commands", None) or {}
        found.append((path, bool(children)))
        for name, child in children.items():
            walk(child, (*path, name))

    walk(get_command(app), ())
    return found


def shown_examples(help_text: str) -> list[str]:
    """The lines of the `Example:` section as shown (none for a help without one)."""
    lines = help_text.splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip() == "Example:"]
    assert len(marks) <= 1, "more than one Example: section"
    if not marks:
        return []
    block: list[str] = []
    for line in lines[marks[0] + 1 :]:
        if not line.strip():
            if block:
                break
            continue
        if line.lstrip()[:1] in ("╭", "│", "╰"):  # the next panel of the help
            break
        block.append(line)
    return block


def cli_help(path: tuple[str, ...], columns: int) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(columns), "TERMINAL_WIDTH": None})
    assert result.exit_code == 0, result.output
    return result.stdout


def real_help(path: tuple[str, ...], executable: str) -> str:
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("TERMINAL_WIDTH", None)
    proc = subprocess.run([executable, *path, "--help"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def isolated_env(folder: Path) -> dict[str, str]:
    home = folder / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "AFTERCAL_CONFIG_DIR": str(home / "config"),
        "AFTERCAL_DATA_DIR": str(home / "data"),
        "TZ": "Etc/UTC",
        "LANG": "C.UTF-8",
        "COLUMNS": "80",
        "NO_PROXY": "*",
    }


def prepare_folder(folder: Path, path: tuple[str, ...]) -> None:
    """The files the examples name, in the folder they run in."""
    (folder / "examples").mkdir()
    for name in ("appointments.csv", "clinic-microneedling.toml"):  # as in a clone of the repository
        shutil.copy(ROOT / "examples" / name, folder / "examples" / name)
    if path[:1] in (("treatments",), ("sync",)):
        new_store(folder / "clinic.db")  # as `aftercal init --db clinic.db` makes it
    if path[:1] == ("treatments",) and path != ("treatments", "add"):
        added = CliRunner().invoke(
            app,
            ["treatments", "add", "microneedling", "--at", "2026-11-24T10:00", "--tz", "Europe/Madrid",
             "--id", "T-1001", "--db", str(folder / "clinic.db"), "--no-qr"],
        )  # fmt: skip
        assert added.exit_code == 0, added.output


def run_examples(lines: list[str], folder: Path) -> str | None:
    """Run the lines as pasted into a shell; a problem, or None."""
    script = "\n".join(lines) + "\n"
    proc = subprocess.run(
        ["bash", "-e", "-c", script], cwd=folder, env=isolated_env(folder), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    if proc.returncode != 0 or "aftercal: error" in proc.stderr:
        return f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}"
    return None


def parse_examples(lines: list[str], path: tuple[str, ...]) -> str | None:
    """Parse each line with the CLI's own parser, callbacks replaced; a problem, or None."""
    for line in lines:
        words = shlex.split(line)
        env: dict[str, str | None] = {
            name: None for name in os.environ if name.startswith(_CALLER_VARIABLES) or name == "TERMINAL_WIDTH"
        }
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        if words[:1] != ["aftercal"]:
            return f"not an aftercal command: {line.strip()!r}"
        reached: list[tuple[str, ...]] = []
        root = get_command(app)  # a fresh click tree: its callbacks can be replaced
        _record_instead_of_running(root, (), reached)
        with CliRunner().isolation(env=env) as (_out, _err, output):
            try:
                outcome = root.main(words[1:], prog_name="aftercal", standalone_mode=False)
            except Exception as exc:  # a usage error the root group raises itself
                outcome = f"{type(exc).__name__}: {exc}"
            shown = output.getvalue().decode(errors="replace").strip()
        if outcome is not None or reached != [path]:
            return f"{line.strip()!r}: {outcome!r}, reached {reached}: {shown[-400:]}"
    return None


def _record_instead_of_running(command: Any, where: tuple[str, ...], reached: list[tuple[str, ...]]) -> None:
    children = getattr(command, "commands", None)
    if children:
        for name, child in children.items():
            _record_instead_of_running(child, (*where, name), reached)
    else:
        command.callback = lambda **_params: reached.append(where)


def test_every_help_example_runs_as_shown(tmp_path: Path) -> None:
    executable = shutil.which("aftercal", path=str(VENV_BIN))
    assert executable is not None, f"aftercal is not installed in {VENV_BIN}"
    problems: list[str] = []
    leaves = 0
    for path, is_group in all_paths():
        name = " ".join(("aftercal", *path))
        narrow = shown_examples(cli_help(path, 80))
        wide = shown_examples(cli_help(path, 200))
        real = shown_examples(real_help(path, executable))
        if not is_group:
            leaves += 1
            if not narrow:
                problems.append(f"{name}: no example")
        if not narrow:
            continue
        if [line.strip() for line in narrow] != [line.strip() for line in wide] or narrow != real:
            problems.append(f"{name}: the example is not the same at 80 and 200 columns: {narrow} / {wide} / {real}")
            continue
        for line in narrow:
            if line.rstrip().endswith("\\"):
                problems.append(f"{name}: {line.strip()!r} continues on the next line (its `\\` would be lost)")
            if not re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*=\S*\s+)*aftercal ", line):
                problems.append(f"{name}: {line.strip()!r} is not a complete aftercal command")
        if problems and problems[-1].startswith(name):
            continue
        folder = tmp_path / "-".join(path)
        folder.mkdir()
        prepare_folder(folder, path)
        problem = parse_examples(narrow, path) if path in PARSED_ONLY else run_examples(narrow, folder)
        if problem:
            problems.append(f"{name}: {problem}")
    assert leaves >= 15
    assert not problems, "\n".join(problems)
