"""``nanoedit --usage --json``: every command, option, argument and exit code, read from the
parser itself (the click command tree typer builds), so that it cannot drift from the CLI."""

from __future__ import annotations

import enum
from typing import Any

from nanoedit.errors import EXIT_MEANINGS, ExitCode

USAGE_SCHEMA = "nanoedit/usage/1"

# The options that override a config key (and so its environment variable): the key is the
# one rule for the value, the flag wins over it for one run. "BACKEND" stands for the backend
# the job goes to. Checked by tests against settings.keys.
CONFIG_KEYS: dict[str, str] = {
    "--backend": "default.backend",
    "--out-dir": "default.out_dir",
    "--ratio": "default.ratio",
    "--size": "default.size",
    "--model": "BACKEND.model",
    "--no-store": "gemini.store",
    "--no-history": "history.enabled",
    "--retries": "network.retries",
    "--timeout": "network.timeout",
    "--proxy": "network.proxy",
}


def usage(root: Any, *, program: str, version: str) -> dict[str, Any]:
    """The JSON document of the click command ``root`` (the whole app) and the exit codes."""
    return {
        "schema": USAGE_SCHEMA,
        "program": program,
        "version": version,
        "command": _command(root, [program]),
        "exit_codes": [
            {"code": int(code), "name": code.name.lower(), "meaning": EXIT_MEANINGS[code]}
            for code in ExitCode
        ],
    }


def usage_text(document: dict[str, Any]) -> str:
    """The same, one line per command and option, for a person or a terminal agent."""
    lines: list[str] = []

    def walk(command: dict[str, Any]) -> None:
        if not command["commands"]:
            lines.append(f"{' '.join(command['path'])}  {command['summary']}")
            for param in command["params"]:
                flags = ", ".join(param["flags"]) or param["name"].upper()
                choices = f" {{{','.join(param['choices'])}}}" if param["choices"] else ""
                lines.append(f"    {flags}{choices}  {param['help']}")
        for sub in command["commands"]:
            walk(sub)

    walk(document["command"])
    codes = "; ".join(f"{c['code']} {c['name']}" for c in document["exit_codes"])
    lines.append(f"exit codes: {codes}")
    return "\n".join(lines) + "\n"


def _command(command: Any, path: list[str]) -> dict[str, Any]:
    """One command (or group) and, for a group, its visible subcommands in order."""
    subcommands = getattr(command, "commands", {})
    help_text = (command.help or "").strip()
    return {
        "name": path[-1],
        "path": path,
        "summary": help_text.split("\n\n", 1)[0].replace("\n", " "),
        "help": help_text,
        "params": [_param(param) for param in command.params if _shown(param)],
        "commands": [
            _command(sub, [*path, name])
            for name, sub in subcommands.items()
            if not getattr(sub, "hidden", False)
        ],
    }


def _shown(param: Any) -> bool:
    """Whether a parameter is part of the interface (hidden ones and --help are not)."""
    return not getattr(param, "hidden", False) and param.name != "help"


def _param(param: Any) -> dict[str, Any]:
    """One option or argument: what a program needs to build a valid command line."""
    is_option = param.param_type_name == "option"
    flags = [*param.opts, *param.secondary_opts] if is_option else []
    choices = getattr(param.type, "choices", None)
    config_key = next((CONFIG_KEYS[flag] for flag in flags if flag in CONFIG_KEYS), None)
    return {
        "name": param.name,
        "kind": param.param_type_name,
        "flags": flags,
        "type": "flag" if getattr(param, "is_flag", False) else param.type.name,
        "metavar": param.metavar,
        "required": bool(param.required),
        "default": _plain(param.default) if not callable(param.default) else None,
        "choices": [str(_plain(choice)) for choice in choices] if choices else None,
        "multiple": bool(getattr(param, "multiple", False)) or param.nargs == -1,
        "min": _plain(getattr(param.type, "min", None)),
        "max": _plain(getattr(param.type, "max", None)),
        "envvar": param.envvar if isinstance(param.envvar, str) else None,
        "config_key": config_key,
        "config_envvar": _key_env(config_key),
        "help": " ".join((getattr(param, "help", None) or "").split()),
    }


def _key_env(key: str | None) -> str | None:
    """The environment variable of config ``key`` (that the option overrides), if it has one."""
    if key is None or key.startswith("BACKEND."):
        return None
    from nanoedit.settings.keys import spec_for

    return spec_for(key).env


def _plain(value: Any) -> Any:
    """A default as JSON holds it: enums by value, tuples as lists, unset as null."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    # click's "no default" sentinel and anything else that is not a value of the option.
    return None
