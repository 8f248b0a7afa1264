"""Continual learning: when to retrain on the outcomes bots report, and the retrain job.

A retrain is due after ``TML_RETRAIN_AFTER_OUTCOMES`` labelled outcomes, and/or when the
outcomes' own clock has moved ``TML_RETRAIN_EVERY_HOURS`` on, and/or when the tracker's
drift of the active model exceeds ``TML_RETRAIN_MAX_PSI``. Counted from the later of the
active model's training window end (``ml_models.train_end``) and the newest outcome the
last retrain already saw, so a rejected candidate does not make every later exit retrain.
No wall clock decides (drift aside, which the tracker measures on its own schedule), so a
backtest that reports its exits in order and waits for each retrain reproduces.

The job trains a candidate on the labelled rows (+ the bootstrap candles when
``TML_RETRAIN_WITH_BOOTSTRAP``) through :func:`backend.ml.training.train`, which promotes
it only when it beats the active model on the same held-out window. Every retrain and its
reason are one ``ml_retrains`` row. At most one runs at a time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from backend.config import Settings
from backend.db import models as models_db
from backend.db import performance, retrains, trade_features
from backend.db.retrains import RetrainRow
from backend.jobs import Job, JobManager
from backend.ml.candles import load_candles_file, sample_candles_path
from backend.ml.dataset import Dataset
from backend.ml.feature_extractor import FEATURE_SET_VERSION
from backend.ml.training import Progress, concat_datasets

if TYPE_CHECKING:
    from backend.ml.ml_system import MLSystem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainPolicy:
    after_outcomes: int | None = None
    every_hours: float | None = None
    max_psi: float | None = None
    with_bootstrap: bool = False
    trials: int | None = None

    @classmethod
    def from_settings(cls, s: Settings) -> RetrainPolicy:
        return cls(after_outcomes=s.retrain_after_outcomes, every_hours=s.retrain_every_hours,
                   max_psi=s.retrain_max_psi, with_bootstrap=s.retrain_with_bootstrap,
                   trials=s.retrain_trials)

    @property
    def enabled(self) -> bool:
        return any(v is not None for v in (self.after_outcomes, self.every_hours,
                                           self.max_psi))


@dataclass(frozen=True)
class Check:
    """The policy's figures now; ``reasons`` empty when no retrain is due."""

    reasons: list[str]
    active_model_id: int | None
    since: datetime | None
    n_outcomes: int
    outcomes_until: datetime | None
    hours: float | None
    drift_psi: float | None
    details: dict[str, Any] = field(default_factory=dict)


def check(conn: psycopg.Connection, policy: RetrainPolicy, *, model_name: str) -> Check:
    """What the policy says for the active model of ``model_name`` (cheap: three reads)."""
    active = models_db.get_active(conn, name=model_name)
    last = retrains.last(conn, model_name=model_name)
    marks = [t for t in (active.train_end if active else None,
                         last.outcomes_until if last else None) if t is not None]
    since = max(marks) if marks else None
    n, newest = (trade_features.outcomes_since(conn, feature_set_version=FEATURE_SET_VERSION,
                                               since=since)
                 if since is not None else (0, None))
    hours = (newest - since).total_seconds() / 3600 if newest and since else None
    psi, psi_at = None, None
    if policy.max_psi is not None and active is not None:
        rows = performance.list_performance(conn, model_id=active.id)
        if rows:
            psi, psi_at = rows[-1].drift_psi, rows[-1].updated_at
    reasons = []
    if policy.after_outcomes is not None and n >= policy.after_outcomes:
        reasons.append("outcomes")
    if policy.every_hours is not None and hours is not None and hours >= policy.every_hours:
        reasons.append("hours")
    # a drift figure counts once: only when the tracker wrote it after the last retrain
    fresh = psi_at is not None and (last is None or psi_at > last.started_at)
    if policy.max_psi is not None and psi is not None and psi > policy.max_psi and fresh:
        reasons.append("drift")
    details = {"since": since, "n_outcomes": n, "outcomes_until": newest, "hours": hours,
               "drift_psi": psi, "after_outcomes": policy.after_outcomes,
               "every_hours": policy.every_hours, "max_psi": policy.max_psi,
               "reasons": reasons}
    return Check(reasons=reasons, active_model_id=active.id if active else None, since=since,
                 n_outcomes=n, outcomes_until=newest, hours=hours, drift_psi=psi,
                 details={k: v.isoformat() if isinstance(v, datetime) else v
                          for k, v in details.items()})


