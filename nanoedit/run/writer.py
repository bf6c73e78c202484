"""The writer of a run's results: each image downloaded, spooled or taken over, checked,
given its provenance, put in place and given its sidecar. In the run layer, as it takes a
backend's results and downloads them over the network.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from nanoedit.errors import ApiError, InputError, OverwriteError
from nanoedit.jobs import Job, SavedImage
from nanoedit.output.images import convert_for, inspect_image
from nanoedit.output.names import (
    is_stream,
    place_as,
    place_new,
    place_stream,
    taken_names,
)
from nanoedit.output.parts import (
    PartFile,
    PartFiles,
    folder_of,
    read_chunks,
    sync_file,
    write_atomic,
    write_error,
    write_part,
)

if TYPE_CHECKING:
    import httpx

    from nanoedit.backends.base import ResultImage
    from nanoedit.jobs import Drift, MaskSpec, Progress
    from nanoedit.net.http import JobHttp
    from nanoedit.output.provenance import Provenance

# Result images larger than this are refused rather than written to disk.
MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
# What to do when a result download is refused (401, 403, 410): its link is signed and
# short-lived.
RESULT_DENIED = "the link has expired; results must be fetched at once"


def with_mask(provenance: Provenance, mask: MaskSpec, drift: Drift) -> Provenance:
    """``provenance`` of an image a masked edit made: the mask's SHA-256 (a file) or the
    region, the feather, and the image's drift."""
    record = {
        "mask": mask.sha256,
        "region": list(mask.region) if mask.region is not None else None,
        "feather": mask.feather,
        "crop": mask.crop,
        "drift": drift.to_json(),
    }
    return replace(provenance, mask=record)


def _same_device(one: Path, other: Path) -> bool:
    """Whether a file in ``one`` can be linked into ``other`` (both on one file system)."""
    try:
        return os.stat(one).st_dev == os.stat(other).st_dev
    except OSError:
        return False


