"""API keys: two scopes (bot, admin), constant-time comparison, never logged.

Keys come from TML_BOT_API_KEYS / TML_ADMIN_API_KEYS (comma-separated). When neither is set,
one key of each scope is generated at first start and kept (mode 0600) in
``data_dir/api_keys.json``, so the service never runs open.
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

Scope = Literal["bot", "admin"]
KEY_FILE = "api_keys.json"
API_KEY_HEADER = "X-API-Key"
_HEADER_RAW = API_KEY_HEADER.lower().encode()  # ASGI header names are lower-case bytes


@dataclass(frozen=True)
class ApiKeys:
    bot: tuple[bytes, ...]
    admin: tuple[bytes, ...]
    generated: bool = False  # True only in the process that created the key file

    def scope_of(self, presented: str | None) -> Scope | None:
        """The scope of a presented key, or None. Compares against every key in constant
        time so the response time does not reveal which key (or prefix) matched."""
        if not presented:
            return None
        raw = presented.encode()
        is_admin = False
        is_bot = False
        for key in self.admin:
            is_admin |= hmac.compare_digest(raw, key)
        for key in self.bot:
            is_bot |= hmac.compare_digest(raw, key)
        return "admin" if is_admin else "bot" if is_bot else None


def authenticate(keys: ApiKeys, presented: str | None, needed: Scope) -> Scope:
    """The scope of ``presented``; HTTPException 401 (no or unknown key) or 403 (an admin
    route and a bot key). The one key check of the dependencies and the fast path."""
    scope = keys.scope_of(presented)
    if scope is None:
        raise HTTPException(401, f"missing or unknown API key (header {API_KEY_HEADER})",
                            headers={"WWW-Authenticate": "ApiKey"})
    if needed == "admin" and scope != "admin":
        raise HTTPException(403, "this route needs an admin key")
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
    if bot or admin:
        return ApiKeys(bot=bot, admin=admin)
    path = settings.data_dir / KEY_FILE
    if path.exists():
        stored = json.loads(path.read_text())
        return ApiKeys(bot=(stored["bot"].encode(),), admin=(stored["admin"].encode(),))
    return _generate(path)


def _generate(path: Path) -> ApiKeys:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = {"bot": "bot_" + secrets.token_urlsafe(24), "admin": "adm_" + secrets.token_urlsafe(24)}
    # O_EXCL: two processes starting together cannot both generate; 0600: owner only.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        stored = json.loads(path.read_text())
        return ApiKeys(bot=(stored["bot"].encode(),), admin=(stored["admin"].encode(),))
    with os.fdopen(fd, "w") as fh:
        json.dump(keys, fh)
    return ApiKeys(bot=(keys["bot"].encode(),), admin=(keys["admin"].encode(),), generated=True)
