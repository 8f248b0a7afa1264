"""The database rejects bad rows; backend.db turns that into InvalidData / Conflict."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from backend.db import models, position_exits
from backend.db.errors import Conflict, InvalidData, NotFound, translate
from tests.utils.db_factories import (
    T0,
    exit_row,
    feature_row,
    make_model,
    prediction_row,
    store_features,
    store_predictions,
)


def _count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM public.{table}").fetchone()[0]


def test_probability_above_one_is_invalid(conn: psycopg.Connection) -> None:
    model = make_model(conn)
    good, bad = prediction_row(model.id), prediction_row(model.id, probability=1.5)

    with pytest.raises(InvalidData, match="ml_predictions_probability_check"):
        store_predictions(conn, [good, bad])

    assert _count(conn, "ml_predictions") == 0  # the batch is all or nothing


def test_unknown_side_is_invalid(conn: psycopg.Connection) -> None:
    with pytest.raises(InvalidData, match="side_check"):
        store_features(conn, [feature_row(side="up")])
    assert _count(conn, "ml_trade_features") == 0


def test_unknown_exit_reason_is_invalid(conn: psycopg.Connection) -> None:
    with pytest.raises(InvalidData, match="exit_reason_check"):
        position_exits.insert(conn, exit_row(exit_reason="got_bored"))


def test_exit_before_entry_is_invalid(conn: psycopg.Connection) -> None:
    with pytest.raises(InvalidData, match="position_exits_check"):
        position_exits.insert(conn, exit_row(entry_time=T0, exit_time=T0 - timedelta(hours=1)))


@pytest.mark.parametrize("field", ["entry_price", "exit_price"])
@pytest.mark.parametrize("price", [0.0, -1.0])
def test_non_positive_price_is_invalid(conn: psycopg.Connection, field: str,
                                       price: float) -> None:
    with pytest.raises(InvalidData, match=f"{field}_check"):
        position_exits.insert(conn, exit_row(**{field: price}))
    assert _count(conn, "position_exits") == 0


def test_two_active_models_of_one_name_conflict(conn: psycopg.Connection) -> None:
    a = make_model(conn, name="default", activate=True)
    b = make_model(conn, name="default")

    # bypassing models.activate (which retires A first): the database itself refuses
    with pytest.raises(Conflict, match="ml_models_one_active_per_name"), translate():
        conn.execute("UPDATE public.ml_models SET status = 'active' WHERE id = %s", (b.id,))

    assert models.get(conn, model_id=a.id).status == "active"
    assert models.get(conn, model_id=b.id).status == "candidate"


def test_artifact_checksum_must_match(conn: psycopg.Connection) -> None:
    with pytest.raises(InvalidData, match="artifact_sha256"):
        make_model(conn, artifact_sha256="0" * 64)
    with pytest.raises(InvalidData, match="artifact_format_check"):
        make_model(conn, artifact_format="pickle")
    assert _count(conn, "ml_models") == 0


def test_prediction_of_unknown_model_is_invalid(conn: psycopg.Connection) -> None:
    with pytest.raises(InvalidData, match="foreign key"):
        store_predictions(conn, [prediction_row(12345)])


def test_missing_rows_raise_not_found(conn: psycopg.Connection) -> None:
    with pytest.raises(NotFound, match="model_id"):
        models.get(conn, model_id=999)
    with pytest.raises(NotFound, match="model_id"):
        models.activate(conn, model_id=999, activated_by="test")
