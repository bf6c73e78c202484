"""Google's Interactions API beside ``generateContent`` on the Gemini emulator:
``POST /v1beta/interactions`` (and under ``/v1``, which Google's SDK calls) creates an
interaction, ``GET /v1beta/interactions/ID`` reads a stored one back.

Wire facts ([P] Google's SDK google-genai 3.6.1 and its documentation; [I] inferred):

- [P] An interaction is ``{id, status, model, created, updated, steps, usage}``; ``status`` is
  one of in_progress, requires_action, completed, failed, cancelled, incomplete,
  budget_exceeded, queued, idle, requires_continuation. The answer to a create holds the
  output steps only (a thought step with its ``signature`` and ``summary``, then a
  ``model_output`` step of text and image blocks); a GET gives the whole timeline, the
  ``user_input`` steps first.
- [P] ``store`` is true unless sent false: a stored interaction can be read back and continued
  (``previous_interaction_id``); one that is not cannot.
- [P] ``usage`` counts ``total_input_tokens``, ``total_output_tokens``,
  ``total_thought_tokens``, ``total_tokens`` and each by modality (``text``, ``image``).
- [P] ``errors[]`` items are ``{code, message}``, the code "a URI that identifies the error
  type"; a ``model_output`` step's ``error`` is a ``google.rpc.Status``.
- [I] An id ``previous_interaction_id`` names that is unknown, not stored or no longer kept
  is a 404 ``{"error": {"code": 404, "message": "Requested entity was not found.", "status":
  "NOT_FOUND"}}``, as Google's APIs answer a resource that is not there.
- [I] Google publishes no error type URIs: the sandbox's are
  ``https://generativelanguage.googleapis.com/errors/NAME``.
- [I] A refusal of the content, or no image for no reason of it, is a completed interaction
  whose ``model_output`` step has no image and an ``error`` whose ``ErrorInfo`` detail gives
  the reason ``generateContent`` gives as its finishReason (IMAGE_SAFETY, NO_IMAGE…); a
  blocked prompt is a failed interaction whose step error gives PROHIBITED_CONTENT.
- [I] ``background: true`` (and the fault ``interaction-in-progress``) answers
  ``in_progress`` at once; a GET finds it completed after the sandbox's ``task_seconds``.
  Background needs ``store``.
- [I] The sandbox keeps the last ``MAX_STORED`` stored interactions (their images are large);
  an older one is gone, as after Google's retention period.

Gemini's result faults (``image-safety``, ``no-image``, ``prompt-blocked``, ``text-only``,
``upload-expired``…) are acted out here in this API's shape; the ``interaction-*`` faults, the
statuses other than completed, are this API's alone, and a ``generateContent`` request leaves
them queued for an interaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from nanoedit.sandbox.catalog import GEMINI_MODELS, HALF_SIZE, REFUSAL, Model, output_size
from nanoedit.sandbox.catalog import output_tokens as image_tokens_out
from nanoedit.sandbox.faults import FaultKind, Phase, Stage, result_fault
from nanoedit.sandbox.gemini_errors import STATUS_MESSAGES, GoogleError, not_found
from nanoedit.sandbox.gemini_files import file_denied, file_id_of
from nanoedit.sandbox.gemini_generate import (
    DOWNGRADE_FAULTS,
    FINISH_FAULTS,
    SHED_FAULTS,
    GenerateContent,
)
from nanoedit.sandbox.gemini_interactions_request import (
    CreateRequest,
    Format,
    check_signatures,
    conversation_of,
    read_create,
)
from nanoedit.sandbox.gemini_request import MAX_INPUT_IMAGES, FileImage, InlineImage, json_body
from nanoedit.sandbox.gemini_tiers import check_tier, served_tier, shed
from nanoedit.sandbox.prompts import INPUT_IMAGE_TOKENS, google_message, input_limit, text_tokens
from nanoedit.sandbox.render import Encoded, Picture
from nanoedit.sandbox.runtime import SANDBOX_HOST, Call, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response

MAX_STORED = 256
ERROR_URI = "https://generativelanguage.googleapis.com/errors/{}"
# Statuses an interaction may have while it is not done: a GET answers it as it is.
WAITING = ("in_progress", "queued")
SUBMITS = frozenset({Phase.SUBMIT})
# The statuses other than completed, each a fault of this API alone, with its status and what
# ``errors[]`` says of it (None: nothing).
STATUS_FAULTS: dict[str, tuple[str, tuple[str, str] | None]] = {
    "interaction-failed": ("failed", ("internal", STATUS_MESSAGES[500])),
    "interaction-incomplete": ("incomplete", None),
    "interaction-budget-exceeded": (
        "budget_exceeded",
        ("budget-exceeded", "The interaction's budget was used up before it finished."),
    ),
    "interaction-cancelled": ("cancelled", None),
    "interaction-requires-action": ("requires_action", None),
    "interaction-in-progress": ("in_progress", None),
    "interaction-queued": ("queued", None),
}
FAULT_KINDS: tuple[FaultKind, ...] = (
    result_fault("interaction-failed", "Interactions API: status failed, errors[] INTERNAL"),
    result_fault(
        "interaction-incomplete", "Interactions API: status incomplete, words but no image"
    ),
    result_fault("interaction-budget-exceeded", "Interactions API: status budget_exceeded"),
    result_fault("interaction-cancelled", "Interactions API: status cancelled"),
    result_fault("interaction-requires-action", "Interactions API: status requires_action"),
    result_fault(
        "interaction-in-progress",
        "Interactions API: status in_progress; a GET finds it completed after task_seconds",
    ),
    result_fault(
        "interaction-queued",
        "Interactions API: status queued; a GET finds it completed after task_seconds",
    ),
)
# Every result fault an interaction acts out: Gemini's own, and the statuses above.
ACTS = frozenset({*FINISH_FAULTS, "prompt-blocked", "text-only", "upload-expired", *STATUS_FAULTS})
INCOMPLETE = "I was working on the picture when the output ran out."
# A step error's message where generateContent sends no finishMessage: Google's meaning of the
# reason (its FinishReason reference).
REASON_MEANINGS = {"IMAGE_OTHER": "Image generation stopped for a reason not otherwise specified."}


@dataclass
class Stored:
    """An interaction the server keeps: its timeline, its answer, and (while it is not done)
    when it will be."""

    id: str
    model: Model
    created: float
    given: list[dict[str, Any]]
    """Its input steps, as sent (a plain input as one user_input step)."""
    outputs: list[dict[str, Any]]
    status: str
    usage: dict[str, Any] | None
    previous_id: str | None
    conversation: list[dict[str, Any]] = field(default_factory=list)
    """Every step so far, the earlier interactions' first: what a continuation goes on from."""
    errors: list[dict[str, str]] | None = None
    waiting: str | None = None
    """While not done: the status it shows (in_progress, queued), until ``ready_at``."""
    ready_at: float = 0.0
    service_tier: str | None = None
    """The tier that served it, for a create that named one (see ``gemini_tiers``)."""


