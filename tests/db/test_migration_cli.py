"""The command line: failures change nothing and say why; --dry-run; --status; exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from backend.apply_ml_migration import DEFAULT_SQL_PATH, MIGRATION_VERSION, main

REPO_ROOT = Path(__file__).resolve().parents[2]


def _public_relations(url: str) -> list[str]:
    with psycopg.connect(url) as c:
        return [r[0] for r in c.execute(
            "SELECT relname FROM pg_class JOIN pg_namespace n ON n.oid = relnamespace "
            "WHERE n.nspname = 'public'")]


def _broken_copy(tmp_path: Path) -> tuple[Path, int]:
    """The migration file with a failing statement inserted half-way (after the tables)."""
    lines = DEFAULT_SQL_PATH.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("-- Indexes."))
    lines.insert(at, "SELECT * FROM no_such_table;\n")
    broken = tmp_path / "broken.sql"
    broken.write_text("".join(lines))
    return broken, at + 1  # 1-based line of the bad statement


def test_a_file_broken_half_way_changes_nothing(empty_db_url: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    broken, bad_line = _broken_copy(tmp_path)

    code = main(["--database-url", empty_db_url, "--file", str(broken)])

    err = capsys.readouterr().err
    assert code == 2
    assert 'relation "no_such_table" does not exist' in err
    assert f"broken.sql:{bad_line}:" in err  # the line of the file, not of the transaction
    assert _public_relations(empty_db_url) == []  # the tables before it were rolled back


def test_bad_url_exits_2_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--database-url", "definitely not a url"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: DatabaseUnavailable: invalid database URL")
    assert err.count("\n") == 1


def test_unreachable_server_exits_2_without_printing_the_password(
        capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://ops:s3cr3t-pw@127.0.0.1:1/postgres"

    code = main(["--database-url", url])

    out, err = capsys.readouterr()
    assert code == 2
    assert "DatabaseUnavailable" in err and "port 1 failed" in err
    assert "s3cr3t-pw" not in out + err


def test_dry_run_prints_the_sql_and_changes_nothing(empty_db_url: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    url = psycopg.conninfo.make_conninfo(empty_db_url, password="hunter2-secret")

    code = main(["--database-url", url, "--dry-run"])

    out = capsys.readouterr().out
    assert code == 0
    assert "CREATE TABLE IF NOT EXISTS public.ml_models" in out
    assert "BEGIN;" in out and out.rstrip().endswith("COMMIT;")
    assert "password=***" in out and "hunter2-secret" not in out
    assert _public_relations(empty_db_url) == []


def test_status_before_after_and_after_a_file_change(empty_db_url: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", empty_db_url, "--status"]) == 1
    assert "NOT applied" in capsys.readouterr().out

    assert main(["--database-url", empty_db_url]) == 0
    assert f"migration {MIGRATION_VERSION} applied" in capsys.readouterr().out

    assert main(["--database-url", empty_db_url, "--status"]) == 0
    out, err = capsys.readouterr()
    assert f"migration {MIGRATION_VERSION}: applied" in out and err == ""

    edited = tmp_path / "edited.sql"
    edited.write_text(DEFAULT_SQL_PATH.read_text() + "\n-- edited\n")
    assert main(["--database-url", empty_db_url, "--status", "--file", str(edited)]) == 1
    assert "WARNING: edited.sql changed since it was applied" in capsys.readouterr().err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--database-url", "postgresql://localhost/x", "--file",
                 str(tmp_path / "absent.sql")])

    assert code == 2
    assert "migration file not found" in capsys.readouterr().err


def test_runs_as_a_script_from_the_repo_root(db_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "backend/apply_ml_migration.py", "--database-url", db_url, "--status"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)

    assert proc.returncode == 0, proc.stderr
    assert f"migration {MIGRATION_VERSION}: applied" in proc.stdout


# Passwords that URL parsers split (issue 12, item 14): (URL on a closed port, pieces that
# must never be printed: the password and what libpq takes for the host).
LEAKY_URLS = [
    ("postgresql://u:sec ret@127.0.0.1:1/db", ["sec ret"]),
    ("postgresql://u:p@ss#word@127.0.0.1:1/db", ["p@ss#word", "ss#word@", "'#word"]),
    ("postgresql://u:xa@b@127.0.0.1:1/db?sslmode=disable", ["xa@b", "'b@", "=b@"]),
    ("postgresql://u:pl41n-s3cret@127.0.0.1:1/db", ["pl41n-s3cret"]),
]


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin", **(env or {})})


@pytest.mark.parametrize("url, secrets", LEAKY_URLS)
def test_the_cli_never_prints_a_password_whatever_it_holds(url: str, secrets: list[str]):
    script = "backend/apply_ml_migration.py"
    runs = [(_run([script, "--database-url", url, *mode]), code)
            for mode, code in (([], 2), (["--status"], 2), (["--dry-run"], 0))]
    runs.append((_run(["-m", "backend", "migrate", "--database-url", url]), 2))
    runs.append((_run([script, "--status"], env={"DATABASE_URL": url}), 2))
    for done, code in runs:
        out = done.stdout + done.stderr
        assert done.returncode == code, out
        assert "host=127.0.0.1 port=1 dbname=db user=u password=***" in out  # the real host
        for secret in secrets:
            assert secret not in out, (secret, out)
        if code == 2:
            assert out.startswith("error: DatabaseUnavailable: ")
    if " " in url or "#" in url:
        assert "percent-encode the password's special characters" in runs[0][0].stderr


@pytest.mark.parametrize("url, secrets", LEAKY_URLS[:3])
def test_the_service_cli_prints_no_password_either(url: str, secrets: list[str],
                                                   tmp_path: Path):
    done = _run(["-m", "backend", "track"], env={"DATABASE_URL": url,
                                                 "TML_DATA_DIR": str(tmp_path)})
    out = done.stdout + done.stderr
    assert done.returncode == 2 and "error: " in out, out
    for secret in secrets:
        assert secret not in out, (secret, out)