class ResultWriter:
    """Writes the images of one run: each is streamed or written into a part file beside its
    destination, checked, given its provenance, put in place, and given its sidecar.

    Every part file is listed in ``parts`` until it is placed or discarded. ``warn`` hears
    what the user should know (an image saved without metadata, a format converted).
    """

    def __init__(
        self,
        out_dir: Path,
        *,
        overwrite: bool,
        metadata: bool,
        sidecar: bool,
        stdout: BinaryIO | None,
        warn: Callable[[str], None],
        parts: PartFiles,
        links_outlive_run: bool = True,
    ) -> None:
        self.out_dir = out_dir
        self.overwrite = overwrite
        self.metadata = metadata
        self.sidecar = sidecar
        # Where `-o -` sends an image's bytes (the process's stdout unless given).
        self.stdout = stdout
        self.warn = warn
        self.parts = parts
        self.taken = taken_names(sidecar=sidecar)
        # False for the in-process sandbox: its result links end with the process, so a
        # failed save does not point at one.
        self.links_outlive_run = links_outlive_run

    def save(
        self,
        job: Job,
        names: tuple[str, ...],
        provenance: Provenance | None,
        result: ResultImage,
        number: int,
        total: int,
        http: JobHttp,
        progress: Progress,
        placing: Callable[[Path], None] | None = None,
    ) -> SavedImage:
        """Write result ``number`` of ``total`` (downloaded when it is a URL, taken over when it
        was streamed to a part file already), check it, add the provenance, and put it at the
        job's ``-o`` or under its reserved name from ``names``. ``placing`` is given the
        finished part file just before it is put in place (not for a stream)."""
        where = f"result {number} of {job.label}" if total > 1 else f"the result of {job.label}"
        stream = job.output is not None and is_stream(job.output)
        folder = self.staging_folder(job)
        try:
            if result.url is not None:
                part = self._download(result.url, folder, where, http, progress)
            elif result.file is not None and not _same_device(result.file.parent, folder):
                # Kept in the journal's spool on another file system: copied, and the spool
                # file stays until the journal says the image is saved.
                progress("saving")
                chunks = read_chunks(result.file)
                part = write_part(folder, chunks, where, sync=not self.metadata, parts=self.parts)
            elif result.file is not None:
                # Streamed out of the answer already: only made durable here, unless the copy
                # that metadata makes is the one to be synced.
                part = PartFile.adopt(result.file, where, self.parts)
                if not self.metadata:
                    sync_file(part.path, part.directory, where)
            else:
                assert result.data is not None
                progress("saving")
                part = write_part(
                    folder, [result.data], where, sync=not self.metadata, parts=self.parts
                )
            try:
                checked = inspect_image(part.path, where)
                if job.mask is not None:
                    part, checked, provenance = self._masked(job, part, provenance, folder, where)
                if job.options.transparent == "key":
                    # The model's opaque render, kept as it came in the journal's spool (resume
                    # keys it again): the saved image is the subject, with its alpha.
                    part, checked = self._keyed(part, checked, folder, where, result)
                elif job.options.transparent == "native":
                    self._check_alpha(part.path, where)
                if job.output is not None and not stream:
                    # Converted before the provenance goes in: converting would drop it.
                    part, checked, note = convert_for(part, checked, job.output, self.parts)
                    if note:
                        self.warn(note)
                part = self._with_provenance(part, checked, provenance, folder, where, job.output)
                checked = replace(checked, path=part.path, size=part.size)
                if job.output is not None and stream:
                    out = self.stdout or sys.stdout.buffer
                    return place_stream(checked, job.output, out, where)
                if placing is not None:
                    placing(part.path)
                stem = names[number - 1] if number <= len(names) else job.stem
                if checked.drift is not None and checked.drift.over:
                    # Kept, never in the place of a good result: under a name of its own.
                    from nanoedit.run.masks import drifted

                    kept = drifted(job.output.stem if job.output is not None else stem)
                    return place_new(checked, folder, kept, avoid=names, exists=self.taken)
                if job.output is not None:
                    return place_as(checked, job.output, self.overwrite)
                others = frozenset(names) - {stem}
                return place_new(checked, folder, stem, avoid=others, exists=self.taken)
            finally:
                part.discard()
        except InputError as exc:
            if result.url is not None and self.links_outlive_run:
                # The image was paid for: say where it still is, while the link lasts.
                exc.message += f"; the image is still at {result.url} for a while"
            raise

    def _keyed(
        self, part: PartFile, checked: SavedImage, folder: Path, where: str, result: ResultImage
    ) -> tuple[PartFile, SavedImage]:
        """The render with its key colour taken out, as a PNG with alpha in a new part file
        (``part`` is discarded)."""
        from nanoedit.output.alpha import keyed_file

        try:
            data = keyed_file(part.path)
        except ValueError as exc:
            # Paid for: where the render still is (a link, or the journal's spool file).
            kept = result.url or (result.file if result.file != part.path else None)
            still = f"; the render as it came is at {kept}" if kept else ""
            raise ApiError(
                f"{where} cannot be made transparent: {exc}; the model did not follow the "
                f"key instruction, so send it again, or use --transparent-method matte{still}"
            ) from None
        keyed = write_part(folder, [data], where, sync=not self.metadata, parts=self.parts)
        part.discard()
        return keyed, replace(checked, path=keyed.path, format="png", size=keyed.size)

    def _check_alpha(self, path: Path, where: str) -> None:
        """Warn when an API asked for a transparent background answered without one (a relay
        that drops the field): the image is saved as it came, and said to be opaque."""
        from nanoedit.output.alpha import has_alpha

        if not has_alpha(path):
            self.warn(
                f"{where} came without transparency, though a transparent background was asked "
                "for (the API or a relay ignored it); it is saved opaque: use "
                "--transparent-method key or matte for alpha from any model"
            )

    def _masked(
        self,
        job: Job,
        part: PartFile,
        provenance: Provenance | None,
        folder: Path,
        where: str,
    ) -> tuple[PartFile, SavedImage, Provenance | None]:
        """A masked edit's answer composited over its original, as a new part file (``part``
        is discarded), with its drift, and the provenance that records both."""
        from nanoedit.output.masking import composite

        assert job.mask is not None
        composed = PartFile(folder, where, self.parts)
        composed.close()
        try:
            source = job.images[0]
            drift = composite(job.mask, source.path, part.path, composed.path, source.label)
        except OSError as exc:
            composed.discard()
            raise write_error(exc, folder, where) from None
        except BaseException:
            composed.discard()
            raise
        part.discard()
        sync_file(composed.path, folder, where)
        composed.size = composed.path.stat().st_size
        checked = replace(inspect_image(composed.path, where), drift=drift)
        if provenance is not None:
            provenance = with_mask(provenance, job.mask, drift)
        return composed, checked, provenance

    def staging_folder(self, job: Job) -> Path:
        """Where the part files of ``job``'s results are made: beside their destination, so
        that placing one is a link, not a copy."""
        if job.output is None:
            return self.out_dir
        if is_stream(job.output):
            # A device or stdout has no folder to stage in; the temporary file goes elsewhere.
            import tempfile  # only here: it and its random module cost about 1 ms a start

            return Path(tempfile.gettempdir())
        return folder_of(job.output)

    def spool(self, job: Job) -> PartFile:
        """A new part file, open for writing, for one image of ``job`` that a backend streams
        out of an answer (base64 in JSON); listed in the run's part files until saved.

        The one place such files are made: :meth:`save` takes the file over and moves it
        into place."""
        return PartFile(self.staging_folder(job), f"an image of {job.label}", self.parts)

    def _download(
        self, url: str, folder: Path, where: str, http: JobHttp, progress: Progress
    ) -> PartFile:
        """Stream a result into a part file in ``folder``: no credentials, redirects followed,
        within the size cap; a broken transfer is fetched again."""
        from nanoedit.net.http import check_download, too_large
        from nanoedit.urls import host_of

        host = host_of(url)

        def receive(response: httpx.Response) -> PartFile:
            length = check_download(
                response, where, host, MAX_DOWNLOAD_BYTES, ApiError, RESULT_DENIED
            )
            part = PartFile(folder, where, self.parts)
            try:
                progress("downloading", 0, length)
                for chunk in response.iter_bytes(64 * 1024):
                    part.write(chunk)
                    if part.size > MAX_DOWNLOAD_BYTES:
                        raise too_large(where, host, MAX_DOWNLOAD_BYTES, ApiError)
                    progress("downloading", part.size, length)
                # With metadata the bytes are copied once more: that copy is the one synced.
                part.close(sync=not self.metadata)
            except BaseException:
                part.discard()
                raise
            return part

        request = http.client.build_request("GET", url)
        return http.stream(
            request, receive, where=host, what=f"downloading {where}", paid=False,
            follow_redirects=True, unknown_host="it is the result link's host; try again later",
        )  # fmt: skip

    def _with_provenance(
        self,
        part: PartFile,
        checked: SavedImage,
        provenance: Provenance | None,
        folder: Path,
        where: str,
        output: Path | None = None,
    ) -> PartFile:
        """The image with its provenance in it, as a new part file (``part`` is discarded);
        ``part`` itself, and a warning, when it cannot take it. ``output`` is the ``-o``
        name, if the job has one."""
        if not self.metadata or provenance is None:
            return part
        from nanoedit.output.provenance import can_embed, embed, sidecar_path

        if output is not None and not can_embed(checked.format):
            # A format chosen with -o: the way out is another name, or the sidecar.
            keep = (
                f"its sidecar {sidecar_path(output)} keeps it"
                if self.sidecar
                else "name the output .png, .jpg or .webp, or add --sidecar to keep it beside "
                "the image"
            )
            self.warn(
                f"{output} holds no provenance: {checked.format.upper()} has no place for it; "
                f"{keep}"
            )
            return part

        tagged = PartFile(folder, where, self.parts)
        tagged.close()
        try:
            embed(part.path, tagged.path, checked.format, provenance)
        except ValueError as exc:
            tagged.discard()
            self.warn(f"{where}: saved without metadata ({exc})")
            return part
        except OSError as exc:
            tagged.discard()
            raise write_error(exc, folder, where) from None
        except BaseException:
            tagged.discard()
            raise
        part.discard()
        sync_file(tagged.path, folder, where)
        tagged.size = tagged.path.stat().st_size
        return tagged

    def write_sidecar(
        self,
        provenance: Provenance,
        saved: SavedImage,
        *,
        overwrite: bool,
        mask: MaskSpec | None = None,
    ) -> None:
        """Write ``IMAGE.json``; only ``-o`` with --overwrite may replace one (checked before
        sending); a generated name was chosen with its sidecar's name free. A masked edit's
        (``mask``) records the mask and the image's drift, as the image itself does."""
        from nanoedit.output.provenance import sidecar_bytes, sidecar_path

        if mask is not None and saved.drift is not None:
            provenance = with_mask(provenance, mask, saved.drift)

        path = sidecar_path(saved.path)
        data = sidecar_bytes(provenance, saved.path, saved.width, saved.height, saved.format)
        try:
            write_atomic(path, data, overwrite=overwrite and self.overwrite, parts=self.parts)
        except FileExistsError:
            raise OverwriteError(
                f"{path} appeared while {saved.path} was being made, so the image was saved "
                "without its sidecar; move that file away and run again"
            ) from None
        except OSError as exc:
            raise write_error(exc, path.parent, f"the sidecar {path.name}") from None
