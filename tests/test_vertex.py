"""Google Cloud's Vertex AI, through the front door against the sandbox: Gemini's body on a
project's publisher model, a Bearer token (from a command, sent again once when it expires),
and Vertex's own answers for a wrong token, project and location."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from conftest import (
    Served,
    api_key_for,
    host,
    image_info,
    one_backend_env,
    posts,
    received,
    run_cli,
)

from nanoedit.catalog.models import FLASH_ALIAS, shipped_catalog

PROJECT = "my-project-123"
MODEL = shipped_catalog().resolve("gemini", FLASH_ALIAS).sent
TOKEN = api_key_for("vertex")


@pytest.fixture(autouse=True)
def no_cloud_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Google Cloud's own variables of the machine running the tests stay out."""
    for name in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION"):
        monkeypatch.delenv(name, raising=False)


def vertex_env(served: Served, **more: str) -> dict[str, str]:
    """Only the vertex backend, on the served sandbox, in the project ``PROJECT``."""
    return one_backend_env(served, "vertex") | {"GOOGLE_CLOUD_PROJECT": PROJECT} | more


def path_of(model: str, location: str = "global") -> str:
    return (
        f"/v1/projects/{PROJECT}/locations/{location}/publishers/google/models/{model}"
        ":generateContent"
    )


def test_a_generate_saves_the_image_from_the_project_route(served: Served) -> None:
    result = run_cli(
        ["generate", "-p", "a red fox", "--ratio", "16:9", "-o", "fox.png"], env=vertex_env(served)
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "fox.png\n"
    assert image_info("fox.png") == ("PNG", (1376, 768))
    (sent,) = posts(served)
    assert sent.path == path_of(MODEL)
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert "x-goog-api-key" not in sent.headers
    assert json.loads(sent.body) == {
        "contents": [{"role": "user", "parts": [{"text": "a red fox"}]}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "16:9"},
        },
    }


def test_an_edit_sends_the_image_inline(served: Served, sample: Path) -> None:
    result = run_cli(
        ["edit", str(sample), "-p", "make it a watercolor", "-o", "out.png"],
        env=vertex_env(served),
    )
    assert result.exit_code == 0, result.stderr
    assert image_info("out.png")[0] == "PNG"
    (sent,) = posts(served)
    parts = json.loads(sent.body)["contents"][0]["parts"]
    assert parts[0] == {"text": "make it a watercolor"}
    assert parts[1]["inlineData"]["mimeType"] == "image/png"
    assert base64.b64decode(parts[1]["inlineData"]["data"]) == sample.read_bytes()


def test_the_dry_run_shows_the_token_command_and_sends_nothing(served: Served) -> None:
    env = vertex_env(served, NANOEDIT_VERTEX_API_KEY_CMD="gcloud auth print-access-token")
    env["NANOEDIT_VERTEX_API_KEY"] = ""
    result = run_cli(["generate", "-p", "a fox", "-o", "x.png", "--dry-run"], env=env)
    assert result.exit_code == 0, result.stderr
    url = served.base_url + path_of(MODEL)
    assert (
        f'curl -sS -X POST {url} -H "Authorization: Bearer $(gcloud auth print-access-token)"'
        in result.stdout
    )
    assert received(served) == []


def test_config_check_reads_the_publisher_model(served: Served) -> None:
    result = run_cli(["config", "check", "--json"], env=vertex_env(served))
    assert result.exit_code == 0, result.stderr
    checked = {row["backend"]: row for row in json.loads(result.stdout)["backends"]}
    assert checked["vertex"]["status"] == "ready"
    assert checked["vertex"]["detail"] == f"{host(served)}, token accepted"
    (probe,) = received(served)
    assert probe.path == f"/v1/publishers/google/models/{MODEL}"


