"""The /exits handlers' work called in-process (no server): recording an exit in one
transaction against a real PostgreSQL, and advice through the request schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
from pydantic import ValidationError

from backend.api.routes.exits import advise, store_exit
from backend.api.schemas.exits import ExitEvaluateRequest, ExitRecordRequest, ExitRecordResponse
from backend.db import position_exits, predictions, trade_features
from backend.db.errors import Conflict, InvalidData
from backend.db.position_exits import PositionExitRow
from backend.positions.service import exit_row
from tests.utils.db_factories import (
    by_trade,
    feature_row,
    make_model,
    prediction_row,
    store_features,
    store_predictions,
)
from tests.utils.market_slices import candles_columns, candles_rows
from tests.utils.paths import entry_time, with_history

T_ENTRY = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
T_EXIT = T_ENTRY + timedelta(hours=5)


def _report(trade_id: str, **kw) -> dict:
    body = {"trade_id": trade_id, "symbol": "EURUSD", "side": "long",
            "entry_time": T_ENTRY.isoformat(), "exit_time": T_EXIT.isoformat(),
            "entry_price": 1.1000, "exit_price": 1.1050, "quantity": 1000.0,
            "exit_reason": "trailing_stop", "initial_stop": 1.0980, "fees": 0.5,
            "policy_name": "combined", "policy_params": {"trail_atr": 2.0}}
    return {**body, **kw}


def record_exit(conn: psycopg.Connection, req: ExitRecordRequest
                ) -> tuple[PositionExitRow, bool]:
    """What POST /exits does with a validated report and a connection."""
    return store_exit(conn, exit_row(req))


def record_response(row: PositionExitRow, created: bool) -> ExitRecordResponse:
    return ExitRecordResponse.model_validate({**vars(row), "created": created})


def _snapshot(conn: psycopg.Connection) -> tuple:
    tables = ("position_exits", "ml_trade_features", "ml_predictions")
    return tuple(conn.execute(f"SELECT * FROM public.{t} ORDER BY 1").fetchall()
                 for t in tables)


@pytest.fixture
def signal(conn: psycopg.Connection) -> str:
    """A trade the bot asked about: its feature row and two models' predictions."""
    trade_id = "bot-T1"
    store_features(conn, [feature_row(trade_id=trade_id,
                                      signal_time=T_ENTRY - timedelta(hours=1))])
    m1, m2 = make_model(conn, name="a"), make_model(conn, name="b")
    store_predictions(conn, [prediction_row(m1.id, trade_id=trade_id),
                             prediction_row(m2.id, trade_id=trade_id)])
    return trade_id


def test_record_exit_labels_the_features_and_resolves_the_predictions(conn, signal):
    req = ExitRecordRequest.model_validate_json(orjson.dumps(_report(signal)))
    row, created = record_exit(conn, req)
    pnl = (1.1050 - 1.1000) * 1000.0 - 0.5  # side x move x quantity - fees
    assert created and row.id is not None
    assert row.pnl == pytest.approx(pnl, abs=1e-9)
    assert row.return_pct == pytest.approx(pnl / (1.1000 * 1000.0) * 100, abs=1e-9)
    assert row.r_multiple == pytest.approx(pnl / (0.0020 * 1000.0), abs=1e-9)
    assert row.holding_seconds == 5 * 3600.0
    assert row.policy_params == {"trail_atr": 2.0}

    feat = trade_features.get(conn, trade_id=signal)
    assert (feat.label, feat.closed_at) == (1, T_EXIT)
    assert feat.realized_pnl == pytest.approx(pnl, abs=1e-9)
    assert feat.realized_return == pytest.approx(pnl / 1100.0, abs=1e-12)
    preds = by_trade(conn, signal)
    assert len(preds) == 2
    assert {(p.outcome, p.resolved_at) for p in preds} == {(1, T_EXIT)}
    assert all(p.realized_return == feat.realized_return for p in preds)

    out = record_response(row, created).model_dump()
    assert out["created"] is True and out["trade_id"] == signal


def test_the_same_report_again_changes_nothing(conn, signal):
    req = ExitRecordRequest.model_validate_json(orjson.dumps(_report(signal)))
    first, _ = record_exit(conn, req)
    before = _snapshot(conn)
    again, created = record_exit(conn, req)
    assert created is False and again == first
    # a different payload for the same trade is refused (409): the first one stands
    other = ExitRecordRequest.model_validate(_report(signal, exit_price=1.0950))
    with pytest.raises(Conflict):
        record_exit(conn, other)
    stored = position_exits.get(conn, trade_id=signal)
    assert stored is not None and stored.exit_price == 1.1050
    assert _snapshot(conn) == before


def test_a_losing_short_is_labelled_zero(conn):
    store_features(conn, [feature_row(trade_id="bot-S1", side="short", signal_time=T_ENTRY)])
    req = ExitRecordRequest.model_validate(_report(
        "bot-S1", side="short", entry_price=1.1000, exit_price=1.1030,
        initial_stop=1.1020, fees=None, exit_reason="stop_loss"))
    row, _ = record_exit(conn, req)
    assert row.pnl == pytest.approx(-(1.1030 - 1.1000) * 1000.0, abs=1e-9)
    assert row.r_multiple == pytest.approx(-1.5, abs=1e-9)
    assert trade_features.get(conn, trade_id="bot-S1").label == 0


