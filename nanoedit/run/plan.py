"""Planning a run: every job checked, routed and named before any request is sent.

A job that fails a check here is refused, and nothing of it is sent; with --skip-existing, a
job an earlier run did is skipped (the journal says so, or its image's provenance does), and a
job an earlier run left unfinished goes on from there instead of being paid for again. Every
other job becomes a :class:`~nanoedit.jobs.PlannedJob`: its backend, its model, and the names
its images will take, given in job order so that jobs finishing in any order still save under
the same names.

A local image is checked here with one stat (there, a file, not too large); its bytes are read
and checked as its job starts, before the job's request, so that a large batch's first request
does not wait for every image to be read. A dry run, which sends nothing, reads them here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nanoedit.backends.base import BackendBase, backend_class, thread_notice
from nanoedit.catalog.models import Catalog, ModelLimits, Resolved
from nanoedit.catalog.tiers import check_tier
from nanoedit.errors import InputError, NanoeditError, OverwriteError, UsageError
from nanoedit.jobs import (
    STANDARD_TIER,
    TIERS,
    ImageSource,
    Job,
    JobOutcome,
    PlannedJob,
    RunOptions,
    SavedImage,
)
from nanoedit.net.inputs import RunInputs
from nanoedit.output.imageformat import IMAGE_SUFFIXES
from nanoedit.output.images import existing_image
from nanoedit.output.names import (
    MAX_NAME_TRIES,
    STDOUT,
    check_directory,
    check_output_path,
    is_stream,
    numbered,
    stem_taken,
    taken_names,
)
from nanoedit.run.batch import natural_stems
from nanoedit.run.dials import check_dials
from nanoedit.run.routing import choose_backend
from nanoedit.run.transparency import transparent_job
from nanoedit.settings.load import backend_warnings
from nanoedit.settings.values import Settings

if TYPE_CHECKING:
    from nanoedit.journal.store import Journal

Planned = PlannedJob | JobOutcome
"""One job as planning left it: to be sent, or already decided (refused or skipped)."""


class Planner:
    """Checks, routes and names a run's jobs; sends nothing.

    ``inputs`` reads the local images (and keeps what a stream gave for the run); ``warn``
    hears what the user should know; ``exists`` says whether a name is in use in the output
    folder (a link that points nowhere counts).
    """

    def __init__(
        self,
        settings: Settings,
        options: RunOptions,
        inputs: RunInputs,
        warn: Callable[[str], None],
        *,
        exists: Callable[[Path], bool] = os.path.lexists,
        journal: Journal | None = None,
    ) -> None:
        self.journal = journal
        self.settings = settings
        self.options = options
        self.inputs = inputs
        self.warn = warn
        self.exists = exists
        self.taken = taken_names(sidecar=options.sidecar, exists=exists)
        # Every job without -o saves in the one output folder: checked once for the run, not
        # once per job (a stat or more each, 20,000 times in a large batch).
        self._folder_checked = False
        # A model near its shutdown is said once per run, not once per job.
        self._warned_models: set[str] = set()
        # The last journal row planning saw: a row of the same job journaled after it is
        # another run's, which this run then leaves to it (see Journal.claim).
        self.seen = 0

    def plan(self, jobs: Sequence[Job]) -> list[Planned]:
        """This shard's jobs in job order: each planned, refused or skipped.

        Raises :class:`UsageError` when the jobs cannot go together (several images for one
        ``-o``); then nothing at all is sent.
        """
        if self.options.mask is not None:
            # Before anything else: a mask that does not fit its input sends nothing at all.
            from nanoedit.run.masks import check_job

            jobs = [check_job(job, self.options.mask, self.warn) for job in jobs]
        _check_outputs(jobs)
        if self.journal is not None and self.options.skip_existing:
            self.seen = self.journal.last_id()
        stems = natural_stems(jobs)
        k, n = self.options.shard
        mine = [
            (job, names)
            for position, (job, names) in enumerate(zip(jobs, stems, strict=True))
            if position % n == k - 1
        ]
        planned: list[Planned] = [self._plan_one(job, names) for job, names in mine]
        every_stem = frozenset(stem for names in stems for stem in names)
        planned = self._reserve(planned, every_stem)
        backends = {
            entry.backend
            for entry in planned
            if entry.backend and (isinstance(entry, PlannedJob) or entry.error is None)
        }
        for name in sorted(backends):
            for warning in backend_warnings(self.settings.backend_settings(name)):
                self.warn(warning)
            self._check_response_format(name, planned)
            if not self.options.store and "store" not in backend_class(name).extra_keys:
                self.warn(
                    f"--no-store asks Google's Gemini API not to keep what is sent; the {name} "
                    "backend has no such setting, so its jobs are sent as they would be without it"
                )
        self._say_threads_left(planned)
        return planned

    def _say_threads_left(self, planned: Sequence[Planned]) -> None:
        """Say, once, of the ``--continue`` jobs whose backend does not send their thread that
        the model sees only the last image (see :func:`thread_notice`)."""
        said: set[str] = set()
        for entry in planned:
            if not isinstance(entry, PlannedJob):
                continue
            notice = thread_notice(entry.job, entry.backend)
            if notice is not None and notice not in said:
                said.add(notice)
                self.warn(notice)

    def _plan_one(self, job: Job, names: tuple[str, ...]) -> Planned:
        """The job checked and routed, with its natural names; refused or skipped if so."""
        # The run's service tier (--tier flex|priority) is part of what each job asks (its spec,
        # its fingerprint); --tier batch sends each job's request at the standard tier.
        service = self.options.tier if self.options.tier in TIERS else STANDARD_TIER
        if job.options.tier != service:
            job = replace(job, options=replace(job.options, tier=service))
        backend_name: str | None = None
        model: str | None = None
        try:
            backend_name = self.check(job)
            backend = backend_class(backend_name)
            resolved = self.settings.catalog.resolve(
                backend_name,
                job.options.model or self._default_model(job, backend_name),
                free_ids=backend.free_ids,
            )
            model = resolved.sent
            warning = self.settings.catalog.check_alive(resolved, backend_name)
            if warning and resolved.sent not in self._warned_models:
                self._warned_models.add(resolved.sent)
                self.warn(warning)
            check_request(self.settings.catalog, backend, resolved, job)
            # A --from line's preset may ask for transparency for its own job.
            asked = job.options.transparent or self.options.transparent
            job = transparent_job(job, asked, backend, model)
        except NanoeditError as exc:
            return JobOutcome(job, backend_name, model, error=exc)
        planned = PlannedJob(job, backend_name, model, names)
        if self.options.skip_existing:
            earlier = self._done_before(planned)
            if isinstance(earlier, JobOutcome):
                return earlier
            try:
                self._check_kept_output(job, model)
            except NanoeditError as exc:
                return JobOutcome(job, backend_name, model, error=exc)
            return earlier or planned
        return planned

    def _default_model(self, job: Job, backend: str) -> str:
        """The model a job goes to unless --model says: the backend's (its ``NAME.model``);
        for a ``--continue`` job that stays on its thread's backend, the model of the turn it
        goes on from (a thread goes on with the model that made it)."""
        thread = job.thread
        if thread is not None and thread.parent.backend == backend:
            return thread.parent.model
        return self.settings.backend_settings(backend).model

    def _check_kept_output(self, job: Job, model: str) -> None:
        """The ``-o`` checks :meth:`check` left to --skip-existing (an image is at ``-o``),
        for a job that is to be sent after all: an image this request made is left to the
        job (an earlier run of it, killed while saving, put it there); another request's is
        refused, before anything is sent, unless --overwrite."""
        output = job.output
        if output is None or is_stream(output) or existing_image(output) is None:
            return
        if self._made_by(job, model, output):
            return
        if not self.options.overwrite:
            raise OverwriteError(
                f"{output} already exists and holds an image another request made (its prompt, "
                "model or inputs differ), so --skip-existing does not take it for this job's "
                "result; pass --overwrite to replace it, or choose another -o"
            )
        check_output_path(output, overwrite=True)
        if self.options.sidecar:
            _check_sidecar_free(output, overwrite=True)

    def _done_before(self, planned: PlannedJob) -> Planned | None:
        """What an earlier run did of the same request, by the journal first (its images, or
        how far it got), then by the provenance of the images at the job's names; None when
        nothing was done."""
        from nanoedit.journal.recording import fingerprint, job_identity

        job, model = planned.job, planned.model
        if self.journal is not None:
            from nanoedit.journal.resumption import carry_on

            request = fingerprint(job, model, self.inputs.sha256)
            key = job_identity(
                job, planned.names, request, self.settings.out_dir, self.settings.sandbox
            )
            for record in self.journal.by_identity(key):
                outputs = self._saved_here(job, record.saved_paths)
                if record.state == "saved" and outputs is not None:
                    # Reported as this run's results: a resumed batch still lists them all.
                    return JobOutcome(job, planned.backend, model, outputs=outputs, skipped=True)
                if record.unfinished:
                    return carry_on(
                        self.journal, record, planned, retry_unsafe=self.options.retry_unsafe
                    )
        found = self._existing(job, planned.names)
        if found is not None and all(self._made_by(job, model, image.path) for image in found):
            return JobOutcome(job, planned.backend, model, outputs=found, skipped=True)
        if job.output is None and len(planned.names) == 1:
            # Its name was taken by another job's image (another request's, or another input
            # with the same bytes): this one's went to another number of its stem.
            image = self._numbered_made_by(job, model, job.stem)
            if image is not None:
                return JobOutcome(job, planned.backend, model, outputs=(image,), skipped=True)
        return None

    def _numbered_made_by(self, job: Job, model: str, stem: str) -> SavedImage | None:
        """The image at ``stem``, ``stem-2``, ``stem-3``… (up to the first free number) that
        this very job made, if any."""
        folder = self.settings.out_dir
        for number in range(1, MAX_NAME_TRIES):
            paths = [folder / f"{numbered(stem, number)}{suffix}" for suffix in IMAGE_SUFFIXES]
            image = next((image for path in paths if (image := existing_image(path))), None)
            if image is None:
                return None
            if self._made_by(job, model, image.path):
                return image
        return None

    def _saved_here(self, job: Job, paths: Sequence[Path]) -> tuple[SavedImage, ...] | None:
        """The images at ``paths`` when they are all still there, where this job saves."""
        if not paths:
            return None
        if job.output is not None:
            wanted = {job.output.resolve()} if not is_stream(job.output) else set()
        else:
            folder = self.settings.out_dir.resolve()
            wanted = {path.resolve() for path in paths if path.resolve().parent == folder}
        found = []
        for path in paths:
            image = existing_image(path) if path.resolve() in wanted else None
            if image is None:
                return None
            found.append(image)
        return tuple(found)

    def _made_by(self, job: Job, model: str, path: Path) -> bool:
        """Whether the image at ``path`` was made by this very job, as its embedded
        provenance says: the same request, of the same inputs (named as this job names them,
        not only the same bytes), in the sandbox or not. An image without provenance (saved
        with --no-metadata) cannot say, and is taken to be, as --skip-existing always took
        an image at the job's name; but never, by a real run, one the journal says a sandbox
        job saved."""
        from nanoedit.output.provenance import read, read_continues
        from nanoedit.run.masks import same_mask

        try:
            made = read(path)
        except (OSError, ValueError):
            made = None
        if made is None:
            journal = self.journal
            return self.settings.sandbox or journal is None or not journal.sandbox_made(path)
        options = job.options
        sent = [(item.get("name", ""), item.get("sha256", "")) for item in made.get("inputs", [])]
        return (
            made.get("prompt") == options.prompt
            and made.get("model") == model
            and made.get("ratio") == options.ratio
            and made.get("size") == options.size
            and made.get("tier", STANDARD_TIER) == options.tier
            and (made.get("dials") or {}) == options.dials.given()
            and bool(made.get("sandbox")) == self.settings.sandbox
            and read_continues(made.get("continues")) == job.continues
            and same_mask(made.get("mask"), job.mask)
            and len(sent) == len(job.images)
            and all(self._sent_as(source, sent) for source in job.images if not source.is_url)
        )

    def _sent_as(self, source: ImageSource, sent: Sequence[tuple[str, str]]) -> bool:
        """Whether a provenance's inputs (name, SHA-256) hold ``source``: its bytes, under its
        name or another name of the same file."""
        digest = self.inputs.sha256(source)
        return any(
            (not digest or known == digest) and _same_input(name, source) for name, known in sent
        )

    def check(self, job: Job) -> str:
        """Route the job and check its local inputs and output; returns the backend name."""
        backend = choose_backend(job, self.settings)
        if not self.options.dry_run:
            _check_names_are_text(job)
        for source in job.images:
            if source.is_url:
                continue
            if self.options.dry_run:
                # Nothing is sent, so this is the dry run's only look at the image's bytes.
                self.inputs.check_local(source)
            else:
                # The job reads and checks the bytes itself, before its request: reading all
                # of a large batch's images here would hold back its first request.
                self.inputs.check_present(source)
        if job.output is not None and is_stream(job.output):
            if self.options.sidecar:
                raise UsageError(
                    f"--sidecar writes FILE.json beside a saved file, and -o {_dash(job.output)} "
                    "is not one; leave out --sidecar, or give -o FILE"
                )
        elif job.output is not None:
            # With --skip-existing, an image at -o may be this job's result: checked once
            # that is known (see _check_kept_output).
            if not (self.options.skip_existing and existing_image(job.output)):
                check_output_path(job.output, self.options.overwrite)
                if self.options.sidecar:
                    _check_sidecar_free(job.output, self.options.overwrite)
        elif not self._folder_checked:
            check_directory(self.settings.out_dir)  # if refused, every job checks and is refused
            self._folder_checked = True
        return backend

    def _existing(self, job: Job, names: tuple[str, ...]) -> tuple[SavedImage, ...] | None:
        """The images a job saved on an earlier run, or None when any of them is missing."""
        if job.output is not None:
            if is_stream(job.output):
                return None
            choices = [[job.output]]
        else:
            folder = self.settings.out_dir
            choices = [[folder / f"{stem}{x}" for x in IMAGE_SUFFIXES] for stem in names]
        found = []
        for paths in choices:
            image = next((image for path in paths if (image := existing_image(path))), None)
            if image is None:
                return None
            found.append(image)
        return tuple(found)

    def _reserve(self, planned: list[Planned], every_stem: frozenset[str]) -> list[Planned]:
        """Each job to send with the names its images take, given now in job order: a job's
        natural name unless a file or an earlier job of the run has it."""
        to_name = [entry for entry in planned if isinstance(entry, PlannedJob) and entry.names]
        folder = self.settings.out_dir
        # A folder not made yet holds no names: no path made and looked up for each extension
        # of each name (100,000 of them for 20,000 jobs).
        taken = self.taken if self.exists(folder) else None
        names = iter(
            reserve_names(
                [(entry.job.stem, entry.names) for entry in to_name], every_stem, folder, taken
            )
        )
        return [
            replace(entry, names=next(names), natural=entry.names)
            if isinstance(entry, PlannedJob) and entry.names
            else entry
            for entry in planned
        ]

    def _check_response_format(self, backend: str, planned: Sequence[Planned]) -> None:
        """Warn, once per backend, when --response-format asks for what it cannot give."""
        honoured = backend_class(backend).response_formats
        asked = {
            entry.job.options.response_format
            for entry in planned
            if isinstance(entry, PlannedJob) and entry.backend == backend
        }
        only = "URLs" if honoured == ("url",) else " or ".join(honoured)
        for wanted in sorted(asked - set(honoured)):
            self.warn(
                f"the {backend} backend returns images as {only} only, so --response-format "
                f"{wanted} does not apply to its jobs; their images are downloaded from the URLs"
            )


def reserve_names(
    wanted: Sequence[tuple[str, tuple[str, ...]]],
    every_stem: Collection[str],
    folder: Path,
    taken: Callable[[Path], bool] | None,
) -> list[tuple[str, ...]]:
    """The names a run's jobs take in ``folder``, in job order; ``wanted`` holds each job's
    own stem and its natural names (:func:`~nanoedit.run.batch.natural_stems`).

    A job keeps a natural name unless an image in the folder has it (``taken``; None for a
    folder that is not there, where nothing is taken) or an earlier job took it; then it
    numbers on from its own stem (``cat-edit-3``, not ``cat-edit-2-2``), past every natural
    name of the whole job list, so that other shards' names stay free. Linear in the number
    of jobs: each stem's numbering goes on from where it stopped, as a name once in use stays
    in use while the run is planned.
    """
    claimed: set[str] = set()
    next_number: dict[str, int] = {}
    reserved: list[tuple[str, ...]] = []

    def in_folder(name: str) -> bool:
        return taken is not None and stem_taken(folder, name, taken)

    for base, natural in wanted:
        names = []
        for stem in natural:
            name = stem
            if name in claimed or in_folder(name):
                number = next_number.get(base, 1)
                while True:
                    if number >= MAX_NAME_TRIES:
                        raise InputError(
                            f"{folder} has {MAX_NAME_TRIES} images named {base}; choose another -d"
                        )
                    name = numbered(base, number)
                    number += 1
                    if not (name in every_stem or name in claimed or in_folder(name)):
                        break
                next_number[base] = number
            claimed.add(name)
            names.append(name)
        reserved.append(tuple(names))
    return reserved


def _check_outputs(jobs: Sequence[Job]) -> None:
    """Refuse a run that makes several images for one ``-o`` (stdout included)."""
    if any(job.output == STDOUT for job in jobs) and (len(jobs) > 1 or jobs[0].options.count > 1):
        images = sum(job.options.count for job in jobs)
        raise UsageError(
            f"-o - writes one image to stdout, but this run makes {images} images; "
            "use -d/--out-dir instead"
        )
    targets = [job.output for job in jobs if job.output is not None]
    if len(targets) != len(set(targets)) or any(
        job.output is not None and job.options.count > 1 for job in jobs
    ):
        images = sum(job.options.count for job in jobs if job.output is not None)
        raise UsageError(
            f"-o/--output names one file, but this run makes {images} images for it; "
            "use -d/--out-dir instead"
        )


def _check_sidecar_free(image: Path, overwrite: bool) -> None:
    """Refuse, before anything is sent, an ``-o`` whose sidecar could not be written: a
    folder in its place (nothing replaces one), or any file unless ``overwrite``."""
    from nanoedit.output.provenance import sidecar_path

    sidecar = sidecar_path(image)
    if sidecar.is_dir():
        raise InputError(
            f"{sidecar}, where --sidecar writes the provenance of {image}, is a folder; move "
            "it away, or choose another -o"
        )
    if os.path.lexists(sidecar) and not overwrite:
        raise OverwriteError(
            f"{sidecar} already exists; pass --overwrite to replace it, or choose another -o"
        )


def check_request(
    catalog: Catalog, backend: type[BackendBase], resolved: Resolved, job: Job
) -> None:
    """Refuse what the model cannot do on its backend (a size, a ratio, too many images)
    before a request is paid for; an id the catalog does not know is the server's call."""
    options = job.options
    backend.check_options(resolved.sent, options)
    check_tier(backend.name, backend.service_tiers, resolved, options.tier)
    check_dials(catalog, backend.name, resolved, job)
    limits, model = resolved.limits, resolved.sent
    offer = resolved.offer
    if limits is None or offer is None:
        return
    size, ratio = options.size, options.ratio
    if size is not None and size not in limits.sizes:
        able = _models_that(catalog, offer.backend, lambda other: size in other.sizes)
        raise UsageError(
            f"{model} renders {', '.join(limits.sizes)} only on {offer.backend}, so size {size} "
            "cannot be honoured; drop it (from --size, NANOEDIT_SIZE or default.size)"
            f"{able}"
        )
    if ratio != "auto" and ratio not in limits.ratios:
        able = _models_that(catalog, offer.backend, lambda other: ratio in other.ratios)
        raise UsageError(
            f"{model} does not render the ratio {ratio} on {offer.backend}; choose another "
            f"--ratio{able}"
        )
    if len(job.images) > limits.max_images:
        raise InputError(
            f"{job.label}: {len(job.images)} images for one job, and {model} takes at most "
            f"{limits.max_images}; pass fewer --ref images"
        )


