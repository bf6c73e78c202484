"""The curl commands ``--dry-run`` prints for JSON bodies that carry images inline."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import OPENAI_KEY, Served, backend_env, wait_for
from PIL import Image
from readme_help import README

from nanoedit.backends.base import PlannedRequest
from nanoedit.run.dryrun import curl_command
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


# Hostile names ------------------------------------------------------------------------------

NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
# Names anyone can give a file, each trying another way out of a printed command: a newline
# out of the `# NAME -> ...` comment, command substitution, quotes, what curl's -F reads as the
# end of a file name (; and ,), escapes, spaces curl strips, a leading dash, bytes that are not
# UTF-8, a terminal escape, a bidirectional override and a name near the file system's limit.
HOSTILE = (
    b"x\ntouch INJECTED\n.png",
    b"$(touch SUBST).png",
    b"`touch TICK`.png",
    b'it\'s "q".png',
    b"semi;type=text.jpg",
    b"a,b.png",
    b'back\\slash\\".png',
    b'"lead.png',
    b"-dash.png",
    b" spaced .png",
    b"\xffbad\xfe.png",
    b"\x1b[31mred\r.png",
    b"\xe2\x80\xaeevil.png",
    b"L" * 240 + b".png",
)
# A prompt as hostile, for the text fields.
HOSTILE_PROMPT = 'it\'s $(touch PROMPT) `touch TICK2` "q"\n; \\ @x'
# What records each call of the curl that a test puts first on PATH: its arguments, each
# ended by NUL, then what it read from stdin when told @- (as curl reads it only then), then a
# line that ends the call; written at once, so calls that overlap in a pipeline stay whole.
STUB = """#!/bin/sh
call=$(mktemp)
printf '%s\\0' "$@" > "$call"
for arg; do
  if [ "$arg" = @- ]; then printf 'stdin:' >> "$call"; cat >> "$call"; printf '\\0' >> "$call"; fi
done
printf '%s\\n' ---end-of-call--- >> "$call"
cat "$call" >> "$CURL_LOG"
rm -f "$call"
"""


def hostile_folder(work: Path) -> dict[bytes, bytes]:
    """A folder ``d`` holding an image under every hostile name, each image different (its
    colour), so an upload tells which file it came from; the path of each, to its bytes."""
    folder = work / "d"
    folder.mkdir()
    images = {}
    for number, name in enumerate(HOSTILE):
        out = io.BytesIO()
        Image.new("RGB", (8, 8), (number * 16, 255 - number * 16, 7)).save(out, format="PNG")
        path = os.path.join(os.fsencode(folder), name)
        with open(path, "wb") as handle:
            handle.write(out.getvalue())
        images[b"d/" + name] = out.getvalue()
    return images


def curl_reads(form: bytes) -> bytes:
    """The file curl 7.x uploads for ``-F image=@...``, parsed as its tool_formparse.c does:
    a double-quoted name up to its closing quote, with \\" and \\\\ escaped; a bare one up to
    ; or , with its spaces stripped. Anything after the name is refused here."""
    assert form.startswith(b"image=@"), form
    rest = form[len(b"image=@") :].lstrip(b" \t\r\n\f\v")
    if not rest.startswith(b'"'):
        assert b";" not in rest and b"," not in rest, form
        return rest.rstrip(b" \t\r\n\f\v")
    name = bytearray()
    position = 1
    while rest[position : position + 1] != b'"':
        if rest[position : position + 1] == b"\\" and rest[position + 1 : position + 2] in (
            b"\\",
            b'"',
        ):
            position += 1
        name += rest[position : position + 1]
        position += 1
    assert rest[position + 1 :] == b"", form
    return bytes(name)


def dry_run_output(args: list[str], env: dict[str, str] | None = None) -> bytes:
    """The installed command's dry run, with stdout encoded strictly as UTF-8: text that needs
    anything else to be printed fails the run."""
    done = subprocess.run(
        [NANOEDIT, *args, "--dry-run"],
        capture_output=True,
        env=dict(os.environ) | (env or {}) | {"PYTHONIOENCODING": "utf-8:strict"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def stub_curl(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A PATH whose curl only records its arguments, and the file it records them in."""
    bin_dir = tmp_path / "stub-bin"
    bin_dir.mkdir()
    stub = bin_dir / "curl"
    stub.write_text(STUB)
    stub.chmod(0o755)
    log = tmp_path / "curl.log"
    env = dict(os.environ) | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return env | {"CURL_LOG": str(log)}, log


def curl_calls(log: Path) -> list[list[bytes]]:
    """Each recorded call of the stub curl: its arguments."""
    calls = log.read_bytes().split(b"---end-of-call---\n")
    assert calls[-1] == b""
    return [call.split(b"\0")[:-1] for call in calls[:-1]]


