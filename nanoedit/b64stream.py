"""Base64 images inside a JSON answer, decoded into files while the answer arrives.

APIs that answer with images as base64 in JSON (OpenAI's ``b64_json``, Gemini's
``inlineData.data``, OpenRouter's ``data:`` URLs) make the answer 4/3 the size of its images.
Read whole, a 27 MB PNG is a 36 MB body, then a 36 MB string, a cleaned copy and the bytes.
A :class:`JsonBase64Stream` is fed the body in chunks as they come. Every string value
under one of ``keys`` that grows past ``min_chars`` is decoded, 4 characters at a time, into
a sink (a writable file) that ``open_sink`` gives it, and left out of the JSON that is kept:
the kept JSON has a placeholder string in its place, so the rest of the answer (finish
reasons, text parts, usage) is read as usual with ``json.loads``. Memory stays at one chunk
plus ``min_chars``, whatever the size of the images.

JSON escapes are undone on the way (``\\/`` as PHP writes a slash, ``\\n`` as MIME-style
encoders break lines, ``\\u002b``), whitespace is skipped, missing padding is tolerated,
anything else that is not base64 raises :class:`Base64StreamError`. A ``data:`` URI value
(``data:image/png;base64,...``) has its media type read off and its payload decoded.
"""

from __future__ import annotations

import binascii
import json
import os
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from pybase64 import b64decode

# Shorter values stay in the kept JSON: a URL (signed ones run to a few kB) is never mistaken
# for base64, and a thumbnail costs nothing to hold.
MIN_CHARS = 64 * 1024

JsonPath = tuple[str | int, ...]
"""Where a value is in the document: keys and list indexes, e.g. ``("data", 0, "b64_json")``."""

_STRUCTURE = re.compile(rb'[{}\[\],:"]')
# The one-letter escapes base64 text may carry in JSON, and what each stands for: a slash,
# or whitespace to skip. Any \uXXXX escape of a base64 character or whitespace is read too.
_ESCAPES = {b"/": b"/", b"n": b"", b"r": b"", b"t": b""}
_ESCAPE = re.compile(rb"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_BASE64_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=]")
_NOT_BASE64_RAW = re.compile(rb"[^A-Za-z0-9+/=\s\\]")
WHITESPACE = b" \t\r\n"
# The scanner's states: between strings, in a key, in a value kept as it is, in the first
# ``min_chars`` of a value that may be streamed, in a value being streamed.
_BETWEEN, _KEY, _VALUE, _HEAD, _STREAMING = range(5)
_QUOTE, _OPEN_OBJECT, _CLOSE_OBJECT, _OPEN_LIST, _CLOSE_LIST, _COMMA = b'"{}[],'
_EQUALS = ord("=")


class Sink(Protocol):
    """Where a value's decoded bytes go: a file opened for writing, a ``BytesIO``..."""

    def write(self, data: bytes, /) -> object:
        """Append bytes."""
        ...


class Base64StreamError(ValueError):
    """A value under a streamed key is not base64, or the document ends inside one.

    ``path`` says which value, ``position`` is the byte of the document where it went wrong.
    """

    def __init__(self, message: str, path: JsonPath, position: int) -> None:
        super().__init__(f"{message} (in {format_path(path)}, at byte {position})")
        self.path = path
        self.position = position


@dataclass(frozen=True)
class StreamedValue:
    """A value that went to a sink instead of the kept JSON."""

    placeholder: str
    """The string standing in its place in the kept JSON."""
    path: JsonPath
    media_type: str | None
    """From a ``data:`` URI (``image/png``); None for bare base64."""
    size: int
    """Decoded bytes written to the sink."""
    sink: Sink


@dataclass(frozen=True)
class Streamed:
    """A whole document: the JSON kept, and the values that went to sinks, in order."""

    kept: bytes
    """The document with each streamed value's text replaced by its placeholder."""
    values: tuple[StreamedValue, ...]

    def load(self) -> Any:
        """The kept JSON, parsed as ``json.loads`` parses a body (``json.JSONDecodeError`` or
        ``UnicodeDecodeError`` when the answer was not JSON)."""
        return json.loads(self.kept)

    def value_of(self, item: object) -> StreamedValue | None:
        """The streamed value a string of the parsed JSON stands for, or None."""
        if isinstance(item, str):
            for value in self.values:
                if value.placeholder == item:
                    return value
        return None


