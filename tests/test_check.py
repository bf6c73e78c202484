"""`nanoedit config check`: one authenticated request per configured backend, against the
sandbox on a real loopback port, and what each answer is taken to mean."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from conftest import (
    DUOMI_KEY,
    OPENAI_KEY,
    OPENROUTER_KEY,
    Served,
    backend_env,
    closed_port,
    host,
    not_set_up_detail,
    settings_from,
)

from nanoedit.backends.base import backend_class
from nanoedit.backends.registry import backend_names
from nanoedit.errors import ExitCode
from nanoedit.run.check import (
    FAILED,
    KEY_REJECTED,
    NO_KEY,
    NOT_CONFIGURED,
    READY,
    UNREACHABLE,
    CheckResult,
    check_backend,
    check_backends,
    check_exit_code,
)
from nanoedit.sandbox.catalog import OPENAI_MODELS
from nanoedit.settings.values import BackendSettings

DUOMI_PATH = "/api/gemini/nano-banana/nanoedit-config-check"
OPENROUTER_PATH = "/api/v1/key"
WRONG_KEY = "sk-wrong-key-for-the-check-7777"


def not_set_up(name: str) -> CheckResult:
    """What the check says of a registered backend these tests give no key: each is checked
    too, and reported as not set up (their own checks are in their own test files)."""
    return CheckResult(name, NOT_CONFIGURED, not_set_up_detail(name))


def every_backend(**given: CheckResult) -> list[CheckResult]:
    """The check's answer: the results ``given``, and every other registered backend not set
    up, in registry order."""
    return [given.get(name) or not_set_up(name) for name in backend_names()]


def statuses(**given: str) -> list[tuple[str, str]]:
    """The backends and statuses of :func:`every_backend` with the statuses ``given``."""
    return [
        (result.backend, result.status)
        for result in every_backend(**{name: CheckResult(name, s, "") for name, s in given.items()})
    ]


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.backend: result for result in results}


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A plain client that ignores the machine's proxy variables."""
    with httpx.Client(trust_env=False) as plain:
        yield plain


def sent(served: Served) -> list[tuple[str, str, str]]:
    """Method, path and Authorization header of every request the sandbox received."""
    return [
        (request.method, request.path, request.headers.get("authorization", ""))
        for request in served.sandbox.received
    ]


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"nothing should be sent, but {request.url} was")


def test_both_ready(served: Served, client: httpx.Client) -> None:
    # The multipart base URL given the OpenAI SDK way, with /v1: the request is the same.
    env = backend_env(served, openrouter=True) | {
        "NANOEDIT_OPENAI_BASE_URL": f"{served.base_url}/v1"
    }
    results = check_backends(settings_from(env), client)
    assert results == every_backend(
        openai=CheckResult("openai", READY, f"{host(served)}, {len(OPENAI_MODELS)} models"),
        duomi=CheckResult("duomi", READY, f"{host(served)}, key accepted"),
        openrouter=CheckResult("openrouter", READY, f"{host(served)}, key accepted"),
    )
    assert sent(served) == [
        ("GET", "/v1/models", f"Bearer {OPENAI_KEY}"),
        ("GET", DUOMI_PATH, DUOMI_KEY),  # the raw key, no Bearer
        ("GET", OPENROUTER_PATH, f"Bearer {OPENROUTER_KEY}"),
    ]
    assert all(result.passed for result in results)
    assert check_exit_code(results) == ExitCode.OK


