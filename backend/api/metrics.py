"""Prometheus metrics, in a registry of the app's own (several apps per process in tests)."""

from __future__ import annotations

from dataclasses import dataclass

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
