"""The project's own database exceptions; psycopg errors never leave ``backend.db``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg


class DatabaseError(Exception):
    """Base class for every database failure the service can see."""


class DatabaseUnavailable(DatabaseError):
    """The server cannot be reached (down, bad URL, pool exhausted)."""


class NotFound(DatabaseError):
    """A row that was asked for by key does not exist."""


class Conflict(DatabaseError):
    """A uniqueness or state rule was broken (e.g. two active models of one name)."""


class InvalidData(DatabaseError):
    """A CHECK, NOT NULL or foreign-key constraint rejected the data."""


class MigrationError(DatabaseError):
    """The migration file failed to apply; the transaction was rolled back."""


@contextmanager
def translate() -> Iterator[None]:
    """Turn psycopg exceptions raised inside the block into the project's own."""
    try:
        yield
    except DatabaseError:
        raise
    except pg.UniqueViolation as exc:
        raise Conflict(_message(exc)) from exc
    except (pg.CheckViolation, pg.NotNullViolation, pg.ForeignKeyViolation,
            psycopg.DataError) as exc:  # DataError: bad values, e.g. NUL in text
        raise InvalidData(_message(exc)) from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(_message(exc)) from exc
    except psycopg.Error as exc:
        raise DatabaseError(_message(exc)) from exc
    except Exception as exc:  # psycopg_pool.PoolTimeout is not a psycopg.Error
        if type(exc).__name__ in {"PoolTimeout", "PoolClosed", "TooManyRequests"}:
            raise DatabaseUnavailable(str(exc)) from exc
        raise


def _message(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    detail = diag.message_detail if diag is not None else None
    text = primary or str(exc).strip()
    return f"{text} ({detail})" if detail else text
