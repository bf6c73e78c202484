"""Text made safe for what reads it: a POSIX shell, curl's ``-F`` syntax, a ``#`` comment.

``--dry-run`` prints commands to paste or pipe into ``sh``, and what is in them (file names,
prompts, URLs, model ids, an ``-o`` path) may come from anyone: a name holding a newline must
not end a comment and start a command, a ``$(...)`` must not run, and a ``;`` or ``,`` must not
end the file name curl reads out of ``-F name=@FILE``. Every piece of such text goes through
one of these functions, never into a command line as it is.
"""

from __future__ import annotations

import re
import shlex
from itertools import groupby

# What shlex leaves unquoted, minus the two characters curl's -F splits a file name at.
_CURL_PLAIN = re.compile(r"[\w@%+=:./-]+", re.ASCII)
# What curl reads as a URL pattern (a range or a set) unless told -g.
_CURL_GLOB = re.compile(r"[][{}]")


def _plain(char: str) -> bool:
    """Whether a character may be printed as it is inside shell quotes: printable, or the
    newline, which quotes keep as a character (and ``$(...)`` would drop at a word's end)."""
    return char == "\n" or char.isprintable()


def _raw_bytes(text: str) -> bytes:
    """The bytes ``text`` stands for: UTF-8, and a byte that was not UTF-8 in a file name or
    argument (read with surrogateescape) as that byte again."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A lone surrogate that is not an escaped byte (none comes from a file name) has no
        # bytes of its own; its UTF-16 code is kept rather than failing the whole dry run.
        return text.encode("utf-8", "surrogatepass")


def sh_word(text: str) -> str:
    """``text`` as one word of a POSIX ``sh`` command, exactly: single-quoted as shlex does it,
    except that a run of characters a terminal would act on or cannot show (control
    characters, bidirectional overrides, bytes that are not UTF-8) is spelled as the octal
    escapes of a ``printf`` inside ``"$(...)"``. The printed line stays plain text, safe to
    paste, and the shell still hands the command the very bytes."""
    if all(_plain(char) for char in text):
        return shlex.quote(text)
    pieces = []
    for plain, run in groupby(text, key=_plain):
        chunk = "".join(run)
        if plain:
            pieces.append(shlex.quote(chunk))
        else:
            octal = "".join(f"\\{byte:03o}" for byte in _raw_bytes(chunk))
            pieces.append(f"\"$(printf '{octal}')\"")
    return "".join(pieces)


def curl_form_file(path: str) -> str:
    """A file name as curl reads it after ``-F name=@``: as it is when curl reads nothing into
    it, else in double quotes with ``"`` and ``\\`` escaped, which is curl's own syntax for a
    name holding ``;`` or ``,`` (a bare name ends there), spaces at its ends (stripped) or a
    leading quote. ``-`` stays stdin, as it is to curl either way."""
    if _CURL_PLAIN.fullmatch(path):
        return path
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def curl_url(url: str) -> str:
    """A URL as the words of a curl command: quoted for the shell, and after ``-g`` when it
    holds brackets or braces, which curl would otherwise expand into several requests."""
    word = sh_word(url)
    return f"-g {word}" if _CURL_GLOB.search(url) else word


def comment(text: str) -> str:
    """``text`` as the rest of a ``#`` comment line: one line whatever it holds. A backslash is
    doubled and every character that is not plain printable text is shown as its escape
    (``\\n``, ``\\x1b``, ``\\u202e``, and a byte that is not UTF-8 as ``\\xff``), so a name can
    neither end the comment nor hide part of it on a terminal."""
    return "".join(_escaped(char) for char in text)


_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    if char.isprintable():
        return char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, escaped by the file system
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
