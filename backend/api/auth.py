"""API keys: three scopes (bot, admin, viewer), constant-time comparison, never logged.

Keys come from TML_BOT_API_KEYS / TML_ADMIN_API_KEYS / TML_VIEWER_API_KEYS (comma-separated).
When none is set, one key of each scope is generated at first start and kept (mode 0600) in
``data_dir/api_keys.json``, so the service never runs open. ``viewer`` is read-only: the
dashboard's data and GET routes (:func:`permits`).
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fastapi import HTTPException

from backend.config import Settings

Scope = Literal["bot", "admin", "viewer"]
READ_METHODS = frozenset({"GET", "HEAD"})
FORBIDDEN: dict[str, str] = {"admin": "this route needs an admin key",
                             "bot": "this route needs a bot or admin key (viewer keys read only)"}
KEY_FILE = "api_keys.json"
API_KEY_HEADER = "X-API-Key"
_HEADER_RAW = API_KEY_HEADER.lower().encode()  # ASGI header names are lower-case bytes


@dataclass(frozen=True)
class ApiKeys:
    bot: tuple[bytes, ...]
    admin: tuple[bytes, ...]
    generated: bool = False  # True only in the process that created the key file
    viewer: tuple[bytes, ...] = ()
    viewer_generated: bool = False  # a key file from before the viewer scope got one

    def scope_of(self, presented: str | None) -> Scope | None:
        """The scope of a presented key, or None. Compares against every key in constant
        time so the response time does not reveal which key (or prefix) matched."""
        if not presented:
            return None
        raw = presented.encode()
        is_admin = False
        is_bot = False
        is_viewer = False
        for key in self.admin:
            is_admin |= hmac.compare_digest(raw, key)
        for key in self.bot:
            is_bot |= hmac.compare_digest(raw, key)
        for key in self.viewer:
            is_viewer |= hmac.compare_digest(raw, key)
        return ("admin" if is_admin else "bot" if is_bot else "viewer" if is_viewer
                else None)


def permits(scope: Scope, needed: Scope, method: str) -> bool:
    """Whether a key of ``scope`` may call a route that needs ``needed``: admin routes need
    admin; bot routes take bot and admin, and viewer for reads (GET/HEAD) only; viewer
    routes (the dashboard's data) take any key."""
    if needed == "admin":
        return scope == "admin"
    if needed == "bot" and scope == "viewer":
        return method in READ_METHODS
    return True


def authenticate(keys: ApiKeys, presented: str | None, needed: Scope,
                 method: str = "GET") -> Scope:
    """The scope of ``presented``; HTTPException 401 (no or unknown key) or 403 (the scope
    may not call this route, :func:`permits`). The one key check of the dependencies and
    the fast path."""
    scope = keys.scope_of(presented)
    if scope is None:
        raise HTTPException(401, f"missing or unknown API key (header {API_KEY_HEADER})",
                            headers={"WWW-Authenticate": "ApiKey"})
    if not permits(scope, needed, method):
        raise HTTPException(403, FORBIDDEN[needed])
    return scope


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The API key among raw ASGI headers (for code outside FastAPI's dependencies)."""
    for name, value in headers:
        if name == _HEADER_RAW:
            return value.decode("latin-1")
    return None


def _split(value: str) -> tuple[bytes, ...]:
    return tuple(k.strip().encode() for k in value.split(",") if k.strip())


def load_api_keys(settings: Settings) -> ApiKeys:
    bot = _split(settings.bot_api_keys.get_secret_value())
    admin = _split(settings.admin_api_keys.get_secret_value())
    viewer = _split(settings.viewer_api_keys.get_secret_value())
    if bot or admin or viewer:
        return ApiKeys(bot=bot, admin=admin, viewer=viewer)
    path = settings.data_dir / KEY_FILE
    if path.exists():
        return _stored(path)
    return _generate(path)


def _stored(path: Path) -> ApiKeys:
    stored = json.loads(path.read_text())
    added = "viewer" not in stored
    if added:  # written before the viewer scope existed: give it one, keep the others
        stored["viewer"] = "view_" + secrets.token_urlsafe(24)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh)
        os.replace(tmp, path)
    return ApiKeys(bot=(stored["bot"].encode(),), admin=(stored["admin"].encode(),),
                   viewer=(stored["viewer"].encode(),), viewer_generated=added)


def _generate(path: Path) -> ApiKeys:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = {"bot": "bot_" + secrets.token_urlsafe(24), "admin": "adm_" + secrets.token_urlsafe(24),
            "viewer": "view_" + secrets.token_urlsafe(24)}
    # O_EXCL: two processes starting together cannot both generate; 0600: owner only.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _stored(path)
    with os.fdopen(fd, "w") as fh:
        json.dump(keys, fh)
    return ApiKeys(bot=(keys["bot"].encode(),), admin=(keys["admin"].encode(),),
                   viewer=(keys["viewer"].encode(),), generated=True)
