"""backend/redact.py: passwords masked in URLs, conninfo strings, error texts and log
records, whatever characters they hold (issue 12, item 14)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend import redact as r

REPO = Path(__file__).resolve().parents[1]

# (url, its password as written, the URL masked)
URLS = [
    ("postgresql://u:s3cr3t@db.example:5432/x", "s3cr3t", "postgresql://u:***@db.example:5432/x"),
    ("postgresql://u:sec ret@host/db", "sec ret", "postgresql://u:***@host/db"),
    ("postgresql://u:p@ss#word@host/db", "p@ss#word", "postgresql://u:***@host/db"),
    ("postgres://u:a/b?c:d@h:6543/db?sslmode=require", "a/b?c:d",
     "postgres://u:***@h:6543/db?sslmode=require"),
    ("postgresql://u:p%40ss@h/db", "p%40ss", "postgresql://u:***@h/db"),
    ("postgresql://host/db?password=qu3ry-pw&sslmode=require", "qu3ry-pw",
     "postgresql://host/db?password=***&sslmode=require"),
    ("host=h user=u password='a b c' dbname=d", "a b c", "host=h user=u password=*** dbname=d"),
    ("host=h password=kv-pw dbname=d", "kv-pw", "host=h password=*** dbname=d"),
]


@pytest.mark.parametrize("url, password, masked", URLS)
def test_redact_url_masks_the_whole_password(url: str, password: str, masked: str) -> None:
    assert r.url_password(url) == password
    assert r.redact_url(url) == masked
    assert r.redact(f"could not connect to {url}!", url) == f"could not connect to {masked}!"


@pytest.mark.parametrize("url", ["postgresql://u@host/db", "postgresql://host/db",
                                 "postgresql:///db?host=/run/pg", "not a url"])
def test_urls_without_a_password_are_unchanged(url: str) -> None:
    assert r.url_password(url) is None
    assert r.redact_url(url) == url


def test_the_pieces_a_parser_split_off_are_masked_too() -> None:
    url = "postgresql://u:p@ss#word@127.0.0.1:1/db"
    # what libpq says of it: the host is everything after the first '@'
    text = "failed to resolve host 'ss#word@127.0.0.1': Name or service not known"
    assert r.redact(text, url) == "failed to resolve host '***@127.0.0.1': Name or service " \
                                  "not known"
    short = "postgresql://u:xa@b@127.0.0.1:1/db"  # a 1-letter tail, as libpq shows it
    assert r.redact("failed to resolve host 'b@127.0.0.1'", short) == \
        "failed to resolve host '***@127.0.0.1'"
    spaced = "postgresql://u:sec ret@h/db"
    assert r.redact('unexpected spaces found in "sec ret", use %20', spaced) == \
        'unexpected spaces found in "***", use %20'


def test_short_pieces_do_not_mask_ordinary_words() -> None:
    url = "postgresql://u:a#fail@h/db"
    assert r.redact("connection failed: a#fail rejected", url) == "connection failed: *** " \
                                                                  "rejected"


def test_urls_and_password_pairs_are_masked_in_any_text() -> None:
    text = "tried postgresql://x:leak-1@h/db and host=h password=leak-2 and ?password=leak-3"
    out = r.redact(text)
    assert "leak" not in out
    assert out == "tried postgresql://x:***@h/db and host=h password=*** and ?password=***"


def test_percent_encoding_hint_names_each_character() -> None:
    assert r.percent_encoding_hint("postgresql://u:p@ss#w rd@h/db") == (
        "percent-encode the password's special characters in the URL: ' ' as %20, "
        "'#' as %23, '@' as %40")
    assert r.percent_encoding_hint("postgresql://u:p%40ss@h/db") is None
    assert r.percent_encoding_hint("postgresql://u:100%@h/db") == (
        "percent-encode the password's special characters in the URL: '%' as %25")


def test_installed_redaction_masks_log_messages_and_tracebacks() -> None:
    """In a fresh interpreter: what the service and the writer process install."""
    script = """
import logging, sys
from backend import redact
logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(message)s")
redact.install("postgresql://u:p@ss#word@h/db")
log = logging.getLogger("psycopg.pool")
log.warning("error connecting in 'pool-1': failed to resolve host %r", "ss#word@h")
try:
    raise RuntimeError("connection to postgresql://u:p@ss#word@h/db failed")
except RuntimeError:
    log.exception("start-up failed")
logging.getLogger("x").warning("env %s", "env-pw-9")
logging.getLogger("x").warning("%s %s", "keeps", "args")
"""
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgresql://e:env-pw-9@h/db"}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True)
    out = done.stdout + done.stderr
    assert "ss#word" not in out and "env-pw-9" not in out
    assert "failed to resolve host '***@h'" in out
    assert "RuntimeError: connection to postgresql://u:***@h/db failed" in out
    assert "WARNING env ***" in out and "WARNING keeps args" in out


@pytest.mark.server  # starts the service
def test_the_service_and_its_writer_log_no_password(tmp_path: Path) -> None:
    """A URL whose password libpq splits: the server's and the writer process's connection
    errors (psycopg_pool's warnings) name the host without the password's tail."""
    from tests.utils.service import start_service

    url = "postgresql://u:p@ss#word@127.0.0.1:1/db"
    svc = start_service(db_url=url, data_dir=tmp_path / "svc", wait_ready=False,
                        env={"TML_DB_CONNECT_TIMEOUT": "1"}, timeout=120)
    try:
        with svc.client() as http:
            assert http.get("/ready").status_code == 503
        for _ in range(100):
            if "error connecting in 'tml-writer'" in svc.log():
                break
            time.sleep(0.2)
    finally:
        svc.stop()
    log = svc.log()
    assert "error connecting in 'tml-writer': failed to resolve host '***@127.0.0.1'" in log
    assert "migration not applied: failed to resolve host '***@127.0.0.1'" in log
    assert "ss#word" not in log and "p@ss" not in log
