"""Apply backend/supabase_migration_ml_tables.sql: one transaction, idempotent, recorded.

Run from the repository root::

    python backend/apply_ml_migration.py                 # DATABASE_URL, else embedded server
    python backend/apply_ml_migration.py --status        # exit 0 only when applied, unchanged
    python backend/apply_ml_migration.py --dry-run       # print what would run, change nothing
    python backend/apply_ml_migration.py --export-supabase DIR   # Supabase CLI layout

The whole file runs in ONE transaction under a transaction-level advisory lock, so replicas
that start at once apply it one after the other (the later ones see it recorded and do
nothing) and a failure anywhere leaves the database exactly as it was. The applied version
and the file's sha256 go to ``public.ml_schema_migrations`` and, on Supabase, also to
``supabase_migrations.schema_migrations`` so that ``supabase db push`` sees it as applied.
No server-side prepared statements are used, so Supabase's transaction pooler works too.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as `python backend/apply_ml_migration.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg import sql

from backend.db.errors import (
    DatabaseError,
    DatabaseUnavailable,
    MigrationError,
    translate,
)
from backend.db.schema_migrations import (  # noqa: F401 - is_applied: part of this script's API
    MIGRATION_NAME,
    MIGRATION_VERSION,
    is_applied,
    recorded_checksum,
)
from backend.redact import install as install_redaction
from backend.redact import percent_encoding_hint, redact, redact_url, url_password

log = logging.getLogger(__name__)

DEFAULT_SQL_PATH = Path(__file__).resolve().parent / "supabase_migration_ml_tables.sql"

# One key for every process applying this migration (hashtextextended is stable across
# servers and versions, so any replica computes the same lock).
LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended('backend.apply_ml_migration', 0))"
RECORD_SQL = """
INSERT INTO public.ml_schema_migrations (version, name, checksum)
VALUES (%s, %s, %s)
ON CONFLICT (version) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()
"""
SUPABASE_COLUMNS_SQL = """
SELECT column_name FROM information_schema.columns
WHERE table_schema = 'supabase_migrations' AND table_name = 'schema_migrations'
"""


@dataclass(frozen=True)
class MigrationResult:
    applied: bool  # False: the same version and checksum were already recorded (no-op)
    version: str
    checksum: str
    message: str


@dataclass(frozen=True)
class MigrationStatus:
    applied: bool
    version: str
    recorded_checksum: str | None
    file_checksum: str
    changed: bool  # applied, but the file differs from what was applied


def file_checksum(sql_path: Path | None = None) -> str:
    return hashlib.sha256((sql_path or DEFAULT_SQL_PATH).read_bytes()).hexdigest()


def migration_status(url: str, *, sql_path: Path | None = None) -> MigrationStatus:
    checksum = file_checksum(sql_path)
    with _connect(url) as conn, translate():
        recorded = recorded_checksum(conn)
    return MigrationStatus(
        applied=recorded is not None,
        version=MIGRATION_VERSION,
        recorded_checksum=recorded,
        file_checksum=checksum,
        changed=recorded is not None and recorded != checksum,
    )


def apply_migration(url: str, *, sql_path: Path | None = None) -> MigrationResult:
    """Apply the migration file in one transaction; a no-op when already applied unchanged.

    Raises MigrationError (SQL failure, with the line of the file) or DatabaseUnavailable;
    in both cases nothing was changed.
    """
    path = sql_path or DEFAULT_SQL_PATH
    text = path.read_text(encoding="utf-8")
    checksum = hashlib.sha256(path.read_bytes()).hexdigest()
    with _connect(url) as conn:
        try:
            with conn.transaction():
                conn.execute(LOCK_SQL)
                # read after the lock: a replica that waited sees what the first one recorded
                recorded = recorded_checksum(conn)
                if recorded == checksum:
                    return MigrationResult(False, MIGRATION_VERSION, checksum,
                                           f"migration {MIGRATION_VERSION} already applied")
                _execute_file(conn, text, path)
                conn.execute(RECORD_SQL, (MIGRATION_VERSION, MIGRATION_NAME, checksum))
                _record_for_supabase(conn, text)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(_clean(str(exc), url)) from exc
        except psycopg.Error as exc:
            raise MigrationError(_clean(str(exc), url)) from exc
    if recorded is None:
        return MigrationResult(True, MIGRATION_VERSION, checksum,
                               f"migration {MIGRATION_VERSION} applied")
    message = (f"migration {MIGRATION_VERSION} re-applied: the file changed since it was "
               f"applied (checksum {recorded[:12]}... -> {checksum[:12]}...)")
    log.warning(message)
    return MigrationResult(True, MIGRATION_VERSION, checksum, message)


def _connect(url: str) -> psycopg.Connection:
    # autocommit: the transaction is opened explicitly; prepare_threshold=None: no prepared
    # statements, so pgbouncer/Supavisor in transaction mode is fine.
    with translate():
        try:
            return psycopg.connect(url, autocommit=True, prepare_threshold=None,
                                   connect_timeout=10)
        except psycopg.ProgrammingError as exc:  # malformed conninfo
            raise DatabaseUnavailable(_clean(f"invalid database URL: {exc}", url)) from exc
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(_clean(str(exc).strip(), url)) from exc


def _execute_file(conn: psycopg.Connection, text: str, path: Path) -> None:
    """Run the file statement by statement (inside the caller's transaction).

    One statement at a time so that a failure names its line in the file: Postgres gives no
    position for many errors (a runtime error, a bad column in CREATE INDEX...).
    """
    for offset, statement in split_statements(text):
        try:
            conn.execute(statement)  # no parameters: sent as a simple-protocol query
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) and conn.broken:
                raise
            where = _line_col(text, offset, statement, exc)
            raise MigrationError(f"{path.name}:{where}: {_diag(exc)}") from exc


# Tokens that may contain a ';' that does not end a statement, and the ';' that does.
_SQL_TOKEN = re.compile(r"""
      --[^\n]*                 # line comment
    | /\*.*?\*/                # block comment
    | '(?:[^']|'')*'           # string literal
    | "(?:[^"]|"")*"           # quoted identifier
    | (\$[A-Za-z_]*\$).*?\1    # dollar-quoted body (functions, DO blocks)
    | ;
