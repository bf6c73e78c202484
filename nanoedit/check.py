"""``nanoedit config check``: is each configured backend reachable, and does it take the key?

One cheap authenticated request per backend, which costs nothing and makes no image:
the multipart gateway's model list, and a poll of a task that does not exist on duomi (a good
key gets "task not found", a bad one HTTP 401). The key never appears in a result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from nanoedit.backends import SETUP_HINTS
from nanoedit.backends.base import clip, host_of
from nanoedit.backends.openai import AUTH_CODES, api_root
from nanoedit.config import BackendSettings, Settings, redact_userinfo
from nanoedit.errors import ConfigError, ExitCode
from nanoedit.http import proxy_for
from nanoedit.imageformat import describe

READY = "ready"
KEY_REJECTED = "key rejected"
UNREACHABLE = "unreachable"
NOT_CONFIGURED = "not configured"
NO_KEY = "no key"
"""The key command failed, so nothing was sent."""
FAILED = "error"
"""The server answered, but not as the API should (a wrong base URL, a 429, a JSON 5xx)."""

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
DUOMI_CHECK_TASK = "nanoedit-config-check"


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


@dataclass(frozen=True)
class _Probe:
    """The request that checks one backend, and where it goes (for messages)."""

    url: str
    key: str = field(repr=False)
    where: str
    bearer: bool

    @property
    def headers(self) -> dict[str, str]:
        """The request's headers: the key, with or without ``Bearer``."""
        return {"Authorization": f"Bearer {self.key}" if self.bearer else self.key}

    def quote(self, text: object, limit: int = 300) -> str:
        """Server text for a message: one line, clipped, and never the key (servers quote
        what they were sent more often than they should)."""
        said = str(text)
        return clip(said.replace(self.key, "****") if self.key else said, limit)


def _openai_probe(base_url: str, key: str) -> _Probe:
    root = api_root(base_url)
    return _Probe(f"{root}/v1/models", key, host_of(root), bearer=True)


def _duomi_probe(base_url: str, key: str) -> _Probe:
    root = base_url.rstrip("/")
    url = f"{root}/api/gemini/nano-banana/{DUOMI_CHECK_TASK}"
    # The raw key: this API rejects the "Bearer" prefix.
    return _Probe(url, key, host_of(root), bearer=False)


def _non_json(response: httpx.Response, probe: _Probe, settings: BackendSettings) -> CheckResult:
    status = response.status_code
    name = settings.name
    what = describe(response.content)
    if status in (401, 403):
        return CheckResult(
            name,
            KEY_REJECTED,
            f"{probe.where} rejected the key (HTTP {status}); {settings.key_advice()}",
        )
    if status >= 500:
        return CheckResult(
            name,
            UNREACHABLE,
            f"{probe.where} answered HTTP {status} with no API answer ({what}); "
            "the server or a proxy in front of it is down, try again later",
        )
    if 300 <= status < 400 and "location" in response.headers:
        target = probe.quote(response.headers["location"], 120)
        return CheckResult(
            name,
            FAILED,
            f"{probe.where} redirects to {target}; set {name}.base_url to the address it points to",
        )
    return CheckResult(
        name,
        FAILED,
        f"{probe.where} answered HTTP {status} with no API answer ({what}); check {name}.base_url",
    )


