"""A continued turn through the Interactions API, run on the gemini backend against the served
sandbox (real HTTP): by ``previous_interaction_id`` when Google kept the turn before, by the
history resent as steps when it did not (or no longer does), and with a turn another API made
sent as the user's own image. The sandbox draws a continued turn with the marks of the earlier
ones, so each test tells a true continuation from a re-upload of the last image."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    GEMINI_KEY,
    Served,
    edit_turn,
    host,
    journal_jobs,
    one_backend_env,
    paid,
)

from nanoedit.backends.base import Answer, PreparedJob, PreparedTurn
from nanoedit.backends.gemini import GeminiBackend
from nanoedit.jobs import Exchange, ImageSource, Job, Options, PastTurn, Thread
from nanoedit.net.http import Deadline, JobHttp, RetryPolicy
from nanoedit.net.inputs import load_local
from nanoedit.sandbox import ReceivedRequest, gemini_interactions, sample_image
from nanoedit.sandbox.render import Picture, decode, render_edit
from nanoedit.settings.values import BackendSettings

CAT = sample_image("cat.png")[0]
HAT = sample_image("hat.png")[0]
FLASH = "gemini-nano-banana-2.1"
THOUGHT = "**Planning the picture**\n\nI'm working out how to show: "
ID = re.compile(r"[A-Za-z0-9_-]{24}")


def block(data: bytes, mime: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "data": base64.b64encode(data).decode(), "mime_type": mime}


def text(words: str) -> dict[str, str]:
    return {"type": "text", "text": words}


class Run:
    """The gemini backend on the Interactions API, pointed at a served sandbox; what it says to
    the user is kept in ``notes``."""

    def __init__(self, served: Served, client: httpx.Client, *, store: bool = True) -> None:
        self.served = served
        self.notes: list[str] = []
        options = (("api", "interactions"), ("store", "true" if store else "false"))
        settings = BackendSettings("gemini", served.base_url, GEMINI_KEY, FLASH, options=options)
        http = JobHttp(client, RetryPolicy(), Deadline(60), notify=self.notes.append)
        self.backend = GeminiBackend(settings, http)

    def send(self, prepared: PreparedJob) -> Answer:
        return self.backend.run(prepared, lambda phase, done=None, total=None: None)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def first_turn(run: Run, count: int = 1) -> tuple[Answer, PastTurn, PreparedTurn]:
    """Turn 1, "make it night" on cat.png; its image saved as turn1.jpg, as the journal
    would hand it to turn 2."""
    Path("cat.png").write_bytes(CAT)
    source = ImageSource("cat.png")
    job = Job("edit", (source,), Options(prompt="make it night", count=count), "cat-edit")
    answer = run.send(PreparedJob(job, FLASH, uploads=(load_local(source),)))
    image = answer.images[0].data
    assert image is not None
    Path("turn1.jpg").write_bytes(image)
    exchange = answer.exchanges[0] if answer.exchanges else None
    past = PastTurn(1, "gemini", FLASH, "make it night", (source,), exchange, 1, Path("turn1.jpg"))
    prepared = PreparedTurn(past, (load_local(source),), load_local(ImageSource("turn1.jpg")))
    return answer, past, prepared


def second_turn(past: PastTurn, prepared: PreparedTurn) -> PreparedJob:
    """Turn 2, "add a hat", with hat.png added to the image turn 1 made."""
    Path("hat.png").write_bytes(HAT)
    made, hat = ImageSource("turn1.jpg"), ImageSource("hat.png")
    job = Job(
        "edit", (made, hat), Options(prompt="add a hat"), "turn1-edit", thread=Thread((past,))
    )
    return PreparedJob(job, FLASH, uploads=(load_local(made), load_local(hat)), history=(prepared,))


def drawn_as_turn_2() -> bytes:
    """What the sandbox's model draws for turn 2 when it sees turn 1: turn 1's image and the
    hat, with turn 1's mark."""
    made = Path("turn1.jpg").read_bytes()
    picture = Picture("add a hat", (1200, 896), "image/jpeg", earlier=("make it night",))
    return render_edit([decode(made), decode(HAT)], picture).data


