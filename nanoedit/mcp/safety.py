"""What the MCP server enforces whatever a tool's arguments say: the folders results are
written to and inputs read from, and what a call and the whole session may spend.

A tool's arguments come from a model, which may be wrong or be led astray by what it read:
so a path is resolved (``..`` and symlinks followed) before it is checked, and a limit is
applied here, in the server, before the session is asked to run anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from nanoedit.errors import BudgetError, InputError, UsageError

# A glob would be expanded by the session, after the check: every input names one file.
_GLOB = frozenset("*?[")


@dataclass(frozen=True)
class Folders:
    """The folders a tool may read inputs from and write results to, resolved: the client's
    roots when it gives some, else those the server was started with. The first one is
    where a relative path starts and where results go unless a call names a folder."""

    roots: tuple[Path, ...]

    @classmethod
    def of(cls, paths: Iterable[Path]) -> Folders:
        """The folders ``paths`` name, each checked to be an existing folder."""
        roots = []
        for path in paths:
            resolved = path.expanduser().resolve()
            if not resolved.is_dir():
                raise UsageError(
                    f"the folder {path} the MCP server is to work in is not a folder; "
                    "give an existing folder with --root"
                )
            roots.append(resolved)
        if not roots:
            raise UsageError("the MCP server has no folder to work in; give one with --root")
        return cls(tuple(dict.fromkeys(roots)))

    @classmethod
    def of_uris(cls, uris: Sequence[str]) -> Folders | None:
        """The folders of a client's roots (``file://`` URIs; others are not folders here),
        or None when it gave none this server can use."""
        paths = []
        for uri in uris:
            parts = urlsplit(uri)
            if parts.scheme == "file" and parts.netloc in ("", "localhost"):
                path = Path(unquote(parts.path)).resolve()
                if path.is_dir():
                    paths.append(path)
        return cls(tuple(dict.fromkeys(paths))) if paths else None

    def described(self) -> str:
        """The folders, as an error message names them."""
        return ", ".join(str(root) for root in self.roots)

    def holds(self, path: Path) -> bool:
        """Whether ``path``, resolved, is one of the folders or inside one."""
        resolved = path.resolve()
        return any(resolved.is_relative_to(root) for root in self.roots)

    def output_folder(self, given: str | None) -> Path:
        """Where a call's results go: ``given`` (relative to the first folder), checked to
        be inside the folders, or the first folder."""
        if not given:
            return self.roots[0]
        path = (self.roots[0] / given).resolve()
        if not self.holds(path):
            raise InputError(
                f"the output folder {given} is outside the folders this MCP server may write "
                f"to ({self.described()}); give a folder inside one of them"
            )
        return path

    def input(self, given: str, saved_result: Callable[[str], Path]) -> str:
        """An input image as the session is to get it: an http(s) URL as it is, an earlier
        result (``@last``, ``@ID``, ``@ID.N``; found with ``saved_result``) as it is once its
        file is found inside the folders, a path made absolute and checked to be inside."""
        text = given.strip()
        if text.lower().startswith(("http://", "https://")):
            return text
        if text.startswith("@"):
            found = saved_result(text)
            if not self.holds(found):
                raise InputError(
                    f"{text} is the file {found}, outside the folders this MCP server may read "
                    f"({self.described()}); copy it into one of them and name its path"
                )
            return text
        if not text or text == "-":
            raise InputError(
                "an input image must be a file inside the server's folders or an http(s) URL; "
                "this server reads nothing from its stdin"
            )
        if _GLOB & set(text):
            raise InputError(
                f"the input {text} is a pattern; name each image's path (the MCP server does "
                "not expand patterns)"
            )
        path = (self.roots[0] / text).resolve()
        if not self.holds(path):
            raise InputError(
                f"the input {text} is outside the folders this MCP server may read "
                f"({self.described()}); copy it into one of them, or give an http(s) URL"
            )
        if path.is_dir():
            # A folder's files would be found by the session, after this check: a symlink
            # among them could lead out.
            raise InputError(
                f"the input {text} is a folder; name each image in it (the MCP server edits "
                "the files it is given, one job each)"
            )
        return str(path)


class Spending:
    """What the server lets calls spend, in US dollars: at most ``per_call`` on one call and
    ``per_session`` on all of them (None: no limit). One paid call runs at a time (``lock``),
    so that two calls cannot both fit what is left and together go over it."""

    def __init__(self, per_call: float | None, per_session: float | None) -> None:
        self.per_call = per_call
        self.per_session = per_session
        self.spent = 0.0
        self.lock = threading.Lock()

    def limit(self, asked: float | None) -> float | None:
        """The --max-cost of the next call: the least of what the call asks, the per-call
        limit and what the session has left. A session with nothing left is refused."""
        limits = [value for value in (asked, self.per_call) if value is not None]
        if self.per_session is not None:
            left = self.per_session - self.spent
            if left <= 0:
                from nanoedit.catalog.pricing import money

                raise BudgetError(
                    f"this MCP session has spent {money(self.spent)} of its "
                    f"{money(self.per_session)} (--session-max-cost); nothing was sent: "
                    "start the server again with a higher --session-max-cost"
                )
            limits.append(left)
        return min(limits) if limits else None

    def spend(self, costs: Iterable[float | None]) -> None:
        """Count what a call's jobs cost (those of unknown cost count nothing: with a limit
        set, the session refuses a model whose price is unknown)."""
        self.spent += sum(cost for cost in costs if cost is not None)
