"""OpenRouter carries a thread as chat history: what a ``--continue`` turn sends (every
earlier turn's user message, then the assistant message it was answered with, reasoning
details exactly as received, its image put back from the saved file), what each answer leaves
for the next turn, and the sandbox acting out what the real service does with such a history.

The turns here are sent by the backend itself, over real HTTP to the sandbox on a loopback
port, with the jobs built as ``--continue`` builds them (a Job with its Thread, a PreparedJob
with its history read)."""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import (
    OPENROUTER_KEY,
    Served,
    backend_env,
    edit_turn,
    host,
    journal_jobs,
    printed_command,
    run_cli,
    run_printed,
)
from PIL import Image, ImageChops

from nanoedit.backends.base import Answer, PlannedRequest, PreparedJob, PreparedTurn
from nanoedit.backends.openrouter import OpenRouterBackend
from nanoedit.errors import ApiError
from nanoedit.jobs import ImageSource, Job, Options, PastTurn, Thread, build_edit_jobs
from nanoedit.net.http import Deadline, JobHttp, RetryPolicy
from nanoedit.net.inputs import load_local
from nanoedit.output.parts import PartFile, PartFiles
from nanoedit.output.provenance import Provenance, embed
from nanoedit.run.dryrun import curl_command
from nanoedit.sandbox import sample_image
from nanoedit.sandbox.openrouter_chat import sign
from nanoedit.settings.values import BackendSettings

CHAT = "/api/v1/chat/completions"
FLASH = "google/gemini-nano-banana-2.1"
CAT, _ = sample_image("cat.png")
HAT, _ = sample_image("hat.png")
SAID = "Here is the edited image."
PRESERVING = (
    "https://openrouter.ai/docs/guides/best-practices/reasoning-tokens#preserving-reasoning-blocks"
)
SIGNATURES = "https://ai.google.dev/gemini-api/docs/thought-signatures#model-behavior"