def test_an_expired_token_is_fetched_again_once(served: Served, tmp_path: Path) -> None:
    # The command prints an expired token first, then a fresh one: as gcloud does an hour on.
    counter = tmp_path / "calls"
    command = (
        f"n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; "
        f'if [ "$n" = 0 ]; then echo expired-token; else echo {TOKEN}; fi'
    )
    env = vertex_env(served, NANOEDIT_VERTEX_API_KEY_CMD=command)
    env["NANOEDIT_VERTEX_API_KEY"] = ""
    result = run_cli(["generate", "-p", "a fox", "-o", "fox.png"], env=env)
    assert result.exit_code == 0, result.stderr
    assert image_info("fox.png")[0] == "PNG"
    assert [r.headers["authorization"] for r in posts(served)] == [
        "Bearer expired-token",
        f"Bearer {TOKEN}",
    ]
    assert counter.read_text() == "2\n"


def test_a_wrong_token_is_a_configuration_error(served: Served) -> None:
    env = vertex_env(served, NANOEDIT_VERTEX_API_KEY="not-a-token")
    result = run_cli(["generate", "-p", "a fox", "-o", "fox.png"], env=env)
    assert result.exit_code == 3
    assert "Request had invalid authentication credentials" in result.stderr
    assert "[UNAUTHENTICATED]" in result.stderr
    assert not Path("fox.png").exists()


def test_a_wrong_project_says_what_to_check(served: Served) -> None:
    served.sandbox.add_faults("project-denied")
    result = run_cli(["generate", "-p", "a fox", "-o", "fox.png"], env=vertex_env(served))
    assert result.exit_code == 3
    assert (
        f"{host(served)} answered HTTP 403: Permission 'aiplatform.endpoints.predict' denied on "
        f"resource '//aiplatform.googleapis.com/projects/{PROJECT}/locations/global/publishers/"
        f"google/models/{MODEL}' (or it may not exist). [PERMISSION_DENIED]; check that "
        "vertex.project is the project's id (not its name)"
    ) in " ".join(result.stderr.split())


def test_a_location_without_the_model_says_so(served: Served) -> None:
    env = vertex_env(served, NANOEDIT_VERTEX_LOCATION="europe-west4")
    result = run_cli(["generate", "-p", "a fox", "-o", "fox.png"], env=env)
    assert result.exit_code == 5
    said = " ".join(result.stderr.split())
    assert f"Publisher Model `projects/{PROJECT}/locations/europe-west4/publishers/" in said
    assert (
        "the image models are served in the location global (vertex.location is europe-west4)"
        in said
    )
    assert posts(served)[0].path == path_of(MODEL, "europe-west4")


def test_no_project_sends_nothing(served: Served) -> None:
    # A server that is not on this machine (the sandbox's own name stands for Google's).
    env = one_backend_env(served, "vertex") | {
        "NANOEDIT_VERTEX_BASE_URL": "http://nanoedit-sandbox.invalid"
    }
    result = run_cli(["generate", "-p", "a fox", "-o", "fox.png"], env=env)
    assert result.exit_code == 3
    assert "the vertex backend has no Google Cloud project, so nothing was sent" in result.stderr
    assert posts(served) == []


def test_googles_own_client_gets_an_image_from_the_emulation(served: Served) -> None:
    from google import genai
    from google.genai import types
    from google.oauth2.credentials import Credentials

    client = genai.Client(
        vertexai=True,
        project=PROJECT,
        location="global",
        credentials=Credentials(token=TOKEN),  # type: ignore[no-untyped-call]
        http_options=types.HttpOptions(base_url=served.base_url, api_version="v1"),
    )
    answer = client.models.generate_content(
        model=MODEL,
        contents="a red fox",
        config=types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            image_config=types.ImageConfig(aspect_ratio="1:1", output_mime_type="image/png"),
        ),
    )
    images = [
        p.inline_data.data for p in answer.parts or [] if p.inline_data and p.inline_data.data
    ]
    # A thought's draft first, then the image: the parts Gemini's own route answers.
    assert image_info(images[-1])[1] == (1024, 1024)
    assert posts(served)[0].path == path_of(MODEL)
