"""``nanoedit models --live`` over real HTTP against the served sandbox, whose listing
endpoints answer as the providers' do (Gemini's pages, OpenRouter's modality filter,
Replicate's and fal's schemas), and whose lineup faults add, drop or widen a model; the cache
it writes, and later runs' plans that follow it; the sandbox's listings against the vendors'
own client.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from conftest import (
    DUOMI_KEY,
    FAL_KEY,
    GEMINI_KEY,
    OPENAI_KEY,
    OPENROUTER_KEY,
    REPLICATE_KEY,
    Served,
    SkippingClock,
    backend_env,
    not_set_up_line,
    run_cli,
)
from PIL import Image
from replicate.client import Client

from nanoedit.backends.registry import backend_names
from nanoedit.clock import Clock
from nanoedit.sandbox import Sandbox, SandboxServer

# The backends whose listings these tests read, each particular to its provider; every other
# registered backend is left without a key, and says so last (derived from the registry).
LISTED = ("openai", "duomi", "gemini", "fal", "replicate", "openrouter")
EVERY = {name: name in LISTED for name in backend_names()}
UNLISTED = [not_set_up_line(name) for name in backend_names() if name not in LISTED]
KEYS = frozenset({OPENAI_KEY, DUOMI_KEY, GEMINI_KEY, FAL_KEY, REPLICATE_KEY, OPENROUTER_KEY})
TALL = ["1:4", "4:1", "1:8", "8:1"]
BASE = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
NO_DRIFT = [
    "openai      no drift  (10 models listed, under names of its own; 1 request)",
    "duomi       not checked  (the duomi API has no listing endpoint)",
    "gemini      no drift  (4 image models listed; 2 requests)",
    "fal         no drift  (4 of the catalog's 4 ids found, each asked for by name; 1 request)",
    "replicate   no drift  (2 of the catalog's 2 ids found, each asked for by name; 2 requests)",
    "openrouter  no drift  (4 image models listed; 1 request)",
    *UNLISTED,
]
GONE = "Nano Banana 2 (gemini-3.1-flash-image) in the catalog, no longer listed by the provider"
NEW = "listed by the provider, not in the catalog"
SETUP = {
    "openai": "nanoedit config set openai.base_url https://YOUR-SERVER && nanoedit config set "
    "openai.api_key YOUR-KEY",
    **{
        name: f"nanoedit config set {name}.api_key YOUR-KEY"
        for name in ("duomi", "gemini", "fal", "openrouter")
    },
}


@pytest.fixture
def logged(clock: SkippingClock) -> Iterator[tuple[Served, io.StringIO]]:
    """The sandbox over real HTTP, with its log of every request and the status answered."""
    log = io.StringIO()
    sandbox = Sandbox(keys=KEYS, clock=clock.monotonic)
    with SandboxServer(sandbox, log=log) as server:
        yield Served(sandbox, server.base_url), log


def cache_file() -> Path:
    return Path(os.environ["NANOEDIT_DATA_DIR"]) / "models-live.json"


def kept_note() -> str:
    return f"the ratios and sizes read are kept in {cache_file()} for later runs' checks\n"


def paid(served: Served) -> list[str]:
    """Every request that was not a GET: what a listing must never send."""
    return [f"{r.method} {r.path}" for r in served.sandbox.received if r.method != "GET"]


def statuses(log: io.StringIO) -> list[str]:
    """The status of every answer the served sandbox gave, in order."""
    return [line.rsplit(" ", 1)[1] for line in log.getvalue().splitlines()]


class DayClock(Clock):
    """The real clock, but a fixed time of day."""

    def __init__(self, day: datetime) -> None:
        self.day = day

    def now(self) -> datetime:
        return self.day


# --- no drift, and drift under the lineup faults --------------------------------------------


def test_no_drift_without_faults_every_listing_free_and_counted(served: Served) -> None:
    result = run_cli(["models", "--live"], env=backend_env(served, **EVERY))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == NO_DRIFT
    assert result.stderr == (
        "7 requests to listing endpoints, which are free: no image made, nothing paid\n"
        + kept_note()
    )
    received = [(r.method, r.path) for r in served.sandbox.received]
    assert received == [
        ("GET", "/v1/models"),
        ("GET", "/v1beta/models"),
        ("GET", "/v1beta/models"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/google/nano-banana-pro"),
        ("GET", "/v1/models/google/nano-banana-2"),
        ("GET", "/api/v1/models"),
    ]
    # Gemini's two pages: the second asked for with the token the first gave.
    first, second = served.sandbox.received[1:3]
    assert (first.query["pageSize"], "pageToken" in first.query) == ("1000", False)
    assert second.query["pageToken"] and second.query["pageSize"] == "1000"
    assert served.sandbox.received[3].headers["authorization"] == f"Key {FAL_KEY}"
    assert served.sandbox.received[6].query["output_modalities"] == "image"


def test_an_added_and_a_dropped_model_are_reported_and_exit_9(served: Served) -> None:
    served.sandbox.add_faults("lineup:added,lineup:dropped")
    result = run_cli(["models", "--live"], env=backend_env(served, **EVERY))
    assert result.exit_code == 9, result.stderr
    assert result.stdout.splitlines() == [
        "openai      drift  (10 models listed, under names of its own; 1 request)",
        f"  dropped  nano-banana-2  {GONE}",
        "duomi       not checked  (the duomi API has no listing endpoint)",
        "gemini      drift  (4 image models listed; 2 requests)",
        f"  added    gemini-3.5-flash-image  {NEW}",
        f"  dropped  gemini-3.1-flash-image  {GONE}",
        "fal         drift  (2 of the catalog's 4 ids found, each asked for by name; 1 request)",
        f"  dropped  fal-ai/nano-banana-2       {GONE}",
        f"  dropped  fal-ai/nano-banana-2/edit  {GONE}",
        "replicate   drift  (1 of the catalog's 2 ids found, each asked for by name; 2 requests)",
        f"  dropped  google/nano-banana-2  {GONE}",
        "openrouter  drift  (4 image models listed; 1 request)",
        f"  added    google/gemini-3.5-flash-image  {NEW}",
        f"  dropped  google/gemini-3.1-flash-image  {GONE}",
        *UNLISTED,
    ]
    assert result.stderr.startswith("7 requests to listing endpoints, which are free")
    assert paid(served) == []
    assert served.sandbox.pending_faults() == []


def test_json_gives_each_backend_its_differences(served: Served) -> None:
    served.sandbox.add_faults("lineup:added")
    env = backend_env(served, openai=False, duomi=False, gemini=True)
    result = run_cli(["models", "--live", "--backend", "gemini", "--json"], env=env)
    assert result.exit_code == 9
    assert json.loads(result.stdout) == {
        "ok": False,
        "exit_code": 9,
        "requests": 2,
        "cache": str(cache_file()),
        "backends": [
            {
                "backend": "gemini",
                "status": "drift",
                "detail": "5 image models listed; 2 requests",
                "requests": 2,
                "listed": [
                    "gemini-3-pro-image", "gemini-3.1-flash-image", "gemini-nano-banana-2.1",
                    "gemini-3.1-flash-lite-image", "gemini-3.5-flash-image",
                ],
                "differences": [
                    {"change": "added", "id": "gemini-3.5-flash-image", "model": None,
                     "catalog": [], "live": []},
                ],
            }
        ],
    }  # fmt: skip


def test_through_the_console_script_the_exit_code_is_9_on_drift(served: Served) -> None:
    served.sandbox.add_faults("lineup:dropped")
    env = dict(os.environ) | backend_env(served, openai=False, duomi=False, replicate=True)
    command = str(Path(sys.executable).with_name("nanoedit"))
    done = subprocess.run(
        [command, "models", "--live"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 9, done.stderr
    assert done.stdout.splitlines() == [
        f"openai      not configured  (no base URL and no API key; run: {SETUP['openai']})",
        f"duomi       not configured  (no API key; run: {SETUP['duomi']})",
        f"gemini      not configured  (no API key; run: {SETUP['gemini']})",
        f"fal         not configured  (no API key; run: {SETUP['fal']})",
        "replicate   drift  (1 of the catalog's 2 ids found, each asked for by name; 2 requests)",
        f"  dropped  google/nano-banana-2  {GONE}",
        f"openrouter  not configured  (no API key; run: {SETUP['openrouter']})",
        *UNLISTED,
    ]
    assert done.stderr == (
        "2 requests to listing endpoints, which are free: no image made, nothing paid\n"
        + kept_note()
    )
    assert "Traceback" not in done.stderr


# --- per-backend errors ---------------------------------------------------------------------


def test_a_rejected_key_and_an_unreachable_server_are_reported_per_backend(
    served: Served,
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = backend_env(served, openai=False, duomi=False, gemini=True, replicate=True) | {
        "NANOEDIT_GEMINI_API_KEY": "AIza-wrong",
        "NANOEDIT_OPENROUTER_BASE_URL": f"http://127.0.0.1:{port}/api",
        "NANOEDIT_OPENROUTER_API_KEY": OPENROUTER_KEY,
    }
    result = run_cli(["models", "--live"], env=env)
    # A rejected key ranks first, as in config check.
    assert result.exit_code == 3, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2].startswith(
        f"gemini      key rejected  ({served.base_url.removeprefix('http://')} rejected the key "
        "(HTTP 400: API key not valid. Please pass a valid API key. [INVALID_ARGUMENT]); "
    )
    assert lines[4].startswith("replicate   no drift  ")
    assert lines[5].startswith(f"openrouter  unreachable  (cannot connect to 127.0.0.1:{port} (")
    assert "AIza-wrong" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    # Only the backends that answered are kept.
    assert list(json.loads(cache_file().read_text())["backends"]) == ["replicate"]


def test_nothing_configured_exits_3_and_sends_nothing(served: Served) -> None:
    result = run_cli(["models", "--live", "--backend", "fal"])
    assert result.exit_code == 3
    assert result.stdout == (
        "fal  not configured  (no API key; run: nanoedit config set fal.api_key YOUR-KEY)\n"
    )
    assert result.stderr == (
        "0 requests to listing endpoints, which are free: no image made, nothing paid\n"
    )
    assert served.sandbox.received == []
    assert not cache_file().exists()


def test_the_in_process_sandbox_lists_too_and_nothing_is_kept() -> None:
    result = run_cli(["models", "--live", "--sandbox"])
    assert result.exit_code == 0, result.stderr
    # The sandbox sets every registered backend up: the listings read above, then the others'.
    lines = result.stdout.splitlines()
    assert lines[: len(LISTED)] == NO_DRIFT[: len(LISTED)]
    assert [line.split("  ")[0].strip() for line in lines[len(LISTED) :]] == [
        name for name in backend_names() if name not in LISTED
    ]
    assert all("  no drift  (" in line for line in lines[len(LISTED) :])
    assert result.stderr.endswith(
        "the in-process sandbox is no provider: nothing kept for later runs\n"
    )
    assert not cache_file().exists()
    usage = run_cli(["models", "--sandbox"])
    assert usage.exit_code == 2
    assert "--sandbox goes with --live" in usage.stderr


# --- the cache, and later runs' plans -------------------------------------------------------


def pro_tall(env: dict[str, str]) -> tuple[int, str]:
    """Generate with Nano Banana Pro at 1:4 on Replicate: exit code and stderr."""
    args = ["generate", "-p", "a fox", "--backend", "replicate", "-m", "nano-banana-pro"]
    result = run_cli([*args, "--ratio", "1:4"], env=env)
    return result.exit_code, result.stderr


def test_a_ratio_the_live_schema_admits_is_accepted_by_later_plans(
    logged: tuple[Served, io.StringIO], isolated: Path
) -> None:
    served, log = logged
    env = backend_env(served, openai=False, duomi=False, replicate=True)
    # The shipped catalog has no tall ratios for Pro: refused before anything is sent.
    code, stderr = pro_tall(env)
    assert code == 2
    assert "google/nano-banana-pro does not render the ratio 1:4 on replicate" in stderr
    assert served.sandbox.received == []
    # Replicate's schema for Pro now lists them.
    served.sandbox.add_faults("lineup:widened")
    day = DayClock(datetime(2026, 12, 8, 9, 30, tzinfo=UTC))
    result = run_cli(["models", "--live", "--backend", "replicate"], env=env, clock=day)
    assert result.exit_code == 9
    assert result.stdout.splitlines()[1] == (
        "  ratios   google/nano-banana-pro  the provider also lists 1:4, 4:1, 1:8, 8:1"
    )
    kept = json.loads(cache_file().read_text())
    entry = kept["backends"]["replicate"]
    assert (entry["base_url"], entry["checked"]) == (served.base_url, "2026-12-08T09:30:00+00:00")
    assert entry["models"]["google/nano-banana-pro"] == {
        "ratios": BASE + TALL,
        "sizes": ["1K", "2K", "4K"],
    }
    listed = len(served.sandbox.received)
    code, stderr = pro_tall(env)
    assert code == 0, stderr
    with Image.open(isolated / "a-fox.png") as image:
        assert (image.size, image.format) == ((512, 2048), "PNG")
    created = [r for r in served.sandbox.received[listed:] if r.method == "POST"]
    assert [(r.path, r.json["input"]["aspect_ratio"]) for r in created] == [
        ("/v1/models/google/nano-banana-pro/predictions", "1:4")
    ]
    refused = [status for status in statuses(log) if status.startswith("4")]
    assert refused == []
    # `nanoedit models` shows the catalog plans use.
    table = run_cli(["models", "--backend", "replicate", "--json"], env=env)
    rows = {row["id"]: row for row in map(json.loads, table.stdout.splitlines())}
    assert rows["gemini-3-pro-image"]["ratios"] == BASE + TALL


def test_the_config_file_s_own_correction_wins_over_the_cache(
    served: Served, isolated: Path
) -> None:
    config = isolated.parent / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[models."gemini-3-pro-image".on.replicate]\nratios = "base"\n')
    env = backend_env(served, openai=False, duomi=False, replicate=True)
    served.sandbox.add_faults("lineup:widened")
    result = run_cli(["models", "--live", "--backend", "replicate"], env=env)
    assert result.exit_code == 9
    listed = len(served.sandbox.received)
    code, stderr = pro_tall(env)
    assert code == 2
    assert "does not render the ratio 1:4 on replicate" in stderr
    assert len(served.sandbox.received) == listed


def test_a_cache_older_than_the_shipped_catalog_is_not_used(served: Served) -> None:
    env = backend_env(served, openai=False, duomi=False, replicate=True)
    served.sandbox.add_faults("lineup:widened")
    long_ago = DayClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    result = run_cli(["models", "--live", "--backend", "replicate"], env=env, clock=long_ago)
    assert result.exit_code == 9
    entry = json.loads(cache_file().read_text())["backends"]["replicate"]
    assert entry["checked"] == "2026-01-05T09:00:00+00:00"
    listed = len(served.sandbox.received)
    assert pro_tall(env)[0] == 2
    assert len(served.sandbox.received) == listed


def test_a_cache_read_from_another_server_is_not_used(served: Served) -> None:
    env = backend_env(served, openai=False, duomi=False, replicate=True)
    served.sandbox.add_faults("lineup:widened")
    assert run_cli(["models", "--live", "--backend", "replicate"], env=env).exit_code == 9
    moved = env | {"NANOEDIT_REPLICATE_BASE_URL": served.base_url + "/"}
    assert pro_tall(moved)[0] == 0  # the same server, written with a slash
    other = env | {"NANOEDIT_REPLICATE_BASE_URL": served.base_url.replace("127.0.0.1", "localhost")}
    listed = len(served.sandbox.received)
    assert pro_tall(other)[0] == 2
    assert len(served.sandbox.received) == listed


def test_a_ratio_the_live_schema_dropped_is_refused_before_anything_is_sent(
    served: Served,
) -> None:
    # As Replicate's schema would say if google/nano-banana-2 lost its tall ratios.
    cache_file().parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "checked": "2026-12-08T09:30:00+00:00",
        "base_url": served.base_url,
        "models": {"google/nano-banana-2": {"ratios": BASE, "sizes": ["1K", "2K"]}},
    }
    cache_file().write_text(json.dumps({"version": 1, "backends": {"replicate": entry}}))
    env = backend_env(served, openai=False, duomi=False, replicate=True)
    args = ["generate", "-p", "a fox", "--backend", "replicate", "-m", "nano-banana-2"]
    for extra, said in (
        (["--ratio", "1:8"], "google/nano-banana-2 does not render the ratio 1:8 on replicate"),
        (["--size", "4K"], "google/nano-banana-2 renders 1K, 2K only on replicate"),
    ):
        result = run_cli([*args, *extra], env=env)
        assert result.exit_code == 2
        assert said in result.stderr
    assert served.sandbox.received == []


def test_a_broken_cache_is_ignored_with_a_warning_naming_it(served: Served) -> None:
    cache_file().parent.mkdir(parents=True, exist_ok=True)
    cache_file().write_text('{"version": 1, "backends": ')
    env = backend_env(served, openai=False, duomi=False, replicate=True)
    code, stderr = pro_tall(env)
    assert code == 2
    assert (
        f"warning: the cache of nanoedit models --live, {cache_file()}, is ignored: it is not "
        "valid JSON (Expecting value at line 1); run nanoedit models --live to write it again, "
        "or delete it"
    ) in stderr
    # models --live writes it anew.
    assert run_cli(["models", "--live", "--backend", "replicate"], env=env).exit_code == 0
    assert json.loads(cache_file().read_text())["version"] == 1
    cache_file().write_text("[1, 2]")
    code, stderr = pro_tall(env)
    assert (code, "is ignored: it is not a cache this version of nanoedit writes") == (
        2, stderr.split(f"{cache_file()}, ")[1].split(";")[0]
    )  # fmt: skip


# --- the sandbox's listings, and the defect they showed -------------------------------------


def test_replicate_nano_banana_2_renders_the_tall_ratios_its_schema_lists(
    served: Served, isolated: Path
) -> None:
    # The catalog has always let 1:8 through for google/nano-banana-2; the sandbox's Replicate
    # refused it with a 422, though its latest version lists the tall ratios.
    env = backend_env(served, openai=False, duomi=False, replicate=True)
    args = ["generate", "-p", "a fox", "--backend", "replicate", "-m", "nano-banana-2"]
    result = run_cli([*args, "--ratio", "1:8", "--size", "2K"], env=env)
    assert result.exit_code == 0, result.stderr
    with Image.open(isolated / "a-fox.png") as image:
        assert image.size == (768, 6144)


def test_the_replicate_client_reads_the_schema(served: Served) -> None:
    sdk = Client(api_token=REPLICATE_KEY, base_url=served.base_url)
    try:
        model = sdk.models.get("google/nano-banana-2")
        assert model.latest_version is not None
        schema = model.latest_version.openapi_schema
        inputs = schema["components"]["schemas"]["Input"]["properties"]
        assert inputs["aspect_ratio"]["allOf"] == [{"$ref": "#/components/schemas/aspect_ratio"}]
        enums = {
            name: schema["components"]["schemas"][name]["enum"]
            for name in ("aspect_ratio", "resolution", "output_format")
        }
        assert enums == {
            "aspect_ratio": ["match_input_image", *BASE, *TALL],
            "resolution": ["1K", "2K", "4K"],
            "output_format": ["jpg", "png"],
        }
        pro = sdk.models.get("google/nano-banana-pro").latest_version
        assert pro is not None
        assert pro.openapi_schema["components"]["schemas"]["aspect_ratio"]["enum"] == [
            "match_input_image",
            *BASE,
        ]
    finally:
        sdk._client.close()


def test_openrouter_lists_by_output_modality_without_a_key(served: Served) -> None:
    def ids(**query: str) -> list[str]:
        answer = httpx.get(f"{served.base_url}/api/v1/models", params=query)
        assert answer.status_code == 200
        return [model["id"] for model in answer.json()["data"]]

    google = [
        "google/gemini-3-pro-image", "google/gemini-3.1-flash-image",
        "google/gemini-nano-banana-2.1", "google/gemini-3.1-flash-lite-image",
    ]  # fmt: skip
    assert ids() == ["google/gemini-3-pro", "google/gemini-3-flash", *google]
    assert ids(output_modalities="image") == [*google, "black-forest-labs/flux.2-pro"]
    assert ids(output_modalities="all") == [
        "google/gemini-3-pro", "google/gemini-3-flash", *google, "black-forest-labs/flux.2-pro"
    ]  # fmt: skip
    assert ids(output_modalities="audio") == []


def test_fal_s_model_search_gives_the_apps_asked_for_with_their_schemas(served: Served) -> None:
    url = f"{served.base_url}/v1/models"
    asked: list[tuple[str, str | int | float | bool | None]] = [
        ("endpoint_id", "fal-ai/nano-banana-2/edit"),
        ("endpoint_id", "fal-ai/nope"),
    ]
    answer = httpx.get(url, params=[*asked, ("expand", "openapi-3.0")])
    assert answer.status_code == 200
    (found,) = answer.json()["models"]
    assert found["endpoint_id"] == "fal-ai/nano-banana-2/edit"
    body = found["openapi"]["paths"]["/fal-ai/nano-banana-2/edit"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    name = ref.rsplit("/", 1)[1]
    inputs = found["openapi"]["components"]["schemas"][name]["properties"]
    assert inputs["aspect_ratio"]["enum"] == ["auto", *BASE, *TALL]
    assert inputs["resolution"]["enum"] == ["0.5K", "1K", "2K", "4K"]
    # Without expand, no schema; a key fal does not know is refused.
    plain = httpx.get(url, params=asked[:1]).json()["models"][0]
    assert "openapi" not in plain
    wrong = httpx.get(url, params=asked[:1], headers={"Authorization": "Key nope:nope"})
    assert wrong.status_code == 401
    # The gateway's list keeps the path when no fal key and no endpoint_id come with it.
    gateway = httpx.get(url, headers={"Authorization": f"Bearer {OPENAI_KEY}"})
    assert gateway.json()["object"] == "list"


def test_the_lineup_faults_are_listed(served: Served) -> None:
    result = run_cli(["sandbox", "faults"])
    assert result.exit_code == 0
    listed = {line.split()[0]: line.split(None, 2)[1:] for line in result.stdout.splitlines()}
    assert listed["added"] == [
        "lineup",
        "from the next model listing on, a new image model is listed",
    ]
    assert listed["dropped"] == [
        "lineup", "from the next model listing on, Nano Banana 2 is listed no more"
    ]  # fmt: skip
    assert listed["widened"] == [
        "lineup", "from the next model listing on, Nano Banana Pro takes the tall ratios too"
    ]  # fmt: skip
