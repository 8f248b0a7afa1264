"""ml_performance through backend.db.performance: idempotent upsert, filtered reads."""

from __future__ import annotations

from datetime import date

import psycopg

from backend.db import performance
from tests.utils.db_factories import make_model, performance_row


def test_upsert_is_idempotent_and_overwrites_the_day(conn: psycopg.Connection) -> None:
    model = make_model(conn)
    day = performance_row(model.id, date=date(2026, 1, 5), accuracy=0.5, drift={"rsi_14": 0.1})

    assert performance.upsert_many(conn, [day]) == 1
    assert performance.upsert_many(conn, [day]) == 1
    (first,) = performance.list_performance(conn, model_id=model.id)
    day.accuracy, day.n_resolved, day.drift = 0.75, 9, {"rsi_14": 0.3}
    performance.upsert_many(conn, [day])

    (stored,) = performance.list_performance(conn, model_id=model.id)
    assert (stored.accuracy, stored.n_resolved, stored.drift) == (0.75, 9, {"rsi_14": 0.3})
    assert stored.id == first.id and stored.updated_at >= first.updated_at
    for name in ("n_predictions", "n_taken", "precision", "base_rate", "drift_psi", "recall"):
        assert getattr(stored, name) == getattr(day, name), name


def test_list_by_model_and_since_in_date_order(conn: psycopg.Connection) -> None:
    a, b = make_model(conn, name="a"), make_model(conn, name="b")
    performance.upsert_many(conn, [
        performance_row(a.id, date=date(2026, 1, 7)),
        performance_row(a.id, date=date(2026, 1, 5)),
        performance_row(b.id, date=date(2026, 1, 6)),
    ])

    assert [r.date.day for r in performance.list_performance(conn, model_id=a.id)] == [5, 7]
    since = performance.list_performance(conn, since=date(2026, 1, 6))
    assert [(r.date.day, r.model_id) for r in since] == [(6, b.id), (7, a.id)]
    assert performance.upsert_many(conn, []) == 0