def _stamp(epoch: float) -> str:
    """ISO 8601 in UTC, to the second, as the API writes ``created`` and ``updated``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _blob(image: Encoded) -> dict[str, Any]:
    return {"type": "image", "data": base64.b64encode(image.data).decode(), "mime_type": image.mime}


def _step_error(reason: str, message: str, code: int = 3) -> dict[str, Any]:
    """A ``model_output`` step's error: a google.rpc.Status whose ErrorInfo gives the reason."""
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "generativelanguage.googleapis.com",
    }
    return {"code": code, "message": message, "details": [info]}


class Interactions:
    """The Interactions API of one emulated Gemini API (``api``: its name, whose result faults
    an interaction takes), drawing and loading images as its ``generateContent`` does."""

    def __init__(self, runtime: Runtime, api: str, generator: GenerateContent) -> None:
        self.runtime = runtime
        self.api = api
        self.generator = generator
        self._secret = secrets.token_bytes(32)
        self._stored: OrderedDict[str, Stored] = OrderedDict()
        self._lock = threading.Lock()

    # Routes ----------------------------------------------------------------------------------

    def create(self, call: Call, version: str) -> SandboxResponse:
        """``POST /{version}/interactions``: the answer, or GoogleError."""
        request = read_create(
            json_body(call.received),
            GEMINI_MODELS,
            lambda model_id: not_found(model_id, version, "createInteraction"),
        )
        if request.background and not request.store:
            raise GoogleError(
                400,
                "* CreateInteractionRequest.background: a background interaction must be "
                "stored; leave store out or send it true",
            )
        context: list[dict[str, Any]] = []
        if request.previous_id is not None:
            previous = self._lookup(request.previous_id)
            if self._status(previous) in WAITING:
                raise GoogleError(
                    400,
                    f"Interaction {previous.id} is still {self._status(previous)}: continue it "
                    "once it has completed.",
                    status="FAILED_PRECONDITION",
                )
            context = previous.conversation
        check_signatures(request.steps, self._signed)
        steps = [*context, *request.steps]
        stored = self._answer(call, request, steps)
        if request.store:
            with self._lock:
                self._stored[stored.id] = stored
                while len(self._stored) > MAX_STORED:
                    self._stored.popitem(last=False)
        return json_response(200, self._shown(stored, whole=False))

    def get(self, call: Call, interaction_id: str) -> SandboxResponse:
        """``GET /{version}/interactions/ID``: a stored interaction's whole timeline."""
        if call.received.query.get("stream", "false").lower() == "true":
            raise GoogleError(
                400, "the nanoedit sandbox answers stream=false only; leave stream out"
            )
        return json_response(200, self._shown(self._lookup(interaction_id), whole=True))

    # Answers ---------------------------------------------------------------------------------

    def _answer(self, call: Call, request: CreateRequest, steps: list[dict[str, Any]]) -> Stored:
        """The interaction a create makes, drawn now (one that waits shows it later)."""
        model = request.model
        check_tier(model, request.tier, self.runtime.tiers)
        talk = conversation_of(steps)
        limit = MAX_INPUT_IMAGES[model.family]
        if talk.user_images > limit:
            raise GoogleError(
                400,
                f"* CreateInteractionRequest.input: {talk.user_images} input images; {model.id} "
                f"takes at most {limit}",
            )
        prompt = " ".join([*talk.earlier, talk.prompt])
        count = text_tokens(prompt) + INPUT_IMAGE_TOKENS[model.family] * talk.images
        if count > input_limit(model):
            raise GoogleError(400, google_message(count, input_limit(model)))
        own_hosts = frozenset({call.netloc, SANDBOX_HOST})
        # A continued edit works on the conversation's last image, then the turn's own.
        chosen = [talk.last_image, *talk.added] if talk.last_image else list(talk.added)
        inputs = [self.generator.load_image(image, own_hosts) for image in chosen]
        if request.tier == "flex" and self.runtime.faults.take(
            SUBMITS, self.api, Stage.RESULT, SHED_FAULTS
        ):
            raise shed()
        downgraded = request.tier == "priority" and self.runtime.faults.take(
            SUBMITS, self.api, Stage.RESULT, DOWNGRADE_FAULTS
        )
        fault = self.runtime.faults.take(SUBMITS, self.api, Stage.RESULT, ACTS)
        if fault == "upload-expired":
            self._expire_uploads(chosen)
        waiting = "in_progress" if request.background else None
        if fault in ("interaction-in-progress", "interaction-queued"):
            waiting, fault = STATUS_FAULTS[fault][0], None
        usage = _Usage(text_tokens(prompt), INPUT_IMAGE_TOKENS[model.family] * talk.images)
        status, outputs, errors = self._outcome(
            fault, model, request.format, talk.prompt, talk.earlier, inputs, usage
        )
        return Stored(
            id=secrets.token_urlsafe(18),
            model=model,
            created=self.runtime.epoch(),
            given=list(request.steps),
            outputs=outputs,
            status=status,
            usage=usage.report(),
            previous_id=request.previous_id,
            conversation=[*steps, *outputs],
            errors=errors,
            waiting=waiting,
            ready_at=self.runtime.clock() + self.runtime.task_seconds,
            service_tier=None
            if request.tier == "standard"
            else served_tier(request.tier, bool(downgraded)),
        )

    def _outcome(
        self,
        fault: str | None,
        model: Model,
        wanted: Format,
        prompt: str,
        earlier: tuple[str, ...],
        inputs: list[Image.Image],
        usage: _Usage,
    ) -> tuple[str, list[dict[str, Any]], list[dict[str, str]] | None]:
        """The status, output steps and ``errors[]`` of an interaction the fault (None: none)
        shapes."""
        if fault == "prompt-blocked":
            error = _step_error("PROHIBITED_CONTENT", "The prompt was blocked: PROHIBITED_CONTENT.")
            failed = [{"code": ERROR_URI.format("prohibited-content"), "message": error["message"]}]
            return "failed", [{"type": "model_output", "error": error}], failed
        status, said = STATUS_FAULTS.get(fault or "", ("completed", None))
        errors = None if said is None else [{"code": ERROR_URI.format(said[0]), "message": said[1]}]
        draws = wanted.image and fault not in ("text-only", "interaction-incomplete")
        thought = f"**Planning the picture**\n\nI'm working out how to show: {prompt}"
        usage.thought = text_tokens(thought)
        summary: list[dict[str, Any]] = [{"type": "text", "text": thought}]
        if draws and wanted.summaries and status == "completed" and fault not in FINISH_FAULTS:
            # An interim draft in the thought's summary: not billed, not a result.
            draft = self._render(model, wanted, inputs, earlier, HALF_SIZE, f"draft: {prompt}")
            summary.append(_blob(draft))
        step: dict[str, Any] = {"type": "thought", "signature": self._sign()}
        if wanted.summaries:
            step["summary"] = summary
        outputs: list[dict[str, Any]] = [step]
        if status in ("failed", "cancelled", "budget_exceeded", "requires_action"):
            return status, outputs if status != "cancelled" else [], errors
        if fault in FINISH_FAULTS:
            reason, message = FINISH_FAULTS[fault]
            error = _step_error(reason, message or REASON_MEANINGS[reason])
            outputs.append({"type": "model_output", "content": [], "error": error})
            return status, outputs, errors
        content: list[dict[str, Any]] = []
        if not draws:
            words = {
                "text-only": REFUSAL,
                "interaction-incomplete": INCOMPLETE,
            }.get(fault or "", f"Here is what the image would show: {prompt}")
            content.append({"type": "text", "text": words})
            usage.add("text", text_tokens(words))
        else:
            if wanted.text:
                words = "Here is the edited image." if inputs else "Here is the image."
                content.append({"type": "text", "text": words})
                usage.add("text", text_tokens(words))
            image = self._render(model, wanted, inputs, earlier, wanted.size, prompt)
            content.append(_blob(image))
            usage.add("image", image_tokens_out(model, wanted.size))
        outputs.append({"type": "model_output", "content": content})
        return status, outputs, errors

    def _render(
        self,
        model: Model,
        wanted: Format,
        inputs: list[Image.Image],
        earlier: tuple[str, ...],
        size: str | None,
        caption: str,
    ) -> Encoded:
        """What ``generateContent`` draws for the same request, with the marks of the earlier
        turns of a continued conversation."""
        source = inputs[0].size if inputs else None
        pixels = output_size(model, wanted.ratio, size, source)
        picture = Picture(caption, pixels, model.mime, earlier=earlier, seed=wanted.seed)
        renderer = self.runtime.renderer
        if inputs:
            return renderer.edit(inputs, picture)
        return renderer.generate(picture)

    def _expire_uploads(self, images: list[InlineImage | FileImage]) -> None:
        """Every upload expires at once (fault ``upload-expired``); one this request uses is
        refused."""
        uploads = self.generator.uploads
        if uploads is not None:
            uploads.expire_all()
        for image in images:
            file_id = file_id_of(image.uri) if isinstance(image, FileImage) else None
            if file_id is not None:
                raise file_denied(file_id)

    # The store -------------------------------------------------------------------------------

    def _lookup(self, interaction_id: str) -> Stored:
        with self._lock:
            found = self._stored.get(interaction_id)
            if found is not None:
                self._stored.move_to_end(interaction_id)
        if found is None:
            raise GoogleError(404, "Requested entity was not found.")
        return found

    def _status(self, stored: Stored) -> str:
        if stored.waiting is not None and self.runtime.clock() < stored.ready_at:
            return stored.waiting
        return stored.status

    def _shown(self, stored: Stored, *, whole: bool) -> dict[str, Any]:
        """The interaction as the API shows it: a create's answer holds its output steps, a
        GET the whole timeline; one still waiting shows no output yet (and a create's answer to
        one that waits always does: it comes before the work)."""
        status = stored.waiting if stored.waiting and not whole else self._status(stored)
        done = status not in WAITING
        outputs = stored.outputs if done else []
        updated = stored.created
        if stored.waiting is not None and done:
            updated = self.runtime.epoch(stored.ready_at)
        shown: dict[str, Any] = {
            "id": stored.id,
            "status": status,
            "model": stored.model.id,
            "created": _stamp(stored.created),
            "updated": _stamp(updated),
            "steps": [*stored.given, *outputs] if whole else outputs,
        }
        if stored.previous_id is not None:
            shown["previous_interaction_id"] = stored.previous_id
        if stored.service_tier is not None:
            shown["service_tier"] = stored.service_tier
        if done and stored.usage is not None:
            shown["usage"] = stored.usage
        if done and stored.errors:
            shown["errors"] = stored.errors
        return shown

    # Thought signatures ----------------------------------------------------------------------

    def _sign(self) -> str:
        """An opaque signature the server can tell as its own: a nonce and its HMAC."""
        nonce = secrets.token_bytes(16)
        mac = hmac.new(self._secret, nonce, hashlib.sha256).digest()
        return base64.b64encode(nonce + mac).decode()

    def _signed(self, signature: str) -> bool:
        try:
            raw = base64.b64decode(signature, validate=True)
        except ValueError:
            return False
        nonce, mac = raw[:16], raw[16:]
        expected = hmac.new(self._secret, nonce, hashlib.sha256).digest()
        return len(raw) == 48 and hmac.compare_digest(mac, expected)


class _Usage:
    """An interaction's token counts, as its ``usage`` reports them."""

    def __init__(self, text_in: int, image_in: int) -> None:
        self.inputs = [("text", text_in)] + ([("image", image_in)] if image_in else [])
        self.outputs: list[tuple[str, int]] = []
        self.thought = 0

    def add(self, modality: str, tokens: int) -> None:
        self.outputs.append((modality, tokens))

    def report(self) -> dict[str, Any]:
        total_in = sum(tokens for _, tokens in self.inputs)
        total_out = sum(tokens for _, tokens in self.outputs)
        report: dict[str, Any] = {
            "total_input_tokens": total_in,
            "input_tokens_by_modality": [
                {"modality": modality, "tokens": tokens} for modality, tokens in self.inputs
            ],
            "total_output_tokens": total_out,
            "total_thought_tokens": self.thought,
            "total_tokens": total_in + total_out + self.thought,
        }
        if self.outputs:
            report["output_tokens_by_modality"] = [
                {"modality": modality, "tokens": tokens} for modality, tokens in self.outputs
            ]
        return report
