"""The rules a setting's value must follow, one function each: the core's keys, the backends'
and the uploader's share them, and a flag is checked by the rule of the key it overrides.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from urllib.parse import urlsplit

from nanoedit.errors import UsageError
from nanoedit.jobs import normalize_size
from nanoedit.urls import redact_userinfo

# The most retries --retries and network.retries allow: past that a failing server is down.
MAX_RETRIES = 20
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
# The spellings of a boolean setting, any case. Anything else is an error: a typo read as
# "off" (NANOEDIT_SANDBOX=ture) would send paid requests.
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def check_url(value: str) -> str:
    """A server's base URL, http(s) with a host, without its trailing slash."""
    cleaned = value.strip().rstrip("/")
    try:
        parts = urlsplit(cleaned)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise UsageError(
            f"invalid base URL {redact_userinfo(value.strip())!r}; give it as https://host or "
            "https://host/v1"
        )
    return cleaned


def check_choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    """The rule of a key whose value is one of ``choices``."""

    def check(value: str) -> str:
        if value in choices:
            return value
        raise UsageError(f"invalid value {value!r}; use one of: {', '.join(choices)}")

    return check


def check_bool(value: str) -> str:
    """A boolean setting as ``true`` or ``false``, from any of its spellings; a
    :class:`UsageError` listing them for anything else."""
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return "true"
    if word in FALSE_WORDS:
        return "false"
    spellings = ", ".join(TRUE_WORDS + FALSE_WORDS)
    raise UsageError(f"{value.strip()!r} is not true or false; use one of: {spellings}")


def _seconds(value: str) -> float:
    # "nan" and "inf" parse as floats but mean nothing as a wait or a deadline.
    try:
        number = float(value)
    except ValueError:
        return math.nan
    return number if math.isfinite(number) else math.nan


def number_text(number: float) -> str:
    """A number as nanoedit prints it: ``900`` for 900.0, ``0.5`` for 0.5."""
    text = repr(float(number))
    return text.removesuffix(".0")


def check_positive_seconds(example: str) -> Callable[[str], str]:
    """The rule of a key whose value is a number of seconds above 0 (``example`` in its
    message)."""

    def check(value: str) -> str:
        seconds = _seconds(value)
        if not seconds > 0:
            raise UsageError(
                f"invalid value {value!r}; give a number of seconds above 0, such as {example}"
            )
        return number_text(seconds)

    return check


check_timeout = check_positive_seconds("900")


def check_seconds_or_zero(value: str) -> str:
    """A number of seconds, 0 or more."""
    seconds = _seconds(value)
    if not seconds >= 0:
        raise UsageError(f"invalid value {value!r}; give a number of seconds, 0 or more, such as 1")
    return number_text(seconds)


def check_retries(value: str) -> str:
    """A whole number of retries from 0 to :data:`MAX_RETRIES`."""
    cleaned = value.strip()
    if not (cleaned.isascii() and cleaned.isdigit() and int(cleaned) <= MAX_RETRIES):
        raise UsageError(
            f"invalid value {value!r}; give a whole number from 0 to {MAX_RETRIES}, such as 3"
        )
    return str(int(cleaned))


def as_is(value: str) -> str:
    """A value as it may be printed when nothing in it is to be hidden."""
    return value


def check_proxy(value: str) -> str:
    """A proxy's URL: http, https or socks5, with a host and a valid port."""
    cleaned = value.strip().rstrip("/")
    try:
        parts = urlsplit(cleaned)
        valid = parts.scheme.lower() in PROXY_SCHEMES and bool(parts.hostname)
        # Reading the port checks it is a number in range.
        valid = valid and (parts.port is None or parts.port > 0)
    except ValueError:
        valid = False
    if not valid:
        raise UsageError(
            f"invalid proxy URL {redact_userinfo(value.strip())!r}; give it as "
            "http://host:port, https://host:port or socks5://host:port"
        )
    return cleaned


def check_size(value: str) -> str:
    """An image size (``1K``, ``2K``, ``4K``) in its usual spelling."""
    return normalize_size(value) or ""


def check_viewer(value: str) -> str:
    """The viewer ``--open`` starts, checked as the preview module runs it."""
    from nanoedit.output.preview import check_open_command

    return check_open_command(value)


def check_text(value: str) -> str:
    """Any text that is not blank, stripped: the rule of a key that names no other."""
    if not value.strip():
        raise UsageError("the value is empty; to remove a setting use nanoedit config unset KEY")
    return value.strip()