def test_a_turn_keeps_what_a_later_turn_resends(served: Served, client: httpx.Client) -> None:
    run = Run(served, client)
    answer, _, _ = first_turn(run, count=2)
    first, second = answer.exchanges
    signature = first["model"][0]["signature"]
    assert first == {
        "api": "interactions",
        "images": [1],
        "model": [
            # The thought's words and signature; its draft image is no result, and not kept.
            {"type": "thought", "signature": signature, "summary": [text(THOUGHT + "make it night")]},
            {"type": "model_output", "content": [
                text("Here is the edited image."),
                {"type": "image", "data": {"nanoedit_result": 1}, "mime_type": "image/jpeg"},
            ]},
        ],
        "interaction_id": first["interaction_id"],
        "stored": True,
    }  # fmt: skip
    assert ID.fullmatch(first["interaction_id"])
    assert second["images"] == [2] and second["interaction_id"] != first["interaction_id"]
    assert len(base64.b64decode(signature)) == 48


def test_a_stored_turn_is_continued_by_its_id(served: Served, client: httpx.Client) -> None:
    run = Run(served, client)
    answer, past, prepared = first_turn(run)
    ident = answer.exchanges[0]["interaction_id"]
    continued = run.send(second_turn(past, prepared))
    post = served.sandbox.received[-1]
    # Only this turn's own image and words: the server has the rest. The format again, as
    # settings do not carry over.
    assert post.json == {
        "model": FLASH,
        "input": [block(HAT), text("add a hat")],
        "previous_interaction_id": ident,
        "response_format": {"type": "image"},
        "store": True,
        "stream": False,
    }
    assert continued.images[0].data == drawn_as_turn_2()
    assert run.notes == []


def test_an_unstored_turn_is_continued_by_resending_the_history(
    served: Served, client: httpx.Client
) -> None:
    run = Run(served, client, store=False)
    answer, past, prepared = first_turn(run)
    thought = answer.exchanges[0]["model"][0]
    continued = run.send(second_turn(past, prepared))
    post = served.sandbox.received[-1]
    made = Path("turn1.jpg").read_bytes()
    assert post.json == {
        "model": FLASH,
        "input": [
            {"type": "user_input", "content": [block(CAT), text("make it night")]},
            thought,
            {"type": "model_output", "content": [
                text("Here is the edited image."), block(made, "image/jpeg")
            ]},
            {"type": "user_input", "content": [block(HAT), text("add a hat")]},
        ],
        "response_format": {"type": "image"},
        "store": False,
        "stream": False,
    }  # fmt: skip
    assert continued.images[0].data == drawn_as_turn_2()
    assert run.notes == []


