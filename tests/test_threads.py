"""Threads: ``edit --continue`` goes on from an earlier result as the next turn of its thread.

Every turn is a real run against the served sandbox; what each request carried is read from
the sandbox's log, and what the sandbox answered is had again by sending the logged request
once more (its drawings and signatures are deterministic)."""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    GEMINI_KEY,
    JOURNAL_VERSION_1,
    Served,
    api_key_for,
    edit_turn,
    journal_jobs,
    one_backend_env,
    paid,
    run_cli,
    wait_for,
)
from PIL import Image, ImageChops

from nanoedit.journal.store import SCHEMA_VERSION, Journal, data_dir
from nanoedit.sandbox import ReceivedRequest, sample_image

CAT = sample_image("cat.png")[0]
HAT = sample_image("hat.png")[0]
PRO = "gemini-3-pro-image"
GENERATE = f"/v1beta/models/{PRO}:generateContent"
NANOEDIT = str(Path(sys.executable).with_name("nanoedit"))
# Google's words (issue threads) for a history whose image of the model's lost its signature.
MISSING = (
    "Image part is missing a thought_signature in content position {c}, part position {p}. "
    "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures#model-behavior "
    "for more details."
)


def gemini(served: Served) -> dict[str, str]:
    return one_backend_env(served, "gemini")


def roles(request: ReceivedRequest) -> list[str]:
    return [content["role"] for content in request.json["contents"]]


def inline(part: dict[str, Any]) -> bytes:
    return base64.b64decode(part["inlineData"]["data"])


def answered(served: Served, request: ReceivedRequest) -> list[dict[str, Any]]:
    """The parts (thoughts left out) the sandbox answers a logged request with: sent again
    as it was logged, to the same sandbox, which draws and signs the same way every time."""
    response = httpx.post(
        served.base_url + request.path,
        headers={"x-goog-api-key": request.headers["x-goog-api-key"]},
        json=request.json,
        timeout=60,
    )
    assert response.status_code == 200, response.text
    parts = response.json()["candidates"][0]["content"]["parts"]
    return [part for part in parts if not part.get("thought")]


def signatures(parts: list[dict[str, Any]]) -> list[str]:
    return [part["thoughtSignature"] for part in parts]


def test_a_three_turn_thread_with_a_branch_sends_each_turn_its_history(
    served: Served, sample: Path
) -> None:
    env = gemini(served)
    Path("hat.png").write_bytes(HAT)
    first = edit_turn(["cat.png", "-p", "make it night", "-m", "nano-banana-pro"], env)
    # The thread's backend and model go on without being named again.
    second = edit_turn(["@last", "--continue", "-p", "add a moon", "--ref", "hat.png"], env)
    third = edit_turn(["@last", "-c", "-p", "add stars"], env)
    branch = edit_turn(["@1", "--continue", "-p", "add a sun"], env)
    assert (first, second, third, branch) == (
        "cat-edit.jpg", "cat-edit-edit.jpg", "cat-edit-edit-edit.jpg", "cat-edit-edit-2.jpg",
    )  # fmt: skip
    one, two, three, four = log = paid(served)
    assert [request.path for request in log] == [GENERATE] * 4
    assert [roles(request) for request in log] == [
        ["user"],
        ["user", "model", "user"],
        ["user", "model", "user", "model", "user"],
        ["user", "model", "user"],
    ]
    said_one, said_two = answered(served, one), answered(served, two)
    # The model's words and its image, each signed, as it answered them.
    assert [sorted(part) for part in said_one] == [
        ["text", "thoughtSignature"], ["inlineData", "thoughtSignature"]
    ]  # fmt: skip
    # Turn 2: turn 1's request as it was, the model's answer with its signatures exactly as
    # given, its image the saved file's bytes; then the new prompt and the image it adds.
    contents = two.json["contents"]
    assert contents[0] == one.json["contents"][0]
    user, model, new = contents
    assert inline(user["parts"][1]) == CAT
    words, image = model["parts"]
    assert words == said_one[0]
    assert words["text"] == "Here is the edited image."
    assert signatures(model["parts"]) == signatures(said_one)
    assert image["inlineData"]["mimeType"] == "image/jpeg"
    assert inline(image) == Path(first).read_bytes()
    assert [part.get("text") for part in new["parts"]] == ["add a moon", None]
    assert inline(new["parts"][1]) == HAT
    # Turn 3: both earlier turns, each model content with its own signatures and image.
    contents = three.json["contents"]
    assert contents[:3] == two.json["contents"]
    assert signatures(contents[3]["parts"]) == signatures(said_two)
    assert inline(contents[3]["parts"][1]) == Path(second).read_bytes()
    assert contents[4] == {"role": "user", "parts": [{"text": "add stars"}]}
    # The branch goes on from turn 1 again: turn 1's history, not turn 2's.
    assert four.json["contents"][:2] == two.json["contents"][:2]
    assert four.json["contents"][2] == {"role": "user", "parts": [{"text": "add a sun"}]}
    records = journal_jobs()
    assert [record.spec.get("continues") for record in records] == [
        None, {"job": 1, "result": 1}, {"job": 2, "result": 1}, {"job": 1, "result": 1},
    ]  # fmt: skip
    assert [record.model for record in records] == [PRO] * 4
    # Each answer is kept as the API gave it, its image standing for the saved result.
    assert records[0].exchanges == (
        {
            "api": "generate_content",
            "images": [1],
            "model": [
                said_one[0],
                {
                    "inlineData": {"mimeType": "image/jpeg", "data": {"nanoedit_result": 1}},
                    "thoughtSignature": said_one[1]["thoughtSignature"],
                },
            ],
        },
    )


