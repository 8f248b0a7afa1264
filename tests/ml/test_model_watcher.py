"""The model watcher retries at once when woken (the readiness probe saw the database come
back), not at the end of its poll interval; and stored answers count as recalled only once
the database has answered."""

from __future__ import annotations

import threading
import time

from backend.api.answers import AnswerCache
from backend.db.errors import DatabaseUnavailable
from backend.ml.model_watcher import ModelWatcher
from tests.utils.service import free_port


def test_a_woken_watcher_refreshes_without_waiting_out_its_poll() -> None:
    refreshed = threading.Event()
    closed_port = free_port()  # nothing listens: every connect fails at once
    watcher = ModelWatcher(f"postgresql://nobody@127.0.0.1:{closed_port}/none",
                           poll_seconds=60, refresh=refreshed.set)
    watcher.start()
    try:
        time.sleep(0.5)  # the first connect has failed; the watcher waits its 60 s poll
        assert not refreshed.is_set()
        watcher.wake()
        assert refreshed.wait(5)  # long before the poll interval
    finally:
        watcher.stop()


def test_answers_count_as_recalled_only_once_the_database_answered() -> None:
    def unreachable():
        raise DatabaseUnavailable("database down")

    answers = AnswerCache(connect=unreachable, current_model=lambda: None)
    answers.ensure_recalled()
    assert not answers.recalled  # /ready stays "degraded": repeated trade_ids not known yet
