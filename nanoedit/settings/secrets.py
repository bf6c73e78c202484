"""API keys kept secret: a key command run at most once per backend and run (it may ask for
a passphrase), and a key or a URL's password masked wherever a value is printed.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable

from nanoedit import commands
from nanoedit.errors import ConfigError
from nanoedit.settings.keys import spec_for

KEY_COMMAND_TIMEOUT = 30.0


def mask_secret(value: str) -> str:
    """Show a key by its last four characters only, and not even those when it is short."""
    if len(value) < 12:
        return "****"
    return f"****{value[-4:]}"


def display_value(key: str, value: str) -> str:
    """A setting's value as it may be printed: keys masked, a URL's password hidden."""
    spec = spec_for(key)
    return mask_secret(value) if spec.secret else spec.shown(value)


def run_key_command(command: str, key_name: str, timeout: float = KEY_COMMAND_TIMEOUT) -> str:
    """Run a key command through the shell and return its first line of output, stripped.

    Failures are :class:`ConfigError` messages naming ``key_name``; none of them quotes the
    command's stdout, which may hold the key.
    """
    instead = f"or set {key_name.removesuffix('_cmd')} instead"
    try:
        with commands.running(command) as process:
            try:
                out, err = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                commands.stop_and_drain(process)
                raise ConfigError(
                    f"{key_name} did not finish within {timeout:g} s and was stopped; make sure "
                    f"it does not wait for input (it gets none), {instead}"
                ) from None
            except BaseException:
                # Ctrl-C while waiting here: the command must not live on, re-parented to init.
                commands.stop(process)
                raise
    except OSError as exc:
        raise ConfigError(
            f"{key_name} could not be started ({exc.strerror or exc}); check it, {instead}"
        ) from None
    try:
        output: str | None = out.decode("utf-8").strip()
    except UnicodeDecodeError:
        output = None
    key = output.splitlines()[0].strip() if output else ""
    why = commands.last_line(err.decode("utf-8", errors="replace"))
    # A command that echoes its output on stderr too must not leak it through the message.
    for line in sorted((output or "").splitlines(), key=len, reverse=True):
        if line.strip():
            why = why.replace(line.strip(), "****")
    status = process.returncode
    if status == 127:
        said = f": {why}" if why else ""
        raise ConfigError(
            f"{key_name} failed: command not found (exit status 127{said}); check the "
            f"command and your PATH, {instead}"
        )
    if status != 0:
        how = f"failed with exit status {status}"
        if status < 0:
            how = f"was killed by signal {-status}"
        said = f" ({why})" if why else ""
        raise ConfigError(f"{key_name} {how}{said}; run it in a shell to see why, {instead}")
    if output is None:
        raise ConfigError(
            f"{key_name} printed something that is not UTF-8 text; make it print the key, {instead}"
        )
    if not key:
        raise ConfigError(
            f"{key_name} printed nothing (exit status 0); make it print the key on its first "
            f"line, {instead}"
        )
    return key


class KeyCache:
    """What a key command gave, kept for the run: jobs run in threads, and each command must
    run once (it may ask for a passphrase), so a lock guards it. A failure is kept too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcome: str | ConfigError | None = None

    def get(self, produce: Callable[[], str]) -> str:
        """The cached key, or the cached failure raised again; ``produce`` runs on first use."""
        with self._lock:
            if self._outcome is None:
                try:
                    self._outcome = produce()
                except ConfigError as exc:
                    self._outcome = exc
            if isinstance(self._outcome, ConfigError):
                raise ConfigError(self._outcome.message)
            return self._outcome
