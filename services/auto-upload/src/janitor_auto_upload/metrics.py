"""auto-upload's own metrics."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class UploadMetrics:
    debsign_failed: Counter
    upload_failed: Counter
    uploads: Counter
    pending: Gauge
    duration: Histogram


def make_metrics(registry: CollectorRegistry) -> UploadMetrics:
    return UploadMetrics(
        debsign_failed=Counter("debsign_failed", "debsign runs that failed", registry=registry),
        upload_failed=Counter("upload_failed", "dput runs that failed", registry=registry),
        uploads=Counter("uploads", "Uploads by outcome", ["outcome"], registry=registry),
        pending=Gauge("uploads_pending", "Ledger rows waiting to be uploaded", registry=registry),
        duration=Histogram(
            "upload_duration_seconds",
            "From claim to a completed upload",
            registry=registry,
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        ),
    )