def test_a_dry_run_of_hostile_names_piped_into_sh_runs_curl_alone_with_the_real_paths(
    isolated: Path, tmp_path: Path
) -> None:
    images = hostile_folder(isolated)
    printed = dry_run_output(["edit", "d", "-p", HOSTILE_PROMPT, "--sandbox"])
    printed.decode("utf-8")  # plain text: a terminal shows it as it is
    assert all(byte >= 0x20 or byte == 0x0A for byte in printed)  # no escape reaches it
    env, log = stub_curl(tmp_path)
    checked = subprocess.run(["sh", "-n"], input=printed, capture_output=True, timeout=30)
    assert (checked.returncode, checked.stderr) == (0, b"")
    ran = subprocess.run(["sh"], input=printed, capture_output=True, env=env, timeout=30)
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, b"", b"")
    # Nothing ran but curl: no file appeared, and every call is one job's request.
    assert sorted(os.listdir(isolated)) == ["d"]
    assert sorted(os.listdir(os.fsencode(isolated / "d"))) == sorted(HOSTILE)
    calls = curl_calls(log)
    assert len(calls) == len(HOSTILE)
    fields = [b"model=nano-banana-2", b"prompt=" + HOSTILE_PROMPT.encode(), b"n=1",
              b"response_format=url"]  # fmt: skip
    head = [b"-sS", b"-X", b"POST", b"http://nanoedit-sandbox.invalid/v1/images/edits", b"-H",
            b"Authorization: Bearer ****"]  # fmt: skip
    for field in fields:
        head += [b"--form-string", field]
    assert [call[:-2] for call in calls] == [head] * len(HOSTILE)
    assert {call[-2] for call in calls} == {b"-F"}
    assert sorted(curl_reads(call[-1]) for call in calls) == sorted(images)


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_real_curl_uploads_each_hostile_file_as_the_dry_run_printed_it(
    served: Served, isolated: Path
) -> None:
    images = hostile_folder(isolated)
    printed = dry_run_output(["edit", "d", "-p", HOSTILE_PROMPT], backend_env(served))
    command = printed.replace(b"****0001", OPENAI_KEY.encode())
    env = {name: value for name, value in os.environ.items() if "proxy" not in name.lower()}
    ran = subprocess.run(["sh"], input=command, capture_output=True, env=env, timeout=60)
    assert ran.returncode == 0, ran.stderr
    posted = [request for request in served.sandbox.received if request.method == "POST"]
    assert len(posted) == len(HOSTILE)
    assert [request.fields["prompt"] for request in posted] == [[HOSTILE_PROMPT]] * len(HOSTILE)
    uploads = [file.data for request in posted for file in request.files]
    assert sorted(uploads) == sorted(images.values())
    assert sorted(os.listdir(isolated)) == ["d"]


# A model id, an -o name, a prompt and a reference URL as hostile as the names above: each
# reaches a comment, a URL curl would expand ({a,b} and [1-2] are its patterns), a JSON body
# or a file name curl parses.
HOSTILE_MODEL = "m\ntouch MODEL\n{a,b}[1-2] $(touch M2)"
HOSTILE_OUTPUT = "o\ntouch OUT\n.png"
HOSTILE_URL = "https://h.example/a;b,\"c$(touch U)/x y;z'.png?q=[1]"
HOSTILE_INPUT = "x\ntouch INJECTED\n.png"
BASE = "https://api.example"


def hostile_run(backend: str, tmp_path: Path) -> tuple[bytes, list[list[bytes]]]:
    """The dry run of one job full of hostile text on ``backend``, and the two calls its
    commands made of the stub curl once bash ran them."""
    Path(HOSTILE_INPUT).write_bytes(sample_image("cat.png")[0])
    name = backend.upper()
    env = {f"NANOEDIT_{name}_API_KEY": "k", f"NANOEDIT_{name}_BASE_URL": BASE}
    args = ["edit", HOSTILE_INPUT, "--ref", HOSTILE_URL, "-p", HOSTILE_PROMPT, "-m",
            HOSTILE_MODEL, "-o", HOSTILE_OUTPUT, "--backend", backend]  # fmt: skip
    printed = dry_run_output(args, env)
    stub_env, log = stub_curl(tmp_path)
    checked = subprocess.run(["bash", "-n"], input=printed, capture_output=True, timeout=30)
    assert (checked.returncode, checked.stderr) == (0, b"")
    ran = subprocess.run(
        ["bash", "-c", printed], stdin=subprocess.DEVNULL, capture_output=True, env=stub_env,
        timeout=30,
    )  # fmt: skip
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, b"", b"")
    # A URL fetched inside bash's <(...) may end after bash: wait for its call to be written.
    wait_for(lambda: log.exists() and len(curl_calls(log)) == 2, "both calls of curl")
    assert sorted(os.listdir(".")) == [HOSTILE_INPUT]
    return printed, curl_calls(log)


