"""Benchmark: does a 401 take as long for an unknown worker name as for a known one?

A smart write request with Basic credentials to bzr-store's public
interface, never cached (every password is wrong): (a) a worker name that
does not exist, (b) a worker that exists with a wrong password. Both must
cost one bcrypt in PostgreSQL, so their medians must be within 10 % of each
other (the ratio a/b is the figure); before 2026-11-29 the unknown name
skipped bcrypt and answered in 3.1 ms against 7.5 ms.

Usage: .venv/bin/python bench/auth_timing.py [--requests N]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time

import httpx
from fastbencode import bencode
from scratch import scratch_bzr_store

from janitor_dev.devstack import stop_cleanly_on_signals

V3 = b"bzr message 3 (bzr 1.6)\n"


def write_request() -> bytes:
    headers: bytes = bencode({})
    args: bytes = bencode([b"mkdir", b"x", b""])
    return V3 + len(headers).to_bytes(4, "big") + headers + b"s" + len(args).to_bytes(4, "big") + args + b"e"


def timed_401s(client: httpx.Client, url: str, user: str, count: int) -> list[float]:
    body = write_request()
    times = []
    for i in range(count):
        token = base64.b64encode(f"{user}:wrong-{i}".encode()).decode()
        started = time.perf_counter()
        response = client.post(url, content=body, headers={"Authorization": f"Basic {token}"})
        times.append(time.perf_counter() - started)
        assert response.status_code == 401, response.status_code
    return times


def main() -> int:
    stop_cleanly_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests per kind, interleaved in rounds of 10")
    args = parser.parse_args()
    setup = (
        "INSERT INTO worker VALUES ('known-worker', crypt('right', gen_salt('bf')), NULL)",
        "INSERT INTO codebase (name) VALUES ('bench')",
    )
    # Every request here fails on purpose: the brake on guessing is off.
    with scratch_bzr_store("bench-auth-", setup, {"JANITOR_AUTH_FAILURE_LIMIT": "0"}) as store:
        smart = f"{store.public_url}/bzr/bench/.bzr/smart"
        unknown: list[float] = []
        known: list[float] = []
        with httpx.Client(timeout=30) as client:
            timed_401s(client, smart, "warm-up", 20)
            for _ in range(max(args.requests // 10, 1)):  # interleaved: drift hits both alike
                unknown += timed_401s(client, smart, "no-such-worker", 10)
                known += timed_401s(client, smart, "known-worker", 10)
        a, b = statistics.median(unknown) * 1000, statistics.median(known) * 1000

        def p(values: list[float], q: int) -> float:
            return statistics.quantiles(values, n=10)[q - 1] * 1000

        print(f"\nTime to a 401 on bzr-store's public interface, {len(unknown)} requests each (ms)\n")
        print("| worker name | median | p10 | p90 |")
        print("|---|---|---|---|")
        print(f"| (a) unknown | {a:.2f} | {p(unknown, 1):.2f} | {p(unknown, 9):.2f} |")
        print(f"| (b) known, wrong password | {b:.2f} | {p(known, 1):.2f} | {p(known, 9):.2f} |")
        print(f"\na/b = {a / b:.2f} (target: within 0.90-1.10)")
        return 0 if 0.9 <= a / b <= 1.1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
