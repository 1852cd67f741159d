"""`aftercal init` and `aftercal config show`; and how the configuration file reaches every command.

The root callback (aftercal/cli/__init__.py) loads the file (`apply_config`) and sets the
context's `default_map`, which click consults after the command line and the environment and
before an option's declared default: so every command that takes an option the file sets
(`--morning`, `--db`, `--url` of `publish caldav`...) reads it from there, and what is typed wins.
Which option a key fills is the table SETTING_OPTIONS; the command tree is walked to find every
command that takes it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from aftercal.cli.command import sub_app
from aftercal.cli.common import current_config
from aftercal.cli.options import DbOpt
from aftercal.config import ClinicConfig, Setting, default_db_path, init_clinic, load_config, mask_url
from reminders.errors import InputError

app = sub_app()  # init
config_app = sub_app("The clinic's configuration file.")  # config show

# Which command-line option each key of the file gives its default to: the option's parameter
# name, and the command it is limited to (None: every command that takes such an option; "caldav":
# `publish caldav` and `unpublish caldav`, whose --calendar is not `publish google`'s).
SETTING_OPTIONS: dict[tuple[str, str], tuple[str, str | None]] = {
    ("clinic", "name"): ("clinic_name", None),
    ("clinic", "phone"): ("clinic_phone", None),
    ("clinic", "url"): ("clinic_url", None),
    ("plan", "morning"): ("morning", None),
    ("plan", "quiet"): ("quiet", None),
    ("plan", "discreet"): ("discreet", None),
    ("store", "db"): ("db", None),
    ("feeds", "base_url"): ("base_url", None),
    ("caldav", "url"): ("url", "caldav"),
    ("caldav", "user"): ("user", "caldav"),
    ("caldav", "calendar"): ("calendar", "caldav"),
    ("google", "calendar_id"): ("calendar_id", "google"),
    ("google", "credentials"): ("credentials", "google"),
    ("google", "api_endpoint"): ("api_endpoint", "google"),
    ("google", "no_auth"): ("no_auth", "google"),
}
_ARGS = "aftercal.args"  # ctx.meta key: the words given to the root command


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command (not group) under `command`, with its path: (('publish', 'caldav'), <command>)..."""
    children = getattr(command, "commands", None)
    if children:
        for name, child in children.items():
            yield from _commands(child, (*path, name))
    elif path:
        yield path, command


def _options_for(root: Any, section: str, key: str) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(command path, option) of every option that `[section] key` gives its default to."""
    if (section, key) not in SETTING_OPTIONS:  # read by the library itself ([google_web])
        return
    name, only = SETTING_OPTIONS[(section, key)]
    for path, command in _commands(root):
        if only is not None and path[-1] != only:
            continue
        for param in command.params:
            if param.name == name and param.param_type_name == "option":
                yield path, param


def option_defaults(root: Any, config: ClinicConfig) -> dict[str, Any]:
    """The `default_map` for the command tree under `root`: {'plan': {'morning': '08:00'}, 'publish': {...}}."""
    defaults: dict[str, Any] = {}
    for setting in config.settings():
        if setting.value is None:
            continue
        value = str(setting.value) if isinstance(setting.value, Path) else setting.value
        for path, param in _options_for(root, setting.section, setting.key):
            node = defaults
            for part in path:
                node = node.setdefault(part, {})
            node[param.name] = value
    return defaults


def remember_args(ctx: Any, args: list[str]) -> None:
    """Keep the root command's words, for `apply_config` (the root parses before its callback runs)."""
    ctx.meta[_ARGS] = tuple(args)


def _asks_for_help(ctx: Any) -> bool:
    """Whether the command line only asks for help: --help anywhere, or a group without its command."""
    words = ctx.meta.get(_ARGS, ())
    if any(word in ctx.help_option_names for word in words):
        return True
    command = ctx.command
    for word in words:
        children = getattr(command, "commands", None)
        if children and word in children:
            command = children[word]
    return bool(getattr(command, "commands", None))


