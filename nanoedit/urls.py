"""URLs as nanoedit shows them: the host of one for a message, and any ``user:password@`` part
masked or removed, so that a password in a base URL or a proxy never reaches the terminal."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)?(?P<user>[^/?#@:]*):[^/?#]*@")


def host_of(url: str) -> str:
    """The host (and port) of a URL, for messages: never a ``user:password@`` part."""
    return urlsplit(url).netloc.rpartition("@")[2] or url


def redact_userinfo(url: str) -> str:
    """A URL with the password of any ``user:password@`` part replaced by ``****``."""
    return _USERINFO.sub(lambda match: f"{match['scheme'] or ''}{match['user']}:****@", url, 1)


def without_userinfo(url: str) -> str:
    """A URL without its ``user:password@`` part, if it has one."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