def test_wrong_keys_are_rejected(served: Served, client: httpx.Client) -> None:
    env = backend_env(served, openrouter=True) | {
        "NANOEDIT_OPENAI_API_KEY": WRONG_KEY,
        "NANOEDIT_DUOMI_API_KEY": WRONG_KEY,
        "NANOEDIT_OPENROUTER_API_KEY": WRONG_KEY,
    }
    results = check_backends(settings_from(env), client)
    where = host(served)
    assert [(result.backend, result.status) for result in results] == statuses(
        openai=KEY_REJECTED, duomi=KEY_REJECTED, openrouter=KEY_REJECTED
    )
    assert results[0].detail.startswith(
        f"{where} rejected the key (HTTP 401: invalid token (request id: "
    )
    # The keys come from the environment, which overrides the file: config set cannot help.
    assert results[0].detail.endswith(
        ") [invalid_api_key]); the key comes from NANOEDIT_OPENAI_API_KEY, which overrides the "
        "config file: unset NANOEDIT_OPENAI_API_KEY or fix it"
    )
    assert results[1].detail == (
        f"{where} rejected the key (HTTP 401, code 401: invalid api key); the key comes from "
        "NANOEDIT_DUOMI_API_KEY, which overrides the config file: unset NANOEDIT_DUOMI_API_KEY "
        "or fix it"
    )
    assert by_name(results)["openrouter"].detail == (
        f"{where} rejected the key (HTTP 401: User not found.); the key comes from "
        "NANOEDIT_OPENROUTER_API_KEY, which overrides the config file: unset "
        "NANOEDIT_OPENROUTER_API_KEY or fix it"
    )
    assert sent(served) == [
        ("GET", "/v1/models", f"Bearer {WRONG_KEY}"),
        ("GET", DUOMI_PATH, WRONG_KEY),
        ("GET", OPENROUTER_PATH, f"Bearer {WRONG_KEY}"),
    ]
    assert not any(WRONG_KEY in result.detail for result in results)
    assert check_exit_code(results) == ExitCode.CONFIG


def test_a_closed_port_is_unreachable(client: httpx.Client) -> None:
    port = closed_port()
    env = {
        "NANOEDIT_OPENAI_BASE_URL": f"http://127.0.0.1:{port}",
        "NANOEDIT_OPENAI_API_KEY": OPENAI_KEY,
        "NANOEDIT_DUOMI_BASE_URL": f"http://127.0.0.1:{port}",
        "NANOEDIT_DUOMI_API_KEY": DUOMI_KEY,
        "NANOEDIT_OPENROUTER_BASE_URL": f"http://127.0.0.1:{port}/api",
        "NANOEDIT_OPENROUTER_API_KEY": OPENROUTER_KEY,
    }
    results = check_backends(settings_from(env), client)
    assert [(result.backend, result.status) for result in results] == statuses(
        openai=UNREACHABLE, duomi=UNREACHABLE, openrouter=UNREACHABLE
    )
    for result in (by_name(results)[name] for name in ("openai", "duomi", "openrouter")):
        # The errno text is the platform's own ("Connection refused" and its number).
        assert result.detail.startswith(f"cannot connect to 127.0.0.1:{port} (")
        assert result.detail.endswith("); check the address and the network")
    assert check_exit_code(results) == ExitCode.NETWORK


def test_a_proxy_page_is_unreachable(served: Served, client: httpx.Client) -> None:
    served.sandbox.add_faults("html502x3")
    results = check_backends(settings_from(backend_env(served, openrouter=True)), client)
    page = (
        f"{host(served)} answered HTTP 502 with no API answer (it starts like HTML); "
        "the server or a proxy in front of it is down, try again later"
    )
    assert results == every_backend(
        openai=CheckResult("openai", UNREACHABLE, page),
        duomi=CheckResult("duomi", UNREACHABLE, page),
        openrouter=CheckResult("openrouter", UNREACHABLE, page),
    )
    assert check_exit_code(results) == ExitCode.NETWORK


def test_an_error_in_json_is_an_api_error(served: Served, client: httpx.Client) -> None:
    served.sandbox.add_faults("error200x3")
    results = check_backends(settings_from(backend_env(served, openrouter=True)), client)
    assert [(result.backend, result.status) for result in results] == statuses(
        openai=FAILED, duomi=FAILED, openrouter=FAILED
    )
    assert results[0].detail.startswith(
        f"{host(served)} answered HTTP 200: upstream error: do request failed (request id: "
    )
    assert results[0].detail.endswith(") [do_request_failed]")
    assert results[1].detail == (
        f"{host(served)} answered HTTP 200, code 500: upstream service error, please retry"
    )
    assert (
        by_name(results)["openrouter"].detail
        == f"{host(served)} answered HTTP 200: Provider returned error"
    )
    assert check_exit_code(results) == ExitCode.API