class JsonBase64Stream:
    """A JSON document fed in chunks; long base64 values under ``keys`` go to sinks.

    ``open_sink(path, media_type)`` is called when a value is found to be long enough, and
    returns where its bytes go; the caller closes (or discards) the sinks, which it finds in
    ``opened`` should a ``feed`` or ``close`` raise. The document is not checked here beyond
    what finding strings takes: ``Streamed.load`` parses the rest.
    """

    def __init__(
        self,
        open_sink: Callable[[JsonPath, str | None], Sink],
        *,
        keys: Collection[str],
        min_chars: int = MIN_CHARS,
    ) -> None:
        self._open_sink = open_sink
        self._keys = frozenset(keys)
        # A data: URI's header has to be in the part of a value looked at before streaming.
        self._min_chars = max(min_chars, 256)
        self._token = os.urandom(6).hex()
        self._kept = bytearray()
        self._values: list[StreamedValue] = []
        self.opened: list[Sink] = []
        """Every sink ``open_sink`` returned so far."""
        self._position = 0  # bytes of the document before the chunk being read
        self._state = _BETWEEN
        self._escaped = False  # a string so far ends in a backslash that escapes what follows
        self._levels: list[_Level] = []
        self._key = bytearray()
        self._head = bytearray()
        self._head_start = 0
        self._decoder: _Decoder | None = None
        self._placeholder = ""
        self._media_type: str | None = None

    def feed(self, chunk: bytes) -> None:
        """Read the next piece of the document."""
        i, end = 0, len(chunk)
        kept = self._kept
        while i < end:
            state = self._state
            if state == _STREAMING:
                assert self._decoder is not None
                quote = self._decoder.run(chunk, i, self._position)
                if quote == -1:
                    break
                self._decoder.finish(self._position + quote)
                self._streamed()
                kept += b'"'
                i = quote + 1
            elif state == _BETWEEN:
                found = _STRUCTURE.search(chunk, i)
                if found is None:
                    kept += chunk[i:]
                    break
                at = found.start()
                kept += chunk[i : at + 1]
                i = at + 1
                self._structure(chunk[at], i)
            else:
                quote = self._string_end(chunk, i)
                stop = end if quote == -1 else quote
                piece = chunk[i:stop]
                i = stop
                if state == _HEAD:
                    self._head += piece
                else:
                    kept += piece
                    if state == _KEY:
                        self._key += piece
                if quote != -1:
                    i += 1
                    self._string_ended(state, self._position + quote)
                elif state == _HEAD and len(self._head) >= self._min_chars:
                    self._start_streaming()
        self._position += end

    def close(self) -> Streamed:
        """The document ended: what was kept, and the values streamed."""
        if self._state == _STREAMING:
            raise Base64StreamError(
                "the answer ends inside a base64 value: it was cut short",
                self._path(),
                self._position,
            )
        if self._state == _HEAD:
            self._kept += self._head  # cut short: parsing the kept JSON will say so
        return Streamed(bytes(self._kept), tuple(self._values))

    def _structure(self, byte: int, after: int) -> None:
        """A structural character of JSON (outside strings) was read; ``after`` is the next
        index in the chunk."""
        levels = self._levels
        top = levels[-1] if levels else None
        if byte == _QUOTE:
            if top is not None and top.in_object and top.key is None:
                self._state = _KEY
                self._key.clear()
            elif top is not None and top.in_object and top.key in self._keys:
                self._state = _HEAD
                self._head_start = self._position + after
            else:
                self._state = _VALUE
        elif byte in (_OPEN_OBJECT, _OPEN_LIST):
            levels.append(_Level(byte == _OPEN_OBJECT))
        elif byte in (_CLOSE_OBJECT, _CLOSE_LIST):
            if levels:
                levels.pop()
        elif byte == _COMMA and top is not None:
            top.key = None
            top.index += 1
        # A colon needs nothing: the key read before it stays until the next comma.

    def _string_end(self, chunk: bytes, i: int) -> int:
        """The index of the quote that ends the string being read, or -1 when it goes on
        past this chunk (with ``_escaped`` set if the chunk ends in an escaping backslash)."""
        if self._escaped:
            self._escaped = False
            i += 1
        # Two searches with find, not one with a regular expression: find runs at memory
        # speed, and a value's head is up to MIN_CHARS long.
        while True:
            quote = chunk.find(b'"', i)
            escape = chunk.find(b"\\", i, len(chunk) if quote == -1 else quote)
            if escape == -1:
                return quote
            if escape + 1 >= len(chunk):
                self._escaped = True
                return -1
            i = escape + 2

    def _string_ended(self, state: int, position: int) -> None:
        """The string being read ended with the quote at ``position`` in the document."""
        if state == _KEY:
            # A key that does not read is no key of ours; the kept JSON will not parse.
            self._levels[-1].key = _text(bytes(self._key)) or ""
            self._kept += b'"'
        elif state == _VALUE:
            self._kept += b'"'
        elif len(self._head) >= self._min_chars:
            self._start_streaming()
            assert self._decoder is not None
            self._decoder.finish(position)
            self._streamed()
            self._kept += b'"'
        else:
            self._kept += self._head + b'"'  # a short value is kept as it is
            self._head.clear()
        self._state = _BETWEEN

    def _start_streaming(self) -> None:
        """The value read so far is long enough: open its sink and decode from here on."""
        head = bytes(self._head)
        self._head.clear()
        self._escaped = False  # the decoder reads escapes itself, a cut-off one included
        path = self._path()
        payload, media_type = head, None
        if head.startswith(b"data:"):
            comma = head.find(b",")
            header = _text(head[:comma]) if comma != -1 else None
            if header is None or ";base64" not in header.lower():
                raise Base64StreamError(
                    "the value is a data: URI that is not base64", path, self._head_start
                )
            payload = head[comma + 1 :]
            media_type = header.removeprefix("data:").split(";")[0].strip().lower() or None
        sink = self._open_sink(path, media_type)
        self.opened.append(sink)
        self._placeholder = f"\x00b64stream:{self._token}:{len(self._values)}"
        self._media_type = media_type
        self._kept += json.dumps(self._placeholder).encode()[1:-1]
        self._decoder = _Decoder(sink, path)
        self._state = _STREAMING
        self._decoder.feed(payload, self._head_start + len(head) - len(payload))

    def _streamed(self) -> None:
        decoder = self._decoder
        assert decoder is not None
        self._values.append(
            StreamedValue(
                self._placeholder, decoder.path, self._media_type, decoder.size, decoder.sink
            )
        )
        self._decoder = None
        self._state = _BETWEEN

    def _path(self) -> JsonPath:
        return tuple(level.member for level in self._levels)