def _parse(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _judge_openai(
    response: httpx.Response, probe: _Probe, settings: BackendSettings
) -> CheckResult:
    body = _parse(response)
    if not isinstance(body, dict):
        return _non_json(response, probe, settings)
    status = response.status_code
    error = body.get("error")
    if error:
        message = probe.quote(
            (error.get("message") or "no message") if isinstance(error, dict) else error
        )
        code = (
            probe.quote(error.get("code") or error.get("type") or "", 60)
            if isinstance(error, dict)
            else ""
        )
        shown = f"{message} [{code}]" if code else message
        if status in (401, 403) or code in AUTH_CODES:
            return CheckResult(
                "openai",
                KEY_REJECTED,
                f"{probe.where} rejected the key (HTTP {status}: {shown}); {settings.key_advice()}",
            )
        return CheckResult("openai", FAILED, f"{probe.where} answered HTTP {status}: {shown}")
    if status in (401, 403):
        return CheckResult(
            "openai",
            KEY_REJECTED,
            f"{probe.where} rejected the key (HTTP {status}); {settings.key_advice()}",
        )
    models = body.get("data")
    if 200 <= status < 300 and isinstance(models, list):
        return CheckResult("openai", READY, f"{probe.where}, {len(models)} models")
    return CheckResult(
        "openai",
        FAILED,
        f"{probe.where} answered HTTP {status} with JSON that is not a model list; "
        "check openai.base_url",
    )


def _judge_duomi(response: httpx.Response, probe: _Probe, settings: BackendSettings) -> CheckResult:
    body = _parse(response)
    if not isinstance(body, dict):
        return _non_json(response, probe, settings)
    status = response.status_code
    code = "" if body.get("code") is None else probe.quote(body["code"], 20)
    message = probe.quote(body.get("msg") or body.get("message") or "no message")
    # duomi puts its own code next to the HTTP status, and the two need not agree.
    answer = f"HTTP {status}, code {code}" if code else f"HTTP {status}"
    if status in (401, 403) or code in ("401", "403"):
        return CheckResult(
            "duomi",
            KEY_REJECTED,
            f"{probe.where} rejected the key ({answer}: {message}); {settings.key_advice()}",
        )
    # Past the key check the made-up task is not found (the sandbox says code 404). How the
    # real server words that is not documented, so any complaint about the request (a 4xx
    # code other than 429) counts as the key having passed.
    if 200 <= status < 300 and (code == "200" or (code[:1] == "4" and code != "429")):
        return CheckResult("duomi", READY, f"{probe.where}, key accepted")
    if status == 404:
        return CheckResult(
            "duomi",
            FAILED,
            f"{probe.where} has no duomi API there ({answer}: {message}); check duomi.base_url",
        )
    return CheckResult(
        "duomi",
        FAILED,
        f"{probe.where} answered {answer}: {message}",
    )


Probe = Callable[[str, str], _Probe]
Judge = Callable[[httpx.Response, _Probe, BackendSettings], CheckResult]
CHECKERS: dict[str, tuple[Probe, Judge]] = {
    "openai": (_openai_probe, _judge_openai),
    "duomi": (_duomi_probe, _judge_duomi),
}


def _not_configured(settings: BackendSettings) -> CheckResult:
    name = settings.name
    if settings.api_key or settings.api_key_cmd:
        fix = f"nanoedit config set {name}.base_url https://YOUR-SERVER"
        missing = "no base URL"
    else:
        fix = SETUP_HINTS[name]
        missing = "no API key" if settings.base_url else "no base URL and no API key"
    return CheckResult(name, NOT_CONFIGURED, f"{missing}; run: {fix}")


def _unreachable(exc: httpx.TransportError, probe: _Probe, proxy: str | None = None) -> str:
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
        return _not_configured(settings)
    try:
        key = settings.key()
    except ConfigError as exc:
        return CheckResult(settings.name, NO_KEY, exc.message)
    make_probe, judge = CHECKERS[settings.name]
    probe = make_probe(settings.base_url, key)
    try:
        response = client.get(probe.url, headers=probe.headers, timeout=timeout)
    except httpx.TransportError as exc:
        return CheckResult(settings.name, UNREACHABLE, _unreachable(exc, probe, proxy))
    except httpx.HTTPError as exc:
        return CheckResult(
            settings.name, FAILED, f"the request to {probe.where} failed ({type(exc).__name__})"
        )
    return judge(response, probe, settings)


def check_backends(
    settings: Settings, client: httpx.Client, *, timeout: float = CHECK_TIMEOUT
) -> list[CheckResult]:
    """Check every backend, in registry order."""
    return [
        check_backend(
            settings.backend_settings(name), client, timeout=timeout, proxy=settings.proxy
        )
        for name in CHECKERS
    ]


def check_exit_code(results: Sequence[CheckResult]) -> ExitCode:
    """0 when every configured backend is ready; 3 when none is configured or a key is bad;
    5 when a server answered wrongly; 6 when one could not be reached."""
    if all(result.status == NOT_CONFIGURED for result in results):
        return ExitCode.CONFIG
    codes = {result.exit_code for result in results}
    return next((code for code in EXIT_PRIORITY if code in codes), ExitCode.OK)
