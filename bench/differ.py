"""Benchmark: the differ service against the bare tools, and warm requests under load.

In one run, for a small package pair and a large one (about 50 MB per .deb):
  - a cold GET /diffoscope (application/json) against bare
    `diffoscope --json=- --exclude-directory-metadata=yes` on the same pairs
    (target: service <= 1.05 x bare + 0.2 s);
  - a cold GET /debdiff (text/plain) against bare `debdiff --from ... --to ...`
    (same target);
  - warm requests from 32 concurrent connections (wrk) for each content type
    of both routes (target: p50 <= 10 ms, p99 <= 50 ms, no errors).

Usage: .venv/bin/python bench/differ.py [--reps N] [--seconds N] [--large-mb N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from janitor_common.db import migrate
from janitor_dev.debbuild import build_deb
from janitor_dev.devstack import Postgres, RedisServer, free_port, stop_cleanly_on_signals
from janitor_dev.testing import ServiceProcess, console_script, service_env

OLD_V, NEW_V = "1.0-1~jan+unchanged1", "1.0-2~jan+lint1"
TYPES = {
    "debdiff": ["text/plain", "text/markdown", "text/html"],
    "diffoscope": ["text/plain", "application/json", "text/html", "text/markdown"],
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_pair(artifacts: Path, name: str, large_mb: int) -> None:
    """Old and new runs: foo and libfoo1, a changed file, an added file, a version bump."""
    blobs: dict[str, bytes | str] = {}
    if large_mb:
        rnd = os.urandom(large_mb << 20)
        chunk = 100 << 10
        blobs = {
            f"/usr/share/foo/data/blob{i:04d}.bin": rnd[i * chunk : (i + 1) * chunk] for i in range(len(rnd) // chunk)
        }
    for side, version, text in (("old", OLD_V, "hello\n"), ("new", NEW_V, "hello, changed\n")):
        dest = artifacts / f"{name}-{side}"
        files = {**blobs, "/usr/share/foo/a.txt": text, "/usr/bin/foo": "#!/bin/sh\necho foo\n"}
        if side == "new":
            files["/usr/share/foo/added.txt"] = "added\n"
        build_deb(dest, "foo", version, files, control={"Depends": f"libfoo1 (= {version})"}, compression="gzip")
        build_deb(dest, "libfoo1", version, {"/usr/lib/libfoo.so.1": "library\n"}, compression="gzip")


def add_runs(conn: psycopg.Connection, name: str) -> None:
    conn.execute("INSERT INTO codebase (name) VALUES ('foo') ON CONFLICT DO NOTHING")
    for side, version, campaign in (("old", OLD_V, "unchanged"), ("new", NEW_V, "lintian-fixes")):
        run_id = f"{name}-{side}"
        conn.execute("INSERT INTO change_set (id) VALUES (%s)", (run_id,))
        conn.execute(
            "INSERT INTO run (id, codebase, suite, result_code, change_set) VALUES (%s, 'foo', %s, 'success', %s)",
            (run_id, campaign, run_id),
        )
        conn.execute(
            "INSERT INTO debian_build VALUES (%s, %s, %s, 'foo', %s, NULL)",
            (run_id, version, campaign, ["foo", "libfoo1"]),
        )


def debs(artifacts: Path, run_id: str) -> list[Path]:
    return sorted((artifacts / run_id).glob("*.deb"))


def bare_diffoscope(old: list[Path], new: list[Path]) -> float:
    start = time.perf_counter()
    for o, n in zip(old, new, strict=True):
        proc = subprocess.run(
            ["diffoscope", "--json=-", "--exclude-directory-metadata=yes", str(o), str(n)], capture_output=True
        )
        assert proc.returncode in (0, 1), proc.stderr
    return time.perf_counter() - start


def bare_debdiff(old: list[Path], new: list[Path]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(["debdiff", "--from", *map(str, old), "--to", *map(str, new)], capture_output=True)
    assert proc.returncode in (0, 1), proc.stderr
    return time.perf_counter() - start


def timed_get(url: str, accept: str) -> float:
    start = time.perf_counter()
    response = httpx.get(url, headers={"Accept": accept}, timeout=600)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.text
    return elapsed


def wrk(url: str, accept: str, seconds: int, connections: int = 32) -> tuple[int, float, float, int]:
    """Requests, p50 ms, p99 ms and errors from wrk (a load generator in C, so it is not the bottleneck)."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"Accept: {accept}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] == label:
                value = parts[1]
                for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
                    if value.endswith(unit):
                        return float(value[: -len(unit)]) * factor
        raise ValueError(f"no {label} in wrk output:\n{out}")

    requests = int(next(line.split()[0] for line in out.splitlines() if "requests in" in line))
    errors = 0
    for line in out.splitlines():
        if "Non-2xx or 3xx responses" in line:
            errors += int(line.split(":")[1])
        if line.strip().startswith("Socket errors"):
            errors += sum(int(p.split()[-1]) for p in line.split(":", 1)[1].split(","))
    return requests, ms("50%"), ms("99%"), errors


