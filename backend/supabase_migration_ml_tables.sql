-- Trading-ML backend schema: 6 tables (+ ml_schema_migrations), 17 indexes, a NOTIFY
-- trigger, 3 views (every column commented), RLS and role grants. Postgres 15+ (views use
-- security_invoker). Re-runnable (IF NOT EXISTS / OR REPLACE / DROP + CREATE of a view whose
-- columns changed / guarded DO blocks) and free of BEGIN/COMMIT:
-- apply_ml_migration.py wraps the whole file in one transaction.

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
    decision_rule       text        CHECK (decision_rule IN ('expected_value', 'threshold')),
    expected_r          double precision,  -- p * reward - (1 - p) * risk - costs, in R
    contributions       jsonb,
    latency_ms          double precision CHECK (latency_ms >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    outcome             smallint    CHECK (outcome IN (0, 1)),
    realized_return     double precision,
    resolved_at         timestamptz,
    UNIQUE (trade_id, model_id)
);

-- Added with decisions by expected value: which rule decided, and the expected R of taking
-- (NULL on rows stored before). For databases created before the columns existed.
ALTER TABLE public.ml_predictions
    ADD COLUMN IF NOT EXISTS decision_rule text
        CHECK (decision_rule IN ('expected_value', 'threshold')),
    ADD COLUMN IF NOT EXISTS expected_r double precision;

-- Added with trade_id idempotency: sha256 (hex) of the canonical request that was scored,
-- so the same trade_id with another payload is refused (409) even after a restart. NULL on
-- rows stored before; for databases created before the column existed.
ALTER TABLE public.ml_predictions
    ADD COLUMN IF NOT EXISTS request_sha256 text
        CHECK (request_sha256 ~ '^[0-9a-f]{64}$');

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

-- One row per retrain of the continual-learning policy (or a forced one): why it ran, on
-- which outcomes, and what became of the candidate (backend/db/retrains.py).
CREATE TABLE IF NOT EXISTS public.ml_retrains (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_name          text        NOT NULL,
    reason              text        NOT NULL CHECK (reason IN ('outcomes', 'hours', 'drift',
                            'forced')),
    details             jsonb       NOT NULL DEFAULT '{}'::jsonb,  -- every trigger's figures
    active_model_id     bigint      REFERENCES public.ml_models (id),
    candidate_model_id  bigint      REFERENCES public.ml_models (id),
    n_outcomes          integer     NOT NULL CHECK (n_outcomes >= 0),
    outcomes_until      timestamptz,  -- newest closed_at seen: the next count starts there
    status              text        NOT NULL DEFAULT 'running'
                            CHECK (status IN ('running', 'succeeded', 'failed')),
    promoted            boolean,
    result              jsonb       NOT NULL DEFAULT '{}'::jsonb,
    error               text,
    requested_by        text        NOT NULL,
    started_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz
);
COMMENT ON TABLE public.ml_retrains IS
    'Continual learning: each retrain, its reason (outcomes, hours, drift, forced), the '
    'outcomes it saw and whether its candidate was promoted.';

