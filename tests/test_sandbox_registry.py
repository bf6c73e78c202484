"""The sandbox's registry of emulated APIs: one line per API, from which the routing, the fault
kinds and the index page follow, and the import structure that keeps the sandbox apart from the
client."""

from __future__ import annotations

import ast
import base64
import importlib
import inspect
import io
import pkgutil
import re
from pathlib import Path

import httpx
import pytest
from PIL import Image

import nanoedit.sandbox
from nanoedit.sandbox import FAULT_KINDS, Sandbox, SandboxServer, sample_image
from nanoedit.sandbox.app import APIS, fault_kinds, index_page
from nanoedit.sandbox.catalog import GEMINI_MODELS
from nanoedit.sandbox.faults import Phase, Stage, result_fault, shared_kinds
from nanoedit.sandbox.gemini_api import GeminiApi
from nanoedit.sandbox.gemini_errors import GoogleError
from nanoedit.sandbox.gemini_generate import GenerateContent
from nanoedit.sandbox.gemini_request import json_body
from nanoedit.sandbox.registry import API_ENTRIES, load_apis
from nanoedit.sandbox.runtime import Call, EmulatedApi, Runtime
from nanoedit.sandbox.wire import SandboxResponse, json_response

PACKAGE = Path(nanoedit.sandbox.__file__).parent
PUBLISHER_PATH = re.compile(
    r"/v1/projects/[^/]+/locations/[^/]+/publishers/google/models/(?P<model>[^/:]+)"
    r":generateContent"
)


class EchoApi(EmulatedApi):
    """A seventh API, registered by one line in a test: it answers ``GET /echo`` with the
    faults it was handed."""

    name = "echo"
    index = "Echo (no key)\n  GET  /echo\n"
    fault_kinds = (
        result_fault("echo-garbled", "the echo comes back garbled"),
        *shared_kinds("empty-data"),
    )

    def answers(self, call: Call) -> bool:
        return call.received.path == "/echo"

    def phases(self, call: Call) -> frozenset[Phase] | None:
        return frozenset({Phase.SUBMIT, Phase.API}) if call.method == "GET" else None

    def handle(self, call: Call, fault: str | None) -> SandboxResponse:
        phases = self.phases(call) or frozenset()
        result = self.runtime.faults.take(phases, self.name, Stage.RESULT)
        return json_response(200, {"answer_fault": fault, "result_fault": result})


class PublisherApi(EmulatedApi):
    """Another Google API on Gemini's ``generateContent`` (Vertex AI's route and Bearer token):
    all it does of its own is routing, credentials and finding the model."""

    name = "publisher"
    index = "Publisher models (Authorization: Bearer TOKEN)\n"
    # Gemini's finish-reason faults, acted out here too.
    fault_kinds = tuple(kind for kind in GeminiApi.fault_kinds if kind.name == "image-safety")

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.generator = GenerateContent(runtime, self.name)

    def answers(self, call: Call) -> bool:
        return call.received.path.startswith("/v1/projects/")

    def phases(self, call: Call) -> frozenset[Phase] | None:
        routed = call.method == "POST" and PUBLISHER_PATH.fullmatch(call.received.path)
        return frozenset({Phase.SUBMIT, Phase.API}) if routed else None

    def handle(self, call: Call, fault: str | None) -> SandboxResponse:
        route = PUBLISHER_PATH.fullmatch(call.received.path)
        model = GEMINI_MODELS.get(route["model"]) if route else None
        token = call.received.headers.get("authorization", "").removeprefix("Bearer ")
        if model is None or not self.accepts(call, token):
            return GoogleError(404, "no such publisher model").response()
        try:
            body = json_body(call.received)
            own_hosts = frozenset({call.netloc})
            return json_response(200, self.generator.answer(body, model, own_hosts))
        except GoogleError as error:
            return error.response()