def main() -> int:
    stop_cleanly_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="length of each warm load run")
    parser.add_argument("--large-mb", type=int, default=50)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="bench-differ-"))
    base.chmod(0o755)
    artifacts = base / "artifacts"
    log("building packages ...")
    make_pair(artifacts, "small", 0)
    make_pair(artifacts, "large", args.large_mb)
    for name in ("small", "large"):
        sizes = [p.stat().st_size >> 20 for p in debs(artifacts, f"{name}-new")]
        log(f"  {name}: .deb sizes (MiB) {sizes}")

    pg = Postgres(base / "pg", free_port(), fast=True)
    redis = RedisServer(base / "redis", free_port())
    pg.init()
    pg.start()
    redis.start()
    service: ServiceProcess | None = None
    try:
        database_url = pg.create_database("bench")
        migrate.upgrade(database_url)
        with psycopg.connect(database_url, autocommit=True) as conn:
            for name in ("small", "large"):
                add_runs(conn, name)
        port = free_port()
        cache = base / "cache"
        service = ServiceProcess(
            [
                console_script("janitor-differ"),
                "--port",
                str(port),
                "--cache-path",
                str(cache),
                "--task-timeout",
                "600",
            ],
            service_env(
                JANITOR_DATABASE_URL=database_url,
                JANITOR_REDIS_URL=redis.url,
                JANITOR_ARTIFACT_LOCATION=str(artifacts),
                JANITOR_LOG_LEVEL="WARNING",
            ),
            f"http://127.0.0.1:{port}/health",
            base / "differ.log",
        )
        service.start()
        url = f"http://127.0.0.1:{port}"

        cold: dict[tuple[str, str], dict[str, list[float]]] = {}
        for rep in range(args.reps):
            log(f"repetition {rep + 1}/{args.reps}")
            for name in ("small", "large"):
                old, new = debs(artifacts, f"{name}-old"), debs(artifacts, f"{name}-new")
                for tool, bare, accept in (
                    ("diffoscope", bare_diffoscope, "application/json"),
                    ("debdiff", bare_debdiff, "text/plain"),
                ):
                    # Cold: nothing on disk and nothing in the service's memory.
                    shutil.rmtree(cache, ignore_errors=True)
                    service.stop()
                    service.start()
                    figures = cold.setdefault((name, tool), {"bare": [], "service": []})
                    figures["bare"].append(bare(old, new))
                    figures["service"].append(timed_get(f"{url}/{tool}/{name}-old/{name}-new", accept))
                    log(f"  {name} {tool}: bare {figures['bare'][-1]:.3f}s, service {figures['service'][-1]:.3f}s")

        print(f"\ndiffer benchmark, {args.reps} repetitions (medians)\n")
        print("| cold request | bare tool s | service s | service / bare | target 1.05 x bare + 0.2 s |")
        print("|---|---|---|---|---|")
        for (name, tool), figures in cold.items():
            b, s = statistics.median(figures["bare"]), statistics.median(figures["service"])
            verdict = "met" if s <= 1.05 * b + 0.2 else "not met"
            print(f"| {tool} {name} | {b:.3f} | {s:.3f} | {s / b:.2f} | {1.05 * b + 0.2:.3f}: {verdict} |")

        # Warm: everything is cached now (the small pair in every type, filtered and not).
        paths = []
        for tool, types in TYPES.items():
            for accept in types:
                for query in ("", "?filter_boring"):
                    path = f"/{tool}/small-old/small-new{query}"
                    timed_get(url + path, accept)
                    paths.append((path, accept))
        header = f"warm, 32 concurrent connections, {args.seconds} s (wrk)"
        print(f"\n| {header} | requests | p50 ms | p99 ms | errors | target |")
        print("|---|---|---|---|---|---|")
        for tool, types in TYPES.items():
            for accept in types:
                requests, p50, p99, errors = wrk(f"{url}/{tool}/small-old/small-new", accept, args.seconds)
                verdict = "met" if p50 <= 10 and p99 <= 50 and not errors else "not met"
                row = f"| {tool} {accept} | {requests} | {p50:.1f} | {p99:.1f} | {errors}"
                print(f"{row} | p50 <= 10, p99 <= 50: {verdict} |")
    finally:
        if service is not None:
            service.stop()
        redis.stop()
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
