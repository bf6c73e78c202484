"""``nanoedit config``: show, set, unset and check the settings in the config file."""

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from nanoedit.cli.errors import errors, warn
from nanoedit.cli.options import SandboxOpt, environment
from nanoedit.errors import ExitCode

config_app = typer.Typer(
    help="Show and change settings: backends, keys, defaults.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

KeyArg = Annotated[
    str,
    typer.Argument(
        help="A key such as openai.api_key; see: nanoedit config list.", show_default=False
    ),
]


def _config_document(path: Path) -> dict[str, Any]:
    """The config file's TOML document, after a warning naming any key nanoedit ignores."""
    from nanoedit.settings.store import read_document

    document = read_document(path)
    _warn_unknown_keys(path, document)
    return document


def _warn_unknown_keys(path: Path, document: dict[str, Any]) -> None:
    from nanoedit.settings.store import unknown_keys_warning

    warning = unknown_keys_warning(path, document)
    if warning:
        warn(warning)


# A value may start with a dash (a negative number, some keys): it is the value, for the
# value check to judge, not an unknown option. -h and --help still show the help.
@config_app.command("set", context_settings={"ignore_unknown_options": True})
def config_set(
    key: KeyArg,
    value: Annotated[
        str,
        typer.Argument(
            help="The value; - reads it from stdin, or asks for it on a terminal without showing "
            "a key (keeps keys out of shell history).",
            show_default=False,
        ),
    ],
) -> None:
    """Save a setting in the config file."""
    from nanoedit.settings.conflicts import check_combination
    from nanoedit.settings.keys import spec_for
    from nanoedit.settings.secrets import display_value
    from nanoedit.settings.store import (
        config_path,
        flat_values,
        keep_broken_copy,
        read_for_update,
        set_value,
        value_text,
        write_document,
    )

    with errors():
        spec = spec_for(key)
        if value == "-":
            value = _read_value(key, hidden=spec.secret)
        stored = spec.stored(value)
        path = config_path(os.environ)
        # A file that is not TOML does not block a new setting: it is kept aside, and the
        # new file holds the one setting.
        document, broken = read_for_update(path)
        _warn_unknown_keys(path, document)
        before = flat_values(document)
        set_value(document, key, stored)
        warning = check_combination(key, before, flat_values(document), os.environ)
        if broken is not None:
            copy = keep_broken_copy(path, broken.data)
        write_document(path, document)
        if broken is not None:
            warn(
                f"the config file {path} was not valid TOML ({broken.reason}); kept it as "
                f"{copy} and wrote a new one with only {key}"
            )
        if warning:
            warn(warning)
        shown = "(hidden)" if spec.secret else display_value(key, value_text(stored))
        typer.echo(f"set {key} = {shown} in {path}", err=True)


def _read_value(key: str, *, hidden: bool) -> str:
    """The value of ``config set KEY -``: one line of stdin, or, on a terminal, typed at a
    prompt (not shown as it is typed when ``hidden``, like a password)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    try:
        if hidden:
            import getpass

            return getpass.getpass(f"{key} (typing is not shown): ", stream=sys.stderr)
        typer.echo(f"{key}: ", err=True, nl=False)
        return sys.stdin.readline()
    except EOFError:
        return ""
    except KeyboardInterrupt:
        typer.echo("\ninterrupted: nothing was saved", err=True)
        raise typer.Exit(ExitCode.INTERRUPTED) from None


@config_app.command("get")
def config_get(key: KeyArg) -> None:
    """Print a setting's value as it applies now (keys masked). Exit 3 when unset."""
    from nanoedit.settings.keys import spec_for
    from nanoedit.settings.load import resolve_key
    from nanoedit.settings.secrets import display_value
    from nanoedit.settings.store import config_path, flat_values

    with errors():
        spec_for(key)
        values = flat_values(_config_document(config_path(os.environ)))
        resolved = resolve_key(key, values, os.environ)
        if resolved.value is None:
            typer.echo(f"{key} is not set; set it with: nanoedit config set {key} VALUE", err=True)
            raise typer.Exit(ExitCode.CONFIG)
        typer.echo(display_value(key, resolved.value))


@config_app.command("unset")
def config_unset(key: KeyArg) -> None:
    """Remove a setting from the config file."""
    from nanoedit.settings.keys import spec_for
    from nanoedit.settings.store import config_path, remove_value, write_document

    with errors():
        spec_for(key)
        path = config_path(os.environ)
        document = _config_document(path)
        if not remove_value(document, key):
            typer.echo(f"{key} was not set in {path}", err=True)
            return
        write_document(path, document)
        typer.echo(f"unset {key} in {path}", err=True)


@config_app.command("list")
def config_list() -> None:
    """Every setting with its value (keys masked) and where it comes from."""
    from nanoedit.settings.keys import all_keys, is_known_key
    from nanoedit.settings.load import resolve_key
    from nanoedit.settings.secrets import display_value
    from nanoedit.settings.store import config_path, flat_values

    with errors():
        values = flat_values(_config_document(config_path(os.environ)))
        for key in all_keys():
            resolved = resolve_key(key, values, os.environ)
            if resolved.value is None:
                typer.echo(f"{key} = (not set)")
                continue
            shown = display_value(key, resolved.value)
            source = resolved.env_name if resolved.source == "env" else resolved.source
            typer.echo(f"{key} = {shown}  ({source})")
        # Prices are a family of keys, one per model priced: those set are listed.
        for key in sorted(key for key in values if key.startswith("pricing.")):
            if key not in all_keys() and is_known_key(key):
                typer.echo(f"{key} = {values[key]}  (file)")


@config_app.command("check")
def config_check(
    ctx: typer.Context,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
    sandbox: SandboxOpt = False,
) -> None:
    """Check each configured backend with one cheap request: ready, key rejected, unreachable.

    Exit 0 when every configured backend is ready, 3 for a rejected key (or none configured),
    5 for a wrong answer, 6 when a server cannot be reached.
    """
    from nanoedit import session

    with errors(json_out):
        checked = session.check(environment(ctx), sandbox=sandbox)
        results, code = checked.results, checked.exit_code
        if json_out:
            import json

            payload = {
                "schema": "nanoedit/config-check/1",
                "ok": code == ExitCode.OK,
                "exit_code": int(code),
                "backends": [result.as_json() for result in results],
            }
            typer.echo(json.dumps(payload, ensure_ascii=False))
        else:
            width = max(len(result.backend) for result in results)
            for result in results:
                typer.echo(f"{result.backend:<{width}}  {result.status}  ({result.detail})")
    raise typer.Exit(code)


@config_app.command("path")
def config_path_cmd() -> None:
    """Print the config file's path."""
    from nanoedit.settings.store import config_path

    typer.echo(str(config_path(os.environ)))
