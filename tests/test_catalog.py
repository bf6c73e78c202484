"""The model catalog against today's lineup: every alias on every backend reaches a model the
provider (the sandbox, which keeps its own list) serves; shut-down ids are refused before
anything is sent; a "no such model" answer costs one request and holds the rest back; the
user's corrections in the config file take effect; ``nanoedit models`` shows it all."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from conftest import Served, backend_env, run_cli
from PIL import Image

from nanoedit.backends.registry import backend_names, shared_offers
from nanoedit.catalog.models import load_catalog, shipped_catalog

ALIASES = (
    "nano-banana",
    "nano-banana-pro",
    "nano-banana-2",
    "nano-banana-2.1",
    "nano-banana-2-lite",
)
EVERY = dict.fromkeys(backend_names(), True)
# What each alias must send today, by backend (None: not sold there), written out by hand
# from API-NOTES-LINEUP and the seeds, so that a slip in models.toml shows.
SENT: dict[str, dict[str, str | None]] = {
    "nano-banana": {
        "openai": "nano-banana-2", "duomi": "gemini-3.1-flash-image-preview",
        "gemini": "gemini-nano-banana-2.1", "fal": "fal-ai/nano-banana-2",
        "replicate": "google/nano-banana-2", "openrouter": "google/gemini-nano-banana-2.1",
    },
    "nano-banana-pro": {
        "openai": "nano-banana-pro", "duomi": "gemini-3-pro-image-preview",
        "gemini": "gemini-3-pro-image", "fal": "fal-ai/nano-banana-pro",
        "replicate": "google/nano-banana-pro", "openrouter": "google/gemini-3-pro-image",
    },
    "nano-banana-2": {
        "openai": "nano-banana-2", "duomi": "gemini-3.1-flash-image-preview",
        "gemini": "gemini-3.1-flash-image", "fal": "fal-ai/nano-banana-2",
        "replicate": "google/nano-banana-2", "openrouter": "google/gemini-3.1-flash-image",
    },
    "nano-banana-2.1": {
        "openai": None, "duomi": None, "gemini": "gemini-nano-banana-2.1", "fal": None,
        "replicate": None, "openrouter": "google/gemini-nano-banana-2.1",
    },
    "nano-banana-2-lite": {
        "openai": None, "duomi": None, "gemini": "gemini-3.1-flash-lite-image", "fal": None,
        "replicate": None, "openrouter": "google/gemini-3.1-flash-lite-image",
    },
}  # fmt: skip
# A backend that sells what another sells (its registry line's sells_as) sends the same ids.
for _name, _seller in shared_offers().items():
    for _sent in SENT.values():
        _sent[_name] = _sent[_seller]


def model_sent(served: Served) -> str:
    """The model id the one image request named, read from the request on the server."""
    for received in served.sandbox.received:
        path = received.path
        if path.startswith("/v1beta/models/") and path.endswith(":generateContent"):
            return path.removeprefix("/v1beta/models/").removesuffix(":generateContent")
        if "/publishers/google/models/" in path and path.endswith(":generateContent"):
            # Vertex AI: /v1/projects/P/locations/L/publishers/google/models/ID:generateContent
            return path.rpartition("/")[2].removesuffix(":generateContent")
        if path.startswith("/v1/models/") and path.endswith("/predictions"):
            return path.removeprefix("/v1/models/").removesuffix("/predictions")
        if path.startswith("/fal-ai/"):
            return path.removeprefix("/")
        if received.method == "POST" and received.body.startswith(b"{"):
            body = json.loads(received.body)
            if isinstance(body, dict) and "model" in body:
                return str(body["model"])
        if received.method == "POST" and b'name="model"' in received.body:
            part = received.body.split(b'name="model"', 1)[1].split(b"\r\n\r\n", 1)[1]
            return part.split(b"\r\n", 1)[0].decode()
    raise AssertionError("no image request reached the sandbox")


@pytest.mark.parametrize("backend", list(EVERY))
@pytest.mark.parametrize("alias", ALIASES)
def test_every_alias_on_every_backend_reaches_a_model_the_provider_serves(
    served: Served, isolated: Path, backend: str, alias: str
) -> None:
    env = backend_env(served, **EVERY)
    result = run_cli(["generate", "-p", "a fox", "--backend", backend, "-m", alias], env=env)
    expected = SENT[alias][backend]
    if expected is None:
        assert result.exit_code == 2, result.stderr
        assert f"--model {alias}: the {backend} backend sells no model of that name" in (
            result.stderr
        )
        assert served.sandbox.received == []
        return
    assert result.exit_code == 0, result.stderr
    assert model_sent(served) == expected
    saved = Path(result.stdout.strip())
    with Image.open(saved) as image:
        image.load()


@pytest.mark.parametrize(
    ("backend", "model", "date", "instead"),
    [
        ("gemini", "gemini-2.5-flash-image", "2026-10-02", "gemini-3.1-flash-image"),
        ("gemini", "gemini-3-pro-image-preview", "2026-06-25", "gemini-3-pro-image"),
        ("openrouter", "google/gemini-3.1-flash-image-preview", "2026-06-25",
         "google/gemini-3.1-flash-image"),
        ("fal", "fal-ai/nano-banana", "2026-10-02", "fal-ai/nano-banana-2"),
        ("replicate", "google/nano-banana", "2026-10-02", "google/nano-banana-2"),
        ("duomi", "gemini-2.5-flash-image", "2026-10-02", "gemini-3.1-flash-image-preview"),
    ],
)  # fmt: skip
def test_a_shut_down_model_is_refused_with_its_date_and_replacement_and_nothing_is_sent(
    served: Served, backend: str, model: str, date: str, instead: str
) -> None:
    env = backend_env(served, **EVERY)
    result = run_cli(["generate", "-p", "x", "--backend", backend, "-m", model, "--json"], env=env)
    assert result.exit_code == 2
    line = json.loads(result.stdout)
    assert line["error"]["message"].startswith(f"{model} (Nano Banana"), line["error"]["message"]
    assert (
        f"was shut down on {date}, so nothing was sent; use its replacement: --model {instead}"
        in (line["error"]["message"])
    )
    assert served.sandbox.received == []


def test_a_google_id_goes_to_each_backend_under_that_backend_s_name(served: Served) -> None:
    env = backend_env(served, **EVERY)
    result = run_cli(
        ["generate", "-p", "x", "--backend", "fal", "-m", "gemini-3-pro-image", "--size", "4K"],
        env=env,
    )
    assert result.exit_code == 0, result.stderr
    assert model_sent(served) == "fal-ai/nano-banana-pro"
    with Image.open(result.stdout.strip()) as image:
        assert image.size == (4096, 4096)


def test_limits_follow_the_backend_pro_refuses_1_8_and_512_before_sending(served: Served) -> None:
    env = backend_env(served, **EVERY)
    for extra in (["--ratio", "1:8"], ["--size", "512"]):
        result = run_cli(
            ["generate", "-p", "x", "--backend", "gemini", "-m", "gemini-3-pro-image", *extra],
            env=env,
        )
        assert result.exit_code == 2
    assert served.sandbox.received == []


@pytest.mark.parametrize("backend", ["openai", "duomi"])
def test_nano_banana_2_on_the_seeded_gateways_refuses_what_their_seed_does_not_list(
    served: Served, backend: str
) -> None:
    env = backend_env(served, **EVERY)
    for extra in (["--ratio", "1:8"], ["--size", "512"]):
        result = run_cli(
            ["generate", "-p", "x", "--backend", backend, "-m", "nano-banana-2", *extra], env=env
        )
        assert result.exit_code == 2, result.stderr
    assert served.sandbox.received == []


def test_no_such_model_costs_one_request_and_holds_back_the_rest(
    served: Served, sample: Path, isolated: Path
) -> None:
    # An id the catalog does not know is sent as given; Google answers it 404 NOT_FOUND.
    env = backend_env(served, **EVERY)
    names = []
    for n in range(4):
        copy = isolated / f"in{n}.png"
        copy.write_bytes(sample.read_bytes())
        names.append(str(copy))
    args = ["edit", *names, "-p", "x", "--backend", "gemini", "-m", "gemini-9-imaginary", "-j", "1"]
    result = run_cli(args, env=env)
    assert result.exit_code == 5, result.stderr
    posts = [r for r in served.sandbox.received if r.method == "POST"]
    assert len(posts) == 1
    assert "does not serve gemini-9-imaginary on the gemini backend" in result.stderr
    assert "it was not retried: see nanoedit models --backend gemini" in result.stderr
    assert "3 jobs not sent" in result.stderr


def test_a_correction_in_the_config_file_takes_effect_without_a_release(
    served: Served, isolated: Path
) -> None:
    soon = dt.date.today() + dt.timedelta(days=10)
    config = isolated / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[models."gemini-3.1-flash-image"]\nshutdown = {soon.isoformat()}\n'
        '[models."gemini-3.1-flash-image".on.fal]\nprices = {{ "1K" = 0.09 }}\n'.replace(
            "{{", "{"
        ).replace("}}", "}"),
        encoding="utf-8",
    )
    env = backend_env(served, **EVERY) | {"NANOEDIT_CONFIG_DIR": str(config.parent)}
    result = run_cli(
        ["generate", "-p", "x", "--backend", "fal", "-m", "nano-banana-2", "--dry-run"], env=env
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count(f"shuts down on {soon.isoformat()}, in 10 days") == 1
    assert "fal-ai/nano-banana-2" in result.stdout
    assert "$0.09" in result.stderr


def test_a_malformed_correction_is_a_config_error_naming_the_key(isolated: Path) -> None:
    config = isolated / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[models."gemini-3-pro-image"]\nsizes = ["8K"]\n', encoding="utf-8")
    env = {"NANOEDIT_CONFIG_DIR": str(config.parent)}
    result = run_cli(["config", "check"], env=env)
    assert result.exit_code == 3
    assert "models.\"gemini-3-pro-image\".sizes has '8K'" in result.stderr


def test_the_catalog_checks_backend_names_and_replacements() -> None:
    from nanoedit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"on\.falx names no backend"):
        load_catalog(
            {"gemini-3-pro-image": {"on": {"falx": {"id": "x"}}}}, backends=backend_names()
        )
    with pytest.raises(ConfigError, match="replacement names 'nope'"):
        load_catalog({"gemini-3-pro-image": {"replacement": "nope"}})


def test_models_lists_the_catalog_as_json(isolated: Path) -> None:
    result = run_cli(["models", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["id"] for row in rows] == [
        "gemini-3-pro-image", "gemini-nano-banana-2.1", "gemini-3.1-flash-lite-image",
        "gemini-3.1-flash-image", "gemini-2.5-flash-image", "gemini-3-pro-image-preview",
        "gemini-3.1-flash-image-preview",
    ]  # fmt: skip
    pro = rows[0]
    assert pro["backends"]["fal"] == "fal-ai/nano-banana-pro"
    assert pro["price_1k"] == 0.134
    assert rows[4]["state"] == "shut down"
    assert rows[4]["shutdown"] == "2026-10-02"


def test_models_for_one_backend_shows_its_own_prices_and_limits(isolated: Path) -> None:
    result = run_cli(["models", "--backend", "fal", "--json"])
    rows = {row["id"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {"gemini-3-pro-image", "gemini-3.1-flash-image", "gemini-2.5-flash-image"}
    assert (
        rows["gemini-3.1-flash-image"]["price_1k"],
        rows["gemini-3.1-flash-image"]["price_source"],
    ) == (0.08, "fal")
    result = run_cli(["models", "--backend", "nope"])
    assert result.exit_code == 2


def test_every_model_of_the_shipped_catalog_has_sources_and_a_live_replacement() -> None:
    catalog = shipped_catalog()
    for model in catalog.models.values():
        assert model.sources.startswith("[")
        if model.shutdown is not None:
            assert catalog.live(model) is not None


@pytest.mark.parametrize(
    ("backend", "model"),
    [
        ("gemini", "gemini-3-pro-image"),
        ("openrouter", "google/gemini-3-pro-image"),
        ("fal", "fal-ai/nano-banana-pro"),
        ("replicate", "google/nano-banana-pro"),
        ("duomi", "gemini-3-pro-image-preview"),
        ("openai", "nano-banana-2"),
    ],
)
def test_the_size_check_after_saving_knows_the_id_each_backend_sends(
    backend: str, model: str
) -> None:
    # It looked the sent id up in Google's table, so fal's, Replicate's and OpenRouter's ids
    # were unknown to it and a provider that ignored the ratio went unnoticed there.
    from nanoedit.catalog.pixels import expected_size

    resolved = shipped_catalog().resolve(backend, model)
    assert expected_size(resolved, "16:9", "2K") == (2752, 1536)
    assert expected_size(resolved, "9:16", None) == (768, 1376)


@pytest.mark.parametrize(
    ("backend", "model", "said"),
    [
        ("gemini", "gemini-9-imaginary", "is not found for API version v1beta"),
        ("openrouter", "google/gemini-9-imaginary", "is not a valid model ID"),
        ("fal", "fal-ai/imaginary-app", "HTTP 404"),
        ("replicate", "google/imaginary-model", "HTTP 404"),
    ],
)
def test_every_api_that_says_no_such_model_is_heard_and_not_retried(
    served: Served, backend: str, model: str, said: str
) -> None:
    env = backend_env(served, **EVERY)
    result = run_cli(["generate", "-p", "x", "-n", "2", "--backend", backend, "-m", model], env=env)
    assert result.exit_code == 5, result.stderr
    assert f"does not serve {model} on the {backend} backend" in result.stderr
    assert said in result.stderr
    assert f"see nanoedit models --backend {backend}" in result.stderr
    posts = [r for r in served.sandbox.received if r.method == "POST"]
    assert len(posts) == 1  # one image request, no retry (and not the job's second image)


def test_the_readmes_model_table_is_the_catalogs() -> None:
    from readme_help import README

    text = README.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z0-9.-]+)` \| `([a-z0-9.-]+)` \| (.*?) \|$", text, re.M)
    catalog = shipped_catalog()
    assert rows, "the README has no model table"
    for alias, model_id, status in rows:
        model = catalog.models[model_id]
        assert catalog.resolve("gemini", alias).model is model
        assert status.startswith(model.lifecycle()), (status, model.lifecycle())
    live = [m.id for m in catalog.models.values() if not m.is_shut_down(catalog.today)]
    assert sorted(model_id for _, model_id, _ in rows) == sorted(live)
    shut = re.search(r"^\| — \| (.*?) \| shut down \|$", text, re.M)
    assert shut is not None
    dead = [m.id for m in catalog.models.values() if m.is_shut_down(catalog.today)]
    assert sorted(re.findall(r"`([a-z0-9.-]+)`", shut.group(1))) == sorted(dead)


def test_no_image_from_an_id_the_catalog_does_not_know_asks_whether_it_draws() -> None:
    from nanoedit.backends.gemini_errors import no_image as _no_image

    unknown = _no_image("host", "gemini-9-flash", "NO_IMAGE", None, "")
    known = _no_image("host", "gemini-3-pro-image", "NO_IMAGE", None, "")
    assert unknown.message.endswith(
        "check that gemini-9-flash is an image model (--model or gemini.model), or try again"
    )
    assert known.message.endswith("that is not a refusal of the content: try again")


def test_a_size_no_model_of_the_backend_renders_gets_no_advice_to_use_the_same_model(
    served: Served,
) -> None:
    # Replicate's resolution has no 512: the advice named the model already in use.
    env = backend_env(served, **EVERY)
    args = ["generate", "-p", "x", "--backend", "replicate", "-m", "nano-banana-2", "--size", "512"]
    result = run_cli(args, env=env)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: google/nano-banana-2 renders 1K, 2K, 4K only on replicate, so size 512 cannot "
        "be honoured; drop it (from --size, NANOEDIT_SIZE or default.size)"
    )
    assert served.sandbox.received == []
    # Where another model renders it, that one is named, by the name that reaches it.
    result = run_cli(["generate", "-p", "x", "--backend", "gemini", "-m", "nano-banana-pro",
                      "--size", "512"], env=env)  # fmt: skip
    assert result.stderr.strip().endswith(
        "or choose a model that renders it (--model nano-banana-2)"
    )


def test_the_json_a_run_reads_is_the_toml_people_edit() -> None:
    from models_json import PACKAGE, expected_json

    assert (PACKAGE / "models.json").read_text(encoding="utf-8") == expected_json(), (
        "nanoedit/catalog/models.json is stale; regenerate it: python tests/models_json.py"
    )