class _Level:
    """An object or a list the scanner is inside, and which member it is at."""

    __slots__ = ("in_object", "index", "key")

    def __init__(self, in_object: bool) -> None:
        self.in_object = in_object
        self.key: str | None = None  # in an object: the member's key, once read
        self.index = 0  # in a list: the item's index

    @property
    def member(self) -> str | int:
        if self.in_object:
            return self.key if self.key is not None else ""
        return self.index


def _text(raw: bytes) -> str | None:
    """A piece of a JSON string, its escapes undone; None if it does not read as one."""
    try:
        text = json.loads(b'"' + raw + b'"')
    except (ValueError, UnicodeDecodeError):
        return None
    return text if isinstance(text, str) else None


def format_path(path: JsonPath) -> str:
    """A path as JSON paths are written: ``data[0].b64_json``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the document"


class _Decoder:
    """Base64 text in pieces (JSON-escaped, maybe with whitespace), decoded to the sink in
    blocks of whole 4-character groups; what is left over waits for the next piece."""

    def __init__(self, sink: Sink, path: JsonPath) -> None:
        self.sink = sink
        self._sink_write = sink.write
        self.path = path
        self.size = 0
        # Under 4 characters of base64, then maybe an escape cut off by the piece's end.
        self._carry = b""
        self._padded = False

    def run(self, chunk: bytes, start: int, base: int) -> int:
        """Decode the value's text from ``chunk[start:]`` up to its closing quote; returns the
        quote's index, or -1 when the value goes on in the next chunk. ``base`` is where
        ``chunk`` starts in the document."""
        carry = self._carry
        need = -len(carry) % 4  # characters that complete the carry's group
        end = start + need + (len(chunk) - start - need) // 4 * 4
        if end > start + need and not self._padded and b"\\" not in carry:
            # Most chunks are base64 and nothing else: decoded as they come, without copying
            # them or searching for the quote first (strict decoding fails on one, as on an
            # escape or a space: then the careful way below reads the chunk). This is the
            # path of nearly every byte, so it is kept short.
            try:
                first = b64decode(carry + chunk[start : start + need], validate=True)
                whole = start + need == 0 and end == len(chunk)
                block = chunk if whole else memoryview(chunk)[start + need : end]
                # pybase64's validating decoder (SIMD where the CPU has it) is strict, and an
                # order of magnitude faster than binascii's lenient one: it refuses a quote,
                # an escape or a space in the block, and the careful way below reads that.
                rest = b64decode(block, validate=True)
            except binascii.Error:
                pass
            else:
                if first:
                    if chunk[start + need - 1] == _EQUALS:
                        raise Base64StreamError(
                            "the base64 text goes on after its padding", self.path, base + start
                        )
                    self._sink_write(first)
                self._sink_write(rest)
                self.size += len(first) + len(rest)
                self._padded = chunk[end - 1] == _EQUALS
                left = chunk[end:]
                quote = left.find(b'"')
                self._carry = left if quote == -1 else left[:quote]
                return -1 if quote == -1 else end + quote
        quote = chunk.find(b'"', start)
        self.feed(chunk[start : len(chunk) if quote == -1 else quote], base + start)
        return quote

    def feed(self, raw: bytes, position: int) -> None:
        """Decode what ``raw`` (text with no closing quote) completes, escapes and
        whitespace included; ``position`` is where it starts in the document."""
        text = self._carry + raw if self._carry else raw
        tail = b""
        if b"\\" in text:
            text, tail = self._unescape(text, position)
        text = text.translate(None, WHITESPACE)
        usable = len(text) - len(text) % 4
        try:
            self._decode(text[:usable], position)
        except binascii.Error:
            # Point at the first wrong byte of this piece, if it is there to be seen.
            wrong = _NOT_BASE64_RAW.search(raw)
            where = position + (wrong.start() if wrong else 0)
            raise self._not_base64(text[:usable], where) from None
        self._carry = text[usable:] + tail

    def finish(self, position: int) -> None:
        """The value ended at ``position``: decode the last group, padded if need be."""
        carry, self._carry = self._carry, b""
        if b"\\" in carry:
            carry, tail = self._unescape(carry, position)
            if tail:
                raise Base64StreamError(
                    "the value is not base64 (it ends in a \\)", self.path, position
                )
        carry = carry.translate(None, WHITESPACE)
        if len(carry) == 1:
            raise Base64StreamError(
                "the base64 text ends with a lone character: it was cut short", self.path, position
            )
        if carry:
            try:
                self._decode(carry + b"=" * (4 - len(carry)), position)
            except binascii.Error:
                raise self._not_base64(carry, position) from None

    def _unescape(self, text: bytes, position: int) -> tuple[bytes, bytes]:
        """The text with its escapes undone, and an escape cut off at its end (kept raw)."""
        if b"\\\\" in text:
            # An escaped backslash is never base64, and would make the escapes ambiguous.
            raise Base64StreamError("the value is not base64 (it holds \\\\)", self.path, position)
        tail = b""
        cut = text.rfind(b"\\", max(0, len(text) - 5))
        if cut != -1:
            whole = 6 if text[cut + 1 : cut + 2] == b"u" else 2
            if len(text) - cut < whole:
                text, tail = text[:cut], text[cut:]
        if b"\\/" in text:  # PHP's json_encode escapes every slash: a 64th of the text
            text = text.replace(b"\\/", b"/")
        if b"\\" in text:
            text = _ESCAPE.sub(lambda match: self._escape(match, position), text)
        return text, tail

    def _escape(self, match: re.Match[bytes], position: int) -> bytes:
        escape = match[1]
        meaning = _ESCAPES.get(escape)
        if escape.startswith(b"u") and len(escape) == 5:
            character = chr(int(escape[1:], 16))
            if character in _BASE64_CHARACTERS:
                meaning = character.encode()
            elif character in " \t\r\n":
                meaning = b""
        if meaning is None:
            shown = "\\" + escape.decode("ascii", errors="replace")
            raise Base64StreamError(
                f"the value is not base64 (it holds the escape {shown})", self.path, position
            )
        return meaning

    def _decode(self, text: bytes, position: int) -> None:
        if text:
            data = b64decode(text, validate=True)
            self._write(data, text.endswith(b"="), position)

    def _write(self, data: bytes, padded: bool, position: int) -> None:
        """Bytes decoded from whole groups; ``padded`` when their last group had padding."""
        if self._padded:
            raise Base64StreamError(
                "the base64 text goes on after its padding", self.path, position
            )
        self._padded = padded
        self._sink_write(data)
        self.size += len(data)

    def _not_base64(self, text: bytes, position: int) -> Base64StreamError:
        bad = _NOT_BASE64.search(text)
        if bad is None and b"=" in text.rstrip(b"="):
            return Base64StreamError(
                "the base64 text goes on after its padding", self.path, position
            )
        if bad is None:
            what = "its padding is wrong"
        elif bad[0].isascii() and bad[0].decode().isprintable():
            what = f"it holds {bad[0].decode()!r}"
        else:
            what = f"it holds the byte 0x{bad[0][0]:02x}"
        return Base64StreamError(f"the value is not base64 ({what})", self.path, position)
