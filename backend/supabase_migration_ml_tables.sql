-- Trading-ML backend schema: 5 tables, 3 views, indexes, RLS.
-- Postgres 15+. Re-runnable (IF NOT EXISTS / OR REPLACE / guarded DO blocks) and free of
-- BEGIN/COMMIT: apply_ml_migration.py wraps the whole file in one transaction.

-- ---------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------

-- One row per signal the bot asked about; labelled when the trade closes.
CREATE TABLE IF NOT EXISTS public.ml_trade_features (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trade_id            text        NOT NULL UNIQUE,
    symbol              text        NOT NULL,
    timeframe           text        NOT NULL,
    side                text        NOT NULL CHECK (side IN ('long', 'short')),
    strategy            text        NOT NULL DEFAULT 'unknown',
    signal_time         timestamptz NOT NULL,
    feature_set_version text        NOT NULL,
    features            jsonb       NOT NULL CHECK (jsonb_typeof(features) = 'object'),
    label               smallint    CHECK (label IN (0, 1)),
    realized_return     double precision,
    realized_pnl        double precision,
    closed_at           timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (closed_at IS NULL OR closed_at >= signal_time)
);

-- Model registry: artifacts in native formats (XGBoost UBJ/JSON, LightGBM text), never pickle.
CREATE TABLE IF NOT EXISTS public.ml_models (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text        NOT NULL,
    version             integer     NOT NULL CHECK (version > 0),
    algorithm           text        NOT NULL CHECK (algorithm IN ('xgboost', 'lightgbm')),
    status              text        NOT NULL DEFAULT 'candidate'
                                    CHECK (status IN ('candidate', 'active', 'retired')),
    feature_names       jsonb       NOT NULL CHECK (jsonb_typeof(feature_names) = 'array'),
    feature_set_version text        NOT NULL,
    hyperparameters     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    metrics             jsonb       NOT NULL DEFAULT '{}'::jsonb,
    training_distribution jsonb     NOT NULL DEFAULT '{}'::jsonb,  -- PSI reference bins
    train_start         timestamptz,
    train_end           timestamptz,
    n_samples           integer     NOT NULL CHECK (n_samples >= 0),
    artifact            bytea       NOT NULL,
    artifact_format     text        NOT NULL CHECK (artifact_format IN ('xgboost-ubj', 'xgboost-json', 'lightgbm-text')),
    artifact_sha256     text        NOT NULL CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$'),
    notes               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    activated_at        timestamptz,
    activated_by        text,
    UNIQUE (name, version),
    CHECK (train_end IS NULL OR train_start IS NULL OR train_end >= train_start)
);

-- One row per prediction served; outcome filled in when the trade's exit is reported.
CREATE TABLE IF NOT EXISTS public.ml_predictions (
    id                  uuid        PRIMARY KEY,
    model_id            bigint      NOT NULL REFERENCES public.ml_models (id),
    trade_id            text        NOT NULL,
    probability         double precision NOT NULL CHECK (probability >= 0 AND probability <= 1),
    threshold           double precision NOT NULL CHECK (threshold >= 0 AND threshold <= 1),
    decision            text        NOT NULL CHECK (decision IN ('take', 'skip')),
    contributions       jsonb,
    latency_ms          double precision CHECK (latency_ms >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    outcome             smallint    CHECK (outcome IN (0, 1)),
    realized_return     double precision,
    resolved_at         timestamptz,
    UNIQUE (trade_id, model_id)
);

-- Daily live performance per model (written by the performance tracker, upserted).
CREATE TABLE IF NOT EXISTS public.ml_performance (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    date                date        NOT NULL,
    model_id            bigint      NOT NULL REFERENCES public.ml_models (id),
    n_predictions       integer     NOT NULL CHECK (n_predictions >= 0),
    n_resolved          integer     NOT NULL CHECK (n_resolved >= 0),
    n_taken             integer     NOT NULL CHECK (n_taken >= 0),
    accuracy            double precision,
    precision           double precision,
    recall              double precision,
    roc_auc             double precision,
    brier               double precision,
    log_loss            double precision,
    base_rate           double precision,
    mean_probability    double precision,
    return_taken        double precision,
    return_skipped      double precision,
    drift_psi           double precision,
    drift               jsonb       NOT NULL DEFAULT '{}'::jsonb,  -- PSI per feature
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (date, model_id)
);

-- One row per closed position.
CREATE TABLE IF NOT EXISTS public.position_exits (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trade_id            text        NOT NULL UNIQUE,
    symbol              text        NOT NULL,
    side                text        NOT NULL CHECK (side IN ('long', 'short')),
    entry_time          timestamptz NOT NULL,
    exit_time           timestamptz NOT NULL,
    entry_price         double precision NOT NULL CHECK (entry_price > 0),
    exit_price          double precision NOT NULL CHECK (exit_price > 0),
    quantity            double precision NOT NULL CHECK (quantity > 0),
    exit_reason         text        NOT NULL CHECK (exit_reason IN ('stop_loss', 'take_profit',
                            'trailing_stop', 'breakeven', 'time_stop', 'partial', 'ml_exit',
                            'signal', 'manual')),
    pnl                 double precision NOT NULL,
    return_pct          double precision NOT NULL,
    r_multiple          double precision,
    mfe                 double precision,  -- max favourable excursion, in R (>= 0)
    mae                 double precision,  -- max adverse excursion, in R (>= 0)
    holding_seconds     double precision NOT NULL CHECK (holding_seconds >= 0),
    policy_name         text,
    policy_params       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (exit_time > entry_time)
);

-- TODO(helper): indexes (>= 15, each with the query it serves), the partial unique index
-- "one active model per name", 3 views (security_invoker), RLS, grants, NOTIFY trigger.
