"""The exception tree and the exit code each error maps to.

Every error nanoedit raises on purpose is a :class:`NanoeditError`: a message for a person
(what happened, to what, and what to do) and an exit code. They are raised in the core and
turned into output only at the top, in the command-line layer.

    NanoeditError
    ├── UsageError          2  a bad option or value
    ├── ConfigError         3  no backend configured, bad config file
    │   └── AuthError       3  the server rejected the key
    ├── InputError          4  missing/unreadable file, not an image, bad URL, too many images
    │   ├── OverwriteError  4  refusing to overwrite an existing file
    │   └── OutputError     4  a result cannot be written: disk full, folder not writable
    ├── ApiError            5  error bodies, failed tasks, answers without an image
    │   └── TaskFailed      5  an asynchronous task ended without an image, or is unknown
    ├── NetworkError        6  connection failures and timeouts
    ├── RefusedError        8  the provider refused the content (a safety block, a text-only answer)
    ├── StoppedError      130  Ctrl-C or SIGTERM stopped the run before the job was sent
    ├── BudgetError         7  --max-cost or --max-images: a batch over budget, or jobs not sent
    └── OutputClosed      141  stdout was closed (a pipe's reader went away): no more results

A refusal is not an outage: a pipeline retries an outage and alerts on a refusal, so a
refusal has its own code and is never retried.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Self


class ExitCode(IntEnum):
    """Process exit codes; scripts rely on these numbers."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    CONFIG = 3
    INPUT = 4
    API = 5
    NETWORK = 6
    PARTIAL = 7
    REFUSED = 8
    # nanoedit models --live: a provider's lineup differs from the catalog.
    DRIFT = 9
    INTERRUPTED = 130
    # 128 + SIGPIPE, as a shell reports a command a closed pipe stopped.
    OUTPUT_CLOSED = 141


# What each exit code means, for a program that reads them (``nanoedit --usage --json``, the
# agent skill); tests check that every code has one.
EXIT_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "every job succeeded",
    ExitCode.INTERNAL: "an unexpected internal error (a bug: please report it)",
    ExitCode.USAGE: "a bad option or value; nothing was sent",
    ExitCode.CONFIG: "no backend configured, a bad config file, or a key the server rejected",
    ExitCode.INPUT: "an input or output file cannot be used (missing, not an image, exists)",
    ExitCode.API: "the API answered with an error, or without an image",
    ExitCode.NETWORK: "the server could not be reached or did not answer in time",
    ExitCode.PARTIAL: "some jobs failed, or --max-cost/--max-images stopped the batch",
    ExitCode.REFUSED: "the provider refused the content (a safety block): do not retry as is",
    ExitCode.DRIFT: "nanoedit models --live: a provider's lineup differs from the catalog",
    ExitCode.INTERRUPTED: "stopped by Ctrl-C or SIGTERM; nanoedit resume sends what was left",
    ExitCode.OUTPUT_CLOSED: "stdout was closed by its reader; jobs not sent stay unsent",
}


class NanoeditError(Exception):
    """An expected failure with a message meant for the user."""

    exit_code: ExitCode = ExitCode.INTERNAL
    kind: str = "internal"
    # Whether the same step may well succeed later (a server that failed for now): a result
    # whose download failed so is kept for resume.
    transient: bool = False
    # Whether the job's asynchronous tasks are still on the server, paid for, when it fails:
    # the polls gave up, not the tasks, so the journal keeps the job for resume to collect.
    tasks_left: bool = False
    # What to do about it, in a few words, for a program reading the --json error envelope
    # (the message says it for a person, in its own words).
    hint: str = "report it with the command that failed: it is a bug"
    # The provider's own code for the error when it gave one (Google's status such as
    # INVALID_ARGUMENT, a finishReason, an OpenAI error code): set where the answer is read.
    provider_code: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def coded(self, code: str | None) -> Self:
        """This error, carrying the provider's own ``code`` (when there is one)."""
        if code:
            self.provider_code = code
        return self


class UsageError(NanoeditError):
    """A bad option or value on the command line."""

    hint = "fix the option named; see nanoedit COMMAND --help or nanoedit --usage --json"

    exit_code = ExitCode.USAGE
    kind = "usage"


class ConfigError(NanoeditError):
    """The configuration is missing or wrong."""

    hint = "run nanoedit config check, then nanoedit config set the key it names"

    exit_code = ExitCode.CONFIG
    kind = "config"


class AuthError(ConfigError):
    """The server rejected the API key."""

    hint = "set a valid API key for the backend (nanoedit config set NAME.api_key)"

    kind = "auth"


class InputError(NanoeditError):
    """An input image or output path cannot be used."""

    hint = "check the file or URL named; nothing was sent for it"

    exit_code = ExitCode.INPUT
    kind = "input"


class OverwriteError(InputError):
    """Writing would replace a file the user did not ask to overwrite."""

    hint = "choose another output name or folder; pass --overwrite only if the user asked"

    kind = "overwrite"


class OutputError(InputError):
    """A result could not be written where it was to go."""

    hint = "free space or choose a writable output folder (-d DIR)"

    kind = "output"


class ApiError(NanoeditError):
    """The API answered with an error, or without an image."""

    hint = "read the message; try again later, or nanoedit resume JOB if results were kept"

    exit_code = ExitCode.API
    kind = "api"


class ModelNotServed(ApiError):
    """The provider answered that it does not serve the model the job was sent to (a shut-down
    or unknown id). Never retried: the run holds back the other jobs of that model on that
    backend, as a rejected key holds back its backend's."""

    def __init__(self, where: str, said: str) -> None:
        super().__init__(f"{where} does not serve the model: {said}")
        self.where = where
        self.said = said


class TaskFailed(ApiError):
    """An asynchronous task ended without an image (it failed, was cancelled, or came back
    empty), or the server does not know it: the task's own end, which polling it again
    cannot change. (A refusal of its content is a :class:`RefusedError`.)"""


class NetworkError(NanoeditError):
    """The server could not be reached, or did not answer in time."""

    hint = "check the network or proxy and try again; nothing is paid twice"

    exit_code = ExitCode.NETWORK
    kind = "network"


class RefusedError(NanoeditError):
    """The provider declined to make the image: a safety block, a policy refusal, text only.

    The message carries the provider's own reason; sending the same request again would be
    refused again (and may be charged), so it is never retried.
    """

    hint = "change the prompt or the image; the same request is refused again"

    exit_code = ExitCode.REFUSED
    kind = "refused"


class StoppedError(NanoeditError):
    """The run was stopped (Ctrl-C, SIGTERM) before this job was sent: ``nanoedit resume``
    sends it."""

    hint = "run nanoedit resume to send the jobs not sent"

    exit_code = ExitCode.INTERRUPTED
    kind = "stopped"


class BudgetError(NanoeditError):
    """A batch over ``--max-cost`` or ``--max-images``: refused before anything is sent, or
    stopped once what was spent reached the limit (the jobs not sent are counted)."""

    hint = "raise --max-cost/--max-images, or send fewer jobs"

    exit_code = ExitCode.PARTIAL
    kind = "budget"


class OutputClosed(NanoeditError):
    """stdout was closed, so results can no longer be given: jobs not sent yet stay unsent."""

    hint = "read all of stdout; nanoedit resume sends the jobs not sent"

    exit_code = ExitCode.OUTPUT_CLOSED
    kind = "closed"
