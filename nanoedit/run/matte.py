"""``--transparent-method matte``: a job's second paid request, journaled so that it is paid
for once, and the two renders made one image with alpha.

A matte job is ONE journal row with two paid requests, not two chained jobs: its first
request (the subject on white) is journaled as any job's answer is (its result spooled, the
row ``answered``). Then, in that row's result entry:

1. ``black_sent`` is journaled (synced) before the second request goes out: a run killed
   while it was under way leaves a job whose second request may have been charged, which
   resume does not send again without ``--retry-unsafe``, as for any paid request;
2. its answer is spooled and journaled (``black_spool`` or ``black_url``) before anything
   is combined: a kill after it leaves both renders paid for and kept, and resume only
   combines and saves them;
3. the combined image is saved like any result, and the entry's spool files are removed.

The second request is an EDIT of the white render, not a second generation: a model keeps a
subject when it is asked to change only the background, while two generations of one prompt
draw two different subjects, whose difference is no alpha.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from nanoedit.backends.base import Answer, PreparedJob, ResultImage, Takes, backend_class
from nanoedit.errors import ApiError, NanoeditError, NetworkError
from nanoedit.jobs import ImageSource, Job, Options, PlannedJob, Progress, ResultEntry
from nanoedit.run.transparency import black_prompt

if TYPE_CHECKING:
    from nanoedit.backends.base import BackendBase
    from nanoedit.jobs import RunOptions
    from nanoedit.journal.store import Journal
    from nanoedit.net.http import JobHttp
    from nanoedit.net.inputs import RunInputs
    from nanoedit.output.parts import PartFiles


class Pipeline(Protocol):
    """What the matte step uses of the job pipeline (:class:`nanoedit.run.job.JobPipeline`),
    which imports this module."""

    journal: Journal | None
    parts: PartFiles
    options: RunOptions
    inputs: RunInputs

    def prepare(
        self, job: Job, backend: str, model: str, http: JobHttp, progress: Progress
    ) -> PreparedJob:
        """Read a job's inputs (or host them) as its backend takes them."""
        ...


