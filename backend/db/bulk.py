"""The bulk insert path shared by the per-table modules, and the jsonb parameter helper.

COPY into a temporary, constraint-free copy of the columns, then one INSERT ... SELECT that
checks every constraint and skips rows whose key is already stored: fast (one round trip of
COPY data) and idempotent (a replayed batch inserts nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from backend.db.errors import translate

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _dumps(value: Any) -> str:
    # JSON has no NaN/inf and Postgres rejects them; orjson writes them as null (= missing).
    return orjson.dumps(value, option=_JSON_OPTIONS).decode()


def jsonb_param(value: Any) -> Jsonb | None:
    """A jsonb query parameter (None stays SQL NULL); non-finite floats become null."""
    return None if value is None else Jsonb(value, dumps=_dumps)


@dataclass(frozen=True)
class StagedInsert:
    """The four statements of a staged COPY insert into ``public.<table>``."""

    create: str
    copy: str
    insert: str
    drop: str

    @classmethod
    def for_table(cls, table: str, columns: Sequence[str], *, conflict: str) -> StagedInsert:
        cols = ", ".join(columns)
        stage = f"_tml_stage_{table}"
        return cls(
            create=(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS "
                    f"SELECT {cols} FROM public.{table} WITH NO DATA"),
            copy=f"COPY {stage} ({cols}) FROM STDIN",
            insert=(f"INSERT INTO public.{table} ({cols}) SELECT {cols} FROM {stage} "
                    f"ON CONFLICT {conflict} DO NOTHING"),
            drop=f"DROP TABLE {stage}",
        )

    def run(self, conn: psycopg.Connection, rows: Iterable[tuple[Any, ...]]) -> int:
        """COPY ``rows`` in and insert the new ones; returns how many were inserted."""
        with translate(), conn.transaction(), conn.cursor() as cur:
            cur.execute(self.create)
            with cur.copy(self.copy) as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(self.insert)
            inserted = cur.rowcount
            cur.execute(self.drop)  # now, so a caller's outer transaction can call again
            return inserted
