"""Google Cloud's Vertex AI for the image models: a project's publisher model answers
``generateContent`` with Gemini's body and answer, signed in with ``Authorization: Bearer``.

Routes (under ``/v1``, and ``/v1beta1`` where Google's SDK calls them):
``POST /v1/projects/P/locations/L/publishers/google/models/M:generateContent``,
``GET /v1/projects/P/locations/L/publishers/google/models/M`` (the SDK's ``models.get``) and
``GET /v1/publishers/google/models/M`` (a publisher model, no project).

What is Vertex's own: a missing or unknown token is 401 UNAUTHENTICATED; the answer fault
``project-denied`` is the 403 PERMISSION_DENIED Vertex gives a project that is not there or
not the account's; a model not served in the location (the image models are all served in
``global``; [I] here only 2.5 Flash Image in a region, and no model in a location Google does
not have) is 404 "Publisher Model ... was not found". ``imageConfig`` may carry Vertex's own
``outputMimeType``, ``outputCompressionQuality``, ``imageOutputOptions`` (Google's SDK sends
that), ``personGeneration`` and ``prominentPeople``: checked here, then
the rest goes to Gemini's ``generateContent`` piece, which draws the answer.
"""

from __future__ import annotations

import re
from typing import Any

from nanoedit.sandbox.catalog import GEMINI_MODELS, Model
from nanoedit.sandbox.faults import Phase, Stage, answer_fault
from nanoedit.sandbox.gemini_api import GeminiApi
from nanoedit.sandbox.gemini_errors import GoogleError, fault_answer, front_end_page
from nanoedit.sandbox.gemini_generate import GenerateContent
from nanoedit.sandbox.gemini_interactions import FAULT_KINDS as INTERACTION_FAULT_KINDS
from nanoedit.sandbox.gemini_models import model_object
from nanoedit.sandbox.gemini_request import json_body
from nanoedit.sandbox.runtime import SANDBOX_HOST, Call, EmulatedApi, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response

VERSIONS = r"(?P<version>v1|v1beta1)"
PROJECT_MODEL = re.compile(
    rf"/{VERSIONS}/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+)(?::(?P<action>\w+))?"
)
PUBLISHER_MODEL = re.compile(rf"/{VERSIONS}/publishers/google/models/(?P<model>[^/:]+)")
SUBMIT_PHASES = frozenset({Phase.SUBMIT, Phase.API})
API_PHASES = frozenset({Phase.API})
# [I] Where each model is served: every image model in global; 2.5 Flash Image in regions too.
REGIONS = frozenset(
    {
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-south1",
        "us-west1",
        "us-west4",
        "europe-west1",
        "europe-west4",
        "europe-west8",
        "europe-west9",
        "europe-north1",
        "europe-central2",
        "europe-southwest1",
    }
)
REGIONAL_MODELS = frozenset({"gemini-2.5-flash-image"})
# [P] Google's words for a request without a token, and for a token it does not take.
NO_TOKEN = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
BAD_TOKEN = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
# [P] Vertex-only imageConfig fields, and the values personGeneration takes.
VERTEX_IMAGE_FIELDS = (
    "outputMimeType",
    "outputCompressionQuality",
    "imageOutputOptions",
    "personGeneration",
    "prominentPeople",
)
PERSON_GENERATION = frozenset({"ALLOW_ALL", "ALLOW_ADULT", "ALLOW_NONE"})
OUTPUT_TYPES = frozenset({"image/png", "image/jpeg"})


