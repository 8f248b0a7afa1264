"""A start-up that fails after the writer has started leaves nothing behind: no writer
process, no journal lock, no open pool."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.config import Settings
from backend.db.journal import Journal
from backend.ml.candles import CandleError

pytestmark = pytest.mark.server  # starts the app (its lifespan and writer process)


def test_a_failed_bootstrap_stops_the_writer_process_and_releases_the_journal(
        db_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data",
                        bootstrap_on_start=True, bootstrap_candles=tmp_path / "missing.csv",
                        bot_api_keys="bot-key-0123456789", admin_api_keys="admin-key-0123456789")
    app = create_app(settings)
    with pytest.raises(CandleError, match="file not found"), TestClient(app):
        pass
    writer = app.state.writer
    assert writer._child is not None and writer._child.exitcode is not None  # ran, stopped
    assert not [p for p in multiprocessing.active_children() if p.name == "tml-writer"]
    assert app.state.pool.closed
    journal = Journal(settings.journal_dir)
    journal.open()  # the journal lock was released: a new writer may take it
    journal.close()
