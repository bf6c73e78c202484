"""Google's ``generateContent`` for the image models, as a piece any emulated Google API calls:
the body checked (``gemini_request``), its input tokens counted against the model's limit, its
images loaded, the result fault taken, and the answer drawn: thought parts first on the models
that think, the image sized by the model's tables, the usage Google bills.

The Gemini API calls it for ``models/MODEL:generateContent``; an API that takes the same body
and gives the same answer on other routes (Vertex AI's publisher models) calls it the same way,
after its own routing, credentials and model lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import replace
from urllib.parse import urlsplit

from PIL import Image

from nanoedit.sandbox.catalog import HALF_SIZE, REFUSAL, Family, Model, output_size, output_tokens
from nanoedit.sandbox.faults import Phase, Stage
from nanoedit.sandbox.gemini_errors import GoogleError
from nanoedit.sandbox.gemini_files import StoredUpload, UploadStore, file_denied, file_id_of
from nanoedit.sandbox.gemini_request import FileImage, InlineImage, Request, read_request
from nanoedit.sandbox.gemini_tiers import DOWNGRADE, SHED, check_tier, served_tier, shed
from nanoedit.sandbox.prompts import INPUT_IMAGE_TOKENS, google_message, input_limit, input_tokens
from nanoedit.sandbox.prompts import text_tokens as _tokens
from nanoedit.sandbox.render import Encoded, Picture, decode
from nanoedit.sandbox.runtime import Runtime

# Finish reasons the fault plan can ask for, with the finishMessage Google sends beside them
# (None: none; IMAGE_OTHER is Google's "not otherwise specified").
BLOCKED_IMAGE = (
    "Unable to show the generated image. The image was filtered out because it violated "
    "Google's Generative AI Prohibited Use policy. You will not be charged for blocked images. "
    "Try rephrasing the prompt. If you think this was a mistake, send feedback."
)
FINISH_FAULTS: dict[str, tuple[str, str | None]] = {
    "image-safety": ("IMAGE_SAFETY", BLOCKED_IMAGE),
    "image-prohibited": ("IMAGE_PROHIBITED_CONTENT", BLOCKED_IMAGE),
    "no-image": (
        "NO_IMAGE",
        "The model was expected to generate an image, but none was generated.",
    ),
    "image-other": ("IMAGE_OTHER", None),
}
# What Google says of an input image it cannot read.
BAD_IMAGE = (
    "Unable to process input image. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting"
)
# Result faults wait for a submit only: a fault for a file an upload makes waits for the upload.
SUBMITS = frozenset({Phase.SUBMIT})
# [I] The sandbox's own key for its thought signatures: fixed, so that a signature one sandbox
# process gave is good in another (each run of nanoedit --sandbox starts its own).
SIGNING_SECRET = b"nanoedit sandbox thought signatures"
# [S] What Google answers a history whose thought signature it did not give (Vertex AI's words,
# issue threads; [I] the Gemini API's taken to be the same).
INVALID_SIGNATURE = (
    "Unable to submit request because Thought signature is not valid.. Learn more: "
    "https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/gemini"
)
# The result faults generateContent acts out: one of another route of the same API (the
# Interactions API's statuses) waits for a request of that route.
GENERATE_FAULTS = frozenset({*FINISH_FAULTS, "prompt-blocked", "text-only", "upload-expired"})
# A shed waits for a flex request, on either route: a standard one leaves it queued.
SHED_FAULTS = frozenset({SHED})
# A downgrade waits for a priority request.
DOWNGRADE_FAULTS = frozenset({DOWNGRADE})


class GenerateContent:
    """``generateContent`` for one emulated API: ``api`` is its name (the result faults it
    takes are those that fit it), ``uploads`` the Files API store its ``fileData`` parts may
    name (None: it has no Files API, and a ``fileData`` URI is fetched as a URL)."""

    def __init__(self, runtime: Runtime, api: str, uploads: UploadStore | None = None) -> None:
        self.runtime = runtime
        self.api = api
        self.uploads = uploads

    def answer(
        self, body: object, model: Model, own_hosts: frozenset[str], mime: str | None = None
    ) -> dict[str, object]:
        """The answer to a ``generateContent`` body (parsed JSON) for ``model``; GoogleError
        says what Google refuses. ``own_hosts`` are the hosts whose image URLs the sandbox
        answers itself (the one the client addressed, and the sandbox's own name); ``mime``:
        the format asked for where the API has the field (Vertex), else the model's own."""
        return self.served(body, model, own_hosts, mime)[0]

    def served(
        self, body: object, model: Model, own_hosts: frozenset[str], mime: str | None = None
    ) -> tuple[dict[str, object], str | None]:
        """:meth:`answer`, with the service tier that served a request that named one (for
        the ``x-gemini-service-tier`` header; None when it named none)."""
        request = replace(read_request(body, model), mime=mime)
        check_tier(model, request.tier, self.runtime.tiers)
        # Counted before any image is fetched or drawn: a prompt past the limit costs nothing.
        said = " ".join([*request.context, request.prompt])
        count, limit = input_tokens(model, said, len(request.images)), input_limit(model)
        if count > limit:
            raise GoogleError(400, google_message(count, limit))
        for signed in request.signed:
            if signed.signature != image_signature(self.load_image(signed.image, own_hosts)):
                raise GoogleError(400, INVALID_SIGNATURE)
        inputs = [self.load_image(image, own_hosts) for image in request.images]
        if request.tier == "flex" and self.runtime.faults.take(
            SUBMITS, self.api, Stage.RESULT, SHED_FAULTS
        ):
            raise shed()
        downgraded = request.tier == "priority" and self.runtime.faults.take(
            SUBMITS, self.api, Stage.RESULT, DOWNGRADE_FAULTS
        )
        fault = self.runtime.faults.take(SUBMITS, self.api, Stage.RESULT, GENERATE_FAULTS)
        if fault == "upload-expired":
            self._expire_uploads(request)
        answer = self._answer(model, request, inputs, fault)
        if request.tier == "standard":
            return answer, None
        return answer, served_tier(request.tier, bool(downgraded))

    def _expire_uploads(self, request: Request) -> None:
        """Every upload expires at once (fault ``upload-expired``); a request using one is
        refused."""
        if self.uploads is not None:
            self.uploads.expire_all()
        for image in request.images:
            file_id = self._file_id(image.uri) if isinstance(image, FileImage) else None
            if file_id is not None:
                raise file_denied(file_id)

    def _file_id(self, uri: str) -> str | None:
        """The uploaded file a ``fileData`` URI names (None: it names none, or there is no
        Files API)."""
        return None if self.uploads is None else file_id_of(uri)

    def load_image(self, image: InlineImage | FileImage, own_hosts: frozenset[str]) -> Image.Image:
        """The picture an image part stands for (its bytes, an upload of the Files API, or a
        URL fetched); GoogleError when there is none."""
        if isinstance(image, InlineImage):
            data = image.data
        else:
            file_id = self._file_id(image.uri)
            if file_id is not None:
                data = self._uploaded(file_id).data
            elif urlsplit(image.uri).scheme in ("http", "https"):
                # Google fetches public and signed URLs given as fileUri.
                try:
                    data, _ = self.runtime.fetch_input(image.uri, own_hosts)
                except Exception:  # a caller's fetch may fail in any way; all mean the same
                    raise GoogleError(
                        400, f"Cannot fetch content from the provided URL: {image.uri}"
                    ) from None
            else:
                raise GoogleError(400, f"Invalid or unsupported file uri: {image.uri}")
        try:
            return decode(data)
        except ValueError:
            raise GoogleError(400, BAD_IMAGE) from None

    def _uploaded(self, file_id: str) -> StoredUpload:
        """An uploaded file that can be used now; GoogleError when it is gone or not ACTIVE."""
        stored = None if self.uploads is None else self.uploads.lookup(file_id)
        if stored is None:
            raise file_denied(file_id)
        if stored.state(self.runtime.clock()) != "ACTIVE":
            raise GoogleError(
                400,
                f"The File {file_id} is not in an ACTIVE state and usage is not allowed.",
                status="FAILED_PRECONDITION",
            )
        return stored

    def _answer(
        self, model: Model, request: Request, inputs: list[Image.Image], fault: str | None
    ) -> dict[str, object]:
        """The ``generateContent`` answer, or the block or text a result fault asks for."""
        text_tokens = _tokens(request.prompt)
        image_tokens = INPUT_IMAGE_TOKENS[model.family] * len(inputs)
        prompt_details = [{"modality": "TEXT", "tokenCount": text_tokens}]
        if inputs:
            prompt_details.append({"modality": "IMAGE", "tokenCount": image_tokens})
        prompt_tokens = text_tokens + image_tokens
        if fault == "prompt-blocked":
            usage: dict[str, object] = {
                "promptTokenCount": prompt_tokens,
                "totalTokenCount": prompt_tokens,
                "promptTokensDetails": prompt_details,
            }
            return {
                "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                **self._trailer(model, usage),
            }
        if fault in FINISH_FAULTS:
            reason, message = FINISH_FAULTS[fault]
            candidate: dict[str, object] = {"finishReason": reason, "index": 0}
            if message is not None:
                candidate["finishMessage"] = message
            usage = {
                "promptTokenCount": prompt_tokens,
                "totalTokenCount": prompt_tokens,
                "promptTokensDetails": prompt_details,
            }
            return {"candidates": [candidate], **self._trailer(model, usage)}
        parts: list[dict[str, object]] = []
        thought_tokens = 0
        thinks = model.family is not Family.FLASH
        draws = fault != "text-only" and "IMAGE" in request.modalities
        if thinks:
            thought = f"**Planning the picture**\n\nI'm working out how to show: {request.prompt}"
            parts.append({"text": thought, "thought": True})
            thought_tokens = _tokens(thought)
            if draws:
                # An interim "thought image": a smaller draft, not billed, to be skipped.
                draft = self._render(model, request, inputs, HALF_SIZE, f"draft: {request.prompt}")
                parts.append({"inlineData": _blob(draft), "thought": True})
        out_details: list[dict[str, object]] = []
        out_tokens = 0
        if not draws:
            answer = (
                REFUSAL
                if fault == "text-only"
                else f"Here is what the image would show: {request.prompt}"
            )
            parts.append({"text": answer})
            out_tokens = _tokens(answer)
            out_details.append({"modality": "TEXT", "tokenCount": out_tokens})
        else:
            if "TEXT" in request.modalities:
                words = "Here is the edited image." if inputs else "Here is the image."
                parts.append({"text": words})
                out_tokens += _tokens(words)
                out_details.append({"modality": "TEXT", "tokenCount": out_tokens})
            image = self._render(model, request, inputs, request.size, request.prompt)
            image_part: dict[str, object] = {"inlineData": _blob(image)}
            if thinks:
                # [P] Gemini 3 signs the first part after its thoughts, and every image.
                image_part["thoughtSignature"] = _encoded(image_signature(decode(image.data)))
                if len(parts) > 1 and "text" in parts[-1] and not parts[-1].get("thought"):
                    parts[-1]["thoughtSignature"] = _encoded(_text_signature(parts[-1]))
            parts.append(image_part)
            image_out = output_tokens(model, request.size)
            out_tokens += image_out
            out_details.append({"modality": "IMAGE", "tokenCount": image_out})
        usage = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": out_tokens,
            "totalTokenCount": prompt_tokens + out_tokens + thought_tokens,
            "promptTokensDetails": prompt_details,
            "candidatesTokensDetails": out_details,
        }
        if thinks:
            usage["thoughtsTokenCount"] = thought_tokens
        candidate = {
            "content": {"parts": parts, "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
        return {"candidates": [candidate], **self._trailer(model, usage)}

    def _trailer(self, model: Model, usage: dict[str, object]) -> dict[str, object]:
        return {
            "usageMetadata": usage,
            "modelVersion": model.id,
            "responseId": secrets.token_urlsafe(16),
        }

    def _render(
        self,
        model: Model,
        request: Request,
        inputs: list[Image.Image],
        size: str | None,
        caption: str,
    ) -> Encoded:
        source = inputs[0].size if inputs else None
        pixels = output_size(model, request.ratio, size, source)
        # A conversation's answer shows the turns the model saw (the renderer's ``earlier``):
        # a request that only re-sends the last image draws none.
        picture = Picture(
            caption, pixels, request.mime or model.mime, earlier=request.earlier, seed=request.seed
        )
        if inputs:
            return self.runtime.renderer.edit(inputs, picture)
        return self.runtime.renderer.generate(picture)


def _blob(image: Encoded) -> dict[str, object]:
    return {"mimeType": image.mime, "data": base64.b64encode(image.data).decode()}


def image_signature(picture: Image.Image) -> bytes:
    """The thought signature of an image the model made: [I] an HMAC of its pixels under the
    sandbox's secret, so that it holds for the image saved with metadata added (nanoedit's
    provenance) and for no other picture. Google's signatures are opaque: only Google reads
    them; the sandbox's need only be checkable by the sandbox, in any of its processes."""
    digest = hashlib.sha256(repr((picture.mode, picture.size)).encode())
    digest.update(picture.tobytes())
    return hmac.new(SIGNING_SECRET, b"image\0" + digest.digest(), hashlib.sha512).digest()


def _text_signature(part: dict[str, object]) -> bytes:
    """The signature of the first text part after the thoughts ([I] not checked when it comes
    back: the sandbox checks the images' signatures, which Google documents as required)."""
    text = str(part.get("text", "")).encode()
    return hmac.new(SIGNING_SECRET, b"text\0" + text, hashlib.sha512).digest()


def _encoded(signature: bytes) -> str:
    return base64.b64encode(signature).decode()
