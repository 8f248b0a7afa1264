"""Background jobs (training) run one at a time in a worker thread of this process.

Job state lives in memory: a job is visible on the replica that runs it, and is lost with
the process (the model it registers is not: it is in ml_models).
"""

from __future__ import annotations

import logging
import threading
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

log = logging.getLogger(__name__)

Status = Literal["queued", "running", "succeeded", "failed"]
ProgressFn = Callable[[float, str], None]


@dataclass
class Job:
    id: str
    kind: str
    status: Status = "queued"
    progress: float = 0.0
    message: str = "queued"
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        return asdict(self)


class JobManager:
    def __init__(self, max_workers: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="job")
        self._jobs: dict[str, Job] = {}
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, fn: Callable[[ProgressFn], dict[str, Any]],
               params: dict[str, Any] | None = None) -> Job:
        job = Job(id=str(uuid.uuid4()), kind=kind, params=params or {})
        with self._lock:
            self._jobs[job.id] = job
        future = self._pool.submit(self._run, job, fn)
        with self._lock:
            self._futures[job.id] = future
        future.add_done_callback(lambda _f: self._forget(job.id))
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        """Block until the job has finished (or ``timeout``); the job, None if unknown."""
        with self._lock:
            future, job = self._futures.get(job_id), self._jobs.get(job_id)
        if future is not None:
            future.exception(timeout)  # TimeoutError when still running; _run never raises
        return job

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._futures.pop(job_id, None)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self, job: Job, fn: Callable[[ProgressFn], dict[str, Any]]) -> None:
        job.status, job.started_at, job.message = "running", datetime.now(UTC), "running"

        def progress(fraction: float, message: str) -> None:
            job.progress = round(max(job.progress, min(1.0, fraction)), 4)
            job.message = message

        try:
            job.result = fn(progress)
            job.status, job.progress, job.message = "succeeded", 1.0, "done"
        except Exception as exc:
            log.error("job %s failed: %s\n%s", job.id, exc, traceback.format_exc())
            job.status, job.error, job.message = "failed", f"{type(exc).__name__}: {exc}", "failed"
        finally:
            job.finished_at = datetime.now(UTC)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
