"""bzr-store's own metrics, registered on the admin app's registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class StoreMetrics:
    bytes_in: Counter
    bytes_out: Counter
    requests: Counter
    active: Gauge
    diff_duration: Histogram
    writes: Counter


def make_metrics(registry: CollectorRegistry) -> StoreMetrics:
    return StoreMetrics(
        bytes_in=Counter(
            "bzr_smart_bytes_in", "Smart protocol request bytes received", ["interface"], registry=registry
        ),
        bytes_out=Counter(
            "bzr_smart_bytes_out", "Smart protocol response bytes sent", ["interface"], registry=registry
        ),
        requests=Counter(
            "bzr_smart_requests",
            "Smart protocol requests by interface, verb class (read/write) and outcome",
            ["interface", "kind", "outcome"],
            registry=registry,
        ),
        active=Gauge(
            "bzr_smart_active_requests", "Smart protocol requests in progress", ["interface"], registry=registry
        ),
        diff_duration=Histogram(
            "bzr_diff_duration_seconds",
            "Time to produce a diff",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        ),
        writes=Counter(
            "bzr_writes",
            "Write requests by worker ('' for the admin interface or no credentials) and outcome (accepted/refused)",
            ["worker", "outcome"],
            registry=registry,
        ),
    )
