"""One Settings class: every knob is an environment variable (prefix ``TML_``).

``DATABASE_URL`` is read without the prefix because that is the name Supabase, Heroku-style
hosts and most tooling use. With no ``DATABASE_URL`` an embedded PostgreSQL (pgserver) is
started under ``TML_DATA_DIR/pg``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.positions.barriers import DEFAULT_MAX_BARS, DEFAULT_SL_ATR, DEFAULT_TP_ATR


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TML_", extra="ignore",
                                      env_parse_none_str="none")

    # --- database -----------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "TML_DATABASE_URL")
    )
    data_dir: Path = Path("data")
    # None disables server-side prepared statements: required by Supabase's transaction
    # pooler (pgbouncer in transaction mode); leave unset for direct/session connections.
    db_prepare_threshold: int | None = 5
    db_pool_min_size: int = 1
    db_pool_max_size: int = 8
    db_connect_timeout: float = 5.0
    auto_migrate: bool = True

    # --- HTTP service -------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    max_body_bytes: int = 2_000_000
    # rows of all candle files of one training upload, counted before they are read
    max_upload_rows: int = Field(default=1_000_000, ge=1)
    # connection guards (backend/server.py, docs/operations.md "Connections and file
    # descriptors"): complete headers within header_timeout_s of connecting (or of the
    # previous response), the body within body_timeout_s of its headers; at most
    # max_connections open (None: what the file-descriptor budget leaves) and
    # max_concurrency requests in flight (beyond: 503)
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    max_connections: int | None = Field(default=None, ge=1)
    max_concurrency: int = Field(default=256, ge=1)
    fast_path: bool = True  # serve POST /api/v1/predict outside FastAPI's routing machinery
    # Comma-separated keys; when all three are empty, keys are generated at first start and
    # stored (mode 0600) in data_dir/api_keys.json. viewer: read-only (dashboard, GET routes).
    bot_api_keys: SecretStr = SecretStr("")
    admin_api_keys: SecretStr = SecretStr("")
    viewer_api_keys: SecretStr = SecretStr("")

    # --- model serving ------------------------------------------------------------------
    model_name: str = "default"
    # Decisions by expected value in R (backend.ml.decision): take when
    # p * reward - (1 - p) * risk - costs > margin. A threshold set here overrides the rule
    # (take when p >= threshold); unset, the rule decides.
    decision_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    decision_costs_r: float = Field(default=0.0, ge=0.0, le=10.0)
    decision_margin_r: float = Field(default=0.0, ge=-10.0, le=10.0)
    top_contributions: int = Field(default=5, ge=1, le=50)
    compile_models: bool = True  # treelite/tl2cgen compiled path; native booster fallback
    model_poll_seconds: float = 15.0  # fallback when LISTEN/NOTIFY is not delivered
    compiled_model_dir: Path | None = None  # default: data_dir/compiled_models

    # --- write-behind -------------------------------------------------------------------
    # Records per transaction, and per journal segment sent to the writer process. Small:
    # a short transaction per batch, a small backlog per segment, and with the writer in
    # a thread (writer_process=false) one batch holds the server's GIL only ~1 ms.
    writer_batch_size: int = 250
    # database writes in a process of their own (backend/db/writer_process.py); false: in
    # a thread of the server
    writer_process: bool = True
    writer_flush_seconds: float = 0.25
    writer_retry_seconds: float = 1.0
    # What an accepted record survives (docs/operations.md): off = a crash of the process;
    # batch (default, like Redis' appendfsync everysec) = also a power cut, but for the
    # last journal_fsync_ms, at almost no cost on the request path (the fsync runs in a
    # thread); always = everything, at one fsync per accepted record
    journal_fsync: Literal["off", "batch", "always"] = "batch"
    journal_fsync_ms: float = Field(default=1000.0, gt=0, le=60_000)

    # --- training -----------------------------------------------------------------------
    bootstrap_on_start: bool = True
    bootstrap_candles: Path | None = None  # default: EURUSD hourly shipped by `backtesting`
    bootstrap_symbol: str = "EURUSD"
    bootstrap_timeframe: str = "1h"
    bootstrap_trials: int = 8
    train_trials: int = 20
    train_timeout_seconds: float | None = None
    train_seed: int = 42
    optuna_storage: SecretStr | None = None  # e.g. the same Postgres URL: shared studies
    optuna_study: str | None = None  # with a storage: workers with one name tune one study
    # triple barrier of bootstrap labels: take-profit and stop in ATR; the horizon in bars
    # ("24") or as a duration turned into bars of each file's timeframe ("2d", "36h")
    barrier_tp_atr: float = Field(default=DEFAULT_TP_ATR, gt=0)
    barrier_sl_atr: float = Field(default=DEFAULT_SL_ATR, gt=0)
    barrier_horizon: str = str(DEFAULT_MAX_BARS)
    dataset_workers: int | None = Field(default=None, ge=1)  # processes; None: one per CPU
    # a Dask scheduler address ("tcp://host:8786"): boosters train on that cluster
    # (xgboost.dask / lightgbm.dask); unset: in this process
    dask_scheduler: str | None = None

    # --- continual learning (backend/ml/retrain_policy.py); all unset: off -------------
    # retrain after this many labelled outcomes closed since the active model's training
    # window ended (or since the newest outcome the last retrain saw)
    retrain_after_outcomes: int | None = Field(default=None, ge=1)
    # ... or when the outcomes' own clock (newest closed_at) is this many hours past it
    retrain_every_hours: float | None = Field(default=None, gt=0)
    # ... or when the tracker's drift (max PSI over features) of the active model exceeds it
    retrain_max_psi: float | None = Field(default=None, gt=0)
    retrain_with_bootstrap: bool = False  # add the bootstrap candles' dataset
    retrain_trials: int | None = Field(default=None, ge=1)  # None: train_trials

    # --- performance tracker ------------------------------------------------------------
    tracker_interval_seconds: float = 300.0

    @field_validator("barrier_horizon")
    @classmethod
    def _horizon(cls, value: str) -> str:
        from backend.ml.barrier_spec import parse_horizon

        parse_horizon(value)  # bars or a duration; a typo fails at start-up
        return value.strip()

    @field_validator("journal_fsync", mode="before")
    @classmethod
    def _fsync_mode(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("db_prepare_threshold", mode="before")
    @classmethod
    def _no_prepare(cls, value: object) -> object:
        """'', 'none', 'null' (any case) mean None: no prepared statements (pgbouncer)."""
        if isinstance(value, str) and value.strip().lower() in {"", "none", "null"}:
            return None
        return value

    @property
    def metrics_threshold(self) -> float:
        """The probability threshold of reported accuracy/precision: the override when set,
        else 0.5 (the decisions themselves then follow the expected-value rule)."""
        return 0.5 if self.decision_threshold is None else self.decision_threshold

    @property
    def pg_data_dir(self) -> Path:
        return self.data_dir / "pg"

    @property
    def journal_dir(self) -> Path:
        return self.data_dir / "journal"

    @property
    def model_cache_dir(self) -> Path:
        return self.compiled_model_dir or self.data_dir / "compiled_models"


@lru_cache
def get_settings() -> Settings:
    return Settings()
