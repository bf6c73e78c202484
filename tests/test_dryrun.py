"""The curl commands ``--dry-run`` prints for JSON bodies that carry images inline."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Served

from nanoedit.backends.base import PlannedRequest
from nanoedit.dryrun import curl_command
from nanoedit.sandbox import sample_image

needs_bash = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl and bash"
)


def feed_output(command: str) -> object:
    """Run the part of a printed command that builds the body; the JSON it prints."""
    feed, _, _ = command.partition(" |\n")
    env = {name: value for name, value in os.environ.items() if "proxy" not in name.lower()}
    done = subprocess.run(["bash", "-c", feed], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@needs_bash
def test_data_uri_placeholders_become_whole_data_uris_typed_by_the_bytes(
    served: Served, isolated: Path
) -> None:
    cat, dog = sample_image("cat.png")[0], sample_image("dog.jpg")[0]
    Path("cat.png").write_bytes(cat)
    # Named .png, but a JPEG: the bytes decide the type, as they decide what nanoedit sends.
    Path("dog.png").write_bytes(dog)
    url = f"{served.base_url}/samples/dog.jpg"
    request = PlannedRequest(
        "POST",
        "https://api.example/v1/chat",
        {"Authorization": "Bearer {key}"},
        json={
            "parts": [
                {"url": "@IMAGE1@"},
                {"raw": "@RAW@"},
                {"url": "@IMAGE2@"},
                {"url": "@IMAGE3@"},
            ],
        },
        inline_files=(("@RAW@", "cat.png"),),
        data_uris=(("@IMAGE1@", "cat.png"), ("@IMAGE2@", "dog.png"), ("@IMAGE3@", url)),
    )
    command = curl_command(request, "****")
    assert command.endswith(
        "} |\ncurl -sS -X POST https://api.example/v1/chat -H 'Authorization: Bearer ****' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        "  --data-binary @-"
    )
    cat64, dog64 = base64.b64encode(cat).decode(), base64.b64encode(dog).decode()
    assert feed_output(command) == {
        "parts": [
            {"url": f"data:image/png;base64,{cat64}"},
            {"raw": cat64},
            {"url": f"data:image/jpeg;base64,{dog64}"},
            {"url": f"data:image/jpeg;base64,{dog64}"},
        ]
    }


@pytest.mark.parametrize(
    ("location", "mime"),
    [
        ("https://cdn.example/a/b.webp?X-Expires=1#top", "image/webp"),
        ("https://cdn.example/render", "image/png"),
        ("missing.jpeg", "image/jpeg"),
    ],
)
def test_a_data_uri_of_a_url_or_an_unreadable_file_is_typed_by_its_name(
    location: str, mime: str
) -> None:
    body = {"u": "@1@"}
    request = PlannedRequest(
        "POST", "https://h.example/", {}, json=body, data_uris=(("@1@", location),)
    )
    command = curl_command(request, "****")
    assert command.startswith(f"{{ printf '%s' '{{\"u\": \"data:{mime};base64,'; ")
