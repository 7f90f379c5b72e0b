"""Credentials out of anything ValueFlow stores or shows: run records, reports, logs, errors.

A base URL may carry a user name and password (``http://user:key@host/v1``) or a key in its
query string (``?api_key=...``). Those are for the HTTP request only; every URL that is
written to the workspace, a report or a message goes through :func:`redact_url` first.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact_credentials", "redact_url"]

# scheme://[userinfo@]host... up to whitespace or a quote; userinfo is what we remove.
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*://)([^\s/@'\"<>]*@)?([^\s'\"<>]*)")


def redact_url(url: str) -> str:
    """The URL without user:password and query string (which may hold credentials)."""
    if "://" not in url:  # not a URL we can parse: keep what follows any user info
        return url.rsplit("@", 1)[-1].split("?", 1)[0]
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # a malformed port or host: keep only what is surely not secret
        return _URL.sub(lambda m: m.group(1) + "…", url)
    if port:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def _redact_text(text: str) -> str:
    if "://" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        rest = m.group(3)
        if m.group(2) is None and "?" not in rest:
            return m.group(0)  # nothing secret in it: keep it exactly as written
        return redact_url(m.group(1) + (m.group(2) or "") + rest)

    return _URL.sub(one, text)


def redact_credentials(obj: Any) -> Any:
    """``obj`` with credentials removed from every URL in it, recursively through dicts,
    lists and tuples (strings without credentials are left exactly as they are)."""
    if isinstance(obj, str):
        return _redact_text(obj)
    if isinstance(obj, dict):
        return {k: redact_credentials(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(redact_credentials(v) for v in obj)
    return obj