""", re.S | re.X)
_COMMENT_OR_SPACE = re.compile(r"\s+|--[^\n]*|/\*.*?\*/", re.S)
_LEADING = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.S)


def split_statements(text: str) -> list[tuple[int, str]]:
    """(offset in text, statement) for each statement; comment-only chunks are dropped."""
    bounds, start = [], 0
    for m in _SQL_TOKEN.finditer(text):
        if m.group() == ";":
            bounds.append((start, m.end()))
            start = m.end()
    bounds.append((start, len(text)))
    return [(a, text[a:b]) for a, b in bounds
            if _COMMENT_OR_SPACE.sub("", text[a:b]).strip(";")]


def _line_col(text: str, offset: int, statement: str, exc: psycopg.Error) -> str:
    """line:column in the file of the error (or of the statement's first SQL line)."""
    pos = exc.diag.statement_position if exc.diag else None
    if pos and pos.isdigit():  # 1-based character position within the statement
        at = offset + int(pos) - 1
    else:
        at = offset + _LEADING.match(statement).end()
    line = text.count("\n", 0, at) + 1
    return f"{line}:{at - text.rfind(chr(10), 0, at)}"


def _diag(exc: psycopg.Error) -> str:
    diag = exc.diag
    parts = [diag.message_primary or str(exc).strip()]
    if diag.sqlstate:
        parts[0] = f"{parts[0]} [SQLSTATE {diag.sqlstate}]"
    if diag.message_detail:
        parts.append(f"detail: {diag.message_detail}")
    if diag.context:
        parts.append(f"context: {' / '.join(diag.context.strip().splitlines())}")
    return "; ".join(parts)


def _record_for_supabase(conn: psycopg.Connection, text: str) -> None:
    """On Supabase, mark the version applied for the CLI (columns differ between versions)."""
    columns = {r[0] for r in conn.execute(SUPABASE_COLUMNS_SQL).fetchall()}
    if "version" not in columns:
        return
    values: dict[str, object] = {"version": MIGRATION_VERSION}
    if "name" in columns:
        values["name"] = MIGRATION_NAME
    if "statements" in columns:
        values["statements"] = [text]
    stmt = sql.SQL(
        "INSERT INTO supabase_migrations.schema_migrations ({}) VALUES ({}) "
        "ON CONFLICT DO NOTHING"
    ).format(sql.SQL(", ").join(map(sql.Identifier, values)),
             sql.SQL(", ").join(sql.Placeholder() * len(values)))
    conn.execute(stmt, list(values.values()))


# ---- secrets never reach the output (backend/redact.py) ----------------------------------
def _clean(message: str, url: str) -> str:
    """The message with the URL's password (and any piece of it) masked, wherever it
    appears."""
    return redact(message, url)


def describe_target(url: str) -> str:
    """host/port/database/user of a URL, without the password. Parsed after masking: a
    password with an unencoded '@' or '#' would otherwise be read as part of the host."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(redact_url(url))
    except psycopg.ProgrammingError:
        return _clean(redact_url(url), url)
    host = info.get("host") or "localhost"
    shown = f"host={host} port={info.get('port') or 5432} dbname={info.get('dbname') or '?'}"
    shown += f" user={info.get('user') or '?'}"
    return shown + (" password=***" if url_password(url) else "")


# ---- Supabase CLI layout -----------------------------------------------------------------
def export_supabase(directory: Path, *, sql_path: Path | None = None) -> Path:
    """Write ``directory/supabase/migrations/<MIGRATION_VERSION>_ml_tables.sql`` for
    ``supabase db push``: the migration's SQL unchanged, then the record in
    ``ml_schema_migrations`` this script would write (with the source file's sha256), so a
    service started afterwards sees it applied. The prefix is MIGRATION_VERSION, the 14-digit
    UTC timestamp this script also records in ``supabase_migrations.schema_migrations``:
    whichever way it was applied, the other one sees it as done."""
    path = sql_path or DEFAULT_SQL_PATH
    target = directory / "supabase" / "migrations" / f"{MIGRATION_VERSION}_{MIGRATION_NAME}.sql"
    target.parent.mkdir(parents=True, exist_ok=True)
    record = RECORD_SQL.strip().replace("%s", "'{}'").format(
        MIGRATION_VERSION, MIGRATION_NAME, file_checksum(path))
    text = path.read_text(encoding="utf-8").rstrip("\n")
    target.write_text(f"{text}\n\n-- recorded as applied (backend/apply_ml_migration.py "
                      f"--export-supabase)\n{record};\n", encoding="utf-8")
    return target


# ---- command line ------------------------------------------------------------------------
def _default_url() -> tuple[str | None, str]:
    """(url or None when the embedded server would be used, description of the target)."""
    url = os.environ.get("DATABASE_URL") or os.environ.get("TML_DATABASE_URL")
    if url:
        return url, describe_target(url)
    from backend.config import Settings

    return None, f"embedded PostgreSQL in {Settings().pg_data_dir.resolve()}"


def _resolve_url(url: str | None) -> str:
    if url is not None:
        return url
    from backend.config import Settings
    from backend.db.pool import database_url

    return database_url(Settings())


def _dry_run(target: str, sql_path: Path) -> int:
    text = sql_path.read_text(encoding="utf-8")
    print(f"-- dry run: nothing is executed. target: {target}")
    print(f"-- migration {MIGRATION_VERSION}_{MIGRATION_NAME} from {sql_path}")
    print(f"-- sha256 {file_checksum(sql_path)}")
    print("BEGIN;")
    print(f"{LOCK_SQL};")
    print(text.rstrip())
    print(f"INSERT INTO public.ml_schema_migrations (version, name, checksum) VALUES "
          f"('{MIGRATION_VERSION}', '{MIGRATION_NAME}', '{file_checksum(sql_path)}') "
          "ON CONFLICT (version) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now();")
    print("-- on Supabase also: INSERT INTO supabase_migrations.schema_migrations "
          f"(version, name, statements) VALUES ('{MIGRATION_VERSION}', '{MIGRATION_NAME}', ...) "
          "ON CONFLICT DO NOTHING;")
    print("COMMIT;")
    return 0


def _status(url: str, target: str, sql_path: Path) -> int:
    st = migration_status(url, sql_path=sql_path)
    if not st.applied:
        print(f"migration {st.version}: NOT applied ({target})")
        return 1
    print(f"migration {st.version}: applied ({target}), checksum {st.recorded_checksum}")
    if st.changed:
        print(f"WARNING: {sql_path.name} changed since it was applied (file checksum "
              f"{st.file_checksum}); run the script again to re-apply it", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    from backend.cli_help import HelpFormatter

    parser = argparse.ArgumentParser(
        prog="apply_ml_migration", formatter_class=HelpFormatter,
        description="Apply the trading-ML schema (idempotent, one transaction).",
    )
    parser.add_argument("--database-url",
                        help="Postgres URL; percent-encode special characters of the "
                             "password (default: $DATABASE_URL, else the embedded server)")
    parser.add_argument("--file", type=Path, default=DEFAULT_SQL_PATH,
                        help="migration SQL file (default: %(default)s)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--dry-run", action="store_true",
                       help="print the SQL that would run and the target; change nothing")
    group.add_argument("--status", action="store_true",
                       help="exit 0 when applied and unchanged, 1 otherwise")
    group.add_argument("--export-supabase", type=Path, metavar="DIR", default=None,
                       help="write DIR/supabase/migrations/<UTC timestamp>_ml_tables.sql for "
                            "`supabase db push`; no database is touched (default: apply)")
    args = parser.parse_args(argv)
    if args.export_supabase is not None:
        if not args.file.is_file():
            print(f"error: migration file not found: {args.file}", file=sys.stderr)
            return 2
        print(f"wrote {export_supabase(args.export_supabase, sql_path=args.file)}")
        return 0
    install_redaction(args.database_url)  # log records too (psycopg quotes the conninfo)

    url, target = ((args.database_url, describe_target(args.database_url))
                   if args.database_url else _default_url())
    try:
        if not args.file.is_file():
            print(f"error: migration file not found: {args.file}", file=sys.stderr)
            return 2
        if args.dry_run:
            return _dry_run(target, args.file)
        resolved = _resolve_url(url)
        if args.status:
            return _status(resolved, target, args.file)
        result = apply_migration(resolved, sql_path=args.file)
    except DatabaseError as exc:
        message = " ".join(_clean(str(exc), url or "").split())  # one line
        hint = percent_encoding_hint(url or "")
        print(f"error: {type(exc).__name__}: {message} ({target})"
              + (f"; {hint}" if hint else ""), file=sys.stderr)
        return 2
    print(f"{result.message} ({target}); checksum {result.checksum}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
