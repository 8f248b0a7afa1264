"""Passwords out of everything the project prints or logs: URLs, conninfo strings, and the
error texts of psycopg/libpq, which quote the conninfo they failed on.

A password with an unencoded ``@``, ``#``, ``/`` or space is common (Supabase generates
them) and defeats URL parsers: ``postgresql://u:p@ss#word@host/db`` is read by libpq as
host ``ss#word@host``, so its error message carries the password's tail. Here the user
info ends at the LAST ``@`` of the URL, so the whole password is masked, and every piece
of a known password (the parts a parser may have split off) is masked wherever it appears.
"""

from __future__ import annotations

import logging
import os
import re
import traceback
from typing import Any
from urllib.parse import unquote

MASK = "***"
MIN_PIECE = 3  # shorter pieces of a password are too common to mask anywhere
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# a URL's password in free text: up to the last '@' before whitespace
_TEXT_URL_PASSWORD = re.compile(r"(?P<pre>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s]*@")
_QUERY_PASSWORD = re.compile(r"(?P<pre>[?&]password=)[^&\s]*", re.I)
# key=value conninfo (a URL's query parameter is _QUERY_PASSWORD's)
_KV_PASSWORD = re.compile(r"(?P<pre>(?<![?&\w])password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S+)",
                          re.I)
_ENV_URLS = ("DATABASE_URL", "TML_DATABASE_URL", "TML_OPTUNA_STORAGE")

_known: set[str] = set()  # passwords (and their pieces) of the URLs this process uses
_installed = False


def _userinfo_end(url: str) -> tuple[int, int] | None:
    """(start of the user info, index of its closing '@'), or None without a scheme or '@'."""
    scheme = _SCHEME.match(url.strip())
    if scheme is None:
        return None
    start = url.index("://") + 3
    at = url.rfind("@", start)  # the last '@': the password may hold unencoded ones
    return (start, at) if at >= 0 else None


def url_password(url: str) -> str | None:
    """The password of a URL (as written, not decoded) or of a ``key=value`` conninfo."""
    span = _userinfo_end(url)
    if span is not None:
        userinfo = url[span[0]:span[1]]
        if ":" in userinfo:
            return userinfo.split(":", 1)[1]
    found = _QUERY_PASSWORD.search(url) or _KV_PASSWORD.search(url)
    if found is None:
        return None
    value = found.group(0)[len(found.group("pre")):]
    return value[1:-1] if value.startswith("'") and value.endswith("'") else value


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (URL, query ``password=`` or
    ``key=value`` conninfo form); everything else as given."""
    span = _userinfo_end(url)
    if span is not None:
        start, at = span
        userinfo = url[start:at]
        if ":" in userinfo:
            url = f"{url[:start]}{userinfo.split(':', 1)[0]}:{MASK}{url[at:]}"
    url = _QUERY_PASSWORD.sub(rf"\g<pre>{MASK}", url)
    return _KV_PASSWORD.sub(rf"\g<pre>{MASK}", url)


def _pieces(password: str) -> set[str]:
    """The password, decoded and as written, and what a parser may have split it into."""
    out = {password, unquote(password)}
    for secret in list(out):
        for sep in ("@", "#", "/", "?", ":"):
            parts = secret.split(sep)
            out.update(sep.join(parts[i:]) for i in range(1, len(parts)))  # tails
            out.update(sep.join(parts[:i]) for i in range(1, len(parts)))  # heads
        out.update(secret.split())
    return {p for p in out if p}


def remember(*urls: str | None) -> None:
    """Mask the passwords of these URLs in every later :func:`redact` (and log record)."""
    for url in urls:
        password = url_password(url) if url else None
        if password and password != MASK:
            _known.update(_pieces(password))


def redact(text: str, *urls: str | None) -> str:
    """``text`` with the passwords of ``urls`` and of remembered URLs masked, and any
    password in a URL or ``password=`` pair that appears in it."""
    secrets = set(_known)
    for url in urls:
        if url:
            text = text.replace(url, redact_url(url))
            password = url_password(url)
            if password:
                secrets |= _pieces(password)
    for secret in sorted(secrets, key=len, reverse=True):  # the whole before its pieces
        # Not inside a longer word: a 3-letter piece must not mask "failed" or "host". A
        # shorter one only where libpq puts it: before the '@' of the host it took for one.
        after = r"(?![A-Za-z0-9])" if len(secret) >= MIN_PIECE else "(?=@)"
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}{after}", MASK, text)
    text = _TEXT_URL_PASSWORD.sub(rf"\g<pre>{MASK}@", text)
    text = _QUERY_PASSWORD.sub(rf"\g<pre>{MASK}", text)
    return _KV_PASSWORD.sub(rf"\g<pre>{MASK}", text)


def percent_encoding_hint(url: str) -> str | None:
    """Advice when a URL's password holds characters that must be percent-encoded."""
    span = _userinfo_end(url)
    password = url_password(url) if span is not None else None
    if not password:
        return None
    bad = sorted({c for c in password if c in "@#/?: "} |
                 ({"%"} if re.search(r"%(?![0-9A-Fa-f]{2})", password) else set()))
    if not bad:
        return None
    shown = ", ".join(f"{c!r} as %{ord(c):02X}" for c in bad)
    return f"percent-encode the password's special characters in the URL: {shown}"


def install(*urls: str | None) -> None:
    """Mask passwords in every log record of this process from now on: the URLs given, the
    ones in the environment (DATABASE_URL, TML_OPTUNA_STORAGE) and any URL or
    ``password=`` in a message or traceback (psycopg_pool logs libpq's errors)."""
    global _installed
    remember(*urls, *(os.environ.get(name) for name in _ENV_URLS))
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        message = record.getMessage()
        if (masked := redact(message)) != message:  # else args stay (uvicorn's access log)
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            if (masked := redact(text)) != text:  # formatters reuse exc_text when set
                record.exc_text = masked
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    logging.setLogRecordFactory(factory)