def data_uri(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def chats(served: Served) -> list[Any]:
    return [r for r in served.sandbox.received if (r.method, r.path) == ("POST", CHAT)]


def send(
    served: Served,
    prepared: PreparedJob,
    notes: list[str] | None = None,
    *,
    spooled: bool = False,
) -> tuple[Answer, list[bytes]]:
    """Run the backend on ``prepared`` against the served sandbox: its answer, and each
    image's bytes as they were answered (``spooled``: streamed to part files out of the
    answer, as a run does)."""
    settings = BackendSettings("openrouter", f"{served.base_url}/api", OPENROUTER_KEY, FLASH)
    heard: list[str] = [] if notes is None else notes
    parts = PartFiles()
    spool = (lambda: PartFile(Path("spool"), "an image", parts)) if spooled else None
    with httpx.Client(trust_env=False) as client:
        http = JobHttp(client, RetryPolicy(), Deadline(60), notify=heard.append, spool=spool)
        answer = OpenRouterBackend(settings, http).run(prepared, lambda *_: None)
    return answer, [
        image.file.read_bytes() if image.file is not None else image.data or b""
        for image in answer.images
    ]


def save(answered: bytes, name: str, prompt: str) -> Path:
    """The image saved as a run saves it: its bytes copied with the provenance spliced in
    (so the file is not the bytes answered)."""
    Path("answered.jpg").write_bytes(answered)
    made = Provenance(prompt, FLASH, "openrouter", "auto", None, ())
    embed(Path("answered.jpg"), Path(name), "jpeg", made)
    return Path(name)


def first_turn(served: Served, prompt: str = "make it a watercolor") -> tuple[PastTurn, bytes]:
    """Job 1: cat.png edited afresh, its image saved as turn1.jpg; the turn as the journal
    keeps it, and the bytes answered."""
    Path("cat.png").write_bytes(CAT)
    [job] = build_edit_jobs(["cat.png"], [], Options(prompt=prompt), None)
    answer, [answered] = send(served, PreparedJob(job, FLASH, (load_local(job.images[0]),)))
    saved = save(answered, "turn1.jpg", prompt)
    [exchange] = answer.exchanges
    return PastTurn(1, "openrouter", FLASH, prompt, job.images, exchange, 1, saved), answered


def second_turn(served: Served, turn1: PastTurn) -> tuple[PastTurn, bytes]:
    """Job 2: job 1 continued, "now make it night", its image saved as turn2.jpg; the turn
    as the journal keeps it, and the bytes answered."""
    answer, [answered] = send(served, continued([turn1], "now make it night"))
    saved = save(answered, "turn2.jpg", "now make it night")
    [exchange] = answer.exchanges
    return PastTurn(2, "openrouter", FLASH, "now make it night", (), exchange, 1, saved), answered


def continued(
    turns: Sequence[PastTurn], prompt: str, refs: Sequence[str] = (), count: int = 1
) -> PreparedJob:
    """The next turn of ``turns`` as --continue makes it: its first image the last turn's
    result, the others added to it; the history with every earlier turn's images read."""
    parent = ImageSource(str(turns[-1].image))
    job = Job(
        kind="edit",
        images=(parent, *(ImageSource(ref) for ref in refs)),
        options=Options(prompt=prompt, count=count),
        stem="next",
        thread=Thread(tuple(turns)),
    )
    history = tuple(
        PreparedTurn(
            turn,
            tuple(load_local(source) for source in turn.inputs),
            load_local(ImageSource(str(turn.image))),
        )
        for turn in turns
    )
    uploads = tuple(load_local(source) for source in job.images)
    return PreparedJob(job, FLASH, uploads, history=history)


def answered_message(answered: bytes, saved: Path) -> dict[str, Any]:
    """The assistant message of an answer as a later turn sends it back: as the sandbox
    answered it, the image's URL the saved file's bytes."""
    return {
        "role": "assistant",
        "refusal": None,
        "reasoning": None,
        "content": SAID,
        "images": [
            {"type": "image_url", "image_url": {"url": data_uri(saved.read_bytes())}, "index": 0}
        ],
        "reasoning_details": [
            {
                "type": "reasoning.encrypted",
                "data": sign(answered),
                "format": "google-gemini-v1",
                "index": 0,
            }
        ],
    }


def user(prompt: str, *images: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    content += [{"type": "image_url", "image_url": {"url": url}} for url in images]
    return {"role": "user", "content": content}


def pixels(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


# What each turn sends --------------------------------------------------------------------


def test_each_turn_sends_every_earlier_turn_then_its_own(served: Served) -> None:
    turn1, answered1 = first_turn(served)
    turn2, answered2 = second_turn(served, turn1)
    saved2 = turn2.image
    Path("hat.png").write_bytes(HAT)
    send(served, continued([turn1, turn2], "give the cat this hat", ["hat.png"]))
    # A branch: job 1 continued again, with another prompt; job 2 is no part of it.
    send(served, continued([turn1], "now make it a sketch"))

    first, second, third, branch = (post.json for post in chats(served))
    assert first["messages"] == [user("make it a watercolor", data_uri(CAT, "image/png"))]
    assert second == {
        "model": FLASH,
        "messages": [
            user("make it a watercolor", data_uri(CAT, "image/png")),
            answered_message(answered1, Path("turn1.jpg")),
            user("now make it night"),
        ],
        "modalities": ["image", "text"],
    }
    assert third["messages"] == [
        user("make it a watercolor", data_uri(CAT, "image/png")),
        answered_message(answered1, Path("turn1.jpg")),
        user("now make it night"),
        answered_message(answered2, saved2),
        user("give the cat this hat", data_uri(HAT, "image/png")),
    ]
    assert branch["messages"] == [*second["messages"][:2], user("now make it a sketch")]
    # The saved files are what goes back, not the bytes answered: they hold the provenance.
    assert Path("turn1.jpg").read_bytes() != answered1
    assert pixels(Path("turn1.jpg").read_bytes()).tobytes() == pixels(answered1).tobytes()


def test_each_answer_is_kept_as_an_exchange_numbered_by_its_result(served: Served) -> None:
    turn1, answered1 = first_turn(served)
    answer, answered = send(served, continued([turn1], "now make it night", count=2))
    assert len(chats(served)) == 3
    # The second turn's two requests were the same: the same history, the same prompt.
    assert chats(served)[1].json == chats(served)[2].json
    assert turn1.exchange == {
        "api": "chat",
        "images": [1],
        "model": {
            "role": "assistant",
            "refusal": None,
            "reasoning": None,
            "content": SAID,
            "images": [
                {"type": "image_url", "image_url": {"url": {"nanoedit_result": 1}}, "index": 0}
            ],
            "reasoning_details": [
                {"type": "reasoning.encrypted", "data": sign(answered1),
                 "format": "google-gemini-v1", "index": 0}
            ],
        },
    }  # fmt: skip
    assert [exchange["images"] for exchange in answer.exchanges] == [[1], [2]]
    assert [
        exchange["model"]["images"][0]["image_url"]["url"] for exchange in answer.exchanges
    ] == [
        {"nanoedit_result": 1},
        {"nanoedit_result": 2},
    ]
    assert [exchange["model"]["reasoning_details"][0]["data"] for exchange in answer.exchanges] == [
        sign(image) for image in answered
    ]


def test_an_answer_streamed_to_a_file_is_kept_as_the_same_exchange(served: Served) -> None:
    Path("cat.png").write_bytes(CAT)
    # At 2K the answer is long enough to be streamed (a short one is read whole).
    options = Options(prompt="make it a watercolor", size="2K")
    [job] = build_edit_jobs(["cat.png"], [], options, None)
    prepared = PreparedJob(job, FLASH, (load_local(job.images[0]),))
    in_memory, [answered] = send(served, prepared)
    streamed, [spooled] = send(served, prepared, spooled=True)
    # A run streams the image out of the answer into a part file; the signature stays.
    assert streamed.images[0].file is not None and streamed.images[0].data is None
    assert spooled == answered
    assert streamed.exchanges == in_memory.exchanges
    [exchange] = streamed.exchanges
    assert exchange["model"]["images"][0]["image_url"]["url"] == {"nanoedit_result": 1}
    assert exchange["model"]["reasoning_details"][0]["data"] == sign(answered)


def test_a_turn_that_kept_no_chat_answer_goes_as_its_image_and_is_named_once(
    served: Served,
) -> None:
    turn1, _ = first_turn(served)
    # Job 1 made through Gemini's own API (its exchange is of another api), job 2 by an
    # OpenRouter job that kept no answer (an older nanoedit): neither can be sent as an answer.
    generated = {"api": "generate_content", "images": [1], "model": [{"text": "x"}]}
    elsewhere = PastTurn(1, "gemini", "gemini-3-pro-image", "make it a watercolor",
                         turn1.inputs, generated, 1, turn1.image)  # fmt: skip
    older = PastTurn(2, "openrouter", FLASH, "now make it night", (), None, 1, turn1.image)
    notes: list[str] = []
    send(served, continued([elsewhere, older], "now make it a sketch"), notes)
    saved = data_uri(turn1.image.read_bytes())
    assert chats(served)[-1].json["messages"] == [
        user("make it a watercolor", data_uri(CAT, "image/png")),
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": saved}}]},
        user("now make it night"),
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": saved}}]},
        user("now make it a sketch"),
    ]
    assert notes == [
        "jobs 1, 2 of the thread kept no OpenRouter chat answer (another backend made it, or an "
        "older nanoedit): the model sees its prompt and image, not its reasoning"
    ]


# What the sandbox does with a history -----------------------------------------------------


def reuploaded(served: Served, saved: Path, prompt: str) -> bytes:
    """The image a plain edit of ``saved`` (no thread) is answered with."""
    [plain] = build_edit_jobs([str(saved)], [], Options(prompt=prompt), None)
    _, [image] = send(served, PreparedJob(plain, FLASH, (load_local(plain.images[0]),)))
    # The re-upload sent the same image and prompt, in one message.
    assert chats(served)[-1].json["messages"] == [user(prompt, data_uri(saved.read_bytes()))]
    return image


def marks(continued: bytes, alone: bytes) -> tuple[int, int, int, int]:
    """Where a continued turn's image differs from the same edit sent alone: the box of the
    marks of the earlier turns, which must be all of the difference."""
    continued_image, alone_image = pixels(continued), pixels(alone)
    assert continued_image.size == alone_image.size == (1200, 896)
    box = ImageChops.difference(continued_image, alone_image).getbbox()
    assert box is not None, "the continued image is the re-upload's"
    # Along the top left corner, the rest of the picture as the re-upload's.
    assert box[2] < 1200 // 2 and box[3] < 896 // 8, box
    return box


def test_a_continued_image_differs_from_a_re_upload_of_the_last_one(served: Served) -> None:
    turn1, _ = first_turn(served)
    _, [again] = send(served, continued([turn1], "now make it night"))
    marks(again, reuploaded(served, turn1.image, "now make it night"))


def test_a_third_turn_shows_one_more_earlier_turn_than_the_second(served: Served) -> None:
    turn1, _ = first_turn(served)
    turn2, answered2 = second_turn(served, turn1)
    saved2 = turn2.image
    _, [third] = send(served, continued([turn1, turn2], "now make it night"))
    second_marks = marks(answered2, reuploaded(served, turn1.image, "now make it night"))
    third_marks = marks(third, reuploaded(served, saved2, "now make it night"))
    # One mark more: the box reaches further right, by at least a mark's width.
    assert third_marks[2] > second_marks[2] + 1200 // 40, (second_marks, third_marks)


def post_chat(served: Served, body: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {OPENROUTER_KEY}"}
    with httpx.Client(trust_env=False) as client:
        return client.post(f"{served.base_url}{CHAT}", json=body, headers=headers)


def test_a_history_stripped_of_its_reasoning_details_is_refused_as_google_refuses_it(
    served: Served,
) -> None:
    turn1, _ = first_turn(served)
    stripped = copy.deepcopy(turn1.exchange)
    assert stripped is not None
    del stripped["model"]["reasoning_details"]
    turn = PastTurn(1, "openrouter", FLASH, turn1.prompt, turn1.inputs, stripped, 1, turn1.image)
    with pytest.raises(ApiError) as refused:
        send(served, continued([turn], "now make it night"))
    upstream = (
        "Image part is missing a thought_signature in content position 2, part position 2. "
        f"Please refer to {SIGNATURES} for more details."
    )
    assert refused.value.message == (
        f"127.0.0.1:{served.base_url.rsplit(':', 1)[1]} answered HTTP 400: Provider returned "
        f"error (Google AI Studio: {upstream}); the chat history sent lacks the reasoning details "
        "(Gemini's thought signatures) the model gave with an earlier image of the thread, or "
        "they were changed since: continue from a turn made by this backend, or edit the image "
        "without --continue"
    )
    assert refused.value.exit_code == 5
    # Sent once: a refusal is not retried.
    assert len(chats(served)) == 2
    # On the wire, OpenRouter's advice before Google's own error JSON.
    answer = post_chat(served, chats(served)[-1].json)
    assert (answer.status_code, answer.json()) == (400, {"error": {
        "code": 400,
        "message": "Provider returned error",
        "metadata": {
            "raw": "Gemini models require OpenRouter reasoning details to be preserved in each "
            f"request. Please refer to our docs: {PRESERVING}. Upstream error: "
            + json.dumps({"error": {"code": 400, "message": upstream,
                                    "status": "INVALID_ARGUMENT"}}, indent=2) + "\n",
            "provider_name": "Google AI Studio",
        },
    }})  # fmt: skip


def test_an_altered_signature_is_refused_as_corrupted(served: Served) -> None:
    turn1, _ = first_turn(served)
    assert turn1.exchange is not None
    body = copy.deepcopy(chats(served)[0].json)
    message = copy.deepcopy(turn1.exchange["model"])
    message["images"][0]["image_url"]["url"] = data_uri(turn1.image.read_bytes())
    signature = base64.b64decode(message["reasoning_details"][0]["data"])
    message["reasoning_details"][0]["data"] = base64.b64encode(
        bytes([signature[0] ^ 1]) + signature[1:]
    ).decode()
    body["messages"] += [message, user("now make it night")]
    answer = post_chat(served, body)
    assert (answer.status_code, answer.json()) == (400, {"error": {
        "code": 400,
        "message": "Provider returned error",
        "metadata": {
            "raw": '{\n  "error": {\n    "code": 400,\n    "message": "Corrupted thought '
                   'signature.",\n    "status": "INVALID_ARGUMENT"\n  }\n}\n',
            "provider_name": "Google AI Studio",
        },
    }})  # fmt: skip
    # Sent back unchanged, the same history is answered.
    altered = message["reasoning_details"]
    message["reasoning_details"] = copy.deepcopy(turn1.exchange["model"]["reasoning_details"])
    assert post_chat(served, body).status_code == 200
    # A journal entry altered since: the turn fails with Google's words and what to do.
    kept = copy.deepcopy(turn1.exchange)
    kept["model"]["reasoning_details"] = altered
    turn = PastTurn(1, "openrouter", FLASH, turn1.prompt, turn1.inputs, kept, 1, turn1.image)
    with pytest.raises(ApiError) as refused:
        send(served, continued([turn], "now make it night"))
    assert refused.value.message == (
        f"127.0.0.1:{served.base_url.rsplit(':', 1)[1]} answered HTTP 400: Provider returned "
        "error (Google AI Studio: Corrupted thought signature.); the chat history sent lacks the "
        "reasoning details (Gemini's thought signatures) the model gave with an earlier image of "
        "the thread, or they were changed since: continue from a turn made by this backend, or "
        "edit the image without --continue"
    )


# --dry-run --------------------------------------------------------------------------------


def planned(served: Served) -> tuple[PastTurn, bytes, PreparedJob, PlannedRequest]:
    """A first turn sent, and the request a dry run of the next turn (adding hat.png) shows."""
    turn1, answered1 = first_turn(served)
    Path("hat.png").write_bytes(HAT)
    prepared = continued([turn1], "give the cat this hat", ["hat.png"])
    settings = BackendSettings("openrouter", f"{served.base_url}/api", OPENROUTER_KEY, FLASH)
    backend = OpenRouterBackend(settings, JobHttp(None, RetryPolicy(), Deadline(60)))
    # A dry run reads no image: the thread's records alone.
    [request] = backend.plan(PreparedJob(prepared.job, FLASH))
    return turn1, answered1, prepared, request


def test_a_dry_run_shows_the_history_request_piped_from_the_files(served: Served) -> None:
    turn1, answered1, _, request = planned(served)
    assert request.data_uris == (
        ("@nanoedit-image-1@", "cat.png"),
        ("@nanoedit-image-2@", "turn1.jpg"),
        ("@nanoedit-image-3@", "hat.png"),
    )
    assert request.json["messages"] == [
        user("make it a watercolor", "@nanoedit-image-1@"),
        {**answered_message(answered1, turn1.image), "images": [
            {"type": "image_url", "image_url": {"url": "@nanoedit-image-2@"}, "index": 0}]},
        user("give the cat this hat", "@nanoedit-image-3@"),
    ]  # fmt: skip
    assert request.note == ""
    assert len(chats(served)) == 1  # the first turn's: planning sent nothing


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl and bash"
)
def test_the_printed_history_command_sends_what_the_turn_sends(served: Served) -> None:
    _, _, prepared, request = planned(served)
    env = {name: value for name, value in os.environ.items() if "proxy" not in name.lower()}
    done = subprocess.run(["bash", "-c", curl_command(request, OPENROUTER_KEY)],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["choices"][0]["message"]["images"]
    send(served, prepared)
    by_curl, by_nanoedit = chats(served)[-2:]
    assert by_curl.json == by_nanoedit.json


# Fidelity: the vendor's own client ----------------------------------------------------------


def test_the_openai_client_continues_a_chat_and_gets_an_image_back(served: Served) -> None:
    with (
        openai.DefaultHttpxClient(trust_env=False) as http,
        openai.OpenAI(base_url=f"{served.base_url}/api/v1", api_key=OPENROUTER_KEY,
                      max_retries=0, http_client=http) as client,
    ):  # fmt: skip
        asked: list[Any] = [{"role": "user", "content": [
            {"type": "text", "text": "make it a watercolor"},
            {"type": "image_url", "image_url": {"url": data_uri(CAT, "image/png")}},
        ]}]  # fmt: skip
        extra = {"modalities": ["image", "text"]}
        first = client.chat.completions.create(model=FLASH, messages=asked, extra_body=extra)
        message = first.choices[0].message
        # The SDK keeps OpenRouter's fields it has no name for as extras: sent back as they are.
        kept = message.model_extra or {}
        asked += [
            {"role": "assistant", "content": message.content, "images": kept["images"],
             "reasoning_details": kept["reasoning_details"]},
            {"role": "user", "content": "now make it night"},
        ]  # fmt: skip
        second = client.chat.completions.create(model=FLASH, messages=asked, extra_body=extra)
    made = second.choices[0].message.model_extra or {}
    [image] = made["images"]
    drawn = pixels(base64.b64decode(image["image_url"]["url"].partition(",")[2]))
    assert drawn.size == (1200, 896)
    assert [detail["type"] for detail in made["reasoning_details"]] == ["reasoning.encrypted"]
    assert second.choices[0].message.content == SAID
    # The history reached the sandbox as the SDK was given it.
    post = chats(served)[-1].json
    assert [m["role"] for m in post["messages"]] == ["user", "assistant", "user"]
    assert post["messages"][1]["reasoning_details"] == kept["reasoning_details"]


# End to end: edit --continue on the command line -------------------------------------------


def answered_bytes(saved: Path) -> bytes:
    """The image as the sandbox answered it: the saved JPEG without the XMP segment a run
    splices in (every other byte is copied as it came)."""
    data = saved.read_bytes()
    kept, at = bytearray(data[:2]), 2
    while data[at] == 0xFF and data[at + 1] not in (0xDA, 0xD9):
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        segment = data[at : at + 2 + length]
        if not (data[at + 1] == 0xE1 and segment[4:].startswith(b"http://ns.adobe.com/xap/1.0/")):
            kept += segment
        at += 2 + length
    return bytes(kept + data[at:])


def first_on_the_command_line(served: Served) -> dict[str, str]:
    """The first turn, cat.png made a watercolor by openrouter, saved as cat-edit.jpg (openai
    and duomi are set up too); the environment of the runs."""
    env = backend_env(served, openrouter=True)
    first = ["cat.png", "-p", "make it a watercolor", "--backend", "openrouter"]
    assert edit_turn(first, env) == "cat-edit.jpg"
    return env


def test_a_three_turn_thread_with_a_branch_at_turn_two_on_the_command_line(
    served: Served, sample: Path
) -> None:
    env = first_on_the_command_line(served)
    # The next turns stay on the thread's backend, though openai and duomi are set up too.
    second = edit_turn(["@last", "-p", "now make it night", "--continue"], env)
    Path("hat.png").write_bytes(HAT)
    third = edit_turn(
        ["@last", "-p", "give the cat this hat", "--ref", "hat.png", "--continue"], env
    )
    # A branch: turn 1 continued again, with another prompt.
    branch = edit_turn(["@1", "-p", "now make it a sketch", "--continue"], env)
    saved = [Path(path) for path in ("cat-edit.jpg", second, third, branch)]
    assert [path.name for path in saved] == [
        "cat-edit.jpg", "cat-edit-edit.jpg", "cat-edit-edit-edit.jpg", "cat-edit-edit-2.jpg"
    ]  # fmt: skip
    assert {host(served)} == {post.headers["host"] for post in chats(served)}
    sent = [post.json["messages"] for post in chats(served)]
    assert len(sent) == 4
    turn1 = [
        user("make it a watercolor", data_uri(CAT, "image/png")),
        answered_message(answered_bytes(saved[0]), saved[0]),
    ]
    turn2 = [user("now make it night"), answered_message(answered_bytes(saved[1]), saved[1])]
    assert sent[0] == [turn1[0]]
    assert sent[1] == [*turn1, user("now make it night")]
    assert sent[2] == [*turn1, *turn2, user("give the cat this hat", data_uri(HAT, "image/png"))]
    assert sent[3] == [*turn1, user("now make it a sketch")]
    # What the journal keeps of each answer: the message as it came, its image by number.
    for job, path in zip(journal_jobs(), saved, strict=True):
        kept = answered_message(answered_bytes(path), path)
        kept["images"][0]["image_url"]["url"] = {"nanoedit_result": 1}
        assert job.exchanges == ({"api": "chat", "images": [1], "model": kept},)


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl and bash"
)
def test_the_dry_run_of_a_continued_turn_prints_the_request_the_turn_sends(
    served: Served, sample: Path
) -> None:
    env = first_on_the_command_line(served)
    args = ["edit", "@last", "-p", "now make it night", "--continue"]
    printed = run_cli([*args, "--dry-run"], env=env)
    assert printed.exit_code == 0, printed.stderr
    assert len(chats(served)) == 1
    answer = run_printed(printed_command(printed.stdout, OPENROUTER_KEY))
    assert answer["choices"][0]["message"]["images"]
    assert run_cli(args, env=env).exit_code == 0
    by_curl, by_nanoedit = chats(served)[1:]
    assert by_curl.json == by_nanoedit.json
    assert [message["role"] for message in by_curl.json["messages"]] == [
        "user", "assistant", "user"
    ]  # fmt: skip
