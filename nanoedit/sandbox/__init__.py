"""An emulated reseller server for both of nanoedit's wire formats.

It answers like the real services do (shapes, auth rules, quirks, output sizes) with real,
deterministic images, so the tests mean something, a new user can try nanoedit with no key
and no network, and pipelines can be tested without paying. Use it in memory through
``SandboxTransport``, or on a loopback port through ``SandboxServer``.
"""

from nanoedit.sandbox.app import FAULT_KINDS, SANDBOX_BASE_URL, SANDBOX_KEY, Sandbox
from nanoedit.sandbox.fetch import FetchError
from nanoedit.sandbox.multipart import UploadedFile
from nanoedit.sandbox.samples import SAMPLE_NAMES, sample_image
from nanoedit.sandbox.server import SandboxServer, serve_forever
from nanoedit.sandbox.transport import SandboxTransport
from nanoedit.sandbox.wire import ReceivedRequest, SandboxRequest, SandboxResponse

__all__ = [
    "FAULT_KINDS",
    "SAMPLE_NAMES",
    "SANDBOX_BASE_URL",
    "SANDBOX_KEY",
    "FetchError",
    "ReceivedRequest",
    "Sandbox",
    "SandboxRequest",
    "SandboxResponse",
    "SandboxServer",
    "SandboxTransport",
    "UploadedFile",
    "sample_image",
    "serve_forever",
]
