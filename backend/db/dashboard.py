"""Read-only queries behind the dashboard: one function per panel, rows as dataclasses.

Every query takes the same :class:`Filters` (model, symbol, UTC date range, both ends
inclusive); a filter a panel's source cannot apply is ignored there and the page says so
(``ml_performance`` has no symbol; ``daily_exit_performance`` has neither model nor symbol;
exits carry no model). Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from backend.db.errors import translate

ROW_LIMIT = 500  # rows per table panel: a page, not an export (SQL views are for that)
SERIES_LIMIT = 5000  # points of the cumulative R curve (the most recent ones)

# Time filters on timestamptz columns: [date_from 00:00 UTC, date_to + 1 day 00:00 UTC).
_FROM_TS = "(%(date_from)s::date)::timestamp AT TIME ZONE 'UTC'"
_TO_TS = "(%(date_to)s::date + 1)::timestamp AT TIME ZONE 'UTC'"
_MODEL = "(%(model_id)s::bigint IS NULL OR {col} = %(model_id)s::bigint)"
_SYMBOL = "(%(symbol)s::text IS NULL OR {col} = %(symbol)s::text)"

MODELS_SQL = """
SELECT id, name, version, algorithm, status, created_at, activated_at, activated_by,
       train_start, train_end, n_samples, feature_set_version,
       metrics -> 'model' AS cv_model, metrics -> 'always_take' AS cv_always_take,
       metrics -> 'logistic' AS cv_logistic,
       metrics -> 'holdout' -> 'model' AS holdout_model,
       metrics -> 'holdout' -> 'always_take' AS holdout_always_take
FROM public.ml_models
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s
"""
# activated_at is kept when a model is retired, so each activation's period ends at the
# next activation of the same name (a re-activated model shows its latest activation).
ACTIVATIONS_SQL = """
SELECT id AS model_id, name, version, status, activated_at, activated_by,
       lead(activated_at) OVER (PARTITION BY name ORDER BY activated_at, id) AS until
FROM public.ml_models
WHERE activated_at IS NOT NULL
ORDER BY activated_at DESC, id DESC
LIMIT %(limit)s
"""
QUALITY_SQL = f"""
SELECT p.date, p.model_id, m.name AS model_name, m.version AS model_version,
       p.n_predictions, p.n_resolved, p.n_taken, p.accuracy, p.precision, p.base_rate,
       p.brier, p.mean_probability
FROM public.ml_performance AS p
JOIN public.ml_models AS m ON m.id = p.model_id
WHERE p.date BETWEEN %(date_from)s::date AND %(date_to)s::date
  AND {_MODEL.format(col="p.model_id")}
ORDER BY p.date, p.model_id
LIMIT %(limit)s
"""
# Ten equal-width probability bins of resolved predictions (1.0 falls in the last).
RELIABILITY_SQL = f"""
SELECT least(floor(p.probability * 10)::int, 9) AS bin, count(*) AS n,
       avg(p.probability) AS mean_probability, avg(p.outcome::double precision) AS observed
FROM public.ml_predictions AS p
LEFT JOIN public.ml_trade_features AS f ON f.trade_id = p.trade_id
WHERE p.outcome IS NOT NULL
  AND p.created_at >= {_FROM_TS} AND p.created_at < {_TO_TS}
  AND {_MODEL.format(col="p.model_id")} AND {_SYMBOL.format(col="f.symbol")}
GROUP BY 1
ORDER BY 1
"""
ACTIVE_MODEL_SQL = "SELECT id FROM public.ml_models WHERE name = %(name)s AND status = 'active'"
# PSI per feature of the latest day in range with drift figures, worst first.
DRIFT_SQL = """
SELECT d.date, d.model_id, m.name AS model_name, m.version AS model_version,
       kv.key AS feature, (kv.value)::double precision AS psi
FROM (SELECT date, model_id, drift FROM public.ml_performance
      WHERE model_id = %(model_id)s::bigint AND drift <> '{}'::jsonb
        AND date BETWEEN %(date_from)s::date AND %(date_to)s::date
      ORDER BY date DESC LIMIT 1) AS d