def apply_config(ctx: Any, explicit: Path | None) -> tuple[ClinicConfig | None, InputError | None]:
    """Load the configuration and make it the defaults of every command's options (ctx.default_map).

    Returns the configuration, or the error that a request for help puts aside (help always
    works, whatever the file holds; the error is raised when the configuration is used).
    `aftercal init` may name a file that does not exist yet: it writes it.
    """
    try:
        config = load_config(explicit, missing_ok=ctx.invoked_subcommand == "init")
    except InputError as exc:
        if _asks_for_help(ctx):
            return None, exc
        raise
    ctx.default_map = option_defaults(ctx.command, config)
    return config, None


# ---- the commands -------------------------------------------------------------------------------------


@app.command()
def init(db: DbOpt = None) -> None:
    """Set a clinic up: a commented configuration file, the clinic secret and the treatment store.

    Each is made only when missing; nothing that exists is ever replaced, so running it again is
    harmless. The configuration file is the one `--config FILE` names (before `init`), else
    $AFTERCAL_CONFIG, else aftercal.toml in aftercal's config folder; its [store] db names the
    store (--db, else the default file). The clinic secret (aftercal.secret next to the
    configuration file, or $AFTERCAL_SECRET_FILE) is readable by you only: copy it to every
    machine that runs aftercal for this clinic, and keep it out of backups shared with others.

    Example:

        aftercal init
        aftercal --config clinic.toml init --db clinic.db
    """
    config = current_config()
    done = init_clinic(config, db)
    if done.config_created:
        typer.echo(f"Wrote the configuration file {done.config_file}")
    else:
        typer.echo(f"Kept the configuration file {done.config_file} (init never replaces it)")
    if done.secret_created:
        typer.echo(
            f"Created the clinic secret {done.secret_file} (readable by you only): copy it to every machine that "
            "runs aftercal for this clinic, and keep it out of backups shared with others"
        )
    else:
        typer.echo(f"Kept the clinic secret {done.secret_file}")
    typer.echo(done.store)
    root = f"aftercal --config {done.config_file}" if config.location_source == "--config" else "aftercal"
    typer.echo(
        f"Next: add the clinic's name, phone, web page and feed address (base_url) in {done.config_file}, "
        f"then check the settings with `{root} config show`."
    )


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print every effective setting, its value and where it comes from (secrets masked).

    A setting comes from, first found: the environment variable its option reads, the
    configuration file, the option's default. Options typed on a command line override all three.

    Example:

        aftercal config show
    """
    config = current_config()
    root = ctx.find_root().command
    found = "" if config.path is not None else "; not found: `aftercal init` writes one"
    typer.echo(f"Configuration file: {config.location} ({config.location_source}{found})")
    secret = "exists" if os.path.lexists(config.secret_path) else "not created yet: `aftercal init` creates it"
    typer.echo(f"Clinic secret file: {config.secret_path} ({config.secret_path_source}; {secret})")
    typer.echo("")
    rows = [("SETTING", "VALUE", "FROM")]
    for setting in config.settings():
        value, source = _effective(root, setting)
        rows.append((setting.name, value, source))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for name, value, source in rows:
        typer.echo(f"{name.ljust(widths[0])}  {value.ljust(widths[1])}  {source}".rstrip())
    typer.echo("")
    password = "set" if os.environ.get("AFTERCAL_CALDAV_PASSWORD") else "not set"
    typer.echo(f"AFTERCAL_CALDAV_PASSWORD: {password} (else the keyring, else netrc)")


def _effective(root: Any, setting: Setting) -> tuple[str, str]:
    """(value shown, where it comes from) of one setting, as the commands that take it see it."""
    options = [param for _path, param in _options_for(root, setting.section, setting.key)]
    for envvar in dict.fromkeys(name for param in options for name in _envvars(param)):
        if os.environ.get(envvar):
            over = f" (over {setting.source})" if setting.source else ""
            return _shown(os.environ[envvar]), f"${envvar}{over}"
    if setting.value is not None:
        assert setting.source is not None
        return _shown(setting.value), setting.source
    if (setting.section, setting.key) == ("store", "db"):
        return str(default_db_path()), "default"
    defaults = {param.default for param in options}
    if len(defaults) == 1 and None not in defaults:
        return _shown(defaults.pop()), "default"
    return "-", "not set" if len(defaults) <= 1 else "not set (each command's default)"


def _envvars(param: Any) -> list[str]:
    names = param.envvar or []
    return [names] if isinstance(names, str) else list(names)


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return mask_url(str(value))
