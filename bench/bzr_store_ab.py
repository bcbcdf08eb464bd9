"""Benchmark: bzr-store against `brz serve` on the medium repository, interleaved and rotated.

bench/bzr_store.py measures every operation once per repetition between big
transfers; on this noisy 2-core machine its medium-size figures swing by
20-30 % between runs. This one repeats only the medium-size operations,
many times, rotating which server goes first, so that drift and order
effects spread over all of them:
  - branch of the medium repository (1000 commits);
  - 16 concurrent branches of it;
  - push of 50 commits onto an existing branch (worker credentials).
With --old-checkout DIR it also runs bzr-store (and the janitor-common it
uses) from another checkout of this repository (an A/B of a change). With
--floor it also runs bench/bzr_http_floor.py, the least an HTTP smart server
can do: what separates it from `brz serve` is Breezy's HTTP client's own cost.

Usage: .venv/bin/python bench/bzr_store_ab.py [--reps N] [--only MEASURE] [--old-checkout DIR] [--floor]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
import bzr_store as B

from janitor_common.db import migrate
from janitor_dev.devstack import Postgres, RedisServer, free_port, stop_cleanly_on_signals
from janitor_dev.testing import ServiceProcess, console_script, service_env

MEASURES = ("branch medium", "16 concurrent branches", "push 50 commits")


def main() -> int:
    stop_cleanly_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--old-checkout", type=Path, help="another checkout of this repository to compare")
    parser.add_argument("--floor", action="store_true", help="also measure bench/bzr_http_floor.py")
    parser.add_argument(
        "--only", action="append", choices=MEASURES, help="measure only this (repeatable; default: all)"
    )
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "janitor-bench-bzr")
    args = parser.parse_args()
    measures = [m for m in MEASURES if not args.only or m in args.only]
    paths = B.build_data(args.data, 1.0)
    base = Path(tempfile.mkdtemp(prefix="bench-bzr-ab-"))
    base.chmod(0o755)
    pg = Postgres(base / "pg", free_port(), fast=True)
    redis = RedisServer(base / "redis", free_port())
    pg.init()
    pg.start()
    redis.start()
    services: list[ServiceProcess] = []
    servers: list[subprocess.Popen[bytes]] = []
    try:
        url = pg.create_database("bench")
        migrate.upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO worker VALUES (%s, crypt(%s, gen_salt('bf')), NULL)", (B.WORKER, B.PASSWORD))
            for name in ["medium", *(f"p{r}" for r in range(args.reps))]:
                conn.execute("INSERT INTO codebase (name) VALUES (%s)", (name,))
        ways = {"bzr-store": None, **({"old": args.old_checkout} if args.old_checkout else {})}
        roots: dict[str, Path] = {}
        urls: dict[str, str] = {}
        for key, src in ways.items():
            root = roots[key] = base / key
            root.mkdir()
            B.seed_repository(root / "medium", paths["medium"])
            admin, public = free_port(), free_port()
            env = service_env(
                JANITOR_DATABASE_URL=url,
                JANITOR_REDIS_URL=redis.url,
                JANITOR_CAMPAIGNS=json.dumps([{"name": "lintian-fixes"}]),
                JANITOR_LOG_LEVEL="WARNING",
            )
            if src is not None:
                env["PYTHONPATH"] = os.pathsep.join(
                    str((src / sub).resolve()) for sub in ("services/bzr-store/src", "libs/janitor-common/src")
                )
            service = ServiceProcess(
                [
                    console_script("janitor-bzr-store"),
                    "--vcs-path",
                    str(root),
                    "--port",
                    str(admin),
                    "--public-port",
                    str(public),
                ],
                env,
                f"http://127.0.0.1:{admin}/health",
                base / f"{key}.log",
            )
            service.start()
            services.append(service)
            urls[key] = f"bzr+http://127.0.0.1:{public}/bzr/{{cb}}/lintian-fixes/main"
        roots["brz serve"] = base / "serve"
        roots["brz serve"].mkdir()
        B.seed_repository(roots["brz serve"] / "medium", paths["medium"])
        port = free_port()
        serve = subprocess.Popen(
            [
                B.BRZ,
                "serve",
                "--allow-writes",
                "--directory",
                str(roots["brz serve"]),
                "--listen",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "BRZ_HOME": str(base)},
        )
        servers.append(serve)
        B.wait_port(port, serve)
        urls["brz serve"] = f"bzr://127.0.0.1:{port}/{{cb}}/lintian-fixes/main"
        if args.floor:
            roots["floor"] = base / "floor"
            roots["floor"].mkdir()
            B.seed_repository(roots["floor"] / "medium", paths["medium"])
            port = free_port()
            floor = subprocess.Popen(
                [sys.executable, str(Path(__file__).parent / "bzr_http_floor.py"), str(roots["floor"]), str(port)],
                stdout=subprocess.DEVNULL,
                env={**os.environ, "BRZ_HOME": str(base)},
            )
            servers.append(floor)
            B.wait_port(port, floor)
            urls["floor"] = f"bzr+http://127.0.0.1:{port}/bzr/{{cb}}/lintian-fixes/main"

        def location(key: str, codebase: str, write: bool = False) -> str:
            loc = urls[key].format(cb=codebase)
            if write and loc.startswith("bzr+http://"):
                loc = loc.replace("bzr+http://", f"bzr+http://{B.WORKER}:{B.PASSWORD}@")
            return loc

        out = base / "out"
        out.mkdir()

        def branch(loc: str, to: Path) -> None:
            shutil.rmtree(to, ignore_errors=True)
            B.brz("branch", "-q", "--no-tree", loc, str(to))

        results: dict[str, dict[str, list[float]]] = {k: {m: [] for m in measures} for k in urls}
        keys = list(urls)
        for rep in range(args.reps):
            order = keys[rep % len(keys) :] + keys[: rep % len(keys)]
            for key in order if "branch medium" in measures else []:
                loc = location(key, "medium")
                results[key]["branch medium"].append(B.timed(lambda: branch(loc, out / key)))  # noqa: B023
            for key in order if "push 50 commits" in measures else []:
                B.seed_repository(roots[key] / f"p{rep}", paths["medium"])
                loc = location(key, f"p{rep}", write=True)
                results[key]["push 50 commits"].append(
                    B.timed(lambda: B.brz("push", "-q", "-d", str(paths["medium50"]), loc))  # noqa: B023
                )
            for key in order if "16 concurrent branches" in measures else []:
                loc = location(key, "medium")

                def concurrent16() -> None:
                    with concurrent.futures.ThreadPoolExecutor(16) as pool:
                        list(pool.map(lambda i: branch(loc, out / f"{key}-{i}"), range(16)))  # noqa: B023

                results[key]["16 concurrent branches"].append(B.timed(concurrent16))
            B.log(f"repetition {rep + 1}/{args.reps}: " + ", ".join(
                f"{k} {' / '.join(f'{v[m][-1]:.3f}' for m in measures)}" for k, v in results.items()
            ))  # fmt: skip
        print(f"\nbzr-store A/B benchmark, {args.reps} rotated repetitions (medians, seconds)\n")
        others = [k for k in urls if k != "brz serve"]
        print("| measurement | " + " | ".join(urls) + " | " + " | ".join(f"{k} / brz serve" for k in others) + " |")
        print("|---" * (len(urls) + len(others) + 1) + "|")
        for m in measures:
            med = {k: statistics.median(v[m]) for k, v in results.items()}
            ratios = " | ".join(f"{med[k] / med['brz serve']:.2f}" for k in others)
            print(f"| {m} | " + " | ".join(f"{med[k]:.3f}" for k in urls) + f" | {ratios} |")
    finally:
        for service in services:
            service.stop()
        for server in servers:
            server.terminate()
            server.wait(10)
        redis.stop()
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
