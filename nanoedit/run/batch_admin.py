"""``nanoedit batches``: the batches the journal knows (states, jobs, costs), and the
cancellation of one at Google."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from nanoedit.clock import Clock
from nanoedit.errors import UsageError
from nanoedit.jobs import RunOptions
from nanoedit.journal.batches import CANCELLING, BatchRecord


@dataclass(frozen=True)
class Listing:
    """The journal's batches, oldest first."""

    batches: tuple[BatchRecord, ...]


def list_batches(environ: Mapping[str, str], warn: Callable[[str], None]) -> Listing:
    """Every batch the journal of ``environ``'s data folder holds."""
    from nanoedit.journal.batches import Batches
    from nanoedit.journal.recording import open_journal
    from nanoedit.settings.load import load_settings

    settings = load_settings(environ, RunOptions())
    journal = open_journal(settings, warn, start_new=False)
    if journal is None:
        return Listing(())
    with journal:
        return Listing(tuple(Batches(journal).all()))


def cancel_batch(
    environ: Mapping[str, str], name: str, clock: Clock, warn: Callable[[str], None]
) -> BatchRecord:
    """Ask Google to cancel the batch ``name`` (Google's ``batches/...``, or the display name
    ``nanoedit-TOKEN``); the batch as the journal holds it afterwards. Its jobs not done are
    then resume's to list (and ``resume --resend``'s to send again)."""
    from nanoedit.backends.gemini import GeminiBackend
    from nanoedit.backends.gemini_batch import BatchApi
    from nanoedit.journal.batches import Batches
    from nanoedit.journal.recording import open_journal
    from nanoedit.net.client import client_for
    from nanoedit.net.http import Deadline, JobHttp, RetryPolicy
    from nanoedit.run.batch_tier import REQUEST_TIMEOUT
    from nanoedit.run.routing import make_backend
    from nanoedit.settings.load import load_settings

    settings = load_settings(environ, RunOptions())
    journal = open_journal(settings, warn, start_new=False)
    if journal is None:
        raise UsageError("history is off (history.enabled false), so no batch is known")
    with journal:
        batches = Batches(journal)
        record = batches.named(name)
        if record is None:
            raise UsageError(
                f"the history has no batch {name}; see nanoedit batches for the batches it has"
            )
        if record.name is None:
            raise UsageError(
                f"{record.display_name} was never submitted, so there is nothing to cancel; "
                "nanoedit resume submits it"
            )
        with client_for(settings, clock=clock) as client:
            policy = RetryPolicy(retries=settings.retries, backoff=settings.backoff)
            http = JobHttp(client, policy, Deadline(REQUEST_TIMEOUT, clock.monotonic),
                           clock=clock, proxy=settings.proxy)  # fmt: skip
            backend = make_backend(record.backend, settings, http)
            assert isinstance(backend, GeminiBackend)
            api = BatchApi(backend)
            api.cancel(record.name)
            state = api.get(record.name)  # [P] a cancel is asked; the batch ends in its time
        # The ended state is journaled by resume once it has read what the batch did (a
        # cancelled batch keeps the results of the requests it finished): until then it is open.
        return batches.update(record.token, state=CANCELLING, done=state.done or 0)