def _pixels(path: str) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def test_a_continued_turn_draws_what_a_fresh_edit_of_the_same_image_does_not(
    served: Served, sample: Path
) -> None:
    env = gemini(served)
    edit_turn(["cat.png", "-p", "make it night", "-m", "nano-banana-pro"], env)
    continued = edit_turn(["@1", "--continue", "-p", "add a moon"], env)
    # The same image, the same prompt and model, sent afresh: another request (another job),
    # whose model sees one image and no thread.
    fresh = edit_turn(["@1", "-p", "add a moon", "-m", "nano-banana-pro"], env)
    _, thread, alone = paid(served)
    assert (roles(thread), roles(alone)) == (["user", "model", "user"], ["user"])
    assert inline(alone.json["contents"][0]["parts"][1]) == Path("cat-edit.jpg").read_bytes()
    one, other = _pixels(continued), _pixels(fresh)
    assert one.size == other.size == (1200, 896)
    # The turn's mark is drawn in the top left; the rest of the picture is the same.
    width, height = one.size
    corner = (0, 0, width // 4, height // 8)
    assert ImageChops.difference(one.crop(corner), other.crop(corner)).getbbox() is not None
    right = (width // 2, height // 4, width, height * 3 // 4)
    assert ImageChops.difference(one.crop(right), other.crop(right)).getbbox() is None
    assert [record.spec.get("continues") for record in journal_jobs()] == [
        None, {"job": 1, "result": 1}, None,
    ]  # fmt: skip


def test_the_same_continued_turn_is_one_job_and_a_fresh_edit_another(
    served: Served, sample: Path
) -> None:
    env = gemini(served)
    edit_turn(["cat.png", "-p", "make it night", "-m", "nano-banana-pro"], env)
    continued = ["@1", "-c", "-p", "add a moon", "--skip-existing"]
    assert edit_turn(continued, env) == "cat-edit-edit.jpg"
    # Sent again: the very same turn, skipped; the same image edited afresh is another request.
    again = run_cli(["edit", *continued], env=env)
    assert (again.exit_code, again.stdout) == (0, "cat-edit-edit.jpg\n"), again.stderr
    fresh = ["@1", "-p", "add a moon", "-m", "nano-banana-pro", "--skip-existing"]
    assert edit_turn(fresh, env) == "cat-edit-edit-2.jpg"
    assert edit_turn(fresh, env) == "cat-edit-edit-2.jpg"
    assert [roles(request) for request in paid(served)] == [
        ["user"], ["user", "model", "user"], ["user"],
    ]  # fmt: skip
    # Without the journal, the images' provenance tells the turn from the fresh edit.
    for args, name in ((continued, "cat-edit-edit.jpg"), (fresh, "cat-edit-edit-2.jpg")):
        result = run_cli(["edit", *args, "--no-history"], env=env)
        assert (result.exit_code, result.stdout) == (0, f"{name}\n"), result.stderr
    assert len(paid(served)) == 3


def test_the_dry_run_shows_the_thread_it_would_send(served: Served, sample: Path) -> None:
    env = gemini(served)
    edit_turn(["cat.png", "-p", "make it night", "-m", "nano-banana-pro"], env)
    planned = run_cli(["edit", "@last", "-c", "-p", "add a moon", "--dry-run", "--json"], env=env)
    assert planned.exit_code == 0, planned.stderr
    request = json.loads(planned.stdout)
    (sent,) = paid(served)
    signature = journal_jobs()[0].exchanges[0]["model"][1]["thoughtSignature"]
    assert request["json"]["contents"] == [
        {"role": "user", "parts": [
            {"text": "make it night"},
            {"inlineData": {"mimeType": "image/png", "data": "@@IMAGE1@@"}},
        ]},
        {"role": "model", "parts": [
            answered(served, sent)[0],
            {"inlineData": {"mimeType": "image/jpeg", "data": "@@IMAGE2@@"},
             "thoughtSignature": signature},
        ]},
        {"role": "user", "parts": [{"text": "add a moon"}]},
    ]  # fmt: skip
    # The command pipes each image in from where it is: turn 1's input, then its result.
    shown = run_cli(["edit", "@last", "-c", "-p", "add a moon", "--dry-run"], env=env)
    command = shown.stdout
    cat, result = str(Path("cat.png").resolve()), str(Path("cat-edit.jpg").resolve())
    assert command.index(f"base64 < {cat}") < command.index(f"base64 < {result}")
    assert len(paid(served)) == 2  # the one sent, and the answer read again here


def test_vertex_continues_a_thread_too(served: Served, sample: Path) -> None:
    env = one_backend_env(served, "vertex") | {"GOOGLE_CLOUD_PROJECT": "my-project"}
    first = edit_turn(["cat.png", "-p", "make it night", "-m", "nano-banana-pro"], env)
    edit_turn(["@last", "--continue", "-p", "add a moon"], env)
    one, two = paid(served)
    path = (
        f"/v1/projects/my-project/locations/global/publishers/google/models/{PRO}:generateContent"
    )
    assert [one.path, two.path] == [path, path]
    assert two.headers["authorization"] == f"Bearer {api_key_for('vertex')}"
    assert roles(two) == ["user", "model", "user"]
    user, model, new = two.json["contents"]
    assert user == one.json["contents"][0]
    assert inline(model["parts"][1]) == Path(first).read_bytes()
    assert all(part["thoughtSignature"] for part in model["parts"])
    assert new == {"role": "user", "parts": [{"text": "add a moon"}]}


def test_a_backend_without_conversation_sends_the_last_image_and_says_so_once(
    served: Served, sample: Path
) -> None:
    env = one_backend_env(served, "gemini") | one_backend_env(served, "openai")
    first = edit_turn(
        ["cat.png", "-p", "make it night", "-m", "nano-banana-pro", "--backend", "gemini"], env
    )
    result = run_cli(
        ["edit", "@1", "@1.1", "--continue", "-p", "add a moon", "--backend", "openai"], env=env
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("openai has no conversation") == 1
    assert (
        "warning: openai has no conversation: the model sees only the image of job 1, not the "
        "thread\n"
    ) in result.stderr
    _, *edits = paid(served)
    assert [request.path for request in edits] == ["/v1/images/edits"] * 2
    for request in edits:
        (image,) = request.files
        assert image.data == Path(first).read_bytes()
    # Crossing providers does not carry the model either: openai's own default went.
    assert [record.backend for record in journal_jobs()] == ["gemini", "openai", "openai"]


def test_a_thread_goes_back_to_its_backend_when_several_are_set_up(
    served: Served, sample: Path
) -> None:
    # openai comes first in the registry: an edit without --backend goes there.
    env = one_backend_env(served, "gemini") | one_backend_env(served, "openai")
    edit_turn(["cat.png", "-p", "make it night", "--backend", "gemini"], env)
    result = run_cli(["edit", "@last", "--continue", "-p", "add a moon"], env=env)
    assert result.exit_code == 0, result.stderr
    assert "no conversation" not in result.stderr
    assert [request.path for request in paid(served)] == [
        "/v1beta/models/gemini-nano-banana-2.1:generateContent"
    ] * 2
    fresh = run_cli(["edit", "@last", "-p", "add a moon"], env=env)
    assert fresh.exit_code == 0, fresh.stderr
    assert paid(served)[-1].path == "/v1/images/edits"


# --- the sandbox refuses a history Google refuses ----------------------------------------------


def _two_turns(served: Served) -> dict[str, Any]:
    """The body of a thread's second turn, as nanoedit sent it (a copy, to change)."""
    env = gemini(served)
    edit_turn(["cat.png", "-p", "make it night", "-m", "nano-banana-pro"], env)
    edit_turn(["@last", "--continue", "-p", "add a moon"], env)
    body: dict[str, Any] = copy.deepcopy(paid(served)[1].json)
    return body


def _sent(served: Served, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        served.base_url + GENERATE, headers={"x-goog-api-key": GEMINI_KEY}, json=body, timeout=60
    )


def test_an_image_sent_back_without_its_signature_is_refused_as_google_does(
    served: Served, sample: Path
) -> None:
    sent = _two_turns(served)
    body = copy.deepcopy(sent)
    del body["contents"][1]["parts"][1]["thoughtSignature"]
    refused = _sent(served, body)
    assert refused.status_code == 400
    assert refused.json() == {
        "error": {"code": 400, "message": MISSING.format(c=2, p=2), "status": "INVALID_ARGUMENT"}
    }
    # The words' signature is not checked: only the images' are, as Google documents.
    body = copy.deepcopy(sent)
    del body["contents"][1]["parts"][0]["thoughtSignature"]
    assert _sent(served, body).status_code == 200


def test_a_signature_that_is_not_the_models_is_refused(served: Served, sample: Path) -> None:
    sent = _two_turns(served)
    body = copy.deepcopy(sent)
    image = body["contents"][1]["parts"][1]
    forged = bytearray(base64.b64decode(image["thoughtSignature"]))
    forged[0] ^= 1
    image["thoughtSignature"] = base64.b64encode(forged).decode()
    refused = _sent(served, body)
    assert (refused.status_code, refused.json()["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert refused.json()["error"]["message"].startswith(
        "Unable to submit request because Thought signature is not valid."
    )
    # Another picture under the image's signature is refused the same way.
    body = copy.deepcopy(sent)
    body["contents"][1]["parts"][1]["inlineData"]["data"] = base64.b64encode(CAT).decode()
    assert _sent(served, body).status_code == 400


# --- errors --------------------------------------------------------------------------------------


def test_continue_refuses_an_input_that_is_not_an_earlier_result(
    served: Served, sample: Path
) -> None:
    result = run_cli(["edit", "cat.png", "--continue", "-p", "add a moon"], env=gemini(served))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: --continue goes on from an earlier result, and cat.png is not one; name it as "
        "@last, @ID or @ID.N (ids: nanoedit history), or leave out --continue to edit cat.png "
        "afresh\n"
    )
    assert paid(served) == []


def test_continue_refuses_a_job_that_saved_no_image(served: Served, sample: Path) -> None:
    env = gemini(served)
    served.sandbox.add_faults("image-safety")
    refused = run_cli(["edit", "cat.png", "-p", "make it night"], env=env)
    assert refused.exit_code == 8, refused.stderr
    result = run_cli(["edit", "@1", "--continue", "-p", "add a moon"], env=env)
    assert result.exit_code == 4
    assert result.stderr.startswith("error: @1: job 1 saved no image (refused: ")
    assert len(paid(served)) == 1


def test_a_moved_or_changed_result_of_an_earlier_turn_is_named(
    served: Served, sample: Path
) -> None:
    env = gemini(served)
    edit_turn(["cat.png", "-p", "make it night", "-m", "nano-banana-pro"], env)
    edit_turn(["@last", "--continue", "-p", "add a moon"], env)
    first = Path("cat-edit.jpg").resolve()
    shutil.move(first, "moved.jpg")
    result = run_cli(["edit", "@2", "--continue", "-p", "add stars"], env=env)
    assert result.exit_code == 4
    assert result.stderr == (
        f"error: job 1 saved its result 1 as {first}, which is no longer there (moved or "
        "deleted), and the thread sends it back as it was; put it back there, or start a new "
        "thread from it: edit NEW-PATH, without --continue\n"
    )
    shutil.move("moved.jpg", first)
    with Image.open(first) as image:
        image.convert("RGB").save(first, "JPEG", quality=50)
    changed = run_cli(["edit", "@2", "--continue", "-p", "add stars"], env=env)
    assert changed.exit_code == 4
    assert changed.stderr == (
        f"error: job 1 saved its result 1 as {first}, which has changed since (its SHA-256 is "
        "not the one the history holds), and the thread sends it back as the model made it; "
        f"put the original back, or start a new thread from this file: edit {first}, without "
        "--continue\n"
    )
    assert len(paid(served)) == 2


# --- the journal ---------------------------------------------------------------------------------


def test_a_version_2_journal_is_upgraded_and_its_jobs_go_on_as_threads(
    served: Served, sample: Path
) -> None:
    from nanoedit.journal.store import _TO_2

    # A job journaled by the version before: no exchanges column, no continues in its spec.
    result = Path("night.png").resolve()
    Image.new("RGB", (640, 480), (10, 20, 90)).save(result)
    folder = data_dir(os.environ)
    folder.mkdir(parents=True)
    spec = {
        "kind": "edit", "inputs": [{"path": str(Path("cat.png").resolve())}],
        "labels": ["cat.png"], "stem": "cat-edit", "output": None, "names": ["cat-edit"],
        "options": {"prompt": "make it night", "ratio": "auto", "size": None, "model": None,
                    "count": 1, "response_format": "url"},
        "out_dir": str(Path.cwd()), "metadata": True, "sidecar": False, "overwrite": False,
    }  # fmt: skip
    with sqlite3.connect(folder / "journal.sqlite3") as db:
        db.executescript(JOURNAL_VERSION_1.replace("PRAGMA user_version = 1;", ""))
        for statement in _TO_2:
            db.execute(statement)
        db.execute("PRAGMA user_version = 2")
        db.execute("INSERT INTO runs(started, pid, command, cwd) VALUES (1, 1, '[]', '/')")
        db.execute(
            "INSERT INTO jobs(run, created, updated, state, kind, backend, model, prompt, "
            "fingerprint, spec, results, images, identity) VALUES (1, 1, 1, 'saved', 'edit', "
            "'gemini', ?, 'make it night', 'f', ?, ?, 1, 'i')",
            (PRO, json.dumps(spec), json.dumps([{"path": str(result)}])),
        )
    listed = run_cli(["history", "--json"], env=gemini(served))
    assert listed.exit_code == 0, listed.stderr
    (old,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (old["id"], old["prompt"], old["exchanges"]) == (1, "make it night", [])
    with sqlite3.connect(folder / "journal.sqlite3") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (3,)
    # Its answer was not kept: the history sends it as the user's, its result with it.
    assert edit_turn(["@1", "--continue", "-p", "add a moon"], gemini(served)) == "night-edit.jpg"
    (sent,) = paid(served)
    (past, new) = sent.json["contents"]
    assert [part.get("text") for part in past["parts"]] == ["make it night", None, None]
    assert [inline(part) for part in past["parts"][1:]] == [CAT, result.read_bytes()]
    assert new == {"role": "user", "parts": [{"text": "add a moon"}]}
    with Journal(folder) as journal:
        record = journal.get(2)
    assert record is not None and record.exchanges[0]["images"] == [1]


# --- a killed turn -------------------------------------------------------------------------------


def killed_second_turn(held: tuple[Served, threading.Event]) -> tuple[Served, dict[str, str]]:
    """A first turn, then a second (going on from it) killed once its request reached the
    held sandbox, before the answer came; the sandbox and the environment of the runs."""
    served, release = held
    env = gemini(served)
    edit_turn(["cat.png", "-p", "make it night", "-m", "nano-banana-pro"], env)
    release.clear()
    run = subprocess.Popen(
        [NANOEDIT, "edit", "@last", "--continue", "-p", "add a moon"],
        env=dict(os.environ) | env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: len(paid(served)) == 2, "the turn's request")
        run.send_signal(signal.SIGKILL)
        run.wait(30)
    finally:
        if run.poll() is None:
            run.kill()
        release.set()
    return served, env


def test_a_turn_killed_after_its_request_went_out_resumes_with_its_thread(
    held_gemini: tuple[Served, threading.Event], sample: Path
) -> None:
    served, env = killed_second_turn(held_gemini)
    _, killed = paid(served)
    record = journal_jobs()[1]
    assert record.state == "submitted" and record.may_have_been_charged
    assert record.spec["continues"] == {"job": 1, "result": 1}
    resent = run_cli(["resume", str(record.id), "--retry-unsafe"], env=env)
    assert resent.exit_code == 0, resent.stderr
    assert resent.stdout == f"{Path('cat-edit-edit.jpg').resolve()}\n"
    *_, again = paid(served)
    # Sent again from the journal alone, with the thread it was first sent with.
    assert again.json == killed.json
    assert roles(again) == ["user", "model", "user"]
    record = journal_jobs()[1]
    assert record.state == "saved" and record.exchanges[0]["images"] == [1]
    # And the thread goes on from it.
    edit_turn(["@last", "--continue", "-p", "add stars"], env)
    assert roles(paid(served)[-1]) == ["user", "model", "user", "model", "user"]


def test_resume_holds_a_turn_whose_thread_can_no_longer_be_had(
    held_gemini: tuple[Served, threading.Event], sample: Path
) -> None:
    served, env = killed_second_turn(held_gemini)
    gone = Path("cat-edit.jpg").resolve()
    gone.unlink()
    held_back = run_cli(["resume", "2", "--retry-unsafe"], env=env)
    assert held_back.exit_code == 4
    assert f"job 1 saved its result 1 as {gone}, which is no longer there" in held_back.stderr
    assert len(paid(served)) == 2


def test_a_thread_whose_links_go_round_is_refused_not_followed(tmp_path: Path) -> None:
    from nanoedit.errors import InputError
    from nanoedit.journal.records import JobSpec, NewJob
    from nanoedit.journal.threads import build_thread

    image = tmp_path / "made.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(image)
    with Journal(tmp_path / "data") as journal:
        specs: list[JobSpec] = [
            {"inputs": [{"path": str(image)}]},
            # Job 2 names job 3 as its parent, a later job: only a hand can have written it.
            {"inputs": [{"path": str(image)}], "continues": {"job": 3, "result": 1}},
            {"inputs": [{"path": str(image)}], "continues": {"job": 2, "result": 1}},
        ]
        ids = journal.add_jobs(
            NewJob("edit", "gemini", PRO, f"turn {n}", "f", spec) for n, spec in enumerate(specs)
        )
        for ident in ids:
            journal.saved(ident, [{"path": str(image)}])
        assert [turn.job for turn in build_thread(journal, 1, 1).turns] == [1]
        with pytest.raises(InputError) as circle:
            build_thread(journal, 3, 1)
    assert circle.value.message == (
        "the thread of job 3 links job 2 back to job 3, which cannot be: the history was "
        "changed by hand; start a new thread from the image (edit FILE, without --continue)"
    )


def test_a_thread_the_sandbox_answered_goes_on_at_a_real_provider_as_the_users_images(
    served: Served, sample: Path
) -> None:
    env = gemini(served)
    first = edit_turn(["cat.png", "-p", "make it night", "--sandbox", "--backend", "gemini"], env)
    result = run_cli(["edit", "@last", "--continue", "-p", "add a moon"], env=env)
    assert result.exit_code == 0, result.stderr
    assert (
        "warning: job 1 of the thread was answered by the sandbox, whose answers a real model "
        "cannot take as its own: their images go as yours, and the model does not see their "
        "reasoning"
    ) in " ".join(result.stderr.split())
    # Nothing of the sandbox's answer, its signatures least of all, goes to the provider: turn
    # 1 is the user's prompt, its image and the image it was answered with.
    (post,) = paid(served)
    contents = post.json["contents"]
    assert "thoughtSignature" not in json.dumps(contents)
    assert [content["role"] for content in contents] == ["user"] * (len(contents))
    sent = [
        inline(part) for content in contents for part in content["parts"] if "inlineData" in part
    ]
    assert sent == [CAT, Path(first).read_bytes()]
