"""Google's Interactions API as a transport of the gemini backend (``gemini.api
interactions``): one interaction per image asked for, the same key, models, Files API and
error object as ``generateContent``.

Wire facts ([P] Google's SDK google-genai 3.6.1 and its CLI, google-gemini/gemini-api-cli;
[S] seen in issue threads; [I] inferred):

- [P] ``POST {root}/v1beta/interactions`` with the key in ``x-goog-api-key``; Google's CLI
  sends ``Api-Revision: 2026-05-20`` on every Interactions request (its ``src/lib/api.ts``),
  the revision the SDK names ``GOOGLE_GENAI_API_REVISION`` ([P] SDK 3.6.1's source sends it on
  its live WebSocket handshake only, not on its HTTP requests): nanoedit sends it, so that the
  answer's shape is the revision it reads.
- [P] The body: ``model``, ``input`` (a list of content blocks, ``{"type": "image", "data",
  "mime_type"}`` or ``{"type": "image", "uri"}`` for a Files API upload, and ``{"type":
  "text"}``; or a list of steps, a history resent), ``response_format`` ``{"type": "image",
  "aspect_ratio", "image_size"}`` (the deprecated ``generation_config.image_config`` is not
  sent), ``store``, ``stream: false`` and, to go on from a stored interaction,
  ``previous_interaction_id``.
- [P] The answer: ``id``, ``status``, ``steps`` (a create's answer holds the output steps:
  ``thought`` steps with a ``signature``, ``model_output`` steps of text and image blocks, an
  image's base64 under ``data``), ``usage`` (``total_input_tokens``, ``total_output_tokens``…),
  ``errors[]``. A step's ``error`` is a google.rpc.Status.
- [P] ``GET {root}/v1beta/interactions/{id}`` reads a stored interaction back: nanoedit polls
  it (free) while the status is ``in_progress`` or ``queued``, within the job's time limit.
- [I] A refusal of the content comes as a step error (or an ``errors[]`` code) whose reason is
  one generateContent gives as its finishReason (IMAGE_SAFETY…): exit 8, as there; NO_IMAGE
  and IMAGE_OTHER exit 5, as there.
- [I] An id ``previous_interaction_id`` names that Google no longer has is a 404 NOT_FOUND
  whose message does not name a model (a model not served says ``models/ID is not found``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from nanoedit.backends.base import (
    Answer,
    PlannedRequest,
    PreparedJob,
    ResultImage,
    clip,
    gather,
    parse_json,
    read_json,
    result_from_base64,
)
from nanoedit.backends.gemini_errors import (
    NO_IMAGE_REASONS,
    REFUSAL_REASONS,
    error_line,
    error_of,
    no_image,
    reasons_of,
    refusal,
    retry_delay,
)
from nanoedit.backends.gemini_tiers import shed_advice, with_served_tier
from nanoedit.errors import ApiError, NanoeditError, NetworkError
from nanoedit.jobs import STANDARD_TIER, Dials, Exchange, Progress
from nanoedit.net.inputs import InputImage
from nanoedit.output.imageformat import MIME_TYPES, format_from_suffix

if TYPE_CHECKING:
    import httpx

    from nanoedit.b64stream import Streamed
    from nanoedit.net.http import JobHttp
    from nanoedit.settings.values import BackendSettings

API_VERSION = "v1beta"
API_REVISION = "2026-05-20"
# Base64 of an image's bytes in an answer's blocks (the backend streams these to files).
IMAGE_KEY = "data"
# What goes in the path of a GET: an id of the characters Google's ids are made of.
INTERACTION_ID = re.compile(r"[A-Za-z0-9_.~-]{1,256}")
# Statuses of an interaction that is not done yet: it is polled.
WAITING = ("in_progress", "queued")
# A stored interaction still running is polled first after this many seconds, then as tasks
# are (half as long again each time, up to 10 s).
POLL_INTERVAL = 1.0
# What each status that ends an interaction without its image means, and what to do.
STATUS_ADVICE: dict[str, str] = {
    "failed": "try again, or send it through generateContent (gemini.api generate_content)",
    "incomplete": (
        "the model stopped before it finished the image (its output ran out); try again, or "
        "make the prompt shorter"
    ),
    "budget_exceeded": (
        "the interaction's budget ran out before the image was made; check the project's "
        "spend limits in Google AI Studio, then try again"
    ),
    "cancelled": "it was cancelled on Google's side (nanoedit cancels none); send the job again",
    "requires_action": (
        "the model asks for a tool's answer, and nanoedit declares no tool; try again, or send "
        "it through generateContent (gemini.api generate_content)"
    ),
    "requires_continuation": (
        "the model's answer comes in parts, which nanoedit does not continue; try again, or "
        "send it through generateContent (gemini.api generate_content)"
    ),
}
OTHER_STATUS = (
    "a status nanoedit does not know; try again, or send it through generateContent "
    "(gemini.api generate_content)"
)
ImageParts = Callable[[tuple[InputImage, ...], dict[str, str], Progress], list[dict[str, Any]]]
"""How the backend makes ``generateContent`` parts of images (inline, or uploaded to the Files
API when together they are too large to inline)."""


def _mime_of_name(name: str) -> str:
    found = format_from_suffix(PurePosixPath(name).suffix)
    return MIME_TYPES.get(found or "png", "image/png")


def block_of(part: dict[str, Any]) -> dict[str, Any]:
    """A ``generateContent`` image part as an Interactions image block."""
    inline = part.get("inlineData")
    if isinstance(inline, dict):
        return {"type": "image", "data": inline["data"], "mime_type": inline["mimeType"]}
    found = part["fileData"]
    return {"type": "image", "uri": found["fileUri"], "mime_type": found["mimeType"]}


class Interactions:
    """Sends a prepared job as interactions: ``http`` and ``settings`` are the backend's,
    ``root`` the server (without ``/v1beta``), ``where`` its name in messages, and
    ``auth_headers`` how a request signs in with a key."""

    def __init__(
        self,
        http: JobHttp,
        settings: BackendSettings,
        root: str,
        where: str,
        auth_headers: Callable[[str], dict[str, str]],
    ) -> None:
        self.http = http
        self.settings = settings
        self.root = root
        self.where = where
        self.auth_headers = auth_headers

    @property
    def store(self) -> bool:
        """Whether Google may keep the interactions (``gemini.store``, --no-store)."""
        return self.settings.option("store") != "false"

    def _url(self) -> str:
        return f"{self.root}/{API_VERSION}/interactions"

    def _headers(self, key: str) -> dict[str, str]:
        return {**self.auth_headers(key), "Api-Revision": API_REVISION}

    def _format(self, prepared: PreparedJob) -> dict[str, str]:
        """The image response format: the ratio and size asked for (none: the model's)."""
        options = prepared.job.options
        wanted = {"type": "image"}
        if options.ratio != "auto":
            wanted["aspect_ratio"] = options.ratio
        if options.size:
            wanted["image_size"] = options.size
        return wanted

    def body(
        self, prepared: PreparedJob, given: list[dict[str, Any]], previous: str | None
    ) -> dict[str, Any]:
        """A create body: ``given`` is the input (this turn's blocks, or the steps of a resent
        history); settings do not carry over from an earlier interaction, so the format is
        sent each time."""
        body: dict[str, Any] = {"model": prepared.model, "input": given}
        if previous is not None:
            body["previous_interaction_id"] = previous
        body |= {"response_format": self._format(prepared), "store": self.store, "stream": False}
        tier = prepared.job.options.tier
        if tier != STANDARD_TIER:
            # [P] CreateModelInteraction.service_tier: flex, standard, priority (SDK
            # google-genai 3.6.1, servicetier.py); left out, the interaction is standard.
            body["service_tier"] = tier
        return body | dial_fields(prepared.job.options.dials)

    # Dry run ---------------------------------------------------------------------------------

    def plan(self, prepared: PreparedJob) -> list[PlannedRequest]:
        """One create per image asked for; each image's base64 is piped in by the command."""
        inline: list[tuple[str, str]] = []

        def placeholder(location: str, name: str) -> dict[str, Any]:
            marker = f"@@IMAGE{len(inline) + 1}@@"
            inline.append((marker, location))
            return {"type": "image", "data": marker, "mime_type": _mime_of_name(name)}

        thread = prepared.job.thread
        first = prepared.job.images[0] if thread is not None and prepared.history else None
        added = [
            placeholder(source.location, source.name)
            for source in prepared.job.images
            if source != first
        ]
        previous = self._previous(prepared)
        given = self._turn(prepared, added)
        if prepared.history and previous is None:
            given = self._history(
                prepared,
                [
                    (
                        [
                            placeholder(image.source.location, image.source.name)
                            for image in past.inputs
                        ],
                        placeholder(str(past.turn.image), past.turn.image.name),
                    )
                    for past in prepared.history
                ],
                given,
            )[0]
        request = PlannedRequest(
            "POST",
            self._url(),
            self._headers("{key}"),
            json=self.body(prepared, given, previous),
            inline_files=tuple(inline),
        )
        return [request] * prepared.job.options.count

    # Sending ---------------------------------------------------------------------------------

    def run(self, prepared: PreparedJob, progress: Progress, image_parts: ImageParts) -> Answer:
        """Send the job ``count`` times (one interaction, one image each) and gather the
        images, words and exchanges. A failure after some images were made returns those with
        it: they are paid for."""
        key = self.settings.key()
        history = prepared.history if prepared.job.thread is not None else ()
        past = [image for turn in history for image in (*turn.inputs, turn.image)]
        added = prepared.added_uploads() if history else prepared.uploads
        blocks = [
            block_of(part)
            for part in image_parts((*past, *added), self.auth_headers(key), progress)
        ]
        own = blocks[len(past) :]
        previous = self._previous(prepared)
        given = self._turn(prepared, own)
        resent: list[dict[str, Any]] | None = None
        if history:
            place = iter(blocks[: len(past)])
            turns = [([next(place) for _ in turn.inputs], next(place)) for turn in history]
            resent, blind = self._history(prepared, turns, given)
            if blind and previous is None:
                self.http.notify(blind)
            if previous is None:
                given = resent

        def ask(before: int) -> Answer:
            nonlocal previous, given
            response, streamed = self._create(self.body(prepared, given, previous), key)
            if previous is not None and resent is not None and _lost(response):
                # The interaction to go on from is gone (not stored, or past Google's
                # retention): a 404 is not charged, so the history goes instead, once.
                self.http.notify(
                    f"{self.where} no longer has interaction {previous}, which this turn "
                    "goes on from; the thread's history is sent instead"
                )
                previous, given = None, resent
                response, streamed = self._create(self.body(prepared, given, None), key)
            try:
                interaction, streamed = self._finished(response, streamed, key)
            except NanoeditError as exc:
                raise shed_advice(exc, prepared.job.options.tier) from None
            usage = with_served_tier(
                _usage(interaction), interaction.get("service_tier"),
                prepared.job.options.tier, self.where, self.http.notify,
            )  # fmt: skip
            try:
                return replace(
                    self._read(interaction, streamed, prepared.model, before), usage=usage
                )
            except NanoeditError as exc:
                # What a finished interaction used is counted, though it made no image.
                return Answer([], error=exc, usage=usage)

        return gather(prepared.job.options.count, progress, ask)

    def _create(self, body: dict[str, Any], key: str) -> tuple[httpx.Response, Streamed | None]:
        """One paid create: never sent again once it may have reached Google."""
        request = self.http.client.build_request(
            "POST", self._url(), headers=self._headers(key), json=body
        )
        return self.http.send_json(
            request,
            where=self.where,
            what="the interaction request",
            paid=True,
            wait_hint=retry_delay,
            keys=frozenset({IMAGE_KEY}),
        )

    def _finished(
        self, response: httpx.Response, streamed: Streamed | None, key: str
    ) -> tuple[dict[str, Any], Streamed | None]:
        """The interaction an answer holds, polled (free) until it is done when it is still
        running; the error an answer other than 200 carries."""
        from nanoedit.backends.tasks import MAX_POLL_INTERVAL, POLL_GROWTH

        interaction = self._interaction(response)
        interval = POLL_INTERVAL
        while (status := str(interaction.get("status") or "")) in WAITING:
            ident = str(interaction.get("id") or "")
            if not INTERACTION_ID.fullmatch(ident):
                raise ApiError(
                    f"{self.where} answered an interaction that is {status} with an id nanoedit "
                    f"cannot ask about ({clip(ident, 80)!r}); try again"
                )
            if not self.store:
                raise ApiError(
                    f"{self.where} answered interaction {ident} {status}, and it is not stored "
                    "(gemini.store false, or --no-store), so it cannot be asked for again and "
                    "its image cannot be had; send the job again, or let Google store it"
                )
            self._wait(f"waiting for the model (interaction {status})", interval, ident, status)
            get = self.http.client.build_request(
                "GET", f"{self._url()}/{ident}", headers=self._headers(key)
            )
            response, streamed = self.http.send_json(
                get,
                where=self.where,
                what=f"the state of interaction {ident}",
                paid=False,
                wait_hint=retry_delay,
                keys=frozenset({IMAGE_KEY}),
            )
            interaction = self._interaction(response, ident)
            interval = min(interval * POLL_GROWTH, MAX_POLL_INTERVAL)
        return interaction, streamed

    def _wait(self, phase: str, interval: float, ident: str, status: str) -> None:
        """Wait before the next poll, within the job's time limit."""
        deadline = self.http.deadline
        self.http.sleep(min(interval, deadline.remaining()))
        if deadline.remaining() <= 0:
            raise NetworkError(
                f"interaction {ident} on {self.where} was still {status} when the job's time "
                f"limit of {deadline.seconds:g} s ran out ({deadline.elapsed():.1f} s elapsed); "
                "it may still end on Google's side: raise --timeout, or try again later"
            )

    def _interaction(self, response: httpx.Response, polled: str = "") -> dict[str, Any]:
        """The interaction an answer holds: to the create, or to a poll of the interaction
        ``polled`` (its 404 is the interaction gone, not a model not served)."""
        if polled and response.status_code == 404:
            raise ApiError(
                f"{self.where} no longer has interaction {polled}, which was still running "
                f"when last asked ({error_line(response, with_code=True)}); its image cannot "
                "be had: send the job again"
            )
        if response.status_code != 200:
            what = f"the state of interaction {polled}" if polled else "the interaction request"
            raise error_of(response, self.where, self.settings, what, model_call=not polled)
        body = read_json(response, self.where)
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise ApiError(
                f"{self.where} answered with JSON that is not an interaction "
                f"({clip(str(body), 80)}); check gemini.base_url"
            )
        return body

    # Answers ---------------------------------------------------------------------------------

    def _read(
        self, interaction: dict[str, Any], streamed: Streamed | None, model: str, before: int
    ) -> Answer:
        """The images and words of a finished interaction, with its exchange (what a later
        turn resends), or the error its status and reasons make: raised when it made no image,
        beside the images it made otherwise (they are paid for). ``before`` is how many
        results the job has already: its images are numbered on from there."""
        steps = interaction.get("steps")
        steps = steps if isinstance(steps, list) else []
        # A GET's timeline starts with the input: the output is what follows the last one.
        starts = [n for n, step in enumerate(steps) if _type(step) == "user_input"]
        outputs = [
            step for step in steps[starts[-1] + 1 if starts else 0 :] if isinstance(step, dict)
        ]
        images: list[ResultImage] = []
        texts: list[str] = []
        kept: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        for step in outputs:
            kind = _type(step)
            if kind == "thought":
                # Kept with its signature for a later turn; a draft image in its summary is
                # no result, and its base64 is not kept.
                summary = [item for item in step.get("summary") or [] if _type(item) == "text"]
                kept.append({**step, "summary": summary} if "summary" in step else dict(step))
                continue
            if kind != "model_output":
                continue
            content: list[dict[str, Any]] = []
            for block in step.get("content") or []:
                if _type(block) == "image" and isinstance(block.get(IMAGE_KEY), str):
                    images.append(result_from_base64(block[IMAGE_KEY], self.where, streamed))
                    marker = {"nanoedit_result": before + len(images)}
                    content.append({**block, IMAGE_KEY: marker})
                elif _type(block) == "text" and isinstance(block.get("text"), str):
                    if block["text"].strip():
                        texts.append(block["text"].strip())
                    content.append(block)
            if isinstance(step.get("error"), dict):
                failures.append(step["error"])
            kept.append({**step, "content": content})
        text = "\n".join(texts)
        status = str(interaction.get("status"))
        ident = str(interaction.get("id") or "")
        if status != "completed" or not images:
            error = self._failure(interaction, status, ident, failures, model, text)
            if not images:
                raise error
            # The images it made are paid for: they come back with the error.
            return Answer(images, text, error=error)
        exchange: Exchange = {
            "api": "interactions",
            "images": list(range(before + 1, before + len(images) + 1)),
            "model": kept,
            "interaction_id": ident,
            "stored": self.store,
        }
        return Answer(images, text, exchanges=(exchange,))

    def _failure(
        self,
        interaction: dict[str, Any],
        status: str,
        ident: str,
        failures: list[dict[str, Any]],
        model: str,
        text: str,
    ) -> NanoeditError:
        """Why an interaction made no image: a refusal of the content (exit 8), no image for
        no reason of it (exit 5, as generateContent's NO_IMAGE), or its status."""
        errors = [item for item in interaction.get("errors") or [] if isinstance(item, dict)]
        said = [
            (reason, str(failure.get("message") or ""))
            for failure in failures
            for reason in sorted(reasons_of(failure)) or [""]
        ] + [(_reason_of_code(item.get("code")), str(item.get("message") or "")) for item in errors]
        named = f"interaction {ident}" if ident else "the interaction"
        for reason, message in said:
            if reason in REFUSAL_REASONS:
                shown = f": {clip(message)}" if message else ""
                return refusal(
                    f"{self.where} made no image ({named} {status}, reason {reason}){shown}",
                    text,
                    reason,
                )
            if reason in NO_IMAGE_REASONS:
                return no_image(self.where, model, reason, message, text, field="reason")
        details = "; ".join(
            clip(f"{message} [{reason}]" if reason else message)
            for reason, message in said
            if message or reason
        )
        shown = f": {details}" if details else ""
        if status == "completed":
            if text and not said:
                return refusal(f"{self.where} answered with text but no image: {clip(text)!r}", "")
            return ApiError(
                f"{self.where} ended {named} completed without an image{shown}; try again"
            )
        advice = STATUS_ADVICE.get(status, OTHER_STATUS)
        words = f"; the model said: {clip(text)!r}" if text else ""
        return ApiError(f"{self.where} ended {named} {status}{shown}{words}: {advice}")

    # Threads ---------------------------------------------------------------------------------

    def _previous(self, prepared: PreparedJob) -> str | None:
        """The stored interaction a continued turn goes on from: its parent's, when that was
        an interaction of the same model that Google kept; None otherwise."""
        thread = prepared.job.thread
        if thread is None or not prepared.history:
            return None
        parent = thread.parent
        exchange = parent.exchange or {}
        ident = exchange.get("interaction_id")
        if (
            exchange.get("api") == "interactions"
            and exchange.get("stored") is True
            and parent.model == prepared.model
            and isinstance(ident, str)
            and INTERACTION_ID.fullmatch(ident)
        ):
            return ident
        return None

    def _turn(self, prepared: PreparedJob, added: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """This turn's input blocks: its images, then its prompt."""
        return [*added, {"type": "text", "text": prepared.job.options.prompt}]

    def _history(
        self,
        prepared: PreparedJob,
        turns: Sequence[tuple[list[dict[str, Any]], dict[str, Any]]],
        this_turn: list[dict[str, Any]],
    ) -> tuple[list[dict[str, Any]], str]:
        """The thread resent as steps: for each earlier turn (its input blocks and the block of
        the image it led to) a user_input step and the model's own steps as they came (thought
        signatures kept, the image put back where its marker is); then this turn's step. A
        turn that kept no Interactions exchange sends its image as the user's, which the model
        sees without its own reasoning of it: what to say of that (empty: nothing)."""
        steps: list[dict[str, Any]] = []
        blind: list[int] = []
        for past, (inputs, image) in zip(prepared.history, turns, strict=True):
            turn = past.turn
            user = [*inputs, {"type": "text", "text": turn.prompt}]
            exchange = turn.exchange or {}
            answer = exchange.get("model")
            if exchange.get("api") == "interactions" and isinstance(answer, list):
                steps.append({"type": "user_input", "content": user})
                steps += _resent(answer, turn.result, image)
            else:
                blind.append(turn.job)
                steps.append({"type": "user_input", "content": [*user, image]})
        steps.append({"type": "user_input", "content": this_turn})
        said = ""
        if blind:
            jobs = ", ".join(str(job) for job in blind)
            said = (
                f"job {jobs} of this thread kept no Interactions answer (another API, or the "
                "sandbox, made it), so its image is sent as one of yours: the model does not "
                "see its own reasoning of that turn"
            )
        return steps, said


def _type(value: object) -> object:
    return value.get("type") if isinstance(value, dict) else None


def _usage(interaction: dict[str, Any]) -> dict[str, Any] | None:
    usage = interaction.get("usage")
    return usage if isinstance(usage, dict) and usage else None


def _reason_of_code(code: object) -> str:
    """The reason an ``errors[]`` code names, as Google spells reasons: its URI's last word
    (``…/prohibited-content`` is PROHIBITED_CONTENT)."""
    if not isinstance(code, str) or not code:
        return ""
    word = re.split(r"[/#:]", code.rstrip("/"))[-1]
    return word.upper().replace("-", "_")


def _lost(response: httpx.Response) -> bool:
    """Whether a create that named a previous interaction was refused because Google does not
    have it: a 404 that does not name a model."""
    if response.status_code != 404:
        return False
    body = parse_json(response)
    error = body.get("error") if isinstance(body, dict) else None
    message = str(error.get("message") or "") if isinstance(error, dict) else ""
    return "models/" not in message


def _resent(answer: list[Any], result: int, image: dict[str, Any]) -> list[dict[str, Any]]:
    """The model's steps of an exchange, with the image block (``image``) back where the
    marker of the result the thread goes on from is; another result's image is left out."""
    steps: list[dict[str, Any]] = []
    for step in copy.deepcopy(answer):
        if not isinstance(step, dict):
            continue
        if _type(step) == "model_output":
            content = []
            for block in step.get("content") or []:
                marker = block.get(IMAGE_KEY) if isinstance(block, dict) else None
                if isinstance(marker, dict) and "nanoedit_result" in marker:
                    if marker["nanoedit_result"] == result:
                        content.append(image)
                    continue
                content.append(block)
            step = {**step, "content": content}
            step.pop("error", None)
        steps.append(step)
    return steps


def dial_fields(dials: Dials) -> dict[str, Any]:
    """The dials as a create body takes them ([P] google-genai ``_gaos`` interactions types):
    ``generation_config.seed`` and ``.thinking_level`` (lower case), ``tools`` with
    ``{"type": "google_search"}``, ``response_modalities: ["image"]`` for the image alone."""
    fields: dict[str, Any] = {}
    generation: dict[str, Any] = {}
    if dials.seed is not None:
        generation["seed"] = dials.seed
    if dials.thinking is not None:
        generation["thinking_level"] = dials.thinking
    if generation:
        fields["generation_config"] = generation
    if dials.search:
        fields["tools"] = [{"type": "google_search"}]
    if dials.image_only:
        fields["response_modalities"] = ["image"]
    return fields
