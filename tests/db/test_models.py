"""ml_models through backend.db.models: versions, listing, activation and its NOTIFY."""

from __future__ import annotations

import hashlib
import json
import threading

import psycopg
import pytest

from backend.db import models
from tests.utils.db_factories import make_model


def test_round_trip_and_versions_per_name(conn: psycopg.Connection) -> None:
    artifact = bytes(range(256)) * 4  # binary content survives bytea unchanged
    first = make_model(conn, name="default", artifact=artifact, notes="first",
                       training_distribution={"rsi_14": {"edges": [0, 50, 100],
                                                         "proportions": [0.4, 0.6]}})
    second = make_model(conn, name="default")
    other = make_model(conn, name="lightgbm-a", algorithm="lightgbm",
                       artifact_format="lightgbm-text")

    assert (first.version, second.version, other.version) == (1, 2, 1)
    stored = models.get(conn, model_id=first.id)
    assert stored == first
    assert stored.artifact == artifact
    assert stored.artifact_sha256 == hashlib.sha256(artifact).hexdigest()
    assert stored.training_distribution["rsi_14"]["proportions"] == [0.4, 0.6]
    assert (stored.status, stored.notes, stored.activated_at) == ("candidate", "first", None)


def test_concurrent_inserts_get_distinct_versions(db_url: str) -> None:
    versions: list[int] = []
    errors: list[Exception] = []

    def register() -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as c:
                versions.append(make_model(c, name="race").version)
        except Exception as exc:  # collected: a thread's exception would be lost
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sorted(versions) == [1, 2, 3, 4]


def test_list_models_filters_pages_and_counts(conn: psycopg.Connection) -> None:
    a1 = make_model(conn, name="a")
    a2 = make_model(conn, name="a", activate=True)
    b1 = make_model(conn, name="b")

    page, total = models.list_models(conn)
    assert total == 3 and [m.id for m in page] == [b1.id, a2.id, a1.id]  # newest first
    assert not hasattr(page[0], "artifact")

    page, total = models.list_models(conn, name="a", limit=1, offset=1)
    assert total == 2 and [m.id for m in page] == [a1.id]
    page, total = models.list_models(conn, status="active")
    assert total == 1 and [m.id for m in page] == [a2.id]
    page, total = models.list_models(conn, name="b", status="active")
    assert (page, total) == ([], 0)


def test_activate_retires_the_previous_and_notifies(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn, \
            psycopg.connect(db_url, autocommit=True) as listener:
        a = make_model(conn, name="default")
        b = make_model(conn, name="default")
        models.activate(conn, model_id=a.id, activated_by="ops")
        listener.execute("LISTEN ml_model_activated")

        active = models.activate(conn, model_id=b.id, activated_by="api:admin")

        notes = list(listener.notifies(timeout=5, stop_after=1))
        assert [json.loads(n.payload) for n in notes] == [
            {"id": b.id, "name": "default", "version": 2}]
        assert (active.id, active.status, active.activated_by) == (b.id, "active", "api:admin")
        assert active.activated_at is not None
        assert models.get(conn, model_id=a.id).status == "retired"
        assert models.get_active(conn, name="default") == active
        assert models.get_active(conn, name="nobody") is None

        # activating the active model again changes nothing and sends no notification
        assert models.activate(conn, model_id=b.id, activated_by="again") == active
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []


def test_no_notification_for_a_rolled_back_activation(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn, \
            psycopg.connect(db_url, autocommit=True) as listener:
        model = make_model(conn)
        listener.execute("LISTEN ml_model_activated")

        with pytest.raises(RuntimeError), conn.transaction():
            models.activate(conn, model_id=model.id, activated_by="ops")
            raise RuntimeError("the caller fails after activating")

        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []
        assert models.get(conn, model_id=model.id).status == "candidate"


def test_concurrent_activations_leave_exactly_one_active(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        ids = [make_model(conn, name="default").id for _ in range(4)]
    errors: list[Exception] = []

    def activate(model_id: int) -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as c:
                models.activate(c, model_id=model_id, activated_by="race")
        except Exception as exc:  # collected: a thread's exception would be lost
            errors.append(exc)

    threads = [threading.Thread(target=activate, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    with psycopg.connect(db_url) as conn:
        statuses = [r[0] for r in conn.execute(
            "SELECT status FROM ml_models ORDER BY id").fetchall()]
    assert sorted(statuses) == ["active", "retired", "retired", "retired"]

