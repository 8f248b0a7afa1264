"""Prometheus metrics, in a registry of the app's own (several apps per process in tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    predictions: Counter
    queue_depth: Gauge
    journal_bytes: Gauge
    active_model: Gauge
    writer_failures: Gauge
    writer_rejected: Gauge
    # labelled children by label values: ``labels()`` costs more than the increment itself
    _children: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._child(self.requests, route, method, str(status)).inc()
        self._child(self.latency, route).observe(seconds)

    def count_prediction(self, decision: str) -> None:
        self._child(self.predictions, decision).inc()


def create_metrics() -> Metrics:
    reg = CollectorRegistry(auto_describe=True)
    return Metrics(
        registry=reg,
        requests=Counter("tml_http_requests", "HTTP requests", ["route", "method", "status"],
                         registry=reg),
        latency=Histogram("tml_http_request_seconds", "HTTP request latency", ["route"],
                          buckets=(.0005, .001, .002, .005, .01, .025, .05, .1, .25, 1, 5),
                          registry=reg),
        predictions=Counter("tml_predictions", "Predictions served", ["decision"],
                            registry=reg),
        queue_depth=Gauge("tml_writer_queue_depth", "Records accepted, not yet in Postgres",
                          registry=reg),
        journal_bytes=Gauge("tml_writer_journal_bytes", "Size of the write-behind journal",
                            registry=reg),
        active_model=Gauge("tml_active_model_version", "Version of the model being served",
                           ["name", "model_id"], registry=reg),
        writer_failures=Gauge("tml_writer_failed_attempts", "Failed database write attempts",
                              registry=reg),
        writer_rejected=Gauge("tml_writer_rejected", "Records the database refused (set aside "
                              "in journal/rejected.jsonl)", registry=reg),
    )