def _models_that(catalog: Catalog, backend: str, test: Callable[[ModelLimits], bool]) -> str:
    """``, or choose a model that renders it (--model X or Y)``: the live models that pass
    ``test`` on ``backend``, by the names that reach them; empty when there are none."""
    names = catalog.names_that(backend, test)
    if not names:
        return ""
    return f", or choose a model that renders it (--model {' or '.join(names)})"


def _same_input(name: str, source: ImageSource) -> bool:
    """Whether an input a provenance names (as its run was given it) is ``source``: the same
    name, or a name of the same file from here."""
    if name == source.label:
        return True
    if source.is_stdin or source.is_url:
        return False
    try:
        return os.path.samefile(name, source.location)
    except OSError:  # gone, or a name from another folder
        return False


def _check_names_are_text(job: Job) -> None:
    """Refuse, before anything is sent, a file name that is not UTF-8 (``caf\\xe9.png``, from
    a Latin-1 system): a request names its files in UTF-8 (multipart, JSON), and so does the
    job history, so such a name ended the run in a traceback once it had started. A dry run,
    which sends nothing, prints it escaped instead."""
    names = [source.location for source in job.images if not source.is_url]
    if job.output is not None:
        names.append(str(job.output))
    for name in names:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise InputError(
                f"{shown}: the name is not valid UTF-8, which requests and the job history "
                "name files in; rename the file (for instance with convmv -f latin1 -t utf8)"
            ) from None


def _dash(path: Path) -> str:
    """An ``-o`` value as the user typed it: ``-`` for stdout."""
    return "-" if path == STDOUT else str(path)