def test_a_wrong_base_url_is_an_error(served: Served, client: httpx.Client) -> None:
    env = backend_env(served, openrouter=True) | {
        "NANOEDIT_OPENAI_BASE_URL": f"{served.base_url}/gateway",
        "NANOEDIT_DUOMI_BASE_URL": f"{served.base_url}/gateway",
        "NANOEDIT_OPENROUTER_BASE_URL": f"{served.base_url}/gateway",
    }
    results = check_backends(settings_from(env), client)
    assert results == every_backend(
        openai=CheckResult(
            "openai",
            FAILED,
            f"{host(served)} answered HTTP 404 with no API answer (it starts like text); "
            "check openai.base_url",
        ),
        duomi=CheckResult(
            "duomi",
            FAILED,
            f"{host(served)} answered HTTP 404 with no API answer (it starts like text); "
            "check duomi.base_url",
        ),
        # OpenRouter's routes are under /api: the advice names the base URL to set.
        openrouter=CheckResult(
            "openrouter",
            FAILED,
            f"{host(served)} answered HTTP 404 for GET {served.base_url}/gateway/v1/key: no "
            f"such path, so the base URL {served.base_url}/gateway looks wrong; OpenRouter's "
            "routes are under /api, set openrouter.base_url (or NANOEDIT_OPENROUTER_BASE_URL) "
            f"to {served.base_url}/gateway/api",
        ),
    )


def test_the_key_command_supplies_the_key(served: Served, client: httpx.Client) -> None:
    env = backend_env(served, duomi=False)
    del env["NANOEDIT_OPENAI_API_KEY"]
    env["NANOEDIT_OPENAI_API_KEY_CMD"] = f"printf '%s\\n' {OPENAI_KEY}"
    results = check_backends(settings_from(env), client)
    assert results[0] == CheckResult(
        "openai", READY, f"{host(served)}, {len(OPENAI_MODELS)} models"
    )
    assert sent(served) == [("GET", "/v1/models", f"Bearer {OPENAI_KEY}")]


def test_a_rejected_key_from_a_command_says_to_check_the_command(
    served: Served, client: httpx.Client
) -> None:
    settings = BackendSettings(
        "duomi", served.base_url, None, "m", api_key_cmd=f"printf '%s' {WRONG_KEY}"
    )
    assert check_backend(settings, client) == CheckResult(
        "duomi",
        KEY_REJECTED,
        f"{host(served)} rejected the key (HTTP 401, code 401: invalid api key); "
        "check what duomi.api_key_cmd prints, or set duomi.api_key",
    )


def test_a_failing_key_command_sends_nothing(served: Served, client: httpx.Client) -> None:
    env = backend_env(served, openai=False)
    del env["NANOEDIT_DUOMI_API_KEY"]
    env["NANOEDIT_DUOMI_API_KEY_CMD"] = "echo 'no such entry' >&2; exit 1"
    results = check_backends(settings_from(env), client)
    assert results[1] == CheckResult(
        "duomi",
        NO_KEY,
        "duomi.api_key_cmd failed with exit status 1 (no such entry); run it in a shell to "
        "see why, or set duomi.api_key instead",
    )
    assert served.sandbox.received == []
    assert check_exit_code(results) == ExitCode.CONFIG


def test_an_unconfigured_backend_does_not_fail_the_check(
    served: Served, client: httpx.Client
) -> None:
    results = check_backends(settings_from(backend_env(served, openai=False)), client)
    assert results == every_backend(
        openai=CheckResult(
            "openai",
            NOT_CONFIGURED,
            f"no base URL and no API key; run: {backend_class('openai').setup_hint()}",
        ),
        duomi=CheckResult("duomi", READY, f"{host(served)}, key accepted"),
    )
    assert results[0].passed and results[2].passed
    assert sent(served) == [("GET", DUOMI_PATH, DUOMI_KEY)]
    assert check_exit_code(results) == ExitCode.OK


