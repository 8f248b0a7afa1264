"""The jsonb query parameter shared by the per-table modules.

(The write-behind's bulk inserts are one JSON array per batch, unpacked by Postgres with
jsonb_to_recordset: ``insert_json`` in trade_features and predictions.)
"""

from __future__ import annotations

from typing import Any

import orjson
from psycopg.types.json import Jsonb

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _dumps(value: Any) -> str:
    # JSON has no NaN/inf and Postgres rejects them; orjson writes them as null (= missing).
    return orjson.dumps(value, option=_JSON_OPTIONS).decode()


def jsonb_param(value: Any) -> Jsonb | None:
    """A jsonb query parameter (None stays SQL NULL); non-finite floats become null."""
    return None if value is None else Jsonb(value, dumps=_dumps)
