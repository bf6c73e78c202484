"""Google Cloud's Vertex AI, where companies buy the same image models: Gemini's
``generateContent`` body and answer on a publisher model of a project, signed in with an
OAuth2 access token.

Wire facts ([P] published by Google, [S] seen in Google's SDK, [I] inferred):

- [P] ``POST {root}/v1/projects/{project}/locations/{location}/publishers/google/models/
  {model}:generateContent``; the root is ``https://aiplatform.googleapis.com`` for the
  location ``global`` and ``https://{location}-aiplatform.googleapis.com`` for a region
  (Vertex AI REST reference; [S] google-genai ``_api_client.py`` builds the same). The image
  models are served in ``global``.
- [P] ``Authorization: Bearer TOKEN``, an OAuth2 access token (``gcloud auth
  print-access-token``); it lasts about an hour, so a long run may outlive it.
- [P] The body is Gemini's: ``contents`` (with ``role``), ``generationConfig`` with
  ``responseModalities`` and ``imageConfig`` (``aspectRatio``, ``imageSize``). Vertex also
  takes ``outputMimeType``, ``outputCompressionQuality`` and ``personGeneration`` in
  ``imageConfig``, which the Gemini API refuses; nanoedit sends ``imageOutputOptions.mimeType``
  for --format alone.
- [P] No Files API: images go inline, at most 7 MB each for 3 Pro Image (its model card,
  which also allows 14 images per prompt); nanoedit refuses a larger one before sending.
- [P] Errors are Google's ``{"error": {code, message, status}}``: 401 UNAUTHENTICATED for a
  token it does not take, 403 PERMISSION_DENIED ("Permission 'aiplatform.endpoints.predict'
  denied on resource ... (or it may not exist)") for a project that is not there or not the
  account's, 404 NOT_FOUND "Publisher Model `projects/.../models/M` was not found or your
  project does not have access to it" for a model not served there.
- [P] ``GET {root}/v1/publishers/google/models/{model}`` describes a publisher model: free,
  signed in, no project (the ``config check`` probe and ``models --live``, one id at a time).
- [P] Express mode (an API key, ``aiplatform.googleapis.com/v1/publishers/google/models/
  {model}:generateContent``) serves "some Gemini models"; Google does not list the image
  models among them, so nanoedit does not offer it.
- [I] Vertex AI sells Google's models under Google's own ids, so this backend sells what the
  Gemini backend sells (its registry line says so: ``sells_as``), with its limits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from nanoedit.backends.base import (
    FAILED,
    READY,
    ListingGet,
    LiveModel,
    Probe,
    Verdict,
    encode_base64,
)
from nanoedit.backends.gemini import GeminiBackend
from nanoedit.backends.gemini_errors import error_line
from nanoedit.catalog.models import FLASH_ALIAS, Catalog, shipped_catalog
from nanoedit.errors import ConfigError, ModelNotServed, UsageError
from nanoedit.jobs import Dials, Progress
from nanoedit.net.inputs import InputImage
from nanoedit.settings.keys import KeySpec
from nanoedit.urls import host_of

if TYPE_CHECKING:
    import httpx

    from nanoedit.b64stream import Streamed
    from nanoedit.net.http import JobHttp
    from nanoedit.settings.values import BackendSettings

API_VERSION = "v1"
GLOBAL = "global"
# What the sandbox (--sandbox, or one served on this machine) is sent as the project when none
# is set: it takes any, and trying the backend out should need no Google Cloud project.
SANDBOX_PROJECT = "sandbox-project"
# [P] 3 Pro Image's model card: "Maximum file size per file for inline data: 7 MB".
MAX_INLINE_BYTES = 7 * 1024 * 1024
# A location is a word of a host name (us-central1, europe-west4, global).
LOCATION = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
# A project id (my-project-123), a number, or a domain-scoped id (example.com:my-project).
PROJECT = re.compile(r"[a-z0-9][a-z0-9.:-]{0,99}")
PROJECT_HINT = "nanoedit config set vertex.project YOUR-PROJECT-ID"


def _check_location(value: str) -> str:
    cleaned = value.strip().lower()
    if not LOCATION.fullmatch(cleaned):
        raise UsageError(
            f"{value!r} is not a Google Cloud location; write one such as global (where the "
            "image models are served) or us-central1"
        )
    return cleaned


def _check_project(value: str) -> str:
    cleaned = value.strip()
    if not PROJECT.fullmatch(cleaned):
        raise UsageError(
            f"{value!r} is not a Google Cloud project id; write the id the console shows "
            "(such as my-project-123), not its display name"
        )
    return cleaned


class VertexBackend(GeminiBackend):
    """Gemini's requests and answers, on a project's publisher model, with a Bearer token."""

    name = "vertex"
    title = "Google Cloud Vertex AI"
    default_base_url = "https://aiplatform.googleapis.com"
    # Google's tools keep no access token in a variable: the token comes from a command.
    key_env: ClassVar[tuple[str, ...]] = ()
    lists_all = False
    # [S] Vertex AI has its own flex and priority pay-as-you-go, asked for by request headers
    # rather than by the body's serviceTier (its consumption options page); not built here.
    service_tiers = False
    extra_keys: ClassVar[dict[str, KeySpec]] = {
        "project": KeySpec(
            "NANOEDIT_VERTEX_PROJECT",
            "Google Cloud Vertex AI: the project id the requests are made in (and billed to)",
            check=_check_project,
            env_aliases=("GOOGLE_CLOUD_PROJECT",),
        ),
        "location": KeySpec(
            "NANOEDIT_VERTEX_LOCATION",
            "Google Cloud Vertex AI: location, global or a region such as us-central1",
            GLOBAL,
            check=_check_location,
            env_aliases=("GOOGLE_CLOUD_LOCATION",),
        ),
    }

    def __init__(
        self, settings: BackendSettings, http: JobHttp, catalog: Catalog | None = None
    ) -> None:
        super().__init__(settings, http, catalog)
        self.where = host_of(self._root())

    def image_dials(self, dials: Dials) -> dict[str, Any]:
        """--format as Vertex takes it: ``imageOutputOptions.mimeType`` ([P] google-genai
        ``_ImageConfig_to_vertex``), the image rendered in that format, not converted here."""
        if dials.format is None:
            return {}
        return {"imageOutputOptions": {"mimeType": f"image/{dials.format}"}}

    @classmethod
    def setup_hint(cls) -> str:
        """A token command and a project: both are needed."""
        return (
            f'nanoedit config set {cls.name}.api_key_cmd "gcloud auth print-access-token" && '
            f"{PROJECT_HINT}"
        )

    @classmethod
    def auth_headers(cls, key: str) -> dict[str, str]:
        """An OAuth2 access token as a Bearer."""
        return {"Authorization": f"Bearer {key}"}

    # Config check and listing ----------------------------------------------------------------

    @classmethod
    def probe(cls, base_url: str, key: str) -> Probe:
        """Describe the model ``nano-banana`` stands for: free, signed in, and it says whether
        Google serves it; it names no project (the probe is not told it), see :meth:`judge`."""
        root = _api_root(base_url)
        model = shipped_catalog().resolve(cls.name, FLASH_ALIAS).sent
        url = f"{root}/{API_VERSION}/publishers/google/models/{model}"
        return Probe(url, key, host_of(root), cls.auth_headers(key))

    @classmethod
    def judge(cls, response: httpx.Response, probe: Probe, settings: BackendSettings) -> Verdict:
        """Gemini's judgement of Google's answer, but a token taken with no project set is not
        ready, and a 403 is about the account's rights on Google Cloud."""
        verdict = super().judge(response, probe, settings)
        if verdict.status == READY and not _project_of(settings, required=False):
            return Verdict(
                FAILED,
                f"{probe.where} accepted the token, but no project is set (vertex.project or "
                f"GOOGLE_CLOUD_PROJECT); run: {PROJECT_HINT}",
            )
        if verdict.status == READY:
            return Verdict(READY, f"{probe.where}, token accepted")
        if response.status_code == 403:
            return Verdict(FAILED, f"{probe.where} answered HTTP 403: {_denied(response)}")
        return verdict

    @classmethod
    def list_models(
        cls, base_url: str, key: str, ids: Sequence[str], get: ListingGet
    ) -> list[LiveModel]:
        """Each of the catalog's ids, read with ``GET /v1/publishers/google/models/ID``: one
        that answers 404 is not served."""
        root = _api_root(base_url)
        listed = []
        for model_id in ids:
            url = f"{root}/{API_VERSION}/publishers/google/models/{model_id}"
            if get(url, cls.auth_headers(key), missing_ok=True) is not None:
                listed.append(LiveModel(model_id))
        return listed

    # Requests --------------------------------------------------------------------------------

    def _url(self, model: str) -> str:
        project = _project_of(self.settings, required=True)
        location = self.settings.option("location") or GLOBAL
        return (
            f"{self._root()}/{API_VERSION}/projects/{project}/locations/{location}"
            f"/publishers/google/models/{model}:generateContent"
        )

    def _root(self) -> str:
        """Google's host for the location (its regional host for a region), or the server
        ``vertex.base_url`` names when it is not Google's (a proxy, the sandbox)."""
        root = _api_root(self.settings.base_url or self.default_base_url)
        location = self.settings.option("location") or GLOBAL
        if root == self.default_base_url and location != GLOBAL:
            return f"https://{location}-aiplatform.googleapis.com"
        return root

    def _generate(self, model: str, body: dict[str, Any]) -> tuple[httpx.Response, Streamed | None]:
        """The request, sent once more with a new token when the token was refused (401) and
        came from ``api_key_cmd``: access tokens expire within the hour, and a refused request
        is not paid for. A 403 and a 404 are told in Vertex AI's terms."""
        response, streamed = super()._generate(model, body)
        if response.status_code == 401 and self.settings.api_key_cmd and not self.settings.api_key:
            # A copy of the settings has its own cache: the command runs again.
            self.settings = replace(self.settings)
            response, streamed = super()._generate(model, body)
        if response.status_code == 403:
            raise ConfigError(f"{self.where} answered HTTP 403: {_denied(response)}")
        if response.status_code == 404:
            location = self.settings.option("location") or GLOBAL
            raise ModelNotServed(
                self.where,
                f"{error_line(response)}; the image models are served in the location global "
                f"(vertex.location is {location}), or check the model id (--model or "
                "vertex.model)",
            )
        return response, streamed

    def _image_parts(
        self, uploads: tuple[InputImage, ...], headers: dict[str, str], progress: Progress
    ) -> list[dict[str, Any]]:
        """Every image inline (Vertex AI has no Files API); one past its limit is refused
        before anything is sent."""
        return [self._inline_part(upload) for upload in uploads]

    def _inline_part(self, upload: InputImage) -> dict[str, Any]:
        """An image inline, refused before anything is sent when it is past Vertex AI's limit
        (an input, or an earlier turn's image of a thread)."""
        if len(upload.data) > MAX_INLINE_BYTES:
            raise UsageError(
                f"{upload.source.location} is {len(upload.data) / 1024 / 1024:.1f} MB; "
                "Vertex AI takes at most 7 MB per image: make it smaller (a JPEG, or fewer "
                "pixels), or use --backend gemini, which uploads large images"
            )
        return {"inlineData": {"mimeType": upload.mime, "data": encode_base64(upload.data)}}