def test_hostile_text_stays_in_its_comment_on_the_multipart_backend(tmp_path: Path) -> None:
    printed, calls = hostile_run("openai", tmp_path)
    assert printed.decode().splitlines()[0] == (
        r"# x\ntouch INJECTED\n.png -> o\ntouch OUT\n.png (openai, m\ntouch MODEL\n{a,b}[1-2] "
        r"$(touch M2))"
    )
    fetch = [b"-sSL", b"-g", HOSTILE_URL.encode()]
    (post,) = [call for call in calls if call != fetch]
    assert calls.count(fetch) == 1
    fields = [f"model={HOSTILE_MODEL}", f"prompt={HOSTILE_PROMPT}", "n=1", "response_format=url"]
    expected = ["-sS", "-X", "POST", f"{BASE}/v1/images/edits", "-H", "Authorization: Bearer ****"]
    for field in fields:
        expected += ["--form-string", field]
    expected += ["-F", f'image=@"{HOSTILE_INPUT}"', "-F"]
    assert post[:-1] == [word.encode() for word in expected]
    # bash's <(...) is a /dev/fd path; the name sent for it is quoted for curl's -F.
    fd, _, filename = post[-1].removeprefix(b"image=@/dev/fd/").partition(b";")
    assert (fd.isdigit(), filename) == (True, b'filename="x y;z\'.png"')


def test_hostile_text_reaches_curl_exactly_on_a_json_backend(tmp_path: Path) -> None:
    printed, calls = hostile_run("gemini", tmp_path)
    assert printed.decode().splitlines()[0] == (
        r"# x\ntouch INJECTED\n.png -> o\ntouch OUT\n.png (gemini, m\ntouch MODEL\n{a,b}[1-2] "
        r"$(touch M2))"
    )
    fetch, post = calls
    assert fetch == [b"-sSL", b"-g", HOSTILE_URL.encode()]
    url = f"{BASE}/v1beta/models/{HOSTILE_MODEL}:generateContent"
    head = ["-sS", "-X", "POST", "-g", url, "-H", "x-goog-api-key: ****", "-H",
            "Content-Type: application/json", "--data-binary", "@-"]  # fmt: skip
    assert post[:-1] == [word.encode() for word in head]
    cat = base64.b64encode(sample_image("cat.png")[0]).decode()
    # The stub's fetch printed nothing, so the reference's data is empty.
    assert json.loads(post[-1].removeprefix(b"stdin:"))["contents"][0]["parts"] == [
        {"text": HOSTILE_PROMPT},
        {"inlineData": {"mimeType": "image/png", "data": cat}},
        {"inlineData": {"mimeType": "image/png", "data": ""}},
    ]


def test_hostile_text_stays_out_of_the_commands_in_notes(tmp_path: Path) -> None:
    printed, calls = hostile_run("fal", tmp_path)
    lines = printed.decode().splitlines()
    notes = [line for line in lines if line.startswith("#")]
    assert notes == [
        r"# x\ntouch INJECTED\n.png -> o\ntouch OUT\n.png (fal, m\ntouch MODEL\n{a,b}[1-2] "
        r"$(touch M2))",
        r"# then send the file to the upload_url it answers (no key): curl -sS -X PUT -H "
        r"'Content-Type: image/png' --data-binary @'x\ntouch INJECTED\n.png' UPLOAD_URL; its "
        r"file_url is FILE_URL_1 below",
        "# then poll GET the status_url it answers until COMPLETED, then GET its response_url",
    ]
    upload = {"content_type": "image/png", "file_name": HOSTILE_INPUT}
    submit = {"prompt": HOSTILE_PROMPT, "image_urls": ["FILE_URL_1", HOSTILE_URL],
              "num_images": 1, "output_format": "png"}  # fmt: skip
    json_head = ["-H", "Authorization: Key ****", "-H", "Content-Type: application/json", "-d"]
    assert calls == [
        [word.encode() for word in ["-sS", "-X", "POST",
         f"{BASE}/storage/upload/initiate?storage_type=fal-cdn-v3", *json_head,
         json.dumps(upload, ensure_ascii=False)]],
        [word.encode() for word in ["-sS", "-X", "POST", "-g", f"{BASE}/{HOSTILE_MODEL}",
         *json_head, json.dumps(submit, ensure_ascii=False)]],
    ]  # fmt: skip


def test_the_readmes_dry_run_piped_into_sh_runs_curl_and_nothing_else(
    served: Served, isolated: Path, tmp_path: Path
) -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    found = re.search(r"so `([^`]+\| sh)` runs curl and nothing else, whatever the files are", text)
    assert found, "the README no longer says a dry run piped into sh runs only curl"
    folder = re.search(r"nanoedit edit (\S+)/ ", found.group(1))
    assert folder
    images = hostile_folder(isolated)
    os.rename("d", folder.group(1))
    env, log = stub_curl(tmp_path)
    env["PATH"] += os.pathsep + str(Path(NANOEDIT).parent)
    env |= backend_env(served) | {"PYTHONIOENCODING": "utf-8:strict"}
    ran = subprocess.run(["sh", "-c", found.group(1)], capture_output=True, env=env, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert sorted(os.listdir(isolated)) == [folder.group(1)]
    calls = curl_calls(log)
    assert sorted(curl_reads(call[-1]) for call in calls) == sorted(
        name.replace(b"d/", folder.group(1).encode() + b"/", 1) for name in images
    )
    assert served.sandbox.received == []
