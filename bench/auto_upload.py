"""Benchmark: auto-upload's cost on top of the bare tools, and how fast it drains a backlog.

In one run:
  - latency: for each of N builds, the time from PUBLISH of its `result`
    message to dput having completed the upload into a local incoming
    directory (dput's .upload log written) and to the ledger row saying
    uploaded (after dput exited), against bare
    `debsign --no-conf --no-re-sign -kKEY` + `dput -c CFG HOST` on a copy of
    the same files, interleaved (target: median overhead <= 0.2 s);
  - backlog: M builds already in the database when the service starts
    (catch-up, no messages), time until all are uploaded, at 1 and 4
    concurrent uploads, against M x the bare median.

Usage: .venv/bin/python bench/auto_upload.py [--builds N] [--backlog M]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import redis

from janitor_common.db import migrate
from janitor_dev.debbuild import build_upload
from janitor_dev.demo import ensure_signing_key
from janitor_dev.devstack import Postgres, RedisServer, free_port, stop_cleanly_on_signals
from janitor_dev.testing import ServiceProcess, console_script, service_env


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def wait_for(paths: list[Path], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    for path in paths:
        while not path.exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {path}")
            time.sleep(0.002)


def add_builds(database_url: str, run_ids: list[str]) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for run_id in run_ids:
            source = run_id.replace("-", "")
            conn.execute("INSERT INTO codebase (name) VALUES (%s) ON CONFLICT DO NOTHING", (source,))
            conn.execute("INSERT INTO change_set (id) VALUES (%s)", (run_id,))
            conn.execute(
                "INSERT INTO run (id, codebase, suite, result_code, change_set, finish_time)"
                " VALUES (%s, %s, 'lintian-fixes', 'success', %s, now())",
                (run_id, source, run_id),
            )
            conn.execute(
                "INSERT INTO debian_build (run_id, version, distribution, source)"
                " VALUES (%s, '1.0', 'lintian-fixes', %s)",
                (run_id, source),
            )


def changes_name(run_id: str) -> str:
    return f"{run_id.replace('-', '')}_1.0_source.changes"


def bare_upload(artifacts: Path, scratch: Path, run_id: str, keyid: str, config: Path, env: dict[str, str]) -> float:
    work = scratch / run_id
    shutil.copytree(artifacts / run_id, work)
    name = changes_name(run_id)
    start = time.perf_counter()
    for argv in (
        ["debsign", "--no-conf", "--no-re-sign", f"-k{keyid}", name],
        ["dput", "-c", str(config), "bare", name],
    ):
        subprocess.run(argv, cwd=work, env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    stop_cleanly_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--builds", type=int, default=50, help="builds for the latency comparison")
    parser.add_argument("--backlog", type=int, default=200, help="builds in the backlog")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="bench-auto-upload-"))
    base.chmod(0o755)  # PostgreSQL runs as postgres when we are root
    artifacts, state, scratch = base / "artifacts", base / "state", base / "bare"
    incoming = {host: base / f"incoming-{host}" for host in ("service", "bare")}
    config = base / "dput.cf"
    config.write_text(
        "".join(
            f"[{host}]\nmethod = local\nincoming = {path}\nallow_unsigned_uploads = 0\nrun_dinstall = 0\n\n"
            for host, path in incoming.items()
        )
    )
    latency_runs = [f"lat-{i}" for i in range(args.builds)]
    backlog_runs = [f"bkl-{i}" for i in range(args.backlog)]
    log(f"building {len(latency_runs) + len(backlog_runs)} source uploads ...")
    for run_id in latency_runs + backlog_runs:
        build_upload(artifacts / run_id, run_id.replace("-", ""), "1.0", binary=False)
    gnupg = base / "gnupg"
    keyid = ensure_signing_key(gnupg)

    pg = Postgres(base / "pg", free_port(), fast=True)
    redis_server = RedisServer(base / "redis", free_port())
    pg.init()
    pg.start()
    redis_server.start()
    service: ServiceProcess | None = None
    try:
        database_url = pg.create_database("bench")
        migrate.upgrade(database_url)
        port = free_port()

        def start_service(concurrency: int) -> ServiceProcess:
            for path in [*incoming.values(), state]:
                shutil.rmtree(path, ignore_errors=True)
                path.mkdir()
            proc = ServiceProcess(
                [
                    console_script("janitor-auto-upload"),
                    "serve",
                    "--port",
                    str(port),
                    "--dput-host",
                    "service",
                    "--dput-config",
                    str(config),
                    "--debsign-keyid",
                    keyid,
                    "--state-dir",
                    str(state),
                    "--source-only",
                ],
                service_env(
                    JANITOR_DATABASE_URL=database_url,
                    JANITOR_REDIS_URL=redis_server.url,
                    JANITOR_ARTIFACT_LOCATION=str(artifacts),
                    JANITOR_LOG_LEVEL="WARNING",
                    JANITOR_UPLOAD_CONCURRENCY=str(concurrency),
                    GNUPGHOME=str(gnupg),
                ),
                f"http://127.0.0.1:{port}/health",
                base / "auto-upload.log",
            )
            proc.start()
            return proc

        env = service_env(GNUPGHOME=str(gnupg))
        service = start_service(1)
        client = redis.Redis.from_url(redis_server.url)
        while client.pubsub_numsub("result")[0][1] < 1:
            time.sleep(0.05)
        bare: list[float] = []
        served: list[float] = []  # until dput's log is written (the files are all in incoming)
        recorded: list[float] = []  # until the ledger says uploaded (dput has exited)
        ledger = psycopg.connect(database_url, autocommit=True)
        log(f"latency: {args.builds} builds, bare tools and service interleaved ...")
        for i, run_id in enumerate(latency_runs):
            bare.append(bare_upload(artifacts, scratch, run_id, keyid, config, env))
            done = state / run_id / changes_name(run_id).replace(".changes", ".service.upload")
            message = {
                "log_id": run_id,
                "code": "success",
                "codebase": run_id.replace("-", ""),
                "target": {"name": "debian", "details": {"build_distribution": "lintian-fixes"}},
            }
            start = time.perf_counter()
            client.publish("result", json.dumps(message))
            wait_for([done])
            served.append(time.perf_counter() - start)
            while ledger.execute("SELECT state FROM auto_upload WHERE run_id = %s", (run_id,)).fetchone() != (
                "uploaded",
            ):
                time.sleep(0.002)
            recorded.append(time.perf_counter() - start)
            if (i + 1) % 10 == 0:
                log(f"  {i + 1}/{args.builds}: bare {bare[-1]:.3f}s, service {served[-1]:.3f}s / {recorded[-1]:.3f}s")
        assert len(list(incoming["service"].glob("*.changes"))) == args.builds
        client.close()
        ledger.close()
        service.stop()
        service = None

        add_builds(database_url, backlog_runs)
        done_paths = [state / r / changes_name(r).replace(".changes", ".service.upload") for r in backlog_runs]
        backlog: dict[int, float] = {}
        for concurrency in (1, 4):
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("TRUNCATE auto_upload")
            log(f"backlog: {args.backlog} builds, {concurrency} concurrent upload(s) ...")
            start = time.perf_counter()
            service = start_service(concurrency)
            wait_for(done_paths)
            backlog[concurrency] = time.perf_counter() - start
            service.stop()
            service = None
            assert len(list(incoming["service"].glob("*.changes"))) == args.backlog

        b = statistics.median(bare)
        print(f"\nauto-upload benchmark: {args.builds} builds, medians\n")
        print("| PUBLISH to ... | bare debsign + dput s | service s | overhead s | target <= 0.2 s |")
        print("|---|---|---|---|---|")
        for label, figures in (("upload complete in incoming", served), ("ledger row uploaded", recorded)):
            s = statistics.median(figures)
            q = statistics.quantiles(figures, n=10)
            verdict = "met" if s - b <= 0.2 else "not met"
            print(f"| {label} (p10 {q[0]:.3f}, p90 {q[-1]:.3f}) | {b:.3f} | {s:.3f} | {s - b:+.3f} | {verdict} |")
        print(f"\n| backlog of {args.backlog} (catch-up at start) | seconds | uploads/s | vs bare serial |")
        print("|---|---|---|---|")
        estimate = f"bare tools, serial (estimate: {args.backlog} x median)"
        print(f"| {estimate} | {args.backlog * b:.1f} | {1 / b:.1f} | 1.00 |")
        for concurrency, seconds in backlog.items():
            print(
                f"| service, {concurrency} concurrent | {seconds:.1f} | {args.backlog / seconds:.1f} "
                f"| {args.backlog * b / seconds:.2f} |"
            )
    finally:
        if service is not None:
            service.stop()
        redis_server.stop()
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
