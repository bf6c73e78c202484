"""The ``--continue`` jobs' threads as the run at hand can send them: the turns another kind
of server answered (the sandbox, or a real provider) go on as the user's own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from nanoedit.jobs import Job


def seen_from(jobs: list[Job], sandbox: bool, warn: Callable[[str], None]) -> list[Job]:
    """The ``--continue`` jobs with their threads as this run can send them (see
    :meth:`Thread.seen_from`): a thread the sandbox answered goes on at a real provider, or the
    other way round, with those turns' images sent as the user's; said once."""
    seen: list[Job] = []
    crossed: set[int] = set()
    for job in jobs:
        if job.thread is not None:
            thread, other = job.thread.seen_from(sandbox)
            crossed.update(other)
            job = replace(job, thread=thread)
        seen.append(job)
    if crossed:
        ids = sorted(crossed)
        which = f"job{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}"
        made, sent = (
            ("the sandbox", "a real model") if not sandbox else ("a real model", "the sandbox")
        )
        warn(
            f"{which} of the thread {'were' if len(ids) > 1 else 'was'} answered by {made}, "
            f"whose answers {sent} cannot take as its own: their images go as yours, and the "
            "model does not see their reasoning"
        )
    return seen
