"""JSON responses rendered by orjson (FastAPI's ORJSONResponse is deprecated)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


def render_json(content: Any) -> bytes:
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return render_json(content)


# OpenAPI descriptions of the error answers the bot-facing routes can give.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key"},
    413: {"description": "Body over the configured size"},
    422: {"description": "Invalid input: `detail[].loc` names the field, `msg` the reason"},
    503: {"description": "No active model yet, or the database is needed and unavailable"},
}
# the idempotency key (trade_id) already used with another payload
CONFLICT_RESPONSE: dict[int | str, dict[str, Any]] = {
    409: {"description": "The trade_id was used before with another payload: `detail` says "
                         "so and names the stored record's id"}}
