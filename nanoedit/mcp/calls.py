"""What each MCP tool does, as plain (blocking) calls: each checks its paths and its cost
limit, then runs through the session (``nanoedit.session``) as a command line would, and
answers with what the run made. Nothing here speaks MCP's protocol but the answers' type."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanoedit.errors import InputError, NanoeditError, UsageError
from nanoedit.jobs import DEFAULT_FEATHER, DIAL_NAMES, NO_DIALS, Dials
from nanoedit.mcp.answers import error_answer, plain_answer, run_answer
from nanoedit.mcp.safety import Folders, Spending

if TYPE_CHECKING:
    from mcp_types import CallToolResult

    from nanoedit.jobs import MaskSpec, RunOptions
    from nanoedit.run.interrupts import Stop
    from nanoedit.session import Environment, Finished

# The most jobs a history search lists.
SEARCH_LIMIT = 200
# The settings of a preset a tool's call takes: those it has arguments for, but the count
# (the tools' count defaults to 1, so a call that leaves it out cannot be told from one that
# asks for 1).
PRESET_ASKS = ("ratio", "size", "model")


@cache
def model_names() -> tuple[str, ...]:
    """Every name a tool takes for a model: the catalog's aliases and its models' ids (the
    command line also passes a backend's own ids through; a tool's enum lists these)."""
    from nanoedit.catalog.models import shipped_catalog

    catalog = shipped_catalog()
    return tuple(dict.fromkeys([*catalog.aliases(), *catalog.models]))


@dataclass(frozen=True)
class ServerOptions:
    """How ``nanoedit mcp`` was started: the folders it works in (none: the current one),
    the sandbox or a backend, what one call and the whole session may spend, and how many
    jobs a call sends at once (None: as many as a command line's default)."""

    roots: tuple[Path, ...] = ()
    sandbox: bool = False
    backend: str | None = None
    max_cost: float | None = None
    session_max_cost: float | None = None
    jobs: int | None = None


@dataclass(frozen=True)
class Masking:
    """An edit's mask file or region, its seam and its drift limit, as a tool is given them
    (``edit --mask``, ``--region``, ``--feather``, ``--max-drift``)."""

    mask: str | None = None
    region: str | None = None
    feather: int = DEFAULT_FEATHER
    max_drift: float | None = None
    crop: bool = False


@dataclass(frozen=True)
class Request:
    """What an image tool is asked: the prompt, the images (edit) and references, the ratio,
    size, model and count, the folder results go to, a cost limit of the call's own, and
    whether thumbnails come back with the answer."""

    prompt: str
    images: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()
    ratio: str | None = None
    size: str | None = None
    model: str | None = None
    count: int = 1
    output_folder: str | None = None
    max_cost: float | None = None
    thumbnails: bool = False
    dials: Dials = NO_DIALS
    preset: str | None = None
    """A preset (nanoedit presets): its template takes the prompt, and its ratio, size and model
    stand in for those the call leaves out; the count is the call's, the backend the server's."""
    masking: Masking = Masking()
    transparent: str | None = None
    """--transparent-method's value (auto, native, key, matte); None: opaque images."""


def dials_from(given: Mapping[str, Any] | None) -> Dials:
    """A tool's ``dials`` object as :class:`~nanoedit.jobs.Dials` (its schema checked the
    names and types; the catalog checks the rest before anything is sent)."""
    if not given:
        return NO_DIALS
    unknown = sorted(set(given) - set(DIAL_NAMES))
    if unknown:
        raise UsageError(f"dials has no {unknown[0]!r}; its names are {', '.join(DIAL_NAMES)}")
    values = dict(given)
    for name in ("thinking", "format", "quality", "input_fidelity"):
        if isinstance(values.get(name), str):
            values[name] = values[name].lower()
    return Dials(**values)


class Calls:
    """The tools' work, with what the server holds across calls: its folders, its spending,
    and the environment it was started in."""

    def __init__(self, options: ServerOptions, environ: Mapping[str, str]) -> None:
        self.options = options
        self.environ = dict(environ)
        self.configured = Folders.of(options.roots or (Path.cwd(),))
        self.spending = Spending(options.max_cost, options.session_max_cost)

    # ---- the runs ----------------------------------------------------------------------

    def edit(
        self, folders: Folders, request: Request, *, continues: bool = False, stop: Stop | None
    ) -> CallToolResult:
        """Edit each image of ``request`` (``continues``: go on from an earlier result); when
        ``stop`` is told, the run drains (sends no new job)."""
        return self._guarded(lambda: self._edit(folders, request, continues, stop))

    def generate(self, folders: Folders, request: Request, *, stop: Stop | None) -> CallToolResult:
        """Make images from the prompt alone (``stop``: as :meth:`edit`)."""
        return self._guarded(lambda: self._generate(folders, request, stop))

    def estimate(self, folders: Folders, request: Request) -> CallToolResult:
        """What ``request`` would cost (an edit when it names images), sending nothing."""
        return self._guarded(lambda: self._estimate(folders, request))

    def resume(self, folders: Folders, ids: Sequence[int], *, stop: Stop | None) -> CallToolResult:
        """Finish the journal's jobs ``ids`` where their runs left them (``stop``: as
        :meth:`edit`)."""
        return self._guarded(lambda: self._resume(folders, ids, stop))

    def models(self) -> CallToolResult:
        """The model catalog, one object per model."""
        return self._guarded(self._models)

    def history(self, text: str, limit: int) -> CallToolResult:
        """The journal's jobs whose prompt matches ``text``, newest first."""
        return self._guarded(lambda: self._history(text, limit))

    @staticmethod
    def _guarded(call: Callable[[], CallToolResult]) -> CallToolResult:
        try:
            return call()
        except NanoeditError as error:
            return error_answer(error)

    # ---- how each is done -------------------------------------------------------------

    def _environment(self, tool: str, stop: Stop | None = None) -> Environment:
        """The environment a tool's run sees: no stdin, its printing kept off the protocol's
        stdout, the command that is journaled with it, and what drains it (the client's
        cancel)."""
        from nanoedit.session import Environment

        # A text stream with a binary buffer beneath, as a run may write to stdout's.
        stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        return Environment(
            None, stdout, io.StringIO(), self.environ, argv=("nanoedit", "mcp", tool), stop=stop
        )

    def _run_options(
        self,
        out_dir: Path | None,
        max_cost: float | None,
        dry_run: bool,
        transparent: str | None = None,
    ) -> RunOptions:
        from nanoedit.jobs import DEFAULT_JOBS, RunOptions

        return RunOptions(
            jobs=self.options.jobs or DEFAULT_JOBS,
            backend=self.options.backend,
            out_dir=out_dir,
            sandbox=self.options.sandbox,
            max_cost=max_cost,
            dry_run=dry_run,
            transparent=transparent,
        )

    def _inputs(self, folders: Folders, texts: Sequence[str]) -> tuple[str, ...]:
        from nanoedit.journal.history import resolve_reference

        return tuple(
            folders.input(text, lambda ref: resolve_reference(ref, self.environ)) for text in texts
        )

    def _asked(self, request: Request) -> tuple[Any, str | None]:
        """What the call asks of the model, and its transparency: the call's own, with its
        preset's (read once) in place of what it leaves out, as for a command line."""
        from nanoedit.session import Asked

        if request.count < 1:
            raise UsageError(f"count is {request.count}; ask for 1 image or more")
        if request.model is not None and request.model.strip() not in model_names():
            raise UsageError(
                f"{request.model} is not a model of the catalog; name one that list_models "
                "lists (an alias such as nano-banana, or a model's id)"
            )
        asked = Asked(
            prompt=request.prompt, ratio=request.ratio, size=request.size,
            model=request.model, count=request.count, dials=request.dials,
        )  # fmt: skip
        if request.preset is None:
            return asked, request.transparent
        from nanoedit.settings.presets import PresetBook

        preset = PresetBook.of(self.environ).find(request.preset)
        chosen = preset.stand_in(
            {name: getattr(asked, name) for name in PRESET_ASKS}
            | {"transparent": request.transparent}
        )
        transparent = chosen.pop("transparent")
        dials = preset.dials_under(asked.dials)
        return replace(asked, preset=preset.name, dials=dials, **chosen), transparent

    def _edit(
        self, folders: Folders, request: Request, continues: bool, stop: Stop | None
    ) -> CallToolResult:
        from nanoedit import session

        given = session.EditInputs(
            inputs=self._inputs(folders, request.images),
            refs=self._inputs(folders, request.refs),
            continues=continues,
        )
        out_dir = folders.output_folder(request.output_folder)
        masking = self._masking(folders, request.masking)

        def edit(env: Environment, limit: float | None) -> Finished:
            asked, transparent = self._asked(request)
            run = self._run_options(out_dir, limit, False, transparent)
            return session.edit(env, given, asked, replace(run, mask=masking))

        return self._paid(request, "continue_edit" if continues else "edit_image", stop, edit)

    def _masking(self, folders: Folders, masking: Masking) -> MaskSpec | None:
        """The mask a tool was given, its file in the folders as an image's must be."""
        if masking == Masking():
            return None
        from nanoedit.run.masks import mask_spec

        path = None
        if masking.mask is not None:
            path = (folders.roots[0] / masking.mask.strip()).resolve()
            if not folders.holds(path):
                raise InputError(
                    f"the mask {masking.mask} is outside the folders this MCP server may read "
                    f"({folders.described()}); copy it into one of them and name its path"
                )
        mask = None if path is None else str(path)
        seam = None if masking.feather == DEFAULT_FEATHER else masking.feather
        return mask_spec(mask, masking.region, seam, masking.max_drift, masking.crop)

    def _generate(self, folders: Folders, request: Request, stop: Stop | None) -> CallToolResult:
        from nanoedit import session

        out_dir = folders.output_folder(request.output_folder)

        def generate(env: Environment, limit: float | None) -> Finished:
            asked, transparent = self._asked(request)
            run = self._run_options(out_dir, limit, False, transparent)
            return session.generate(env, None, asked, run)

        return self._paid(request, "generate_image", stop, generate)

    def _paid(
        self,
        request: Request,
        tool: str,
        stop: Stop | None,
        run: Callable[[Environment, float | None], Finished],
    ) -> CallToolResult:
        """Run a call that may pay, within the limit the server sets it (one at a time), and
        count what it spent. The run's warnings (a key sent over plain http, a model shut
        down...) come back with the answer."""
        env = self._environment(tool, stop)
        with self.spending.lock:
            limit = self.spending.limit(request.max_cost)
            done = run(env, limit)
            self.spending.spend(outcome.cost for outcome in done.outcomes)
        assert isinstance(env.stderr, io.StringIO)
        said = env.stderr.getvalue().splitlines()
        warnings = [line.removeprefix("warning: ") for line in said if line.startswith("warning: ")]
        extra = {"warnings": warnings, **self._spent()}
        return run_answer(done, thumbnails=request.thumbnails, extra=extra)

    def _spent(self) -> dict[str, Any]:
        """What the session has spent, and what it may still spend (None: no limit)."""
        spending = self.spending
        left = None if spending.per_session is None else spending.per_session - spending.spent
        return {"session_spent": round(spending.spent, 6), "session_left": left}

    def _estimate(self, folders: Folders, request: Request) -> CallToolResult:
        from nanoedit import session

        out_dir = folders.output_folder(request.output_folder)
        asked, transparent = self._asked(request)
        run = self._run_options(out_dir, None, True, transparent)
        env = self._environment("estimate_cost")
        if request.images:
            given = session.EditInputs(
                inputs=self._inputs(folders, request.images),
                refs=self._inputs(folders, request.refs),
            )
            done = session.edit(env, given, asked, run)
        else:
            done = session.generate(env, None, asked, run)
        estimate = done.estimate
        body: dict[str, Any] = {"ok": True, "sent": 0, "jobs": len(done.outcomes)}
        if estimate is not None:
            body |= {
                "jobs": estimate.jobs,
                "images": estimate.images,
                "cost": round(estimate.cost, 6),
                "known": estimate.known,
                "unknown": [{"backend": b, "model": m} for b, m in estimate.unknown],
                "description": estimate.describe(),
            }
        try:
            limit = self.spending.limit(request.max_cost)
        except NanoeditError:
            limit = 0.0
        body["limit"] = limit
        body["within_limit"] = limit is None or (
            estimate is not None and estimate.known and estimate.cost <= limit
        )
        body |= self._spent()
        return plain_answer(body)

    def _resume(self, folders: Folders, ids: Sequence[int], stop: Stop | None) -> CallToolResult:
        from nanoedit import session
        from nanoedit.journal.history import get_job, read_history

        if not ids:
            raise UsageError(
                "name the jobs to resume by their ids (search_history lists them); the MCP "
                "server resumes no job it was not given"
            )
        with read_history(self.environ) as journal:
            if journal is None:
                raise UsageError("there is no history yet, so no job to resume")
            for ident in ids:
                spec = get_job(journal, str(ident)).spec
                places = [spec.get("out_dir") or ".", spec.get("output") or ""]
                for place in filter(None, places):
                    if not folders.holds(Path(place)):
                        raise UsageError(
                            f"job {ident} saves to {place}, outside the folders this MCP "
                            f"server may write to ({folders.described()}); resume it in a "
                            f"terminal: nanoedit resume {ident}"
                        )
        # Resumed jobs were planned (and their cost checked) by the run that started them.
        run = self._run_options(None, None, dry_run=False)
        resumed = lambda env, _limit: session.resume(env, list(ids), run)  # noqa: E731
        return self._paid(Request(prompt=""), "resume", stop, resumed)

    def _models(self) -> CallToolResult:
        from nanoedit.catalog.lineup import lineup
        from nanoedit.jobs import RunOptions
        from nanoedit.settings.load import load_settings

        settings = load_settings(self.environ, RunOptions(sandbox=self.options.sandbox))
        return plain_answer({"models": [row.as_json() for row in lineup(settings.catalog)]})

    def _history(self, text: str, limit: int) -> CallToolResult:
        from nanoedit.journal.history import absolute_path, find, local_datetime, read_history

        limit = max(1, min(limit, SEARCH_LIMIT))
        jobs = []
        with read_history(self.environ) as journal:
            for record in [] if journal is None else find(journal, text, limit):
                assert journal is not None
                outputs = [absolute_path(journal, record, p) for p in record.saved_paths]
                jobs.append(
                    {
                        "id": record.id,
                        "reference": f"@{record.id}",
                        "created": local_datetime(record.created),
                        "state": record.state,
                        "kind": record.kind,
                        "backend": record.backend,
                        "model": record.model,
                        "prompt": record.prompt,
                        "outputs": [str(path) for path in outputs],
                        "images": record.images,
                        "cost": record.cost,
                        "error": record.error,
                    }
                )
        return plain_answer({"jobs": jobs})