def _api_root(base_url: str) -> str:
    """The server root, whether the base URL was given with ``/v1`` or without."""
    root = base_url.rstrip("/")
    return root.removesuffix(f"/{API_VERSION}")


def _project_of(settings: BackendSettings, *, required: bool) -> str:
    """The project requests are made in: ``vertex.project``, else the sandbox's own when the
    run talks to the in-process sandbox; ConfigError (``required``) or "" when there is none."""
    project = settings.option("project")
    if not project and (settings.key_source == "sandbox" or _on_this_machine(settings.base_url)):
        project = SANDBOX_PROJECT
    if not project and required:
        raise ConfigError(
            "the vertex backend has no Google Cloud project, so nothing was sent; set "
            f"vertex.project (or GOOGLE_CLOUD_PROJECT): {PROJECT_HINT}"
        )
    return project


def _on_this_machine(base_url: str | None) -> bool:
    """Whether the server is on this machine (the sandbox run on its own, ``nanoedit
    sandbox``): it takes any project, so none need be set to try it."""
    return urlsplit(base_url or "").hostname in ("127.0.0.1", "localhost", "::1")


def _denied(response: httpx.Response) -> str:
    """A 403 as Google said it, and what to check: the project, the API, the account's role."""
    return (
        f"{error_line(response)}; check that vertex.project is the project's id (not its name), "
        "that the Vertex AI API is enabled in it, and that the account whose token is sent "
        "has the Vertex AI User role there"
    )