JOIN public.ml_models AS m ON m.id = d.model_id
CROSS JOIN LATERAL jsonb_each(d.drift) AS kv
WHERE jsonb_typeof(kv.value) = 'number'
ORDER BY psi DESC, feature
"""
# The same definitions as the daily_exit_performance view (a win is pnl > 0, avg_loss
# over pnl < 0), over the whole range and with the symbol filter the view cannot take.
EXITS_BY_REASON_SQL = f"""
SELECT exit_reason, count(*) AS trades, count(*) FILTER (WHERE pnl > 0) AS wins,
       (count(*) FILTER (WHERE pnl > 0))::double precision / count(*) AS win_rate,
       avg(pnl) FILTER (WHERE pnl < 0) AS avg_loss, avg(r_multiple) AS avg_r,
       sum(pnl) AS total_pnl
FROM public.position_exits
WHERE exit_time >= {_FROM_TS} AND exit_time < {_TO_TS} AND {_SYMBOL.format(col="symbol")}
GROUP BY exit_reason
ORDER BY trades DESC, exit_reason
"""
EXITS_DAILY_SQL = """
SELECT exit_date, exit_reason, trades, wins, win_rate, avg_loss, avg_r_multiple AS avg_r,
       total_pnl
FROM public.daily_exit_performance
WHERE exit_date BETWEEN %(date_from)s::date AND %(date_to)s::date
ORDER BY exit_date DESC, exit_reason
LIMIT %(limit)s
"""
CUMULATIVE_R_SQL = f"""
SELECT * FROM (
    SELECT id, exit_time, trade_id, symbol, exit_reason, r_multiple,
           sum(r_multiple) OVER (ORDER BY exit_time, id) AS cumulative_r
    FROM public.position_exits
    WHERE r_multiple IS NOT NULL
      AND exit_time >= {_FROM_TS} AND exit_time < {_TO_TS} AND {_SYMBOL.format(col="symbol")}
) AS s
ORDER BY exit_time DESC, id DESC
LIMIT %(limit)s
"""
PREDICTIONS_SQL = f"""
SELECT p.created_at, p.trade_id, f.symbol, f.side, p.probability, p.threshold, p.decision,
       p.model_id, m.name AS model_name, m.version AS model_version, p.outcome,
       p.realized_return, p.contributions
FROM public.ml_predictions AS p
JOIN public.ml_models AS m ON m.id = p.model_id
LEFT JOIN public.ml_trade_features AS f ON f.trade_id = p.trade_id
WHERE p.created_at >= {_FROM_TS} AND p.created_at < {_TO_TS}
  AND {_MODEL.format(col="p.model_id")} AND {_SYMBOL.format(col="f.symbol")}
ORDER BY p.created_at DESC, p.id
LIMIT %(limit)s
"""
SYMBOLS_SQL = """
SELECT symbol FROM public.ml_trade_features
UNION SELECT symbol FROM public.position_exits
ORDER BY 1
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class Filters:
    date_from: date
    date_to: date
    model_id: int | None = None
    symbol: str | None = None

    def params(self, **extra: Any) -> dict[str, Any]:
        return {"date_from": self.date_from, "date_to": self.date_to,
                "model_id": self.model_id, "symbol": self.symbol, **extra}


@dataclass
class ModelEntry:
    id: int
    name: str
    version: int
    algorithm: str
    status: str
    created_at: datetime
    activated_at: datetime | None
    activated_by: str | None
    train_start: datetime | None
    train_end: datetime | None
    n_samples: int
    feature_set_version: str
    cv_model: dict[str, Any] | None
    cv_always_take: dict[str, Any] | None
    cv_logistic: dict[str, Any] | None
    holdout_model: dict[str, Any] | None
    holdout_always_take: dict[str, Any] | None


@dataclass
class Activation:
    model_id: int
    name: str
    version: int
    status: str
    activated_at: datetime
    activated_by: str | None
    until: datetime | None


@dataclass
class QualityDay:
    date: date
    model_id: int
    model_name: str
    model_version: int
    n_predictions: int
    n_resolved: int
    n_taken: int
    accuracy: float | None
    precision: float | None
    base_rate: float | None
    brier: float | None
    mean_probability: float | None


@dataclass
class ReliabilityBin:
    bin: int  # probabilities in [bin/10, (bin+1)/10)
    n: int
    mean_probability: float
    observed: float


@dataclass
class DriftFeature:
    date: date
    model_id: int
    model_name: str
    model_version: int
    feature: str
    psi: float


@dataclass
class ExitReasonStats:
    exit_reason: str
    trades: int
    wins: int
    win_rate: float
    avg_loss: float | None
    avg_r: float | None
    total_pnl: float


