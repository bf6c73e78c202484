"""Threads: the earlier turns of a ``--continue`` job, read back from the journal.

A continued job journals, in its spec, the turn it goes on from (``continues``: a job and the
number of its result). Its thread is found by following those links up to the turn that
started afresh: each turn's prompt, the images the user sent with it, what the provider
answered (the :data:`~nanoedit.jobs.Exchange` of the request that made the result), and that
result, checked to be on disk as it was saved. Nothing here writes the journal.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from nanoedit.errors import InputError
from nanoedit.jobs import Exchange, ImageSource, PastTurn, Thread
from nanoedit.journal.history import absolute_path, read_history
from nanoedit.journal.records import Continues, JobRecord
from nanoedit.journal.store import Journal

# A thread longer than this is a journal that links in a circle (or was edited by hand):
# every real turn is a paid request, and no conversation runs this long.
MAX_TURNS = 1000


def continues_of(record: JobRecord) -> Continues | None:
    """The turn a journaled job goes on from, or None for one that started afresh (or whose
    link is not one a run wrote)."""
    link = record.spec.get("continues")
    if not isinstance(link, dict):
        return None
    job, result = link.get("job"), link.get("result")
    if not (isinstance(job, int) and isinstance(result, int)):
        return None
    return {"job": job, "result": result}


def build_thread(journal: Journal, job: int, result: int) -> Thread:
    """The thread whose last turn is job ``job``'s result ``result`` (1-based, in the order
    of the job's results), oldest turn first.

    Raises :class:`InputError` naming the job and the file when a turn cannot be had as it
    was: a job gone from the journal, a result never saved, or a saved result moved, deleted
    or changed since (its SHA-256 is not the one the journal holds).
    """
    turns: list[PastTurn] = []
    seen: set[int] = set()
    link: Continues | None = {"job": job, "result": result}
    child: int | None = None
    while link is not None:
        ident = link["job"]
        # A parent always has a smaller id than its child (it was journaled first): a link
        # that breaks this, or comes back to a turn, is a journal edited by hand.
        if ident in seen or (child is not None and ident >= child) or len(seen) >= MAX_TURNS:
            raise InputError(
                f"the thread of job {job} links job {child} back to job {ident}, which cannot "
                "be: the history was changed by hand; start a new thread from the image "
                "(edit FILE, without --continue)"
            )
        seen.add(ident)
        record = journal.get(ident)
        if record is None:
            where = f"job {child} continues" if child is not None else "--continue names"
            raise InputError(
                f"{where} job {ident}, which is no longer in the history; start a new "
                "thread from its image (edit FILE, without --continue)"
            )
        parent = continues_of(record)
        turns.append(_turn(journal, record, link["result"], first=parent is None))
        child, link = ident, parent
    return Thread(tuple(reversed(turns)))


def thread_of(env: Mapping[str, str], job: int, result: int) -> Thread:
    """:func:`build_thread` from the history the environment names (the journal opened to
    read, and closed again)."""
    with read_history(env) as journal:
        if journal is None:
            raise InputError(
                f"--continue goes on from job {job}, and there is no history to read it from; "
                "run an edit or generate first"
            )
        return build_thread(journal, job, result)


def _turn(journal: Journal, record: JobRecord, result: int, *, first: bool) -> PastTurn:
    """One turn of a thread: the job's prompt, the images the user sent with it (all of them
    for the first turn; for a later one all but its first, the result it went on from), its
    exchange, and its result ``result``, checked."""
    items = record.spec.get("inputs", [])
    # An image read from a stream (stdin, a pipe) was not kept and cannot be read again: the
    # history goes without it (the model's answer, and the result, are still sent).
    sources = [
        None if "stream" in item else ImageSource(item.get("path") or item["url"], item.get("url"))
        for item in items
    ]
    kept = sources if first else sources[1:]
    return PastTurn(
        job=record.id,
        backend=record.backend,
        model=record.model,
        prompt=record.prompt,
        inputs=tuple(source for source in kept if source is not None),
        exchange=_exchange(record.exchanges, result),
        result=result,
        image=_checked_result(journal, record, result),
        sandbox=record.sandbox,
    )


def _exchange(exchanges: tuple[Exchange, ...], result: int) -> Exchange | None:
    """The exchange of the request that made result ``result`` (None: none was kept)."""
    for exchange in exchanges:
        images = exchange.get("images")
        if isinstance(images, list) and result in images:
            return exchange
    return None


def _checked_result(journal: Journal, record: JobRecord, result: int) -> Path:
    """Where job ``record`` saved its result ``result``, checked to hold the bytes it was
    saved with; InputError saying which job, which file and what to do otherwise."""
    from nanoedit.output.names import stream_name
    from nanoedit.output.provenance import sha256_file

    entries = record.results
    entry = entries[result - 1] if 1 <= result <= len(entries) else None
    if entry is None or not entry.get("path"):
        why = f"{record.state}: {record.error}" if record.error else f"it is {record.state}"
        raise InputError(
            f"job {record.id} saved no result {result} ({why}), so a thread cannot go on from "
            "it; choose another job with: nanoedit history"
        )
    path = absolute_path(journal, record, Path(entry["path"]))
    stream = stream_name(path)
    if stream is not None:
        raise InputError(
            f"job {record.id} wrote its result {result} to {stream}, so no file of it is there "
            "for the thread; continue from a result saved with -o FILE or -d DIR"
        )
    if not path.is_file():
        raise InputError(
            f"job {record.id} saved its result {result} as {path}, which is no longer there "
            "(moved or deleted), and the thread sends it back as it was; put it back there, or "
            "start a new thread from it: edit NEW-PATH, without --continue"
        )
    kept = entry.get("sha256")
    if kept and sha256_file(path) != kept:
        raise InputError(
            f"job {record.id} saved its result {result} as {path}, which has changed since "
            "(its SHA-256 is not the one the history holds), and the thread sends it back as "
            "the model made it; put the original back, or start a new thread from this file: "
            f"edit {path}, without --continue"
        )
    return path
