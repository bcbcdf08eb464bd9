"""differ's own metrics."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class DifferMetrics:
    cache_hits: Counter
    cache_misses: Counter
    cache_write_failures: Counter
    duration: Histogram
    failures: Counter
    queue_depth: Gauge
    precached: Counter


def make_metrics(registry: CollectorRegistry) -> DifferMetrics:
    return DifferMetrics(
        cache_hits=Counter("differ_cache_hits", "Requests answered from the cache", ["tool"], registry=registry),
        cache_misses=Counter("differ_cache_misses", "Requests that computed a result", ["tool"], registry=registry),
        cache_write_failures=Counter(
            "differ_cache_write_failures",
            "Results served but not cached (the cache could not be written)",
            registry=registry,
        ),
        duration=Histogram(
            "differ_tool_duration_seconds",
            "Time to compute a diff, by tool",
            ["tool"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=registry,
        ),
        failures=Counter("differ_failures", "Failed diffs by tool and kind", ["tool", "kind"], registry=registry),
        queue_depth=Gauge("differ_precache_queue_depth", "Precache jobs waiting", registry=registry),
        precached=Counter("differ_precached", "Precache jobs by outcome", ["outcome"], registry=registry),
    )
