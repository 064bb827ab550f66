"""Prometheus metrics of one app instance (own registry, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    """Counters and latency histograms for the API."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.verdicts = Counter(
            "countersign_verdicts_total", "Verdicts by action", ["action"], registry=self.registry
        )
        self.latency = Histogram(
            "countersign_classify_seconds", "Time to classify one email", registry=self.registry
        )
        self.ingested = Counter(
            "countersign_ingested_total",
            "Webhook messages by outcome (stored, duplicate, rejected, unavailable)",
            ["outcome"],
            registry=self.registry,
        )
        self.ingest_latency = Histogram(
            "countersign_ingest_seconds",
            "Time to ingest one webhook message",
            registry=self.registry,
        )
        self.tickets = Counter(
            "countersign_tickets_total",
            "Tickets opened or attached by intent",
            ["intent", "relation"],
            registry=self.registry,
        )