def test_nothing_configured_fails_and_sends_nothing() -> None:
    with mock_client(refuse) as client:
        results = check_backends(settings_from({}), client)
    # duomi's base URL has a default, so only the key is missing, as for the others.
    assert results == every_backend(
        openai=CheckResult(
            "openai",
            NOT_CONFIGURED,
            f"no base URL and no API key; run: {backend_class('openai').setup_hint()}",
        ),
    )
    assert check_exit_code(results) == ExitCode.CONFIG


def test_a_key_without_a_base_url() -> None:
    with mock_client(refuse) as client:
        result = check_backend(BackendSettings("openai", None, OPENAI_KEY, "m"), client)
    assert result == CheckResult(
        "openai",
        NOT_CONFIGURED,
        "no base URL; run: nanoedit config set openai.base_url https://YOUR-SERVER",
    )


def test_a_key_the_server_echoes_is_masked() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        said = f"invalid token {request.headers['authorization']}"
        return httpx.Response(401, json={"error": {"message": said, "code": "invalid_api_key"}})

    settings = BackendSettings("openai", "https://api.example.com/v1", WRONG_KEY, "m")
    with mock_client(echo) as client:
        result = check_backend(settings, client)
    assert result == CheckResult(
        "openai",
        KEY_REJECTED,
        "api.example.com rejected the key (HTTP 401: invalid token Bearer **** "
        "[invalid_api_key]); set a valid one with: nanoedit config set openai.api_key KEY",
    )


def test_a_redirect_is_not_followed() -> None:
    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": "https://api.example.com/v1/models"})

    settings = BackendSettings("openai", "http://api.example.com", OPENAI_KEY, "m")
    with mock_client(redirect) as client:
        result = check_backend(settings, client)
    assert result == CheckResult(
        "openai",
        FAILED,
        "api.example.com redirects to https://api.example.com/v1/models; "
        "set openai.base_url to the address it points to",
    )


def test_the_check_waits_only_so_long() -> None:
    timeouts: list[object] = []

    def slow(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        raise httpx.ReadTimeout("timed out", request=request)

    settings = BackendSettings("duomi", "https://duomiapi.com", DUOMI_KEY, "m")
    with mock_client(slow) as client:
        result = check_backend(settings, client, timeout=2.5)
    assert result == CheckResult(
        "duomi",
        UNREACHABLE,
        "duomiapi.com did not answer in time (ReadTimeout); check the network or proxy",
    )
    assert timeouts == [{"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}]


def test_exit_code_order() -> None:
    def result(status: str) -> CheckResult:
        return CheckResult("openai", status, "")

    assert check_exit_code([result(KEY_REJECTED), result(UNREACHABLE)]) == ExitCode.CONFIG
    assert check_exit_code([result(UNREACHABLE), result(FAILED)]) == ExitCode.API
    assert check_exit_code([result(READY), result(UNREACHABLE)]) == ExitCode.NETWORK
    assert check_exit_code([result(NOT_CONFIGURED), result(READY)]) == ExitCode.OK
    assert check_exit_code([result(NOT_CONFIGURED), result(NOT_CONFIGURED)]) == ExitCode.CONFIG
    assert result(READY).as_json() == {
        "backend": "openai",
        "status": "ready",
        "detail": "",
        "passed": True,
    }


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"code": 404, "msg": "task not found"}, READY),
        # The real server's words for an unknown task are not documented: any 4xx code will do.
        (200, {"code": 400, "msg": "task_id does not exist"}, READY),
        (200, {"code": 429, "msg": "too many requests"}, FAILED),
        (200, {"code": 500, "msg": "upstream service error"}, FAILED),
        (200, {"code": 403, "msg": "key disabled"}, KEY_REJECTED),
        (403, {"msg": "forbidden"}, KEY_REJECTED),
        (503, {"code": 503, "msg": "busy"}, FAILED),
    ],
)
def test_duomi_answers(status: int, body: dict[str, object], expected: str) -> None:
    settings = BackendSettings("duomi", "https://duomiapi.com", DUOMI_KEY, "m")
    with mock_client(lambda request: httpx.Response(status, json=body)) as client:
        assert check_backend(settings, client).status == expected