@dataclass
class ExitDay:
    exit_date: date
    exit_reason: str
    trades: int
    wins: int
    win_rate: float
    avg_loss: float | None
    avg_r: float | None
    total_pnl: float


@dataclass
class CumulativeR:
    id: int
    exit_time: datetime
    trade_id: str
    symbol: str
    exit_reason: str
    r_multiple: float
    cumulative_r: float


@dataclass
class RecentPrediction:
    created_at: datetime
    trade_id: str
    symbol: str | None  # None while the feature row is still in the write-behind queue
    side: str | None
    probability: float
    threshold: float
    decision: str
    model_id: int
    model_name: str
    model_version: int
    outcome: int | None
    realized_return: float | None
    contributions: dict[str, float] | None


def _rows(conn: psycopg.Connection, cls: type, sql: str, params: dict[str, Any]) -> list[Any]:
    with translate(), conn.cursor(row_factory=class_row(cls)) as cur:
        return cur.execute(sql, params).fetchall()


def models(conn: psycopg.Connection, *, limit: int = ROW_LIMIT) -> list[ModelEntry]:
    """The registry, newest first, with the stored out-of-sample metrics and baselines."""
    return _rows(conn, ModelEntry, MODELS_SQL, {"limit": limit})


def activations(conn: psycopg.Connection, *, limit: int = ROW_LIMIT) -> list[Activation]:
    """Activations, latest first, each with the time the next one of its name replaced it."""
    return _rows(conn, Activation, ACTIVATIONS_SQL, {"limit": limit})


def quality(conn: psycopg.Connection, *, filters: Filters,
            limit: int = SERIES_LIMIT) -> list[QualityDay]:
    """Daily live figures per model from ml_performance, oldest first (no symbol there)."""
    return _rows(conn, QualityDay, QUALITY_SQL, filters.params(limit=limit))


def reliability(conn: psycopg.Connection, *, filters: Filters) -> list[ReliabilityBin]:
    """Resolved predictions in ten probability bins: mean probability against outcome."""
    return _rows(conn, ReliabilityBin, RELIABILITY_SQL, filters.params())


def drift(conn: psycopg.Connection, *, filters: Filters,
          active_name: str) -> list[DriftFeature]:
    """PSI per feature of the filtered model (else the active model of ``active_name``)
    on the latest day in range that has drift figures, worst first."""
    model_id = filters.model_id
    with translate():
        if model_id is None:
            found = conn.execute(ACTIVE_MODEL_SQL, {"name": active_name}).fetchone()
            if found is None:
                return []
            model_id = found[0]
    return _rows(conn, DriftFeature, DRIFT_SQL, filters.params(model_id=model_id))


def exits_by_reason(conn: psycopg.Connection, *, filters: Filters) -> list[ExitReasonStats]:
    """Closed positions per exit reason over the range (model filter: not applicable)."""
    return _rows(conn, ExitReasonStats, EXITS_BY_REASON_SQL, filters.params())


def exits_daily(conn: psycopg.Connection, *, filters: Filters,
                limit: int = ROW_LIMIT) -> list[ExitDay]:
    """daily_exit_performance in the date range, latest first (the view has no symbol)."""
    return _rows(conn, ExitDay, EXITS_DAILY_SQL, filters.params(limit=limit))


def cumulative_r(conn: psycopg.Connection, *, filters: Filters,
                 limit: int = SERIES_LIMIT) -> list[CumulativeR]:
    """Reported trades with an R multiple in exit order, and the running sum of R (the
    latest ``limit`` points; the sum counts every earlier trade in range)."""
    rows = _rows(conn, CumulativeR, CUMULATIVE_R_SQL, filters.params(limit=limit))
    rows.reverse()
    return rows


def recent_predictions(conn: psycopg.Connection, *, filters: Filters,
                       limit: int = 100) -> list[RecentPrediction]:
    """The latest predictions with their model, symbol and outcome when known."""
    return _rows(conn, RecentPrediction, PREDICTIONS_SQL, filters.params(limit=limit))


def symbols(conn: psycopg.Connection, *, limit: int = ROW_LIMIT) -> list[str]:
    """Symbols seen in signals or exits (the symbol filter's choices)."""
    with translate():
        return [r[0] for r in conn.execute(SYMBOLS_SQL, {"limit": limit}).fetchall()]