def test_a_turn_google_no_longer_has_falls_back_to_the_history_once(
    served: Served, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Run(served, client)
    answer, past, prepared = first_turn(run)
    ident = answer.exchanges[0]["interaction_id"]
    # The sandbox keeps one interaction: another one pushes turn 1's out, as retention would.
    monkeypatch.setattr(gemini_interactions, "MAX_STORED", 1)
    client.post(
        f"{served.base_url}/v1beta/interactions",
        json={"model": FLASH, "input": "a red fox"},
        headers={"x-goog-api-key": GEMINI_KEY},
    )
    before = len(served.sandbox.received)
    continued = run.send(second_turn(past, prepared))
    lost, resent = served.sandbox.received[before:]
    assert lost.json["previous_interaction_id"] == ident
    assert "previous_interaction_id" not in resent.json
    assert [step["type"] for step in resent.json["input"]] == [
        "user_input", "thought", "model_output", "user_input"
    ]  # fmt: skip
    assert continued.images[0].data == drawn_as_turn_2()
    assert run.notes == [
        f"{host(served)} no longer has interaction {ident}, which this turn goes on from; the "
        "thread's history is sent instead"
    ]


def test_a_turn_another_api_made_is_sent_as_the_users_image(
    served: Served, client: httpx.Client
) -> None:
    run = Run(served, client)
    _, past, prepared = first_turn(run)
    other: Exchange | None = None  # generateContent's, or none: no Interactions steps
    blind = PastTurn(1, "gemini", FLASH, "make it night", past.inputs, other, 1, past.image)
    prepared = PreparedTurn(blind, prepared.inputs, prepared.image)
    continued = run.send(second_turn(blind, prepared))
    post = served.sandbox.received[-1]
    made = Path("turn1.jpg").read_bytes()
    assert post.json["input"] == [
        {"type": "user_input", "content": [block(CAT), text("make it night"), block(made, "image/jpeg")]},
        {"type": "user_input", "content": [block(HAT), text("add a hat")]},
    ]  # fmt: skip
    # The model still sees turn 1's prompt and image: the same drawing.
    assert continued.images[0].data == drawn_as_turn_2()
    assert run.notes == [
        "job 1 of this thread kept no Interactions answer (another API, or the sandbox, made "
        "it), so its image is sent as one of yours: the model does not see its own reasoning "
        "of that turn"
    ]


def test_a_re_upload_of_the_last_image_is_no_continuation(
    served: Served, client: httpx.Client
) -> None:
    # The job a backend without conversation sends: turn 1's image as a new input, no thread.
    run = Run(served, client)
    first_turn(run)
    Path("hat.png").write_bytes(HAT)
    made, hat = ImageSource("turn1.jpg"), ImageSource("hat.png")
    job = Job("edit", (made, hat), Options(prompt="add a hat"), "turn1-edit")
    answer = run.send(PreparedJob(job, FLASH, uploads=(load_local(made), load_local(hat))))
    assert answer.images[0].data != drawn_as_turn_2()
    assert "previous_interaction_id" not in served.sandbox.received[-1].json


# The command line, end to end --------------------------------------------------------------


def _blocks(post: ReceivedRequest) -> list[str]:
    """What a request's input is, block by block or step by step: its types."""
    return [item["type"] for item in post.json["input"]]


def test_a_three_turn_thread_with_a_branch_goes_on_by_interaction_id(
    served: Served, sample: Path
) -> None:
    env = one_backend_env(served, "gemini") | {"NANOEDIT_GEMINI_API": "interactions"}
    Path("hat.png").write_bytes(HAT)
    first = edit_turn(["cat.png", "-p", "make it night"], env)
    second = edit_turn(["@last", "--continue", "-p", "add a moon", "--ref", "hat.png"], env)
    third = edit_turn(["@last", "-c", "-p", "add stars"], env)
    branch = edit_turn(["@1", "--continue", "-p", "add a sun"], env)
    assert (first, second, third, branch) == (
        "cat-edit.jpg", "cat-edit-edit.jpg", "cat-edit-edit-edit.jpg", "cat-edit-edit-2.jpg",
    )  # fmt: skip
    one, two, three, four = log = paid(served)
    assert [post.path for post in log] == ["/v1beta/interactions"] * 4
    ids = [job.exchanges[0]["interaction_id"] for job in journal_jobs()]
    assert len(set(ids)) == 4 and all(ID.fullmatch(ident) for ident in ids)
    # Each turn names the one it goes on from and sends only its own words and images; the
    # format goes again every turn, as settings do not carry over.
    assert "previous_interaction_id" not in one.json
    assert one.json["input"] == [block(CAT), text("make it night")]
    assert two.json == {
        "model": FLASH,
        "input": [block(HAT), text("add a moon")],
        "previous_interaction_id": ids[0],
        "response_format": {"type": "image"},
        "store": True,
        "stream": False,
    }
    assert three.json["previous_interaction_id"] == ids[1]
    assert three.json["input"] == [text("add stars")]
    # The branch goes on from turn 1 again.
    assert four.json["previous_interaction_id"] == ids[0]
    assert four.json["input"] == [text("add a sun")]
    # The server links each stored turn to the one it went on from, the branch to turn 1.
    stored = [
        httpx.get(
            f"{served.base_url}/v1beta/interactions/{ident}",
            headers={"x-goog-api-key": GEMINI_KEY},
            timeout=30,
        ).json()
        for ident in ids
    ]
    links = [item.get("previous_interaction_id") for item in stored]
    assert links == [None, ids[0], ids[1], ids[0]]
    assert [job.spec.get("continues") for job in journal_jobs()] == [
        None, {"job": 1, "result": 1}, {"job": 2, "result": 1}, {"job": 1, "result": 1}
    ]  # fmt: skip


def test_a_thread_kept_from_google_resends_its_history_every_turn(
    served: Served, sample: Path
) -> None:
    env = one_backend_env(served, "gemini") | {"NANOEDIT_GEMINI_API": "interactions"}
    first = edit_turn(["cat.png", "-p", "make it night", "--no-store"], env)
    edit_turn(["@last", "--continue", "-p", "add a moon", "--no-store"], env)
    edit_turn(["@last", "--continue", "-p", "add stars", "--no-store"], env)
    one, two, three = paid(served)
    assert [post.json["store"] for post in (one, two, three)] == [False, False, False]
    assert not any("previous_interaction_id" in post.json for post in (one, two, three))
    assert _blocks(two) == ["user_input", "thought", "model_output", "user_input"]
    assert _blocks(three) == [
        "user_input", "thought", "model_output", "user_input", "thought", "model_output",
        "user_input",
    ]  # fmt: skip
    # The first turn's image goes back as it was saved.
    made = two.json["input"][2]["content"][-1]
    assert base64.b64decode(made["data"]) == Path(first).read_bytes()
    assert three.json["input"][:4] == two.json["input"][:4]