def test_an_exit_without_a_feature_row_is_still_recorded(conn):
    row, created = record_exit(conn, ExitRecordRequest.model_validate(_report("manual-1",
                                                                             pnl=-3.0)))
    assert created and row.pnl == -3.0 and row.return_pct == pytest.approx(-3 / 1100 * 100)


@pytest.mark.parametrize(("change", "field"), [
    ({"exit_time": T_ENTRY.isoformat()}, "exit_time"),
    ({"initial_stop": 1.2}, "initial_stop"),
    ({"exit_reason": "bored"}, "exit_reason"),
    ({"quantity": 0}, "quantity"),
    ({"exit_price": "NaN"}, "exit_price"),
])
def test_bad_input_is_refused_and_changes_nothing(conn, signal, change, field):
    before = _snapshot(conn)
    with pytest.raises(ValidationError) as err:
        ExitRecordRequest.model_validate_json(orjson.dumps(_report(signal, **change)))
    assert field in {e["loc"][0] for e in err.value.errors()}
    assert _snapshot(conn) == before


def test_a_signal_after_its_exit_is_recorded_but_left_unlabelled(conn):
    # the feature row's signal is after the reported exit (a bot clock sent without its
    # offset): the exit is kept, the inconsistent row is not labelled, nothing is rejected
    store_features(conn, [feature_row(trade_id="bot-late",
                                      signal_time=T_EXIT + timedelta(days=1))])
    stored, created = record_exit(conn, ExitRecordRequest.model_validate(_report("bot-late")))
    assert created and stored.trade_id == "bot-late"
    assert trade_features.get(conn, trade_id="bot-late").label is None


def test_a_failure_after_the_insert_rolls_the_whole_exit_back(conn, monkeypatch):
    store_features(conn, [feature_row(trade_id="bot-fail")])
    before = _snapshot(conn)

    def refuse(*_args, **_kwargs):
        raise InvalidData("refused by the database")

    monkeypatch.setattr(predictions, "resolve_from_exits", refuse)
    with pytest.raises(InvalidData):
        record_exit(conn, ExitRecordRequest.model_validate(_report("bot-fail")))
    assert _snapshot(conn) == before


# --- evaluate ----------------------------------------------------------------------------

def _evaluate_body(candles_json, **kw) -> bytes:
    body = {"trade_id": "bot-E1", "symbol": "TEST", "side": "long",
            "entry_time": datetime.fromtimestamp(entry_time(), UTC).isoformat(),
            "entry_price": 100.0, "quantity": 1.0, "initial_stop": 98.0, "target": 104.0,
            "policy": "breakeven", "params": {"trigger_r": 1.0}, "candles": candles_json}
    return orjson.dumps({**body, **kw})


def test_evaluate_answers_for_the_last_close_in_both_candle_forms():
    candles = with_history([(100.5, 101.0, 99.5, 100.5), (100.5, 102.0, 100.0, 101.5)])
    answers = [advise(ExitEvaluateRequest.model_validate_json(_evaluate_body(form)))
               for form in (candles_columns(candles), candles_rows(candles))]
    assert answers[0] == answers[1]
    a = answers[0]
    # high 102 = +1 R (R = 2): stop to the entry; close 101.5 = +0.75 R
    assert (a.action, a.stop, a.reason) == ("update_stop", 100.0, "breakeven")
    assert (a.r_multiple, a.mfe, a.mae, a.bars_held) == (0.75, 1.0, 0.25, 2)
    assert a.policy == "breakeven" and a.policy_params["trigger_r"] == 1.0
    assert a.last_candle_time == datetime.fromtimestamp(int(candles.time[-1]), UTC)


def test_evaluate_default_policy_and_iso_times():
    candles = with_history([(100.5, 101.0, 99.5, 100.5)])
    cols = candles_columns(candles)
    cols["time"] = [datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                    for t in cols["time"]]
    a = advise(ExitEvaluateRequest.model_validate_json(
        _evaluate_body(cols, policy=None, params=None)))
    assert (a.policy, a.action, a.bars_held) == ("combined", "hold", 1)


def test_evaluate_refuses_bad_requests_with_the_field():
    candles = candles_columns(with_history([]))
    with pytest.raises(ValidationError) as err:
        ExitEvaluateRequest.model_validate_json(_evaluate_body(candles, initial_stop=101.0))
    assert err.value.errors()[0]["loc"] == ("initial_stop",)
    with pytest.raises(ValidationError) as err:
        ExitEvaluateRequest.model_validate_json(_evaluate_body(candles,
                                                               params={"trigger_r": 0}))
    assert err.value.errors()[0]["loc"] == ("params",)
    assert "params.trigger_r" in err.value.errors()[0]["msg"]
