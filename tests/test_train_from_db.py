"""Training from labelled rows of real trades in the database (`train --from-db`).

The rows are what the service itself stores: a feature vector per signal (the write-behind's
insert), labelled when the trade's exit is reported (the exit transaction). Here they are
built from real EURUSD signals (base strategies + triple barrier) so the test knows every
label and time.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import psycopg
import pytest

from backend.db.trade_features import TradeFeatureRow
from backend.ml.dataset import build_dataset
from backend.ml.feature_extractor import FEATURE_SET_VERSION
from backend.timeutil import utc_datetime
from tests.utils.cli import run_cli
from tests.utils.db_factories import store_closed
from tests.utils.market_slices import sample


def labelled_rows(symbol: str, n_bars: int = 2500) -> list[TradeFeatureRow]:
    data = build_dataset(sample("EURUSD").head(n_bars))
    rows = []
    for i in range(len(data.y)):
        x = data.X.iloc[i]
        rows.append(TradeFeatureRow(
            trade_id=f"{symbol}-{i}", symbol=symbol, timeframe="1h",
            side="long" if data.meta["side"].iloc[i] > 0 else "short",
            strategy=str(data.meta["strategy"].iloc[i]), signal_time=utc_datetime(data.t0[i]),
            feature_set_version=FEATURE_SET_VERSION,
            features={k: (None if np.isnan(v) else float(v)) for k, v in x.items()},
            label=int(data.y[i]), realized_return=float(data.returns[i]),
            realized_pnl=float(data.returns[i]) * 1000, closed_at=utc_datetime(data.t1[i])))
    return rows


@pytest.mark.slow
def test_train_from_database_rows_only(db_url: str, conn: psycopg.Connection, tmp_path: Path):
    rows = labelled_rows("EURUSD")
    other = labelled_rows("OTHER", n_bars=1200)  # another market: filtered out by --symbol
    # an unlabelled row (trade still open: no exit reported) must not be used either
    open_trade = replace(rows[-1], label=None, realized_return=None, realized_pnl=None,
                         closed_at=None)
    store_closed(conn, features=[*rows[:-1], open_trade, *other])

    out = run_cli("train", "--from-db", "--symbol", "EURUSD", "--timeframe", "1h",
                  "--trials", "2", "--seed", "5", data_dir=tmp_path, db_url=db_url,
                  timeout=300)
    assert out.returncode == 0, out.stderr
    model = conn.execute("SELECT status, n_samples, train_start, train_end, metrics "
                         "FROM ml_models").fetchone()
    status, n_samples, train_start, train_end, metrics = model
    used = rows[:-1]
    assert status == "active"  # the first model of its name
    # most recent 20 % held out (purged), the rest trained on: never more than the rows given
    assert 0.6 * len(used) < n_samples < 0.8 * len(used)
    assert train_start == min(r.signal_time for r in used)
    assert train_end < max(r.signal_time for r in used)
    assert metrics["holdout"]["model"]["count"] > 0
    assert metrics["model"]["count"] > 0


def test_train_from_an_empty_database_is_a_clear_error(db_url: str, tmp_path: Path):
    out = run_cli("train", "--from-db", "--trials", "1", data_dir=tmp_path, db_url=db_url)
    assert out.returncode == 2
    assert "no labelled data" in out.stderr