def test_the_registry_names_every_api_module_of_the_sandbox_in_routing_order() -> None:
    api_modules = sorted(f"nanoedit.sandbox.{path.stem}" for path in PACKAGE.glob("*_api.py"))
    registered = [entry.partition(":")[0] for entry in API_ENTRIES]
    assert sorted(registered) == api_modules
    # Every API class the package defines is registered, and nothing else is.
    defined = set()
    for module in pkgutil.iter_modules([str(PACKAGE)]):
        loaded = importlib.import_module(f"nanoedit.sandbox.{module.name}")
        defined |= {
            value
            for value in vars(loaded).values()
            if inspect.isclass(value)
            and issubclass(value, EmulatedApi)
            and not inspect.isabstract(value)
            and value.__module__ == loaded.__name__
        }
    assert defined == set(APIS)
    # The order a request is offered to them: Google's, Replicate's and fal's routes under
    # /v1 before the gateway's /v1, OpenRouter's /api/v1 before duomi's /api.
    # Only these APIs' order matters among themselves; an API added on routes of its own
    # (its one registry line) goes wherever its routes need, without changing this list.
    ordered = ["gemini", "replicate", "fal", "openai", "openrouter", "duomi"]
    assert [api.name for api in APIS if api.name in ordered] == ordered


def test_every_api_named_by_a_fault_kind_is_a_registered_one() -> None:
    names = {api.name for api in APIS}
    assert set().union(*(kind.apis or frozenset() for kind in FAULT_KINDS.values())) == names
    # Which APIs act out a shared fault follows from their own declarations.
    assert (FAULT_KINDS["text-only"].apis or frozenset()) >= {
        "gemini",
        "fal",
        "openai",
        "openrouter",
        "duomi",
    }
    assert FAULT_KINDS["widened"].apis == frozenset({"replicate", "fal"})
    # Gemini's finish-reason faults, and any other Google API on Gemini's piece that declares them.
    assert "gemini" in (FAULT_KINDS["image-safety"].apis or frozenset())
    assert FAULT_KINDS["task-stuck"].apis == frozenset({"duomi"})
    assert FAULT_KINDS["502"].apis is None


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            ("nanoedit.sandbox.gemini_api",),
            "sandbox API entry 'nanoedit.sandbox.gemini_api' is not of the form module:Class",
        ),
        (
            ("nanoedit.sandbox.gemini_api:Route",),
            "sandbox API entry 'nanoedit.sandbox.gemini_api:Route' names no emulated API "
            "(an EmulatedApi subclass)",
        ),
        (
            ("nanoedit.sandbox.gemini_api:Gemini",),
            "sandbox API entry 'nanoedit.sandbox.gemini_api:Gemini' names no emulated API "
            "(an EmulatedApi subclass)",
        ),
        (
            ("nanoedit.sandbox.gemini_api:GeminiApi", "nanoedit.sandbox.gemini_api:GeminiApi"),
            "sandbox API entries 'nanoedit.sandbox.gemini_api:GeminiApi' and "
            "'nanoedit.sandbox.gemini_api:GeminiApi' are both named 'gemini'; "
            "fault kinds tell APIs apart by name",
        ),
    ],
)
def test_a_registry_line_that_names_no_api_is_refused_naming_it(
    entries: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        load_apis(entries)
    assert str(refused.value) == message


def test_an_api_added_by_one_registry_line_is_routed_with_its_faults_and_index() -> None:
    apis = load_apis((*API_ENTRIES, f"{__name__}:EchoApi"))
    assert apis[-1] is EchoApi
    kinds = fault_kinds(apis)
    assert kinds["echo-garbled"].apis == frozenset({"echo"})
    assert kinds["empty-data"].apis == frozenset(
        {"replicate", "fal", "openai", "openrouter", "duomi", "echo"}
    )
    with SandboxServer(Sandbox(apis=apis, faults="echo-garbled,503")) as server:
        first = httpx.get(f"{server.base_url}/echo", timeout=30)
        second = httpx.get(f"{server.base_url}/echo", timeout=30)
        page = httpx.get(f"{server.base_url}/", timeout=30).text
    # Its own fault is taken where it takes results, then a core one reaches it as an
    # answer fault, in plan order.
    assert (first.status_code, first.json()) == (
        200,
        {"answer_fault": None, "result_fault": "echo-garbled"},
    )
    assert (second.status_code, second.json()) == (
        200,
        {"answer_fault": "503", "result_fault": None},
    )
    # Its lines on the index page come after the registry's, before the samples.
    assert page == index_page(APIS).replace("Sample images\n", EchoApi.index + "Sample images\n")
    assert page.endswith(
        "Echo (no key)\n  GET  /echo\nSample images\n"
        "  /samples/cat.png  /samples/dog.jpg  /samples/hat.png  /samples/person.png\n"
    )
    # The registry's own sandbox knows nothing of it.
    with pytest.raises(ValueError, match="unknown fault 'echo-garbled'"):
        Sandbox(faults="echo-garbled")


def _imports(path: Path, module: str) -> set[str]:
    """The modules a source file imports, function-level imports too, as absolute names."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            # ``from package import module`` imports the module too.
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def _sandbox_graph() -> dict[str, set[str]]:
    """Each sandbox module and the sandbox modules it imports; the registry's lines count as
    imports of their modules, as it loads them."""
    modules = {
        "nanoedit.sandbox" if path.name == "__init__.py" else f"nanoedit.sandbox.{path.stem}": path
        for path in PACKAGE.glob("*.py")
    }
    graph = {name: _imports(path, name) for name, path in modules.items()}
    graph["nanoedit.sandbox.registry"] |= {entry.partition(":")[0] for entry in API_ENTRIES}
    return graph


def test_the_sandbox_imports_nothing_of_the_client() -> None:
    outside = {
        (module, imported)
        for module, imports in _sandbox_graph().items()
        for imported in imports
        if imported.split(".")[0] == "nanoedit"
        and imported != "nanoedit.sandbox"
        and not imported.startswith("nanoedit.sandbox.")
    }
    assert outside == set()


def test_the_sandbox_modules_import_no_circle() -> None:
    graph = _sandbox_graph()
    edges = {module: imports & graph.keys() for module, imports in graph.items()}
    circles: list[list[str]] = []

    def visit(module: str, path: list[str], done: set[str]) -> None:
        for imported in sorted(edges[module]):
            if imported in path:
                circles.append([*path[path.index(imported) :], imported])
            elif imported not in done:
                visit(imported, [*path, imported], done)
        done.add(module)

    done: set[str] = set()
    for module in sorted(edges):
        if module not in done:
            visit(module, [module], done)
    assert circles == []
    # The graph is the real one: the registry reaches every API module, the app the registry.
    assert "nanoedit.sandbox.registry" in edges["nanoedit.sandbox.app"]
    assert edges["nanoedit.sandbox.registry"] >= {
        "nanoedit.sandbox.gemini_api",
        "nanoedit.sandbox.duomi_api",
    }


def test_another_google_api_answers_generate_content_through_geminis_piece() -> None:
    # Its line goes before the registry's: the gateway takes the rest of /v1.
    apis = load_apis((f"{__name__}:PublisherApi", *API_ENTRIES))
    cat = base64.b64encode(sample_image("cat.png")[0]).decode()
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "make it a watercolor"},
                    {"inlineData": {"mimeType": "image/png", "data": cat}},
                ],
            }
        ],
        "generationConfig": {"imageConfig": {"aspectRatio": "16:9"}},
    }
    model = "gemini-3.1-flash-image"
    publisher = f"/v1/projects/p/locations/global/publishers/google/models/{model}:generateContent"
    with (
        SandboxServer(Sandbox(apis=apis), log=None) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        gemini = client.post(
            f"/v1beta/models/{model}:generateContent", json=body, headers={"x-goog-api-key": "k"}
        )
        other = client.post(publisher, json=body, headers={"Authorization": "Bearer t"})
        wide = {**body, "generationConfig": {"imageConfig": {"aspectRatio": "9:21"}}}
        refused = client.post(publisher, json=wide, headers={"Authorization": "Bearer t"})
        server.sandbox.add_faults("image-safety")
        blocked = client.post(publisher, json=body, headers={"Authorization": "Bearer t"})
    assert (gemini.status_code, other.status_code) == (200, 200)
    # The same answer but for its random id: the same parts, usage and image bytes.
    assert {**other.json(), "responseId": ""} == {**gemini.json(), "responseId": ""}
    image = other.json()["candidates"][0]["content"]["parts"][-1]["inlineData"]
    with Image.open(io.BytesIO(base64.b64decode(image["data"]))) as drawn:
        assert (image["mimeType"], drawn.format, drawn.size) == ("image/jpeg", "JPEG", (1376, 768))
    assert (refused.status_code, refused.json()["error"]["message"]) == (
        400,
        "* GenerateContentRequest.generation_config.image_config.aspect_ratio: '9:21' is not "
        f"supported by {model}; use one of 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, "
        "21:9, 1:4, 4:1, 1:8, 8:1",
    )
    # Gemini's result faults, declared for it too, are taken on its route.
    assert (blocked.status_code, blocked.json()["candidates"][0]["finishReason"]) == (
        200,
        "IMAGE_SAFETY",
    )