-- Applied versions of this file (written by apply_ml_migration.py; on Supabase it also
-- records the version in supabase_migrations.schema_migrations for `supabase db push`).
CREATE TABLE IF NOT EXISTS public.ml_schema_migrations (
    version             text        PRIMARY KEY,
    name                text        NOT NULL,
    checksum            text        NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    applied_at          timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------------------
-- Indexes. Each names the query it serves. Already indexed by constraints (not repeated):
-- ml_trade_features(trade_id) [insert_json dedupe, label_from_exits, get, the predictions
-- join], ml_models(name, version) [next version, newest version of a name],
-- ml_predictions(trade_id, model_id) [replay dedupe], ml_performance(date, model_id)
-- [list_performance(since)], position_exits(trade_id) [get, idempotent insert, the
-- label_from_exits/resolve_from_exits joins].
-- ---------------------------------------------------------------------------------------

-- trade_features.labeled(symbol=, timeframe=) ordered by signal_time; per-market history.
CREATE INDEX IF NOT EXISTS ml_trade_features_symbol_timeframe_time_idx
    ON public.ml_trade_features (symbol, timeframe, signal_time);

-- trade_features.labeled(feature_set_version=): training reads only labelled rows, in time
-- order; partial, so the unlabelled rows of open trades cost nothing here.
CREATE INDEX IF NOT EXISTS ml_trade_features_labeled_version_time_idx
    ON public.ml_trade_features (feature_set_version, signal_time)
    WHERE label IS NOT NULL;

-- Analysts: signals and outcomes of one base strategy over a time range.
CREATE INDEX IF NOT EXISTS ml_trade_features_strategy_time_idx
    ON public.ml_trade_features (strategy, signal_time);

-- models.get_active(name) / models.activate: at most one active model per name, enforced by
-- the database, and the lookup of that model.
CREATE UNIQUE INDEX IF NOT EXISTS ml_models_one_active_per_name
    ON public.ml_models (name)
    WHERE status = 'active';

-- models.list_models(name=, status=) (GET /api/v1/models?name=&status=).
CREATE INDEX IF NOT EXISTS ml_models_name_status_idx
    ON public.ml_models (name, status);

-- models.list_models(status=) newest first (GET /api/v1/models?status=candidate).
CREATE INDEX IF NOT EXISTS ml_models_status_created_idx
    ON public.ml_models (status, created_at DESC);

-- models.list_models() unfiltered, newest first: GET /api/v1/models and the performance
-- tracker paging through every model.
CREATE INDEX IF NOT EXISTS ml_models_created_idx
    ON public.ml_models (created_at DESC);

-- predictions.with_features(model_id, since) (performance tracker, drift), the live counts
-- of ml_model_performance_summary (all-time and last 30 days); also the model_id foreign key.
CREATE INDEX IF NOT EXISTS ml_predictions_model_created_idx
    ON public.ml_predictions (model_id, created_at);

-- predictions.recent_answers(limit): at start-up the service reloads the most recent
-- answers so a repeated trade_id gets its stored prediction back after a restart.
CREATE INDEX IF NOT EXISTS ml_predictions_created_idx
    ON public.ml_predictions (created_at DESC);

-- The resolved-only aggregates of ml_model_performance_summary (per model, by time);
-- partial: only predictions with an outcome.
CREATE INDEX IF NOT EXISTS ml_predictions_resolved_model_created_idx
    ON public.ml_predictions (model_id, created_at)
    WHERE outcome IS NOT NULL;

-- predictions.resolve_from_exits(trade_ids): an exit report (or a write-behind batch that
-- lands after it) updates only the unresolved predictions of its trades; partial, so the
-- index stays as small as the set of open trades.
CREATE INDEX IF NOT EXISTS ml_predictions_unresolved_trade_idx
    ON public.ml_predictions (trade_id)
    WHERE outcome IS NULL;

-- performance.list_performance(model_id=, since=) (GET /api/v1/performance?model=);
-- also the model_id foreign key.
CREATE INDEX IF NOT EXISTS ml_performance_model_date_idx
    ON public.ml_performance (model_id, date DESC);

-- Exits in a time range (reports, "exits since t").
CREATE INDEX IF NOT EXISTS position_exits_exit_time_idx
    ON public.position_exits (exit_time);

-- daily_exit_performance filtered by day (WHERE exit_date >= ...): the same expression the
-- view groups by, so the filter is pushed into the index.
CREATE INDEX IF NOT EXISTS position_exits_exit_date_reason_idx
    ON public.position_exits (((exit_time AT TIME ZONE 'UTC')::date), exit_reason);

-- Exits of one reason over time (how did stop-losses / ml_exit do last week?).
CREATE INDEX IF NOT EXISTS position_exits_reason_time_idx
    ON public.position_exits (exit_reason, exit_time);

-- Exits of one symbol over time (per-market P&L).
CREATE INDEX IF NOT EXISTS position_exits_symbol_time_idx
    ON public.position_exits (symbol, exit_time);

-- Live comparison of exit policies (policy_name over a time range); most manual exits have
-- no policy, so partial.
CREATE INDEX IF NOT EXISTS position_exits_policy_time_idx
    ON public.position_exits (policy_name, exit_time)
    WHERE policy_name IS NOT NULL;

-- retrains.list_retrains(model_name=) (GET /api/v1/models/retrains) and retrains.last(),
-- the policy's "since the last retrain", newest first.
CREATE INDEX IF NOT EXISTS ml_retrains_name_started_idx
    ON public.ml_retrains (model_name, started_at DESC, id DESC);

-- ---------------------------------------------------------------------------------------
-- Model activation reaches every API replica: they LISTEN on ml_model_activated and reload.
-- AFTER trigger, so the notification is delivered at COMMIT and never for a rollback.
-- ---------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION public.ml_notify_model_activated()
    RETURNS trigger
    LANGUAGE plpgsql
    SECURITY INVOKER
    SET search_path = ''
AS $$
BEGIN
    -- WHEN of a combined INSERT OR UPDATE trigger cannot read OLD, so the transition test
    -- is here: notify only when the row becomes active, not on every update of an active row.
    IF TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'active' THEN
        PERFORM pg_catalog.pg_notify(
            'ml_model_activated',
            pg_catalog.json_build_object('id', NEW.id, 'name', NEW.name,
                                         'version', NEW.version)::text);
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER ml_models_notify_activated
    AFTER INSERT OR UPDATE OF status ON public.ml_models
    FOR EACH ROW
    WHEN (NEW.status = 'active')
    EXECUTE FUNCTION public.ml_notify_model_activated();

-- ---------------------------------------------------------------------------------------
-- Views for analysts. security_invoker: they run with the privileges (and RLS) of the caller,
-- not of their owner, so they never widen access to the tables.
-- ---------------------------------------------------------------------------------------

-- Per model: the out-of-sample figures training stored in ml_models.metrics (purged
-- walk-forward cross-validation: cv_*; the most recent held-out window, never used for
-- tuning or fitting: holdout_*), each beside the always-take baseline, and the live record.
-- live_precision = wins among resolved 'take' decisions; live_base_rate (wins among all
-- resolved) is its baseline: what always taking the signal would have scored.
-- Its columns were renamed (train_* held cross-validation figures: now cv_*), which CREATE
-- OR REPLACE VIEW cannot do: dropped and created again. No CASCADE: a view of yours on it
-- stops the migration (nothing is changed) instead of being dropped; drop it, migrate,
-- create it again. The grants below are re-applied on every run.
DROP VIEW IF EXISTS public.ml_model_performance_summary;
CREATE VIEW public.ml_model_performance_summary
    WITH (security_invoker = true) AS
SELECT
    m.id,
    m.name,
    m.version,
    m.algorithm,
    m.status,
    m.created_at,
    m.activated_at,
    m.n_samples,
    -- a non-numeric value yields NULL instead of making the whole view fail
    CASE WHEN jsonb_typeof(j.cv -> 'roc_auc') = 'number'
         THEN (j.cv ->> 'roc_auc')::double precision END AS cv_roc_auc,
    CASE WHEN jsonb_typeof(j.cv -> 'accuracy') = 'number'
         THEN (j.cv ->> 'accuracy')::double precision END AS cv_accuracy,
    CASE WHEN jsonb_typeof(j.cv -> 'precision') = 'number'
         THEN (j.cv ->> 'precision')::double precision END AS cv_precision,
    CASE WHEN jsonb_typeof(j.cv -> 'brier') = 'number'
         THEN (j.cv ->> 'brier')::double precision END AS cv_brier,
    CASE WHEN jsonb_typeof(j.cv -> 'log_loss') = 'number'
         THEN (j.cv ->> 'log_loss')::double precision END AS cv_log_loss,
    CASE WHEN jsonb_typeof(j.cv -> 'base_rate') = 'number'
         THEN (j.cv ->> 'base_rate')::double precision END AS cv_base_rate,
    CASE WHEN jsonb_typeof(j.cv_always -> 'brier') = 'number'
         THEN (j.cv_always ->> 'brier')::double precision END AS cv_always_take_brier,
    CASE WHEN jsonb_typeof(j.cv_always -> 'log_loss') = 'number'
         THEN (j.cv_always ->> 'log_loss')::double precision END AS cv_always_take_log_loss,
    CASE WHEN jsonb_typeof(j.cv_logistic -> 'roc_auc') = 'number'
         THEN (j.cv_logistic ->> 'roc_auc')::double precision END AS cv_logistic_roc_auc,
    CASE WHEN jsonb_typeof(j.ho -> 'count') = 'number'
         THEN (j.ho ->> 'count')::numeric::bigint END AS holdout_count,
    CASE WHEN jsonb_typeof(j.ho -> 'roc_auc') = 'number'
         THEN (j.ho ->> 'roc_auc')::double precision END AS holdout_roc_auc,
    CASE WHEN jsonb_typeof(j.ho -> 'accuracy') = 'number'
         THEN (j.ho ->> 'accuracy')::double precision END AS holdout_accuracy,
    CASE WHEN jsonb_typeof(j.ho -> 'precision') = 'number'
         THEN (j.ho ->> 'precision')::double precision END AS holdout_precision,
    CASE WHEN jsonb_typeof(j.ho -> 'brier') = 'number'
         THEN (j.ho ->> 'brier')::double precision END AS holdout_brier,
    CASE WHEN jsonb_typeof(j.ho -> 'log_loss') = 'number'
         THEN (j.ho ->> 'log_loss')::double precision END AS holdout_log_loss,
    CASE WHEN jsonb_typeof(j.ho -> 'base_rate') = 'number'
         THEN (j.ho ->> 'base_rate')::double precision END AS holdout_base_rate,
    CASE WHEN jsonb_typeof(j.ho_always -> 'brier') = 'number'
         THEN (j.ho_always ->> 'brier')::double precision END AS holdout_always_take_brier,
    CASE WHEN jsonb_typeof(j.ho_always -> 'log_loss') = 'number'
         THEN (j.ho_always ->> 'log_loss')::double precision END AS holdout_always_take_log_loss,
    live.n_predictions,
    live.n_resolved,
    live.n_taken_resolved,
    live.live_accuracy,
    live.live_precision,
    live.live_base_rate,
    live.n_predictions_30d,
    live.n_resolved_30d,
    live.live_accuracy_30d,
    live.live_precision_30d
FROM public.ml_models AS m
CROSS JOIN LATERAL (
    SELECT m.metrics -> 'model' AS cv, m.metrics -> 'always_take' AS cv_always,
           m.metrics -> 'logistic' AS cv_logistic, m.metrics -> 'holdout' -> 'model' AS ho,
           m.metrics -> 'holdout' -> 'always_take' AS ho_always
) AS j
CROSS JOIN LATERAL (
    SELECT
        count(*) AS n_predictions,
        count(*) FILTER (WHERE p.outcome IS NOT NULL) AS n_resolved,
        count(*) FILTER (WHERE p.outcome IS NOT NULL AND p.decision = 'take')
            AS n_taken_resolved,
        avg(CASE WHEN (p.decision = 'take') = (p.outcome = 1) THEN 1.0 ELSE 0.0 END)
            FILTER (WHERE p.outcome IS NOT NULL)::double precision AS live_accuracy,
        avg(p.outcome::double precision)
            FILTER (WHERE p.outcome IS NOT NULL AND p.decision = 'take') AS live_precision,
        avg(p.outcome::double precision)
            FILTER (WHERE p.outcome IS NOT NULL) AS live_base_rate,
        count(*) FILTER (WHERE p.created_at >= now() - interval '30 days')
            AS n_predictions_30d,
        count(*) FILTER (WHERE p.outcome IS NOT NULL
                           AND p.created_at >= now() - interval '30 days') AS n_resolved_30d,
        avg(CASE WHEN (p.decision = 'take') = (p.outcome = 1) THEN 1.0 ELSE 0.0 END)
            FILTER (WHERE p.outcome IS NOT NULL
                      AND p.created_at >= now() - interval '30 days')::double precision
            AS live_accuracy_30d,
        avg(p.outcome::double precision)
            FILTER (WHERE p.outcome IS NOT NULL AND p.decision = 'take'
                      AND p.created_at >= now() - interval '30 days') AS live_precision_30d
    FROM public.ml_predictions AS p
    WHERE p.model_id = m.id
) AS live;

-- Per UTC day of exit and exit reason. avg_win / avg_loss are NULL on a day with no
-- winning / losing trade (a zero-pnl trade is neither).
CREATE OR REPLACE VIEW public.daily_exit_performance
    WITH (security_invoker = true) AS
SELECT
    (e.exit_time AT TIME ZONE 'UTC')::date AS exit_date,
    e.exit_reason,
    count(*) AS trades,
    count(*) FILTER (WHERE e.pnl > 0) AS wins,
    (count(*) FILTER (WHERE e.pnl > 0))::double precision / count(*) AS win_rate,
    avg(e.pnl) FILTER (WHERE e.pnl > 0) AS avg_win,
    avg(e.pnl) FILTER (WHERE e.pnl < 0) AS avg_loss,
    avg(e.pnl) AS avg_pnl,
    sum(e.pnl) AS total_pnl,
    avg(e.r_multiple) AS avg_r_multiple,
    avg(e.mfe) AS avg_mfe,
    avg(e.mae) AS avg_mae,
    avg(e.holding_seconds) AS avg_holding_seconds
FROM public.position_exits AS e
GROUP BY (e.exit_time AT TIME ZONE 'UTC')::date, e.exit_reason;

-- Per feature set version and feature key. n counts rows where the key holds a number;
-- missing counts the other rows of that version (key absent, JSON null or non-numeric), so
-- n + missing = rows of the version. stddev is the sample standard deviation.
-- mean_winners / mean_losers compare labelled rows (label 1 / 0): a feature whose means
-- differ is one the model can use.
CREATE OR REPLACE VIEW public.ml_feature_statistics
    WITH (security_invoker = true) AS
WITH version_rows AS (
    SELECT f.feature_set_version, count(*) AS n_rows
    FROM public.ml_trade_features AS f
    GROUP BY f.feature_set_version
),
feature_values AS (
    SELECT
        f.feature_set_version,
        kv.key AS feature,
        f.label,
        CASE WHEN jsonb_typeof(kv.value) = 'number'
             THEN (kv.value)::double precision END AS value
    FROM public.ml_trade_features AS f
    CROSS JOIN LATERAL jsonb_each(f.features) AS kv
)
SELECT
    v.feature_set_version,
    v.feature,
    count(v.value) AS n,
    avg(v.value) AS mean,
    stddev_samp(v.value) AS stddev,
    min(v.value) AS min,
    max(v.value) AS max,
    r.n_rows - count(v.value) AS missing,
    count(v.value) FILTER (WHERE v.label = 1) AS n_winners,
    count(v.value) FILTER (WHERE v.label = 0) AS n_losers,
    avg(v.value) FILTER (WHERE v.label = 1) AS mean_winners,
    avg(v.value) FILTER (WHERE v.label = 0) AS mean_losers
FROM feature_values AS v
JOIN version_rows AS r ON r.feature_set_version = v.feature_set_version
GROUP BY v.feature_set_version, v.feature, r.n_rows;

-- What each view and column holds, for analysts (psql \d+, Supabase's table editor);
-- docs/analysts.md says the same with example queries. tests/db/test_views.py checks that
-- none is missing.
COMMENT ON VIEW public.ml_model_performance_summary IS
    'One row per registered model: out-of-sample figures from training (cv_*: purged '
    'walk-forward cross-validation; holdout_*: the most recent held-out window), each beside '
    'the always-take baseline, and the live record of its served predictions.';
COMMENT ON COLUMN public.ml_model_performance_summary.id IS 'ml_models.id';
COMMENT ON COLUMN public.ml_model_performance_summary.name IS
    'Model name (TML_MODEL_NAME a replica serves)';
COMMENT ON COLUMN public.ml_model_performance_summary.version IS
    'Version within the name (1, 2, ...)';
COMMENT ON COLUMN public.ml_model_performance_summary.algorithm IS 'xgboost or lightgbm';
COMMENT ON COLUMN public.ml_model_performance_summary.status IS
    'candidate, active (at most one per name) or retired';
COMMENT ON COLUMN public.ml_model_performance_summary.created_at IS 'When it was registered';
COMMENT ON COLUMN public.ml_model_performance_summary.activated_at IS
    'When it last became active (NULL: never)';
COMMENT ON COLUMN public.ml_model_performance_summary.n_samples IS
    'Labelled signals it was trained on (the held-out window excluded)';
COMMENT ON COLUMN public.ml_model_performance_summary.cv_roc_auc IS
    'ROC AUC over the cross-validation folds (out-of-fold, purged walk-forward); 0.5 = no skill';
COMMENT ON COLUMN public.ml_model_performance_summary.cv_accuracy IS
    'Share of right take/skip decisions over the cross-validation folds';
COMMENT ON COLUMN public.ml_model_performance_summary.cv_precision IS
    'Wins among the signals it would take, over the cross-validation folds; compare cv_base_rate';
COMMENT ON COLUMN public.ml_model_performance_summary.cv_brier IS
    'Brier score (mean squared error of the probability; lower is better), cross-validation';
COMMENT ON COLUMN public.ml_model_performance_summary.cv_log_loss IS
    'Log loss of the probability (lower is better), cross-validation';
COMMENT ON COLUMN public.ml_model_performance_summary.cv_base_rate IS
    'Share of winning signals in the cross-validation folds: the precision of always taking';
COMMENT ON COLUMN public.ml_model_performance_summary.cv_always_take_brier IS
    'Baseline: Brier score of a constant probability (the training base rate), cross-validation';
COMMENT ON COLUMN public.ml_model_performance_summary.cv_always_take_log_loss IS
    'Baseline: log loss of a constant probability (the training base rate), cross-validation';
COMMENT ON COLUMN public.ml_model_performance_summary.cv_logistic_roc_auc IS
    'Baseline: ROC AUC of a logistic regression on the same features, cross-validation';
COMMENT ON COLUMN public.ml_model_performance_summary.holdout_count IS
    'Signals in the held-out window (the most recent ones; not used for tuning or fitting)';
COMMENT ON COLUMN public.ml_model_performance_summary.holdout_roc_auc IS
    'ROC AUC on the held-out window (calibrated probabilities, as served)';
COMMENT ON COLUMN public.ml_model_performance_summary.holdout_accuracy IS
    'Share of right take/skip decisions on the held-out window';
COMMENT ON COLUMN public.ml_model_performance_summary.holdout_precision IS
    'Wins among the signals it would take on the held-out window; compare holdout_base_rate';
COMMENT ON COLUMN public.ml_model_performance_summary.holdout_brier IS
    'Brier score on the held-out window; compare holdout_always_take_brier';
COMMENT ON COLUMN public.ml_model_performance_summary.holdout_log_loss IS
    'Log loss on the held-out window; compare holdout_always_take_log_loss';
COMMENT ON COLUMN public.ml_model_performance_summary.holdout_base_rate IS
    'Share of winning signals in the held-out window: the precision of always taking';
COMMENT ON COLUMN public.ml_model_performance_summary.holdout_always_take_brier IS
    'Baseline: Brier score of a constant probability (the training base rate), held-out window';
COMMENT ON COLUMN public.ml_model_performance_summary.holdout_always_take_log_loss IS
    'Baseline: log loss of a constant probability (the training base rate), held-out window';
COMMENT ON COLUMN public.ml_model_performance_summary.n_predictions IS
    'Predictions served by this model (all time)';
COMMENT ON COLUMN public.ml_model_performance_summary.n_resolved IS
    'Of those, predictions whose trade has closed (an exit was reported)';
COMMENT ON COLUMN public.ml_model_performance_summary.n_taken_resolved IS
    'Resolved predictions whose decision was take';
COMMENT ON COLUMN public.ml_model_performance_summary.live_accuracy IS
    'Share of resolved predictions whose decision was right (take and won, or skip and lost)';
COMMENT ON COLUMN public.ml_model_performance_summary.live_precision IS
    'Wins among resolved take decisions; compare live_base_rate';
COMMENT ON COLUMN public.ml_model_performance_summary.live_base_rate IS
    'Wins among all resolved predictions: what always taking the signal scored (baseline)';
COMMENT ON COLUMN public.ml_model_performance_summary.n_predictions_30d IS
    'Predictions served in the last 30 days';
COMMENT ON COLUMN public.ml_model_performance_summary.n_resolved_30d IS
    'Predictions of the last 30 days that are resolved';
COMMENT ON COLUMN public.ml_model_performance_summary.live_accuracy_30d IS
    'live_accuracy over predictions of the last 30 days';
COMMENT ON COLUMN public.ml_model_performance_summary.live_precision_30d IS
    'live_precision over predictions of the last 30 days';

COMMENT ON VIEW public.daily_exit_performance IS
    'Closed positions (position_exits) per UTC day of exit and exit reason.';
COMMENT ON COLUMN public.daily_exit_performance.exit_date IS 'UTC day of the exit';
COMMENT ON COLUMN public.daily_exit_performance.exit_reason IS
    'stop_loss, take_profit, trailing_stop, breakeven, time_stop, partial, ml_exit, signal or '
    'manual';
COMMENT ON COLUMN public.daily_exit_performance.trades IS 'Exits of that day and reason';
COMMENT ON COLUMN public.daily_exit_performance.wins IS 'Exits with pnl > 0';
COMMENT ON COLUMN public.daily_exit_performance.win_rate IS 'wins / trades';
COMMENT ON COLUMN public.daily_exit_performance.avg_win IS
    'Mean pnl of the winning exits (NULL: none); in the quote currency';
COMMENT ON COLUMN public.daily_exit_performance.avg_loss IS
    'Mean pnl of the losing exits (pnl < 0; NULL: none)';
COMMENT ON COLUMN public.daily_exit_performance.avg_pnl IS 'Mean net pnl (after fees)';
COMMENT ON COLUMN public.daily_exit_performance.total_pnl IS 'Sum of net pnl';
COMMENT ON COLUMN public.daily_exit_performance.avg_r_multiple IS
    'Mean result in R (multiples of the initial risk |entry - initial stop|)';
COMMENT ON COLUMN public.daily_exit_performance.avg_mfe IS
    'Mean max favourable excursion, in R';
COMMENT ON COLUMN public.daily_exit_performance.avg_mae IS 'Mean max adverse excursion, in R';
COMMENT ON COLUMN public.daily_exit_performance.avg_holding_seconds IS
    'Mean time from entry to exit, in seconds';

COMMENT ON VIEW public.ml_feature_statistics IS
    'Per feature set version and feature: distribution of the stored feature vectors '
    '(ml_trade_features), overall and for winners vs losers.';
COMMENT ON COLUMN public.ml_feature_statistics.feature_set_version IS
    'Feature set the vectors were computed with (FEATURE_SET_VERSION)';
COMMENT ON COLUMN public.ml_feature_statistics.feature IS 'Feature name';
COMMENT ON COLUMN public.ml_feature_statistics.n IS 'Rows where the feature holds a number';
COMMENT ON COLUMN public.ml_feature_statistics.mean IS 'Mean of those numbers';
COMMENT ON COLUMN public.ml_feature_statistics.stddev IS
    'Sample standard deviation (NULL with one value)';
COMMENT ON COLUMN public.ml_feature_statistics.min IS 'Smallest value';
COMMENT ON COLUMN public.ml_feature_statistics.max IS 'Largest value';
COMMENT ON COLUMN public.ml_feature_statistics.missing IS
    'Rows of the version without a number for it (absent, null or non-numeric); n + missing '
    '= rows of the version';
COMMENT ON COLUMN public.ml_feature_statistics.n_winners IS
    'Labelled winners (label 1) with a number';
COMMENT ON COLUMN public.ml_feature_statistics.n_losers IS
    'Labelled losers (label 0) with a number';
COMMENT ON COLUMN public.ml_feature_statistics.mean_winners IS
    'Mean over winners; differing from mean_losers: a feature the model can use';
COMMENT ON COLUMN public.ml_feature_statistics.mean_losers IS 'Mean over losers';

-- ---------------------------------------------------------------------------------------
-- Row level security. No policy for anon/authenticated: with RLS on they see no row even if
-- a grant slips through. The owner (postgres) and service_role (BYPASSRLS on Supabase) keep
-- full access; the explicit service_role policy below keeps that true without BYPASSRLS.
-- ---------------------------------------------------------------------------------------
ALTER TABLE public.ml_trade_features    ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ml_models            ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ml_predictions       ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ml_performance       ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.position_exits       ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ml_schema_migrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ml_retrains          ENABLE ROW LEVEL SECURITY;

-- ---------------------------------------------------------------------------------------
-- Grants, only for the roles that exist (Supabase has anon, authenticated, service_role; a
-- plain Postgres has none of them and this block does nothing). Supabase's default
-- privileges grant anon/authenticated ALL on every new table, view and sequence in public:
-- revoke them on ours (the project-wide default privileges are left alone: they are not ours).
-- ---------------------------------------------------------------------------------------
DO $$
DECLARE
    tables   text[] := ARRAY['ml_trade_features', 'ml_models', 'ml_predictions',
                             'ml_performance', 'position_exits', 'ml_schema_migrations',
                             'ml_retrains'];
    views    text[] := ARRAY['ml_model_performance_summary', 'daily_exit_performance',
                             'ml_feature_statistics'];
    -- identity sequences of the tables (ml_predictions uses uuid keys)
    seqs     text[] := ARRAY['ml_trade_features_id_seq', 'ml_models_id_seq',
                             'ml_performance_id_seq', 'position_exits_id_seq',
                             'ml_retrains_id_seq'];
    role_name text;
    obj      text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = role_name);
        FOREACH obj IN ARRAY tables || views LOOP
            EXECUTE format('REVOKE ALL ON TABLE public.%I FROM %I', obj, role_name);
        END LOOP;
        FOREACH obj IN ARRAY seqs LOOP
            EXECUTE format('REVOKE ALL ON SEQUENCE public.%I FROM %I', obj, role_name);
        END LOOP;
        EXECUTE format('REVOKE ALL ON FUNCTION public.ml_notify_model_activated() FROM %I',
                       role_name);
    END LOOP;

    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        FOREACH obj IN ARRAY tables LOOP
            EXECUTE format('GRANT SELECT, INSERT, UPDATE ON TABLE public.%I TO service_role',
                           obj);
            IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policies
                           WHERE schemaname = 'public' AND tablename = obj
                             AND policyname = 'service_role_all') THEN
                EXECUTE format('CREATE POLICY service_role_all ON public.%I AS PERMISSIVE '
                               'FOR ALL TO service_role USING (true) WITH CHECK (true)', obj);
            END IF;
        END LOOP;
        FOREACH obj IN ARRAY views LOOP
            EXECUTE format('GRANT SELECT ON TABLE public.%I TO service_role', obj);
        END LOOP;
        FOREACH obj IN ARRAY seqs LOOP
            EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE public.%I TO service_role', obj);
        END LOOP;
    END IF;
END;
$$;