class Retrainer:
    """Starts retrains (after an exit, or asked by an admin) as background jobs, one at a
    time, and records each in ``ml_retrains``."""

    def __init__(self, system: MLSystem, jobs: JobManager,
                 policy: RetrainPolicy | None = None) -> None:
        self.system = system
        self.jobs = jobs
        self.policy = policy or RetrainPolicy.from_settings(system.settings)
        self._lock = threading.Lock()
        self._job: Job | None = None
        self._bootstrap: tuple[Path, Dataset] | None = None

    @property
    def running(self) -> Job | None:
        job = self._job
        return job if job is not None and job.status in ("queued", "running") else None

    def after_exit(self) -> Job | None:
        """The check after a recorded exit: start a retrain when one is due (never raises:
        the exit is stored whatever happens here)."""
        if not self.policy.enabled or self.running is not None:
            return None
        try:
            return self.start(force=False, requested_by="policy")[0]
        except Exception as exc:
            log.warning("retrain check after exit failed: %s", exc)
            return None

    def start(self, *, force: bool, requested_by: str) -> tuple[Job | None, Check]:
        """Start a retrain if due (or ``force``); the job (None: not due or one running)."""
        name = self.system.settings.model_name
        with self._lock:
            with self.system.connection() as conn:
                found = check(conn, self.policy, model_name=name)
                if self.running is not None or not (force or found.reasons):
                    return None, found
                row = retrains.insert(
                    conn, model_name=name, reason=found.reasons[0] if found.reasons
                    else "forced", details={**found.details, "forced": force},
                    active_model_id=found.active_model_id, n_outcomes=found.n_outcomes,
                    outcomes_until=found.outcomes_until, requested_by=requested_by)
            log.info("retrain %d started (%s): %s", row.id, row.reason, found.details)
            self._job = self.jobs.submit("retrain", lambda p: self._run(p, row),
                                         {"retrain_id": row.id, "reason": row.reason})
            return self._job, found

    def wait(self, job: Job, timeout: float | None = None) -> RetrainRow | None:
        """Block until ``job`` is done; its ``ml_retrains`` row."""
        with contextlib.suppress(TimeoutError):  # still running: its row says so
            self.jobs.wait(job.id, timeout)
        return self.record(int(job.params["retrain_id"]))

    def record(self, retrain_id: int) -> RetrainRow | None:
        with self.system.connection() as conn:
            return retrains.get(conn, retrain_id=retrain_id)

    def _run(self, progress: Progress, row: RetrainRow) -> dict[str, Any]:
        try:
            progress(0.01, "building the dataset")
            parts = [self.system.dataset_from_database()]
            if self.policy.with_bootstrap:
                parts.append(self._bootstrap_dataset())
            outcome = self.system.train(concat_datasets(parts), trials=self.policy.trials,
                                        promote=True, progress=progress,
                                        notes=f"retrain {row.id} ({row.reason})")
        except Exception as exc:
            with self.system.connection() as conn:
                retrains.finish(conn, retrain_id=row.id, status="failed",
                                error=f"{type(exc).__name__}: {exc}")
            raise
        summary = {"retrain_id": row.id, **outcome.summary()}
        with self.system.connection() as conn:
            retrains.finish(conn, retrain_id=row.id, status="succeeded",
                            candidate_model_id=outcome.model_id, promoted=outcome.promoted,
                            result=summary)
        log.info("retrain %d: candidate %d %s (%s)", row.id, outcome.model_id,
                 "promoted" if outcome.promoted else "not promoted", outcome.reason)
        return summary

    def _bootstrap_dataset(self) -> Dataset:
        """The bootstrap candles' dataset (built once: the candles do not change)."""
        s = self.system.settings
        path = Path(s.bootstrap_candles or sample_candles_path(s.bootstrap_symbol))
        if self._bootstrap is None or self._bootstrap[0] != path:
            data = self.system.dataset_from_candles(load_candles_file(path),
                                                    symbol=s.bootstrap_symbol,
                                                    timeframe=s.bootstrap_timeframe)
            self._bootstrap = (path, data)
        return self._bootstrap[1]
