"""Local files for the APIs that take public URLs only: an uploader puts each local input on
the web first, and the job sends the URL it got.

``upload.via`` names the uploader. :data:`UPLOADERS` is their registry: ``command`` runs a
shell command of the user's (``upload.command``, given the file's absolute path as ``$1``,
which must print the file's public http(s) URL and nothing else); a provider's own file
storage can be added as one more entry, with its config keys in
:data:`~nanoedit.settings.keys.UPLOADER_KEYS` (settings, a layer below, list them).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from nanoedit import commands
from nanoedit.errors import ConfigError
from nanoedit.settings.keys import UPLOAD_TIMEOUT
from nanoedit.settings.values import UploadSettings

if TYPE_CHECKING:
    from nanoedit.jobs import Job, Progress
    from nanoedit.net.http import JobHttp
    from nanoedit.net.inputs import InputImage

# How often a running upload command is checked for Ctrl-C: the run gives its jobs a second.
CANCEL_CHECK = 0.1


@dataclass(frozen=True)
class HostedImage:
    """A local input an uploader put on the web for an API that takes URLs only."""

    image: InputImage
    url: str


class Uploader:
    """Puts one local image on the web and returns its public http(s) URL.

    A subclass says its name (the value of ``upload.via``, whose config keys settings hold);
    an instance is made per job with the settings and the job's network.
    """

    name: ClassVar[str]

    def __init__(self, settings: UploadSettings, http: JobHttp) -> None:
        self.settings = settings
        self.http = http

    @classmethod
    def check(cls, settings: UploadSettings) -> None:
        """Raise :class:`ConfigError` when a key it needs is not set (before any job runs)."""

    def upload(self, image: InputImage) -> str:
        """The public URL of ``image``, or a :class:`ConfigError` saying why there is none."""
        raise NotImplementedError


class CommandUploader(Uploader):
    """Runs ``upload.command`` through the shell with the file's path as ``$1``; its output
    must be one public http(s) URL."""

    name = "command"

    @classmethod
    def check(cls, settings: UploadSettings) -> None:
        """The command must be set."""
        if not settings.option("upload.command"):
            raise ConfigError(
                "upload.via is command, but upload.command is not set; set it with: nanoedit "
                "config set upload.command 'my-upload \"$1\"'"
            )

    def upload(self, image: InputImage) -> str:
        """Run the command on the file as it is sent: the file itself, or a PNG of it in a
        temporary folder when nanoedit converted it."""
        command = self.settings.option("upload.command")
        timeout = float(self.settings.option("upload.timeout") or UPLOAD_TIMEOUT)
        where = image.source.location
        if image.converted_from is None:
            return self._run(command, image.source.path.resolve(), where, timeout)
        with tempfile.TemporaryDirectory(prefix="nanoedit-upload-") as folder:
            path = Path(folder) / image.filename
            path.write_bytes(image.data)
            return self._run(command, path, where, timeout)

    def _run(self, command: str, path: Path, where: str, timeout: float) -> str:
        limit = min(timeout, max(self.http.deadline.remaining(), 0.0))
        try:
            # The shell gets the path as $1 ($0 names the script in its messages).
            with commands.running([command, "nanoedit-upload", str(path)]) as process:
                out, err = self._wait(process, limit, where)
        except OSError as exc:
            raise ConfigError(
                f"upload.command could not be started for {where} ({exc.strerror or exc}); check it"
            ) from None
        return _url_from(out, err, process.returncode, where)

    def _wait(
        self, process: subprocess.Popen[bytes], limit: float, where: str
    ) -> tuple[bytes, bytes]:
        """The command's output once it ends; stopped at the time limit or on Ctrl-C."""
        from nanoedit.net.http import Interrupted

        started = time.monotonic()
        while True:
            left = limit - (time.monotonic() - started)
            try:
                return process.communicate(timeout=max(0.0, min(CANCEL_CHECK, left)))
            except subprocess.TimeoutExpired:
                pass
            if self.http.cancel.is_set():
                commands.stop_and_drain(process)
                raise Interrupted
            if time.monotonic() - started >= limit:
                commands.stop_and_drain(process)
                raise ConfigError(
                    f"upload.command did not finish within {limit:g} s for {where} and was "
                    "stopped; nothing was sent. Make sure it does not wait for input (it gets "
                    "none), or raise upload.timeout"
                )