class Matte:
    """The matte step of one job in one pipeline: what turns each white render (a pending
    result of the job) into the subject with its alpha."""

    def __init__(
        self,
        pipeline: Pipeline,
        planned: PlannedJob,
        backend: BackendBase,
        http: JobHttp,
        progress: Progress,
    ) -> None:
        self.pipeline = pipeline
        self.planned = planned
        self.backend = backend
        self.http = http
        self.progress = progress
        self.entries: list[ResultEntry] = []
        self._downloaded: dict[str, bytes] = {}

    def results(
        self, entries: list[ResultEntry], pending: Sequence[int], whites: Sequence[ResultImage]
    ) -> list[ResultImage]:
        """Each pending result (``whites``, at ``pending`` places of ``entries``) as the
        combined image to save: its black render asked for first unless the journal holds
        it already."""
        self.entries = entries
        combined = []
        for place, white in zip(pending, whites, strict=True):
            entry = entries[place]
            black = self._kept_black(entry)
            if black is None:
                black = self._black(entry, white)
            combined.append(self._combine(white, black))
        return combined

    def _kept_black(self, entry: ResultEntry) -> ResultImage | None:
        """The black render an earlier run (or this one) journaled, if any; refused when the
        second request may have been charged and its answer never came."""
        if "black_spool" in entry:
            return ResultImage(file=Path(entry["black_spool"]))
        if "black_url" in entry:
            return ResultImage(url=entry["black_url"])
        if entry.get("black_sent") and not self.pipeline.options.retry_unsafe:
            ident = self.planned.journal_id
            # A NetworkError keeps the white render journaled (see JobPipeline._journal_end).
            raise NetworkError(
                f"the black render of {self.planned.job.label} (its matte's second paid "
                "request) was sent by a run that ended before its answer came, so it may have "
                f"been charged; nanoedit resume {ident} --retry-unsafe sends it again"
            )
        return None

    def _black(self, entry: ResultEntry, white: ResultImage) -> ResultImage:
        """Send the second request (the white render edited onto black), journaled before it
        goes out and once it is answered."""
        journal, ident = self.pipeline.journal, self.planned.journal_id
        if journal is not None and ident is not None:
            entry["black_sent"] = True
            journal.result_saved(ident, self._entries_of(entry))
        self.progress("preparing the black render")
        prepared = self._prepared(white)
        answer: Answer = self.backend.run(prepared, self.progress)
        if not answer.images:
            raise answer.error or ApiError(
                f"the black render of {self.planned.job.label} (its matte's second request) "
                "came back without an image, so there is no alpha to make; send the job again, "
                "or use --transparent-method key"
            )
        black = answer.images[0]
        if journal is None or ident is None:
            return black
        kept = self._spooled(black)
        if kept.url is not None:
            entry["black_url"] = kept.url
        else:
            assert kept.file is not None
            entry["black_spool"] = str(kept.file)
        journal.result_saved(ident, self._entries_of(entry))
        return kept

    def _entries_of(self, entry: ResultEntry) -> list[ResultEntry]:
        """The job's entries as the journal is to hold them (``entry`` is one of them)."""
        return self.entries

    def _spooled(self, black: ResultImage) -> ResultImage:
        """The black render moved (or written) into the journal's spool, synced, so that it
        outlives this process."""
        from nanoedit.output.parts import sync_file
        from nanoedit.run.spool import write_spool

        journal, ident = self.pipeline.journal, self.planned.journal_id
        assert journal is not None and ident is not None
        if black.url is not None:
            return black
        # Not ID-N.bin: those are the job's results, which adopt_spooled takes up as answers.
        path = journal.spool / f"matte-{ident}-black.bin"
        if black.file is not None:
            sync_file(black.file, black.file.parent, f"the black render of {ident}")
            self.pipeline.parts.remove(black.file)
            self.http.spooled = [part for part in self.http.spooled if part.path != black.file]
            black.file.replace(path)
        else:
            assert black.data is not None
            write_spool(path, black.data)
        return ResultImage(file=path)

    def _prepared(self, white: ResultImage) -> PreparedJob:
        """The second request's job: an edit of the white render, with the black prompt."""
        job, model = self.planned.job, self.planned.model
        takes = backend_class(self.planned.backend).takes
        options = replace(job.options, prompt=black_prompt(job.options.prompt), count=1)
        if white.url is not None and takes.fetches:
            source = ImageSource(white.url, white.url)
        elif takes is Takes.URLS:
            # Hosted by the uploader (upload.via), as any local input of such a backend is.
            assert white.file is not None, "a URLs-only backend answers with URLs"
            source = ImageSource(str(white.file))
        else:
            from nanoedit.net.inputs import check_image

            data = self._bytes(white)
            source = ImageSource(f"{job.stem}-on-white")
            second = _second_job(job, source, options)
            return PreparedJob(job=second, model=model, uploads=(check_image(source, data),))
        second = _second_job(job, source, options)
        return self.pipeline.prepare(second, self.planned.backend, model, self.http, self.progress)

    def _bytes(self, image: ResultImage) -> bytes:
        """A render's bytes, downloaded when it is a link (once: the white render is both
        sent and combined)."""
        if image.data is not None:
            return image.data
        if image.file is not None:
            return image.file.read_bytes()
        assert image.url is not None
        if image.url not in self._downloaded:
            source = ImageSource(image.url, image.url)
            self._downloaded[image.url] = self.pipeline.inputs.load(source, self.http).data
        return self._downloaded[image.url]

    def _combine(self, white: ResultImage, black: ResultImage) -> ResultImage:
        """The subject with its alpha, from its two renders, as PNG bytes."""
        import io

        from PIL import Image

        from nanoedit.output.alpha import combine_matte, png_bytes

        self.progress("combining the renders")
        with (
            Image.open(io.BytesIO(self._bytes(white))) as on_white,
            Image.open(io.BytesIO(self._bytes(black))) as on_black,
        ):
            try:
                return ResultImage(data=png_bytes(combine_matte(on_white, on_black)))
            except ValueError as exc:
                raise ApiError(
                    f"the two renders of {self.planned.job.label} cannot be combined: {exc}; "
                    "the model redrew the picture, so try --transparent-method key"
                ) from None


def _second_job(job: Job, source: ImageSource, options: Options) -> Job:
    """The matte's second request as a job: an edit of ``source`` (the white render)."""
    return Job(kind="edit", images=(source,), options=options, stem=job.stem, output=job.output)


def discard_spools(entry: ResultEntry) -> None:
    """Remove a saved matte result's black render from the spool (its white one goes as any
    result's spool file does)."""
    spool = entry.pop("black_spool", None)
    entry.pop("black_url", None)
    entry.pop("black_sent", None)
    if spool is not None:
        Path(spool).unlink(missing_ok=True)


def black_unanswered(entries: Sequence[ResultEntry]) -> bool:
    """Whether a matte's black render went out and no answer to it was journaled: its white
    render is kept, and only ``--retry-unsafe`` asks for the black one again."""
    return any(
        entry.get("black_sent") and "black_spool" not in entry and "black_url" not in entry
        for entry in entries
    )


def matte_left(error: NanoeditError, ident: int) -> NanoeditError:
    """``error`` (the black request's, or resume's refusal to send it blindly) saying how the
    job is finished: the white render is kept, the black one may have been charged."""
    if "--retry-unsafe" not in error.message:
        error.message += (
            f"; its white render is kept in the history, and the black one may have been "
            f"charged: nanoedit resume {ident} --retry-unsafe asks for it again"
        )
    return error