class VertexApi(EmulatedApi):
    """Answers the publisher-model routes of ``/v1/projects/…`` and ``/v1/publishers/…``."""

    name = "vertex"
    paid_routes = (
        r"POST /v1(beta1)?/projects/[^ ]+/publishers/google/models/[^/ ]+:generateContent",
    )
    refusal = "image-safety"
    index = """Vertex AI (Authorization: Bearer TOKEN; any project; location global)
  POST /v1/projects/P/locations/L/publishers/google/models/MODEL:generateContent
  GET  /v1/projects/P/locations/L/publishers/google/models/MODEL
  GET  /v1/publishers/google/models/MODEL
"""
    fault_kinds = (
        # Gemini's result faults (the upload's aside: Vertex has no Files API, nor the
        # Interactions API), acted out here.
        *(
            kind
            for kind in GeminiApi.fault_kinds
            if kind.stage is Stage.RESULT
            and kind.name != "upload-expired"
            and kind not in INTERACTION_FAULT_KINDS
        ),
        answer_fault(
            "project-denied",
            "HTTP 403 PERMISSION_DENIED on the project (one that is not there or not the "
            "account's)",
        ),
    )

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.generator = GenerateContent(runtime, self.name)

    def answers(self, call: Call) -> bool:
        """The project and publisher routes under ``/v1`` and ``/v1beta1``."""
        path = call.received.path
        return path.startswith(("/v1/projects/", "/v1/publishers/", "/v1beta1/"))

    def phases(self, call: Call) -> frozenset[Phase] | None:
        """Submits for ``generateContent``, plain API requests for the model routes."""
        path, method = call.received.path, call.method
        route = PROJECT_MODEL.fullmatch(path)
        if route is not None and method == "POST" and route["action"] == "generateContent":
            return SUBMIT_PHASES
        if method == "GET" and (
            (route is not None and route["action"] is None) or PUBLISHER_MODEL.fullmatch(path)
        ):
            return API_PHASES
        return None

    def handle(self, call: Call, fault: str | None) -> SandboxResponse:
        """Answer one request; ``fault`` is the answer fault taken for it."""
        if self.phases(call) is None:
            return front_end_page(404, call.received.path)
        try:
            self._authenticate(call)
            route = PROJECT_MODEL.fullmatch(call.received.path)
            if route is None:
                return self._publisher_model(call)
            if fault == "project-denied":
                raise _denied(route)
            if fault is not None:  # a shared one (a 429, a 500…), in Google's shape
                return fault_answer(fault, route["model"], self.runtime.epoch())
            model = _served(route)
            if route["action"] is None:
                return json_response(200, _publisher_object(model))
            body, mime = _checked(json_body(call.received))
            own_hosts = frozenset({call.netloc, SANDBOX_HOST})
            return json_response(200, self.generator.answer(body, model, own_hosts, mime))
        except GoogleError as error:
            return error.response()

    def _authenticate(self, call: Call) -> None:
        header = call.received.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GoogleError(401, NO_TOKEN, status="UNAUTHENTICATED")
        if not self.accepts(call, token.strip()):
            raise GoogleError(401, BAD_TOKEN, status="UNAUTHENTICATED")

    def _publisher_model(self, call: Call) -> SandboxResponse:
        route = PUBLISHER_MODEL.fullmatch(call.received.path)
        model = GEMINI_MODELS.get(route["model"]) if route else None
        if route is None or model is None:
            name = route["model"] if route else ""
            raise GoogleError(404, f"Publisher Model `publishers/google/models/{name}` not found.")
        return json_response(200, _publisher_object(model))


def _served(route: re.Match[str]) -> Model:
    """The model a project route names, when it is served in its location; else Vertex's 404."""
    model = GEMINI_MODELS.get(route["model"])
    location = route["location"]
    here = location == "global" or (location in REGIONS and route["model"] in REGIONAL_MODELS)
    if model is None or not here:
        name = f"projects/{route['project']}/locations/{location}/publishers/google/models/"
        raise GoogleError(
            404,
            f"Publisher Model `{name}{route['model']}` was not found or your project does not "
            "have access to it. Please ensure you are using a valid model version. For more "
            "information, see: https://cloud.google.com/vertex-ai/generative-ai/docs/learn/"
            "model-versions",
        )
    return model


def _denied(route: re.Match[str]) -> GoogleError:
    """What Vertex answers for a project that is not there or not the account's."""
    resource = (
        f"projects/{route['project']}/locations/{route['location']}/publishers/google/models/"
        f"{route['model']}"
    )
    details: list[dict[str, object]] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "IAM_PERMISSION_DENIED",
            "domain": "aiplatform.googleapis.com",
            "metadata": {"permission": "aiplatform.endpoints.predict", "resource": resource},
        }
    ]
    return GoogleError(
        403,
        f"Permission 'aiplatform.endpoints.predict' denied on resource "
        f"'//aiplatform.googleapis.com/{resource}' (or it may not exist).",
        details,
    )


def _checked(body: Any) -> tuple[Any, str | None]:
    """The body with Vertex's own ``imageConfig`` fields checked and taken out (Gemini's
    piece, which refuses them as the Gemini API does, reads the rest), and the output format
    they ask for (None: the model's own), which the answer is rendered in."""
    config = body.get("generationConfig") if isinstance(body, dict) else None
    if not isinstance(config, dict):
        return body, None
    image = config.get("imageConfig")
    if not isinstance(image, dict) or not any(field in image for field in VERTEX_IMAGE_FIELDS):
        return body, None
    person = image.get("personGeneration")
    if person is not None and person not in PERSON_GENERATION:
        raise GoogleError(400, f"Invalid value at 'image_config.person_generation': {person!r}")
    options = image.get("imageOutputOptions")
    mime = image.get(
        "outputMimeType", options.get("mimeType") if isinstance(options, dict) else None
    )
    if mime is not None and mime not in OUTPUT_TYPES:
        raise GoogleError(400, f"Unsupported output mime type: {mime}")
    kept = {key: value for key, value in image.items() if key not in VERTEX_IMAGE_FIELDS}
    return {**body, "generationConfig": {**config, "imageConfig": kept}}, mime


def _publisher_object(model: Model) -> dict[str, object]:
    """A publisher model as Vertex describes it (its name, and Gemini's description)."""
    described = model_object(model)
    return {
        "name": f"publishers/google/models/{model.id}",
        "versionId": "default",
        "openSourceCategory": "PROPRIETARY",
        "launchStage": "GA",
        "description": described.get("description", ""),
    }