def _url_from(out: bytes, err: bytes, status: int, where: str) -> str:
    """The one URL the command printed, or what went wrong."""
    why = commands.last_line(err.decode("utf-8", errors="replace"))
    said = f" ({why})" if why else ""
    if status == 127:
        raise ConfigError(
            f"upload.command failed for {where}: command not found (exit status 127){said}; "
            "check the command and your PATH"
        )
    if status != 0:
        how = (
            f"was killed by signal {-status}" if status < 0 else f"failed with exit status {status}"
        )
        raise ConfigError(
            f"upload.command {how} for {where}{said}; nothing was sent. Run it in a shell to "
            "see why"
        )
    lines = [line.strip() for line in out.decode("utf-8", errors="replace").splitlines()]
    lines = [line for line in lines if line]
    fix = "make it print only the file's public http(s) URL"
    if not lines:
        raise ConfigError(
            f"upload.command printed nothing for {where} (exit status 0); nothing was sent, {fix}"
        )
    if len(lines) > 1:
        raise ConfigError(
            f"upload.command printed {len(lines)} lines for {where}, not one URL; nothing was "
            f"sent, {fix}"
        )
    url = lines[0]
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or " " in url:
        shown = url if len(url) <= 80 else url[:79] + "…"
        raise ConfigError(
            f"upload.command printed {shown!r} for {where}, which is not an http(s) URL; "
            f"nothing was sent, {fix}"
        )
    return url


# "upload.via" value -> uploader, in the order help lists them.
UPLOADERS: dict[str, type[Uploader]] = {
    CommandUploader.name: CommandUploader,
}


def can_upload(settings: UploadSettings) -> bool:
    """Whether an uploader is chosen, so a URL-only API can take local files."""
    return settings.via is not None


def check_uploader(settings: UploadSettings) -> None:
    """Raise :class:`ConfigError` when the chosen uploader lacks a setting it needs."""
    if settings.via is not None:
        UPLOADERS[settings.via].check(settings)


def host_inputs(
    job: Job, settings: UploadSettings, http: JobHttp, progress: Progress
) -> tuple[tuple[str, ...], tuple[HostedImage, ...]]:
    """Every input of a job as a URL, in order: URLs as given, local files uploaded. Returns
    the URLs and, for provenance, what each local file became."""
    from nanoedit.net.inputs import load_local

    urls: list[str] = []
    hosted: list[HostedImage] = []
    uploader: Uploader | None = None
    # Every local image read and checked before the first is uploaded: a broken one refuses
    # the job with nothing of it put online.
    images = {source: load_local(source) for source in job.images if not source.is_url}
    for source in job.images:
        if source.is_url:
            urls.append(source.location)
            continue
        if uploader is None:
            assert settings.via is not None, "choose_backend lets no local file through"
            UPLOADERS[settings.via].check(settings)
            uploader = UPLOADERS[settings.via](settings, http)
        image = images[source]
        progress(f"uploading {source.location} (upload.via {settings.via})")
        url = uploader.upload(image)
        urls.append(url)
        hosted.append(HostedImage(image, url))
    return tuple(urls), tuple(hosted)


def planned_urls(job: Job, settings: UploadSettings) -> tuple[str, ...]:
    """The inputs as a dry run shows them to an API that takes URLs only: a local file
    stands for the URL its upload would get (nothing is uploaded)."""
    via = settings.via or "command"
    return tuple(
        source.location if source.is_url else f"<URL from upload.via {via} for {source.location}>"
        for source in job.images
    )
