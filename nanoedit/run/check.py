"""``nanoedit config check``: is each configured backend reachable, and does it take the key?

One cheap authenticated request per backend, which costs nothing and makes no image; each
backend says which (its ``probe``) and what the answer means (its ``judge``). The key never
appears in a result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from nanoedit.backends.base import (
    FAILED,
    KEY_REJECTED,
    NO_KEY,
    NOT_CONFIGURED,
    READY,
    UNREACHABLE,
    Probe,
    backend_class,
)
from nanoedit.backends.registry import backend_names
from nanoedit.errors import ConfigError, ExitCode
from nanoedit.net.http import proxy_for
from nanoedit.settings.values import BackendSettings, Settings
from nanoedit.urls import redact_userinfo

__all__ = ["FAILED", "KEY_REJECTED", "NOT_CONFIGURED", "NO_KEY", "READY", "UNREACHABLE"]

EXIT_CODES: dict[str, ExitCode] = {
    READY: ExitCode.OK,
    NOT_CONFIGURED: ExitCode.OK,
    KEY_REJECTED: ExitCode.CONFIG,
    NO_KEY: ExitCode.CONFIG,
    FAILED: ExitCode.API,
    UNREACHABLE: ExitCode.NETWORK,
}
# When backends fail in different ways, the exit code tells the one to fix first.
EXIT_PRIORITY = (ExitCode.CONFIG, ExitCode.API, ExitCode.NETWORK)
# A check is one small request: no reason to wait as long as for a 4K render.
CHECK_TIMEOUT = 15.0


@dataclass(frozen=True)
class CheckResult:
    """How one backend fared: ``status`` is one of the module's status names."""

    backend: str
    status: str
    detail: str

    @property
    def passed(self) -> bool:
        """True unless this backend fails the check (a backend not set up does not)."""
        return self.exit_code is ExitCode.OK

    @property
    def exit_code(self) -> ExitCode:
        """The exit code this result alone would give."""
        return EXIT_CODES[self.status]

    def as_json(self) -> dict[str, Any]:
        """The result as a ``--json`` object."""
        return {
            "backend": self.backend,
            "status": self.status,
            "detail": self.detail,
            "passed": self.passed,
        }


def not_configured(settings: BackendSettings) -> CheckResult:
    """The result of a backend not set up: what it lacks, and the command that sets it up."""
    name = settings.name
    if settings.api_key or settings.api_key_cmd:
        fix = f"nanoedit config set {name}.base_url https://YOUR-SERVER"
        missing = "no base URL"
    else:
        fix = backend_class(name).setup_hint()
        missing = "no API key" if settings.base_url else "no base URL and no API key"
    return CheckResult(name, NOT_CONFIGURED, f"{missing}; run: {fix}")


def unreachable_detail(exc: httpx.TransportError, probe: Probe, proxy: str | None = None) -> str:
    """Why the request ``probe`` describes did not reach its server, and what to check."""
    where, said = probe.where, probe.quote(exc, 200)
    through = proxy_for(probe.url, proxy)
    if through and isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return (
            f"cannot connect through the proxy {redact_userinfo(through)} to {where} ({said}); "
            "check the proxy"
        )
    if isinstance(exc, httpx.TimeoutException):
        return f"{where} did not answer in time ({type(exc).__name__}); check the network or proxy"
    if isinstance(exc, httpx.ProxyError):
        return f"the proxy refused the connection to {where} ({said}); check network.proxy"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {where} ({said}); check the address and the network"
    return f"the connection to {where} failed ({type(exc).__name__}: {said})"


def check_backend(
    settings: BackendSettings,
    client: httpx.Client,
    *,
    timeout: float = CHECK_TIMEOUT,
    proxy: str | None = None,
) -> CheckResult:
    """Check one backend with one request (none when it is not configured)."""
    if not settings.configured or settings.base_url is None:
        return not_configured(settings)
    try:
        key = settings.key()
    except ConfigError as exc:
        return CheckResult(settings.name, NO_KEY, exc.message)
    backend = backend_class(settings.name)
    probe = backend.probe(settings.base_url, key)
    try:
        response = client.get(probe.url, headers=dict(probe.headers), timeout=timeout)
    except httpx.TransportError as exc:
        return CheckResult(settings.name, UNREACHABLE, unreachable_detail(exc, probe, proxy))
    except httpx.HTTPError as exc:
        return CheckResult(
            settings.name, FAILED, f"the request to {probe.where} failed ({type(exc).__name__})"
        )
    verdict = backend.judge(response, probe, settings)
    return CheckResult(settings.name, verdict.status, verdict.detail)


def check_backends(
    settings: Settings, client: httpx.Client, *, timeout: float = CHECK_TIMEOUT
) -> list[CheckResult]:
    """Check every backend, in registry order."""
    return [
        check_backend(
            settings.backend_settings(name), client, timeout=timeout, proxy=settings.proxy
        )
        for name in backend_names()
    ]


def check_exit_code(results: Sequence[CheckResult]) -> ExitCode:
    """0 when every configured backend is ready; 3 when none is configured or a key is bad;
    5 when a server answered wrongly; 6 when one could not be reached."""
    if all(result.status == NOT_CONFIGURED for result in results):
        return ExitCode.CONFIG
    codes = {result.exit_code for result in results}
    return next((code for code in EXIT_PRIORITY if code in codes), ExitCode.OK)
